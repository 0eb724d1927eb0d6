//! The access table: for every route of the server, who may call it and
//! which portfolio it touches. The one place a security review reads; the
//! guard refuses any route missing from it, and the authorization matrix
//! test walks the OpenAPI document against it.

use axum::http::Method;
use ultracore_auth::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the port (health and readiness probes).
    Open,
    /// `/metrics`: the `read-metrics` permission, or anyone when the
    /// server is started with public metrics (a scraper on a private
    /// network).
    Metrics,
    /// Any authenticated principal, whatever its role.
    Authenticated,
    /// Principals whose role grants this permission.
    Permission(Permission),
}

/// Which portfolios a route exposes, and so which scoped keys may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portfolios {
    /// No portfolio's data (health, the API document, desk-level decisions).
    None,
    /// The portfolio named by this path parameter: a key scoped to other
    /// portfolios gets 404, as if it did not exist.
    Path(&'static str),
    /// The handler finds the portfolio (of a request id, a query parameter)
    /// and answers 404 for one outside the key's scope, or filters a list
    /// down to the key's portfolios.
    Handler,
    /// Data of every portfolio at once (the live event stream, forensics):
    /// only keys for all portfolios.
    Every,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePolicy {
    pub method: &'static str,
    /// The route template as axum matches it (`/api/v1/portfolios/{id}`).
    pub path: &'static str,
    pub access: Access,
    pub portfolios: Portfolios,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    portfolios: Portfolios,
) -> RoutePolicy {
    RoutePolicy {
        method,
        path,
        access,
        portfolios,
    }
}

use Access::*;
use Permission::*;

/// Every route of `ultracore serve`.
pub const ROUTES: &[RoutePolicy] = &[
    route(
        "POST",
        "/api/v1/portfolios/{id}/optimizations",
        Permission(RequestOptimization),
        Portfolios::Path("id"),
    ),
    route(
        "GET",
        "/api/v1/optimizations/{request_id}",
        Permission(ReadPortfolios),
        Portfolios::Handler,
    ),
    route(
        "GET",
        "/api/v1/portfolios/{id}",
        Permission(ReadPortfolios),
        Portfolios::Path("id"),
    ),
    route(
        "GET",
        "/api/v1/portfolios/{id}/orders",
        Permission(ReadPortfolios),
        Portfolios::Path("id"),
    ),
    route(
        "GET",
        "/api/v1/notifications",
        Permission(ReadPortfolios),
        Portfolios::Handler,
    ),
    route(
        "GET",
        "/api/v1/notifications/stream",
        Permission(ReadPortfolios),
        Portfolios::Handler,
    ),
    route(
        "GET",
        "/api/v1/alerts",
        Permission(ReadCompliance),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/alerts/stream",
        Permission(ReadCompliance),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/events/stream",
        Permission(ReadEvents),
        Portfolios::Every,
    ),
    route(
        "POST",
        "/api/v1/decisions",
        Permission(Trade),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/forensics/{decision_id}",
        Permission(ReadForensics),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/forensics",
        Permission(ReadForensics),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/forensics/symbols/{symbol}/stats",
        Permission(ReadForensics),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/forensics/regimes",
        Permission(ReadForensics),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/audit/checkpoint",
        Permission(ReadAudit),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/audit/proof",
        Permission(ReadAudit),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/audit/consistency",
        Permission(ReadAudit),
        Portfolios::Every,
    ),
    route(
        "POST",
        "/api/v1/audit/verify",
        Permission(ReadAudit),
        Portfolios::Every,
    ),
    // The customer assistant: a customer's key about its own customer and
    // portfolios; the handler answers 404 for others.
    route(
        "POST",
        "/api/v1/assist",
        Permission(Assist),
        Portfolios::Handler,
    ),
    // Agent performance and user changes (every agent's executions, every
    // user's changes: no portfolio's data, but every customer's activity,
    // so for auditors and admins).
    route(
        "GET",
        "/api/v1/analytics/agents",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/analytics/agents/{agent_id}",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/analytics/users",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    // The users table: customers' personal data, for admins only.
    route("POST", "/api/v1/users", Permission(Admin), Portfolios::None),
    route("GET", "/api/v1/users", Permission(Admin), Portfolios::None),
    route(
        "GET",
        "/api/v1/users/{id}",
        Permission(Admin),
        Portfolios::None,
    ),
    route(
        "PATCH",
        "/api/v1/users/{id}",
        Permission(Admin),
        Portfolios::None,
    ),
    route(
        "DELETE",
        "/api/v1/users/{id}",
        Permission(Admin),
        Portfolios::None,
    ),
    // Conversations with customers: a customer's key its own customer's
    // (the handler answers 404 for others), staff with assist any.
    route(
        "POST",
        "/api/v1/conversations",
        Permission(Assist),
        Portfolios::Handler,
    ),
    route(
        "GET",
        "/api/v1/conversations",
        Permission(Assist),
        Portfolios::Handler,
    ),
    route(
        "GET",
        "/api/v1/conversations/{id}",
        Permission(Assist),
        Portfolios::Handler,
    ),
    route(
        "POST",
        "/api/v1/conversations/{id}/messages",
        Permission(Assist),
        Portfolios::Handler,
    ),
    // The data mesh: discovery and queries of data products; defining
    // products is an admin's.
    route(
        "GET",
        "/api/v1/mesh/products",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    route(
        "POST",
        "/api/v1/mesh/products",
        Permission(Admin),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/mesh/products/{id}",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    // Product data spans portfolios (optimizations, decisions): keys
    // for every portfolio only.
    route(
        "POST",
        "/api/v1/mesh/products/{id}/query",
        Permission(ReadDataProducts),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/mesh/products/{id}/lineage",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/mesh/products/{id}/related",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/mesh/search",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/mesh/autocomplete",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    // Outside systems: the CRM's webhook and price feeds.
    route(
        "POST",
        "/api/v1/external/crm/events",
        Permission(IngestExternal),
        Portfolios::None,
    ),
    route(
        "POST",
        "/api/v1/external/market-data",
        Permission(IngestExternal),
        Portfolios::None,
    ),
    // MCP (streamable HTTP): JSON-RPC posts, the session's event stream,
    // the session's end. Each tool checks its own permission and portfolio.
    route("POST", "/mcp", Authenticated, Portfolios::Handler),
    route("GET", "/mcp", Authenticated, Portfolios::Handler),
    route("DELETE", "/mcp", Authenticated, Portfolios::Handler),
    route(
        "GET",
        "/api/v1/openapi.json",
        Authenticated,
        Portfolios::None,
    ),
    // The web console: sign-in, pages, its live stream and assets. Pages
    // show only what the signed-in role may read; each page's data comes
    // from the routes above and below under their own rules.
    route("POST", "/console/session", Open, Portfolios::None),
    route("GET", "/console/session", Authenticated, Portfolios::None),
    route(
        "DELETE",
        "/console/session",
        Authenticated,
        Portfolios::None,
    ),
    route("GET", "/login", Open, Portfolios::None),
    // OpenID Connect sign-in: the browser is not signed in yet; the
    // pending sign-in's state, the browser's state cookie and the
    // provider's signed ID token are the checks.
    route("GET", "/console/oidc/login", Open, Portfolios::None),
    route("GET", "/console/oidc/callback", Open, Portfolios::None),
    route("GET", "/favicon.ico", Open, Portfolios::None),
    route("GET", "/console/assets/{file}", Open, Portfolios::None),
    route("GET", "/console/stream", Authenticated, Portfolios::Handler),
    route("GET", "/", Authenticated, Portfolios::Handler),
    route(
        "GET",
        "/portfolios",
        Permission(ReadPortfolios),
        Portfolios::Handler,
    ),
    route(
        "GET",
        "/portfolios/{id}",
        Permission(ReadPortfolios),
        Portfolios::Path("id"),
    ),
    route("GET", "/topics", Permission(ReadMetrics), Portfolios::None),
    route(
        "GET",
        "/topics/{name}",
        Permission(ReadEvents),
        Portfolios::Every,
    ),
    route("GET", "/groups", Permission(ReadMetrics), Portfolios::None),
    route(
        "GET",
        "/topology",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/architecture",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route("GET", "/traces", Permission(ReadEvents), Portfolios::Every),
    route("GET", "/access", Permission(Admin), Portfolios::None),
    route(
        "GET",
        "/decisions",
        Permission(ReadForensics),
        Portfolios::Every,
    ),
    route("GET", "/audit", Permission(ReadAudit), Portfolios::Every),
    route(
        "GET",
        "/alerts",
        Permission(ReadCompliance),
        Portfolios::Every,
    ),
    route("GET", "/agents", Permission(ReadMetrics), Portfolios::None),
    route(
        "GET",
        "/mesh",
        Permission(ReadDataProducts),
        Portfolios::None,
    ),
    // The operations API the console stands on.
    route(
        "GET",
        "/api/v1/topology",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/architecture",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/architecture/diagram.svg",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/architecture/diagram.drawio",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/topics",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "POST",
        "/api/v1/topics",
        Permission(Admin),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/topics/{name}/messages",
        Permission(ReadEvents),
        Portfolios::Every,
    ),
    route(
        "GET",
        "/api/v1/groups",
        Permission(ReadMetrics),
        Portfolios::None,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/pause",
        Permission(Admin),
        Portfolios::None,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/resume",
        Permission(Admin),
        Portfolios::None,
    ),
    route(
        "GET",
        "/api/v1/traces/{correlation_id}",
        Permission(ReadEvents),
        Portfolios::Every,
    ),
    route("GET", "/metrics", Metrics, Portfolios::None),
    route("GET", "/healthz", Open, Portfolios::None),
    route("GET", "/readyz", Open, Portfolios::None),
];

/// The row for a request's method and matched route template.
pub fn policy(method: &Method, path: &str) -> Option<&'static RoutePolicy> {
    // HEAD is served by the GET route.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// The value of `param` in `path`, matched against `template`
/// (`/api/v1/portfolios/{id}` and `/api/v1/portfolios/pf-1` give `pf-1`).
pub fn path_param<'a>(template: &str, path: &'a str, param: &str) -> Option<&'a str> {
    let wanted = format!("{{{param}}}");
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == wanted)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_route() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            if let Portfolios::Path(p) = r.portfolios {
                assert!(
                    r.path.contains(&format!("{{{p}}}")),
                    "{} has no {{{p}}}",
                    r.path
                );
            }
        }
    }

    #[test]
    fn finds_rows_and_path_parameters() {
        let row = policy(&Method::GET, "/api/v1/portfolios/{id}/orders").unwrap();
        assert_eq!(row.access, Access::Permission(Permission::ReadPortfolios));
        assert_eq!(
            policy(&Method::HEAD, "/healthz").unwrap().access,
            Access::Open
        );
        assert!(policy(&Method::DELETE, "/api/v1/portfolios/{id}").is_none());
        assert_eq!(
            path_param(
                "/api/v1/portfolios/{id}/orders",
                "/api/v1/portfolios/pf-1/orders",
                "id"
            ),
            Some("pf-1")
        );
        assert_eq!(path_param("/healthz", "/healthz", "id"), None);
    }
}
