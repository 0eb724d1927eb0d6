//! Roles, permissions, and the one table that joins them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// What a caller is, as granted by an API key or an identity provider.
///
/// Written in kebab-case in text and JSON (`portfolio-manager`).
///
/// Deliberately not ordered: roles are not a ladder (an auditor reads more
/// than a trader and may change less), so `role >= Role::Trader` must not
/// compile. Ask [`Role::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads portfolios: results, state, history, orders, notifications, risk.
    Viewer,
    /// A viewer who may also publish trading decisions.
    Trader,
    /// A viewer who may also request optimizations (which stage orders).
    PortfolioManager,
    /// Reads everything, forensics, events, audit and metrics included, and
    /// changes nothing.
    Auditor,
    /// Everything, keys and configuration included.
    Admin,
    /// A bank customer through the bank's app: asks the assistant about
    /// their own accounts (the one customer on the key) and reads the
    /// portfolios on the key.
    Customer,
    /// An outside system feeding the platform (a CRM's webhook, a price
    /// feed): publishes external events and reads nothing.
    Integration,
}

/// What a route needs. A route names one permission; a role grants a fixed
/// set of them (see [`Role::permissions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Portfolio results, state, history, orders, notifications, risk.
    ReadPortfolios,
    /// Ask for an optimization (which, once done, stages orders).
    RequestOptimization,
    /// Publish trading decisions.
    Trade,
    /// SHAP explanations and the forensics views.
    ReadForensics,
    /// The live event stream and the topics of the log.
    ReadEvents,
    /// The audit trail.
    ReadAudit,
    /// Prometheus metrics.
    ReadMetrics,
    /// Compliance alerts (personal data found in agent answers: where,
    /// never the value).
    ReadCompliance,
    /// API keys and configuration.
    Admin,
    /// Ask the customer assistant (and call its agents' tools) about a
    /// customer: a customer's key only about that customer.
    Assist,
    /// Publish events from outside systems (CRM interactions, market prices).
    IngestExternal,
    /// The data mesh: discover data products (search, lineage, quality)
    /// and query them.
    ReadDataProducts,
}

use Permission::*;

/// Who may do what: the single source of the role matrix. The crate docs
/// show the same table; a test checks that they agree.
const MATRIX: [(Role, &[Permission]); 7] = [
    (Role::Viewer, &[ReadPortfolios]),
    (Role::Trader, &[ReadPortfolios, Trade]),
    (
        Role::PortfolioManager,
        &[ReadPortfolios, RequestOptimization, ReadDataProducts],
    ),
    (
        Role::Auditor,
        &[
            ReadPortfolios,
            ReadForensics,
            ReadEvents,
            ReadAudit,
            ReadMetrics,
            ReadCompliance,
            ReadDataProducts,
        ],
    ),
    (Role::Admin, &Permission::ALL),
    (Role::Customer, &[ReadPortfolios, Assist]),
    (Role::Integration, &[IngestExternal]),
];

impl Role {
    /// Every role, in the order of the matrix (viewer to admin, then
    /// customer and integration).
    pub const ALL: [Role; 7] = [
        Role::Viewer,
        Role::Trader,
        Role::PortfolioManager,
        Role::Auditor,
        Role::Admin,
        Role::Customer,
        Role::Integration,
    ];

    /// The role's name as written in key files, tokens and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Trader => "trader",
            Role::PortfolioManager => "portfolio-manager",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Customer => "customer",
            Role::Integration => "integration",
        }
    }

    /// The permissions this role grants, from the one table.
    pub fn permissions(self) -> &'static [Permission] {
        // The table is ordered like `Role::ALL`, so the role's position finds
        // its row; the test `matrix_rows_follow_role_order` holds that.
        MATRIX[self as usize].1
    }

    /// Whether this role grants `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 12] = [
        ReadPortfolios,
        RequestOptimization,
        Trade,
        ReadForensics,
        ReadEvents,
        ReadAudit,
        ReadMetrics,
        ReadCompliance,
        Admin,
        Assist,
        IngestExternal,
        ReadDataProducts,
    ];

    /// The permission's name in kebab-case (`read-portfolios`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ReadPortfolios => "read-portfolios",
            RequestOptimization => "request-optimization",
            Trade => "trade",
            ReadForensics => "read-forensics",
            ReadEvents => "read-events",
            ReadAudit => "read-audit",
            ReadMetrics => "read-metrics",
            ReadCompliance => "read-compliance",
            Admin => "admin",
            Assist => "assist",
            IngestExternal => "ingest-external",
            ReadDataProducts => "read-data-products",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    /// Parses a role name; the error lists the valid ones.
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::UnknownRole {
                given: s.to_owned(),
            })
    }
}

impl FromStr for Permission {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::UnknownPermission {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn matrix_rows_follow_role_order() {
        for (i, role) in Role::ALL.into_iter().enumerate() {
            assert_eq!(MATRIX[i].0, role);
            assert_eq!(role as usize, i);
        }
    }

    #[test]
    fn matrix_matches_the_documented_roles() {
        let grants = |r: Role| Permission::ALL.map(|p| r.allows(p));
        // Columns: read-portfolios, request-optimization, trade,
        // read-forensics, read-events, read-audit, read-metrics,
        // read-compliance, admin, assist, ingest-external, read-data-products.
        let (t, f) = (true, false);
        assert_eq!(grants(Role::Viewer), [t, f, f, f, f, f, f, f, f, f, f, f]);
        assert_eq!(grants(Role::Trader), [t, f, t, f, f, f, f, f, f, f, f, f]);
        assert_eq!(
            grants(Role::PortfolioManager),
            [t, t, f, f, f, f, f, f, f, f, f, t]
        );
        assert_eq!(grants(Role::Auditor), [t, f, f, t, t, t, t, t, f, f, f, t]);
        assert_eq!(grants(Role::Admin), [t; 12]);
        assert_eq!(grants(Role::Customer), [t, f, f, f, f, f, f, f, f, t, f, f]);
        assert_eq!(
            grants(Role::Integration),
            [f, f, f, f, f, f, f, f, f, f, t, f]
        );
    }

    #[test]
    fn crate_docs_show_the_same_matrix() -> TestResult {
        // The table in lib.rs is for people; this keeps it honest.
        let docs = include_str!("lib.rs");
        for role in Role::ALL {
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("//! | `{}` |", role.as_str())))
                .ok_or_else(|| format!("no row for {role} in the crate docs"))?;
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // cells[0] is empty (before the first '|'), cells[1] the role.
            for (i, p) in Permission::ALL.into_iter().enumerate() {
                let documented = cells[i + 2] == "✓";
                assert_eq!(documented, role.allows(p), "{role} / {p} in the docs");
            }
        }
        Ok(())
    }

    #[test]
    fn names_round_trip_in_text_and_json() -> TestResult {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>()?, role);
            assert_eq!(serde_json::to_string(&role)?, format!("\"{role}\""));
        }
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>()?, p);
            assert_eq!(serde_json::to_string(&p)?, format!("\"{p}\""));
        }
        assert_eq!(
            serde_json::from_str::<Role>("\"portfolio-manager\"")?,
            Role::PortfolioManager
        );
        Ok(())
    }

    #[test]
    fn unknown_role_lists_the_valid_ones() {
        let e = "superuser".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("'superuser'"), "{e}");
        for role in Role::ALL {
            assert!(e.contains(role.as_str()), "{e} lacks {role}");
        }
        // Names are exact: no case folding, no snake_case.
        assert!("Admin".parse::<Role>().is_err());
        assert!("portfolio_manager".parse::<Role>().is_err());
    }
}
