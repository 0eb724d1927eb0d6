//! Who is calling: [`Principal`], the portfolios it may see ([`Scope`]) and
//! how it proved who it is ([`AuthMethod`]).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::{Error, Forbidden, Permission, Result, Role};

/// How a principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// An UltraCore API key (`uck_…`).
    ApiKey,
    /// A JWT from the configured OIDC issuer.
    Jwt,
    /// The local user of the CLI or of `ultracore mcp` on stdio, who already
    /// has the data directory.
    Local,
}

impl AuthMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api-key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Local => "local",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The portfolios a principal may see.
///
/// In JSON: the string `"all"`, or an array of portfolio ids. An empty set
/// means no portfolio at all (a token without a portfolios claim, for a role
/// that is not auditor or admin).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every portfolio, present and future.
    All,
    /// Only these portfolios.
    Portfolios(BTreeSet<String>),
    /// No portfolio.
    #[default]
    None,
}

/// Portfolio ids follow the API's rule: 1 to 64 of letters, digits, `-`,
/// `_`, `.`. Keeping the same rule means a scope can never name an id the
/// API would refuse, and "all" or "*" can never be mistaken for an id.
pub fn is_valid_portfolio_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Customer ids follow the same rule as portfolio ids.
pub fn is_valid_customer_id(id: &str) -> bool {
    is_valid_portfolio_id(id)
}

impl Scope {
    /// A scope of these portfolios; every id must be valid
    /// ([`is_valid_portfolio_id`]). No ids gives [`Scope::None`].
    pub fn portfolios<I, S>(ids: I) -> Result<Scope>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = BTreeSet::new();
        for id in ids {
            let id = id.into();
            if !is_valid_portfolio_id(&id) {
                return Err(Error::InvalidPortfolioId { id });
            }
            set.insert(id);
        }
        Ok(if set.is_empty() {
            Scope::None
        } else {
            Scope::Portfolios(set)
        })
    }

    /// Whether the scope covers `portfolio_id`.
    pub fn contains(&self, portfolio_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Portfolios(ids) => ids.contains(portfolio_id),
            Scope::None => false,
        }
    }
}

impl fmt::Display for Scope {
    /// `all`, `none`, or the ids separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::None => f.write_str("none"),
            Scope::Portfolios(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(id)?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Scope::All => s.serialize_str("all"),
            Scope::Portfolios(ids) => ids.serialize(s),
            Scope::None => s.collect_seq(std::iter::empty::<&str>()),
        }
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Ids(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(Scope::All),
            Raw::Word(w) => Err(de::Error::custom(format!(
                "portfolios must be \"all\" or an array of ids, not \"{w}\""
            ))),
            Raw::Ids(ids) => Scope::portfolios(ids).map_err(de::Error::custom),
        }
    }
}

/// Who is calling, once authenticated.
///
/// Cheap to clone (the strings are shared), so the key store hands out a
/// clone of a prepared principal per request without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    id: Arc<str>,
    name: Option<Arc<str>>,
    role: Role,
    scope: Arc<Scope>,
    method: AuthMethod,
    /// The customer a `customer` key or token speaks for.
    customer: Option<Arc<str>>,
}

impl Principal {
    /// The id of [`Principal::local`].
    pub const LOCAL_ID: &'static str = "local";

    /// A principal; `id` is the API key id, `jwt:<sub>`, or `local`.
    pub fn new(
        id: impl Into<Arc<str>>,
        name: Option<&str>,
        role: Role,
        scope: Scope,
        method: AuthMethod,
    ) -> Principal {
        Principal {
            id: id.into(),
            name: name.map(Arc::from),
            role,
            scope: Arc::new(scope),
            method,
            customer: None,
        }
    }

    /// The principal speaking for one customer (see [`Principal::customer`]).
    pub fn with_customer(mut self, customer: Option<&str>) -> Principal {
        self.customer = customer.map(Arc::from);
        self
    }

    /// The user of the CLI and of `ultracore mcp` on stdio: admin over every
    /// portfolio. Whoever runs those commands can already read and write the
    /// data directory, so a key would protect nothing there.
    pub fn local() -> Principal {
        Principal::new(
            Principal::LOCAL_ID,
            Some("local user"),
            Role::Admin,
            Scope::All,
            AuthMethod::Local,
        )
    }

    /// The API key id, `jwt:<sub>`, or `local`. Stable: use it for rate
    /// limits, audit records and logs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A human name, when the key or token has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The customer this principal speaks for: a `customer` key's one
    /// customer. `None` for staff and services, who may ask about any
    /// customer their role allows.
    pub fn customer(&self) -> Option<&str> {
        self.customer.as_deref()
    }

    /// Whether the principal may ask about `customer_id`: its own customer,
    /// or any customer when it speaks for none. A "no" should be a 404.
    pub fn can_access_customer(&self, customer_id: &str) -> bool {
        match (self.customer.as_deref(), self.role) {
            (Some(own), _) => own == customer_id,
            // A customer's key without its customer (a key file edited by
            // hand) speaks for nobody.
            (None, Role::Customer) => false,
            (None, _) => true,
        }
    }

    /// Whether the principal's role grants `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// [`Principal::allows`] as a `Result`, for `?` in handlers; the error
    /// maps to 403.
    pub fn require(&self, permission: Permission) -> std::result::Result<(), Forbidden> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(Forbidden {
                role: self.role,
                permission,
            })
        }
    }

    /// Whether the principal may see `portfolio_id`. The role is checked
    /// separately ([`Principal::allows`]); a caller answering "no" here
    /// should say 404, so that ids outside the scope are not revealed.
    pub fn can_access_portfolio(&self, portfolio_id: &str) -> bool {
        self.scope.contains(portfolio_id)
    }
}

impl Serialize for Principal {
    /// `{id, name, role, portfolios, method}` (and `customer` when it
    /// speaks for one): what an envelope records.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let fields = if self.customer.is_some() { 6 } else { 5 };
        let mut st = s.serialize_struct("Principal", fields)?;
        st.serialize_field("id", &*self.id)?;
        st.serialize_field("name", &self.name.as_deref())?;
        st.serialize_field("role", &self.role)?;
        st.serialize_field("portfolios", &*self.scope)?;
        st.serialize_field("method", &self.method)?;
        if let Some(c) = &self.customer {
            st.serialize_field("customer", &**c)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn scope_decides_portfolio_access() -> TestResult {
        let p = Principal::new(
            "abc",
            None,
            Role::Viewer,
            Scope::portfolios(["pf-1", "pf-2"])?,
            AuthMethod::ApiKey,
        );
        assert!(p.can_access_portfolio("pf-1"));
        assert!(!p.can_access_portfolio("pf-3"));
        assert!(!p.can_access_portfolio(""));
        let none = Principal::new("x", None, Role::Admin, Scope::None, AuthMethod::Jwt);
        assert!(!none.can_access_portfolio("pf-1"));
        assert!(Principal::local().can_access_portfolio("anything"));
        Ok(())
    }

    #[test]
    fn permissions_come_from_the_role() {
        let viewer = Principal::new("v", None, Role::Viewer, Scope::All, AuthMethod::ApiKey);
        assert!(viewer.allows(Permission::ReadPortfolios));
        assert!(!viewer.allows(Permission::Trade));
        let err = viewer.require(Permission::Trade).unwrap_err();
        assert_eq!(
            err.to_string(),
            "forbidden: the viewer role does not grant the trade permission"
        );
        let local = Principal::local();
        assert_eq!(local.id(), "local");
        assert_eq!(local.method(), AuthMethod::Local);
        assert!(Permission::ALL.into_iter().all(|p| local.allows(p)));
    }

    #[test]
    fn scope_json_is_all_or_ids() -> TestResult {
        assert_eq!(serde_json::to_string(&Scope::All)?, "\"all\"");
        assert_eq!(serde_json::to_string(&Scope::None)?, "[]");
        let s: Scope = serde_json::from_str("[\"b\",\"a\"]")?;
        assert_eq!(serde_json::to_string(&s)?, "[\"a\",\"b\"]");
        assert_eq!(serde_json::from_str::<Scope>("[]")?, Scope::None);
        assert_eq!(serde_json::from_str::<Scope>("\"all\"")?, Scope::All);
        assert!(serde_json::from_str::<Scope>("\"*\"").is_err());
        assert!(serde_json::from_str::<Scope>("[\"../etc\"]").is_err());
        Ok(())
    }

    #[test]
    fn portfolio_ids_follow_the_api_rule() {
        assert!(is_valid_portfolio_id("pf-demo_1.a"));
        assert!(is_valid_portfolio_id(&"a".repeat(64)));
        assert!(!is_valid_portfolio_id(&"a".repeat(65)));
        for bad in ["", "*", "a b", "a/b", "é", "a\n"] {
            assert!(!is_valid_portfolio_id(bad), "{bad:?}");
        }
        assert!(matches!(
            Scope::portfolios(["ok", "not ok"]),
            Err(Error::InvalidPortfolioId { id }) if id == "not ok"
        ));
    }

    #[test]
    fn principal_json_names_role_scope_and_method() -> TestResult {
        let v = serde_json::to_value(Principal::local())?;
        assert_eq!(
            v,
            serde_json::json!({"id": "local", "name": "local user", "role": "admin",
                               "portfolios": "all", "method": "local"})
        );
        Ok(())
    }
}
