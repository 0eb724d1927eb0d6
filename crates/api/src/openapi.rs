//! The OpenAPI 3.1 document of the API, served at `/api/v1/openapi.json`.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn path_param(name: &str, description: &str, format: Option<&str>) -> Value {
    let mut schema = json!({"type": "string"});
    if let Some(f) = format {
        schema["format"] = json!(f);
    } else {
        schema["pattern"] = json!("^[A-Za-z0-9._-]{1,64}$");
    }
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn sse(description: &str) -> Value {
    json!({"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}})
}

/// Paths in the document that other crates route (`ultracore serve`
/// merges their routers when the models are at hand).
pub const MOUNTED_ELSEWHERE: [&str; 59] = [
    "/api/v1/decisions",
    "/api/v1/users",
    "/api/v1/users/{id}",
    "/api/v1/conversations",
    "/api/v1/conversations/{id}",
    "/api/v1/conversations/{id}/messages",
    "/api/v1/external/crm/events",
    "/api/v1/assist",
    "/api/v1/analytics/agents",
    "/api/v1/analytics/agents/{agent_id}",
    "/api/v1/analytics/users",
    "/api/v1/forensics/{decision_id}",
    "/api/v1/forensics",
    "/api/v1/forensics/symbols/{symbol}/stats",
    "/api/v1/forensics/regimes",
    "/api/v1/audit/checkpoint",
    "/api/v1/audit/proof",
    "/api/v1/audit/consistency",
    "/api/v1/audit/verify",
    "/mcp",
    "/api/v1/mesh/products",
    "/api/v1/mesh/products/{id}",
    "/api/v1/mesh/products/{id}/query",
    "/api/v1/mesh/products/{id}/lineage",
    "/api/v1/mesh/products/{id}/related",
    "/api/v1/mesh/search",
    "/api/v1/mesh/autocomplete",
    "/console/session",
    "/console/oidc/login",
    "/console/oidc/callback",
    "/login",
    "/favicon.ico",
    "/console/assets/{file}",
    "/console/stream",
    "/",
    "/portfolios",
    "/portfolios/{id}",
    "/topics",
    "/topics/{name}",
    "/groups",
    "/topology",
    "/architecture",
    "/traces",
    "/access",
    "/decisions",
    "/audit",
    "/alerts",
    "/agents",
    "/mesh",
    "/api/v1/topology",
    "/api/v1/architecture",
    "/api/v1/architecture/diagram.svg",
    "/api/v1/architecture/diagram.drawio",
    "/api/v1/topics",
    "/api/v1/topics/{name}/messages",
    "/api/v1/groups",
    "/api/v1/services/{name}/pause",
    "/api/v1/services/{name}/resume",
    "/api/v1/traces/{correlation_id}",
];

/// The document, with each operation's access rule from
/// [`ultracore_http::ROUTES`]: `security` (none for open routes),
/// `x-ultracore-permission`, `x-ultracore-portfolios` and the 401, 403,
/// 404 and 429 answers the guard gives.
pub fn openapi() -> Value {
    let mut doc = document();
    annotate_access(&mut doc);
    doc
}

fn annotate_access(doc: &mut Value) {
    use ultracore_http::{Access, Portfolios};
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let method = method.to_ascii_uppercase();
            let Some(rule) = ultracore_http::ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
            else {
                // Left unannotated: the guard refuses it, and the
                // authorization matrix test fails on it.
                continue;
            };
            let (permission, security) = match rule.access {
                Access::Open => ("none", json!([])),
                Access::Metrics => ("read-metrics", json!([{"bearer": []}, {}])),
                Access::Authenticated => ("any", json!([{"bearer": []}])),
                Access::Permission(p) => (p.as_str(), json!([{"bearer": []}])),
            };
            op["security"] = security;
            op["x-ultracore-permission"] = json!(permission);
            op["x-ultracore-portfolios"] = json!(match rule.portfolios {
                Portfolios::None => "none".to_owned(),
                Portfolios::Path(p) => format!("path:{p}"),
                Portfolios::Handler => "checked".to_owned(),
                Portfolios::Every => "all".to_owned(),
            });
            if rule.access == Access::Open {
                continue;
            }
            let responses = &mut op["responses"];
            responses["401"] = error_response(
                "No valid credentials: send 'Authorization: Bearer <API key or token>'",
            );
            responses["403"] = error_response("The key's role lacks the permission (or the route shows every portfolio and the key is scoped), or a foreign Origin");
            responses["429"] = error_response("The key's rate limit: see Retry-After");
            if matches!(rule.portfolios, Portfolios::Path(_) | Portfolios::Handler) {
                responses["404"] = error_response("Unknown, or outside the key's portfolios");
            }
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                responses["415"] = error_response("The body is not application/json");
            }
        }
    }
}

/// The agents' and outside systems' operations (routed by
/// `ultracore-agents`, and the market-data endpoint here).
fn agent_paths() -> Value {
    json!({
            "/api/v1/assist": {"post": {
                "summary": "Ask the customer assistant: the planner finds the intents (card, loan, wealth, several at once), their agents run in parallel with their tools, a critic checks every answer and personal data is masked before it leaves",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["query"], "additionalProperties": false, "properties": {
                    "query": {"type": "string", "maxLength": 2000},
                    "customer_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "The customer asking; a customer key's own by default (another is 404)"},
                    "portfolios": {"type": "array", "items": {"type": "string"}, "description": "Portfolios the wealth agent may consider; the key's own by default"},
                    "conversation_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "The customer's conversation to keep the question and answer in (a new one when absent; another customer's is 404)"}}}}}},
                "responses": {"200": ok_json("The reply: intents and their cues, each agent's answer, tools and critic checks", json!({"type": "object", "required": ["request_id", "intents", "answers", "text"], "properties": {
                                  "request_id": {"type": "string"}, "customer_id": {"type": ["string", "null"]},
                                  "question": {"type": "string", "description": "The question as the agents saw it: personal data masked"},
                                  "conversation_id": {"type": ["string", "null"], "description": "Where the question and answer are kept (questions about a customer)"},
                                  "conversation_error": {"type": "string", "description": "Why they could not be kept (the answer stands)"}, "intents": {"type": "array", "items": {"enum": ["card", "loan", "wealth", "general"]}},
                                  "answers": {"type": "array", "items": {"type": "object"}}, "text": {"type": "string"}, "duration_ms": {"type": "number"}}})),
                              "400": error_response("The body is not an assist request"), "409": error_response("The conversation is full"),
                              "422": error_response("A field has an invalid value"), "503": error_response("The agents are not running")}
            }},
            "/api/v1/external/crm/events": {"post": {
                "summary": "The CRM's webhook: one customer interaction, checked, personal data in the summary masked (each value a compliance alert), published on external.crm.events; the same source and interaction_id twice is one event",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false,
                    "required": ["interaction_id", "customer_id", "channel", "kind", "summary", "occurred_at", "source"], "properties": {
                    "interaction_id": {"type": "string", "maxLength": 128}, "customer_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                    "channel": {"enum": ["phone", "email", "chat", "branch", "web", "app", "letter"]},
                    "kind": {"enum": ["enquiry", "complaint", "meeting", "application", "feedback", "note"]},
                    "summary": {"type": "string", "maxLength": 4000}, "occurred_at": {"type": "string", "format": "date-time"},
                    "source": {"type": "string", "maxLength": 128}, "handled_by": {"type": "string", "maxLength": 128}}}}}},
                "responses": {"202": ok_json("Published: event_id, topic, entities masked", json!({"type": "object"})),
                              "400": error_response("Not a customer interaction (the reason names the field)"), "422": error_response("A field has an invalid value"),
                              "503": error_response("The event log refused it: retry")}
            }},
            "/api/v1/external/market-data": {"post": {
                "summary": "Closing prices from a price feed, checked (tickers, positive closes, ascending dates not after today) and published on external.market.data; the market-data service merges them into the data mesh's financial product. All or nothing",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["updates"], "additionalProperties": false, "properties": {
                    "updates": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "object", "required": ["ticker", "source", "prices"], "additionalProperties": false, "properties": {
                        "ticker": {"type": "string", "pattern": "^[A-Z0-9.^=-]{1,16}$"}, "source": {"type": "string", "maxLength": 128},
                        "prices": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {"type": "object", "required": ["date", "close"], "additionalProperties": false, "properties": {
                            "date": {"type": "string", "format": "date"}, "close": {"type": "number", "exclusiveMinimum": 0}}}}}}}}}}}},
                "responses": {"202": ok_json("Published: the events, their ids and offsets", json!({"type": "object"})),
                              "400": error_response("Not a market-data update"), "422": error_response("An update is invalid (the field names it); nothing was published"),
                              "503": error_response("The event log refused it: retry")}
            }},
            "/api/v1/analytics/agents": {"get": {
                "summary": "Agent performance from agent.executions: per agent, executions by status, success rate, duration p50/p95/p99, trends per minute (last hour) and per hour (last day)",
                "responses": {"200": ok_json("Every agent's figures", json!({"type": "object"}))}
            }},
            "/api/v1/analytics/agents/{agent_id}": {"get": {
                "summary": "One agent's performance figures",
                "parameters": [path_param("agent_id", "The agent (card, loan, wealth, …)", None)],
                "responses": {"200": ok_json("The agent's figures", json!({"type": "object"})),
                              "400": error_response("Not an agent id"), "404": error_response("No executions of this agent")}
            }},
            "/api/v1/analytics/users": {"get": {
                "summary": "Changes to users from db.changes.users (Debezium change events), each counted once by its position in the database: total, by operation (c, u, d, r), when the last was committed, trends per minute (last hour) and per hour (last day)",
                "responses": {"200": ok_json("The user changes' figures", json!({"type": "object", "required": ["total", "by_op", "last_changed_at", "trends"], "properties": {
                    "total": {"type": "integer"},
                    "by_op": {"type": "object", "properties": {"c": {"type": "integer"}, "u": {"type": "integer"}, "d": {"type": "integer"}, "r": {"type": "integer"}}},
                    "last_changed_at": {"type": ["string", "null"], "format": "date-time"},
                    "trends": {"type": "object"}}})),
                              "503": error_response("The analytics store cannot be read")}
            }}
    })
}

/// The users and conversations tables (routed by `ultracore-cdc`).
fn operational_paths() -> Value {
    let id = json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"});
    let user = json!({"type": "object", "required": ["id", "name", "email", "phone", "country", "risk_profile", "status", "created_at", "updated_at"], "properties": {
        "id": id, "name": {"type": "string"}, "email": {"type": "string", "format": "email"}, "phone": {"type": ["string", "null"], "description": "E.164"},
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2"}, "risk_profile": {"enum": ["conservative", "moderate", "balanced", "growth", "aggressive"]},
        "status": {"enum": ["active", "suspended", "closed"]}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}});
    let conversation = json!({"type": "object", "required": ["id", "customer_id", "status", "messages", "message_count", "created_at", "updated_at"], "properties": {
        "id": id, "customer_id": id, "subject": {"type": ["string", "null"]}, "status": {"enum": ["open", "closed"]},
        "messages": {"type": "array", "maxItems": 500, "items": {"type": "object", "required": ["role", "text", "at"], "properties": {
            "role": {"enum": ["customer", "agent", "advisor", "system"]}, "text": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}},
        "message_count": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}});
    let user_fields = json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 200}, "email": {"type": "string", "format": "email", "maxLength": 254},
        "phone": {"type": ["string", "null"], "description": "International: '+', country code, 8-15 digits (spaces, dashes, brackets ignored)"},
        "country": {"type": "string", "pattern": "^[A-Za-z]{2}$"}, "risk_profile": {"enum": ["conservative", "moderate", "balanced", "growth", "aggressive"]},
        "status": {"enum": ["active", "suspended", "closed"]}});
    let mut new_user = json!({"type": "object", "required": ["name", "email", "country"], "additionalProperties": false, "properties": user_fields.clone()});
    new_user["properties"]["id"] = id.clone();
    let limit = json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}});
    let cursor = json!({"name": "cursor", "in": "query", "required": false, "description": "The next_cursor of the page before; none for the first page", "schema": {"type": "string"}});
    let user_id = path_param("id", "User id", None);
    let conversation_id = path_param("id", "Conversation id", None);
    json!({
        "/api/v1/users": {
            "post": {"summary": "Create a user (a row of the users table; the change is captured on db.changes.users)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": new_user}}},
                "responses": {"201": ok_json("The user as stored", user.clone()), "400": error_response("Not a user"),
                              "409": error_response("The id or e-mail belongs to another user"), "422": error_response("A field has an invalid value")}},
            "get": {"summary": "Users in id order, a page at a time", "parameters": [limit.clone(), cursor.clone()],
                "responses": {"200": ok_json("A page of users", json!({"type": "object", "properties": {"users": {"type": "array", "items": user.clone()}, "next_cursor": {"type": ["string", "null"]}}})),
                              "400": error_response("A bad limit or cursor")}}
        },
        "/api/v1/users/{id}": {
            "get": {"summary": "One user", "parameters": [user_id.clone()],
                "responses": {"200": ok_json("The user", user.clone()), "404": error_response("No such user")}},
            "patch": {"summary": "Change some of a user's fields (phone: null removes it)", "parameters": [user_id.clone()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "minProperties": 1, "additionalProperties": false, "properties": user_fields}}}},
                "responses": {"200": ok_json("The user as stored", user), "400": error_response("Not a change of a user"), "404": error_response("No such user"),
                              "409": error_response("The e-mail belongs to another user"), "422": error_response("A field has an invalid value")}},
            "delete": {"summary": "Delete a user (a delete and a tombstone on db.changes.users)", "parameters": [user_id],
                "responses": {"204": {"description": "Deleted"}, "404": error_response("No such user")}}
        },
        "/api/v1/conversations": {
            "post": {"summary": "Start a conversation with a customer (a customer's key: its own)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
                    "id": id, "customer_id": id, "subject": {"type": "string", "maxLength": 200}}}}}},
                "responses": {"201": ok_json("The conversation", conversation.clone()), "400": error_response("Not a conversation"),
                              "409": error_response("The id is taken"), "422": error_response("A field has an invalid value")}},
            "get": {"summary": "Conversations in id order (a customer's key: its own customer's only)",
                "parameters": [limit, cursor, {"name": "customer_id", "in": "query", "required": false, "schema": id}],
                "responses": {"200": ok_json("A page of conversations", json!({"type": "object", "properties": {"conversations": {"type": "array", "items": conversation.clone()}, "next_cursor": {"type": ["string", "null"]}}})),
                              "400": error_response("A bad limit or cursor")}}
        },
        "/api/v1/conversations/{id}": {
            "get": {"summary": "One conversation with its messages", "parameters": [conversation_id.clone()],
                "responses": {"200": ok_json("The conversation", conversation.clone())}}
        },
        "/api/v1/conversations/{id}/messages": {
            "post": {"summary": "Add a message (a customer's key: role customer only); at most 500 per conversation", "parameters": [conversation_id],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["role", "text"], "additionalProperties": false, "properties": {
                    "role": {"enum": ["customer", "agent", "advisor", "system"]}, "text": {"type": "string", "minLength": 1, "maxLength": 4000}}}}}},
                "responses": {"201": ok_json("The conversation with the message", conversation), "400": error_response("Not a message"),
                              "409": error_response("The conversation is full"), "422": error_response("A field has an invalid value")}}
        }
    })
}

/// The data mesh catalogue (routed by `ultracore-mesh`).
/// The web console (`ultracore-console`): sign-in, pages (HTML), its
/// live stream and the operations API it stands on.
fn console_paths() -> Value {
    let page = |summary: &str| {
        json!({"get": {"summary": summary,
            "parameters": [{"name": "fragment", "in": "query", "required": false, "description": "Only the page's main content (the page's script fetches it when the live stream says it changed)", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
                          "303": {"description": "A browser without a session is sent to /login"}}}})
    };
    let diagram = json!([
        {"name": "layers", "in": "query", "required": false, "description": "Comma-separated layers (entry, security, orchestration, agents, support, messaging, data, external, governance, monitoring); all by default", "schema": {"type": "string"}},
        {"name": "direction", "in": "query", "required": false, "schema": {"enum": ["td", "lr"], "default": "td"}}]);
    let node = json!({"type": "object", "required": ["id", "kind", "name", "layer"], "properties": {
        "id": {"type": "string", "description": "<kind>:<name>"}, "kind": {"enum": ["service", "topic", "group"]}, "name": {"type": "string"},
        "layer": {"type": "string"}, "partitions": {"type": "integer"}, "records": {"type": "integer"}, "lag": {"type": "integer"},
        "status": {"type": "string", "description": "The lag monitor's status of a group"}, "state": {"type": "string", "description": "A service's state"}}});
    let edge = json!({"type": "object", "required": ["from", "to", "kind", "rate", "records"], "properties": {
        "from": {"type": "string"}, "to": {"type": "string"}, "kind": {"enum": ["produces", "consumed_by", "member_of"]},
        "rate": {"type": "number", "description": "Records per second over window_seconds"}, "records": {"type": "integer"}}});
    json!({
        "/console/session": {
            "post": {"summary": "Sign in to the console with an API key or the identity provider's token: a session cookie (HttpOnly, SameSite=Strict) and the CSRF token unsafe requests made with it must carry in X-CSRF-Token",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {
                    "api_key": {"type": "string"}, "token": {"type": "string"}}}}}},
                "responses": {"200": ok_json("Signed in (Set-Cookie: uc_session)", json!({"type": "object", "properties": {
                    "principal": {"type": "string"}, "role": {"type": "string"}, "permissions": {"type": "array", "items": {"type": "string"}},
                    "csrf_token": {"type": "string"}, "expires_at": {"type": "integer"}}})),
                    "400": error_response("Not one of api_key and token"), "401": error_response("The key or token is invalid, revoked or expired")}},
            "get": {"summary": "Who is signed in: role, permissions, and (with the cookie) the session's CSRF token and end",
                "responses": {"200": ok_json("The principal", json!({"type": "object"}))}},
            "delete": {"summary": "Sign out: the session ends and the cookie is removed",
                "responses": {"204": {"description": "Signed out"}}}
        },
        "/console/oidc/login": {"get": {"summary": "Start an OpenID Connect sign-in (authorization code with PKCE S256, state and nonce): the browser is sent to the identity provider, and comes back to /console/oidc/callback",
            "parameters": [{"name": "next", "in": "query", "required": false, "description": "The page of this server to open once signed in (a local path; anything else opens the overview)", "schema": {"type": "string", "default": "/"}}],
            "responses": {"303": {"description": "To the identity provider's authorization endpoint (Set-Cookie: uc_oidc_state, binding the sign-in to this browser)"},
                          "404": error_response("OpenID Connect sign-in is not configured on this server")}}},
        "/console/oidc/callback": {"get": {"summary": "The identity provider's answer: the code is exchanged for an ID token, which is checked (issuer, audience = the client id, expiry, signature, nonce) and mapped to a role like a pasted token; a session as POST /console/session opens",
            "parameters": [
                {"name": "code", "in": "query", "required": false, "schema": {"type": "string"}},
                {"name": "state", "in": "query", "required": false, "schema": {"type": "string"}},
                {"name": "error", "in": "query", "required": false, "description": "The provider's refusal (access_denied, …)", "schema": {"type": "string"}},
                {"name": "error_description", "in": "query", "required": false, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Signed in (Set-Cookie: uc_session): a page that opens the page asked for", "content": {"text/html": {"schema": {"type": "string"}}}},
                          "400": error_response("Unknown, expired (10 minutes), used or another browser's state, or no code: sign in again"),
                          "401": error_response("The provider refused the code (PKCE, expiry) or the ID token was refused (nonce, audience, signature, role)"),
                          "403": error_response("The provider did not sign the user in (access_denied)"),
                          "404": error_response("OpenID Connect sign-in is not configured on this server"),
                          "502": error_response("The provider's token endpoint could not be reached or answered badly")}}},
        "/login": {"get": {"summary": "The sign-in page", "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/favicon.ico": {"get": {"summary": "The console's icon", "responses": {"200": {"description": "SVG", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}}}},
        "/console/assets/{file}": {"get": {"summary": "The console's script and style sheet",
            "parameters": [path_param("file", "console.js or console.css", None)],
            "responses": {"200": {"description": "The asset"}, "404": error_response("No such asset")}}},
        "/console/stream": {"get": {"summary": "The console's live updates (SSE): a tick a second with the topology's node badges and edge rates for principals that may read metrics",
            "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}}}},
        "/": page("Overview: services and their health, events per second per topic, errors, alerts (what the role may see)"),
        "/portfolios": page("Portfolios with optimizations (those of the key), each with its latest request"),
        "/portfolios/{id}": {"get": {"summary": "A portfolio: its optimizations, the latest result's charts (weights, ESG score and carbon before and after, the efficient frontier) and staged orders",
            "parameters": [path_param("id", "Portfolio id", None)],
            "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}, "404": error_response("No optimization of this portfolio (or outside the key's portfolios)")}}},
        "/topics": page("Topics: partitions, records, retention, rates, producers and consumer groups"),
        "/topics/{name}": {"get": {"summary": "A topic's partitions and watermarks and the message browser",
            "parameters": [path_param("name", "Topic name", None)],
            "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}, "404": {"description": "No such topic"}}}},
        "/groups": page("Consumer groups: lag per partition, trend, the lag monitor's status"),
        "/topology": page("The live topology: services → topics → consumer groups → services, rates on edges, lag badges"),
        "/architecture": {"get": {"summary": "The architecture visualizer: layers, component explorer, the diagram and its exports",
            "parameters": diagram.clone(),
            "responses": {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}, "400": error_response("Unknown layer or direction")}}},
        "/traces": page("Request flow: the path a request (by correlation id) took through services and topics, with the time at each hop"),
        "/access": page("API keys and console sessions (admin)"),
        "/decisions": page("Trading decisions and their forensics: SHAP waterfall, words, regime probabilities; per-symbol and regime statistics"),
        "/audit": page("The audit trail: signed checkpoint, verification, inclusion proofs"),
        "/alerts": page("Compliance alerts, live"),
        "/agents": page("Agents' analytics: success rate and duration percentiles per agent"),
        "/mesh": page("The data mesh catalogue: search, quality, freshness, lineage"),
        "/api/v1/topology": {"get": {"summary": "The live topology as JSON: nodes with kind and layer, edges with rate",
            "responses": {"200": ok_json("The graph", json!({"type": "object", "required": ["nodes", "edges", "window_seconds"], "properties": {
                "generated_at_ms": {"type": "integer"}, "window_seconds": {"type": "number"}, "nodes": {"type": "array", "items": node}, "edges": {"type": "array", "items": edge}}}))}}},
        "/api/v1/architecture": {"get": {"summary": "The platform's components in layers, from what runs here, with descriptions, protocols, functions and connections",
            "responses": {"200": ok_json("Components and connections", json!({"type": "object", "required": ["layers", "components", "connections"]}))}}},
        "/api/v1/architecture/diagram.svg": {"get": {"summary": "The architecture diagram as SVG", "parameters": diagram.clone(),
            "responses": {"200": {"description": "SVG", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}, "400": error_response("Unknown layer or direction")}}},
        "/api/v1/architecture/diagram.drawio": {"get": {"summary": "The architecture diagram as a draw.io (diagrams.net) file", "parameters": diagram,
            "responses": {"200": {"description": "draw.io XML", "content": {"application/vnd.jgraph.mxfile": {"schema": {"type": "string"}}}}, "400": error_response("Unknown layer or direction")}}},
        "/api/v1/topics": {"get": {"summary": "Every topic: partitions with watermarks, records, retention, rate, producers, consumer groups",
            "responses": {"200": ok_json("Topics", json!({"type": "object", "required": ["topics", "total"]}))}},
            "post": {"summary": "Create a topic on the log (admin)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"}, "partitions": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 3},
                    "retention_days": {"type": "integer", "minimum": 1, "description": "Forever when absent"}}}}}},
                "responses": {"201": ok_json("Created", json!({"type": "object", "required": ["name", "partitions"]})),
                    "400": error_response("The body is not a topic"), "409": error_response("The topic exists"),
                    "422": error_response("A bad name, partitions or retention"), "503": error_response("The log is unavailable")}}},
        "/api/v1/topics/{name}/messages": {"get": {"summary": "Records of a topic, envelopes decoded: from an offset or a time, one partition, one key, a JSON-path filter ($.payload.portfolio_id=pf-1, ~= for contains)",
            "parameters": [path_param("name", "Topic name", None),
                {"name": "partition", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}},
                {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}},
                {"name": "from_time", "in": "query", "required": false, "description": "RFC 3339 or milliseconds since the epoch", "schema": {"type": "string"}},
                {"name": "key", "in": "query", "required": false, "schema": {"type": "string"}},
                {"name": "filter", "in": "query", "required": false, "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}],
            "responses": {"200": ok_json("Records", json!({"type": "object", "required": ["topic", "records", "returned", "scanned"]})),
                "400": error_response("A bad partition, time, filter or limit"), "404": error_response("No such topic"), "503": error_response("The log is unavailable")}}},
        "/api/v1/services/{name}/pause": {"post": {"summary": "Pause a consumer service of this process: it stops reading after the batch at hand (its lag grows) until resumed (admin)",
            "parameters": [path_param("name", "Service name (as /healthz lists it)", None)],
            "responses": {"200": ok_json("Paused", json!({"type": "object", "required": ["service", "paused"]})), "404": error_response("No such consumer service here")}}},
        "/api/v1/services/{name}/resume": {"post": {"summary": "Resume a paused consumer service (admin)",
            "parameters": [path_param("name", "Service name (as /healthz lists it)", None)],
            "responses": {"200": ok_json("Resumed", json!({"type": "object", "required": ["service", "paused"]})), "404": error_response("No such consumer service here")}}},
        "/api/v1/groups": {"get": {"summary": "Consumer groups with lag per partition, the trend and the lag monitor's status",
            "responses": {"200": ok_json("Groups", json!({"type": "object", "required": ["groups", "total"]}))}}},
        "/api/v1/traces/{correlation_id}": {"get": {"summary": "The spans of a request (publish and process per hop, W3C trace context) by its correlation id, in time order",
            "parameters": [path_param("correlation_id", "The request's correlation id", None)],
            "responses": {"200": ok_json("Hops", json!({"type": "object", "required": ["correlation_id", "trace_ids", "hops"]})), "404": error_response("No span recorded for it")}}}
    })
}

fn mesh_paths() -> Value {
    let product_id = json!({"name": "id", "in": "path", "required": true, "description": "Data product id (financial_prices, optimizations, …)",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}});
    let tier = json!({"enum": ["gold", "silver", "bronze"]});
    let column = json!({"type": "object", "required": ["name", "type"], "properties": {
        "name": {"type": "string"}, "type": {"enum": ["string", "integer", "float", "boolean", "date", "timestamp", "json"]},
        "required": {"type": "boolean"}, "description": {"type": "string"}}});
    let definition = json!({"type": "object", "required": ["id", "name", "domain", "owner", "description", "output_ports", "contract", "version"], "additionalProperties": false, "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}, "name": {"type": "string"}, "domain": {"type": "string"}, "owner": {"type": "string"},
        "description": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20}, "schema": {"type": "array", "items": column},
        "output_ports": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["kind", "address"], "properties": {
            "kind": {"enum": ["topic", "parquet", "query"]}, "address": {"type": "string"}}}},
        "contract": {"type": "object", "required": ["freshness_secs"], "properties": {
            "freshness_secs": {"type": "integer", "minimum": 1}, "completeness": {"type": "number", "minimum": 0, "maximum": 1},
            "schema_conformance": {"type": "number", "minimum": 0, "maximum": 1}}},
        "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"}}});
    let mut view = definition.clone();
    view["additionalProperties"] = json!(true);
    for (k, v) in [
        ("data_version", json!({"type": "integer"})),
        ("refreshes", json!({"type": "integer"})),
        ("last_refresh_ms", json!({"type": ["integer", "null"]})),
        ("tier", json!({"enum": ["gold", "silver", "bronze", null]})),
        ("rows", json!({"type": "integer"})),
        ("usage", json!({"type": "integer"})),
    ] {
        view["properties"][k] = v;
    }
    let filter = json!({"type": "object", "required": ["column", "op", "value"], "additionalProperties": false, "properties": {
        "column": {"type": "string"}, "op": {"enum": ["eq", "ne", "lt", "le", "gt", "ge", "in"]}, "value": {}}});
    let query = json!({"type": "object", "additionalProperties": false, "properties": {
        "filters": {"type": "array", "items": filter}, "columns": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}});
    let answer = json!({"type": "object", "required": ["product_id", "version", "columns", "rows", "truncated", "cached"], "properties": {
        "product_id": {"type": "string"}, "version": {"type": "integer", "description": "The product version the rows belong to"},
        "columns": {"type": "array", "items": {"type": "string"}}, "rows": {"type": "array", "items": {"type": "array"}},
        "truncated": {"type": "boolean"}, "scanned": {}, "cached": {"type": "boolean"}}});
    let facets = json!({"type": "object", "properties": {"domain": {"type": "object"}, "tier": {"type": "object"}, "tags": {"type": "object"}}});
    let q = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    let limit = |max: u32, default: u32| {
        q(
            "limit",
            "How many",
            json!({"type": "integer", "minimum": 1, "maximum": max, "default": default}),
        )
    };
    json!({
        "/api/v1/mesh/products": {
            "get": {"summary": "Data products (registry), with their version, tier and usage",
                "parameters": [q("domain", "Only this domain", json!({"type": "string"})), q("tier", "Only this quality tier", tier.clone())],
                "responses": {"200": ok_json("The products", json!({"type": "object", "properties": {"products": {"type": "array", "items": view.clone()}}})),
                              "400": error_response("A bad tier")}},
            "post": {"summary": "Register or update data products (idempotent; as `ultracore mesh apply`): JSON {products: [...]} or the YAML file with Content-Type: application/yaml",
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"type": "object", "required": ["products"], "additionalProperties": false, "properties": {"products": {"type": "array", "items": definition}}}},
                    "application/yaml": {"schema": {"type": "string"}}}},
                "responses": {"200": ok_json("What was registered, updated and left unchanged", json!({"type": "object", "properties": {
                    "registered": {"type": "array", "items": {"type": "string"}}, "updated": {"type": "array", "items": {"type": "string"}}, "unchanged": {"type": "array", "items": {"type": "string"}}}})),
                              "400": error_response("Not products"), "422": error_response("A product is invalid: the detail names the product and field")}}
        },
        "/api/v1/mesh/products/{id}": {"get": {"summary": "One data product with its quality now (freshness, completeness, conformance against its contract)",
            "parameters": [product_id.clone()],
            "responses": {"200": ok_json("The product", view), "400": error_response("A bad id"), "404": error_response("No such product")}}},
        "/api/v1/mesh/products/{id}/query": {"post": {"summary": "Query a product's data (filters pushed down; answers cached per product version)",
            "parameters": [product_id.clone()],
            "requestBody": {"required": false, "content": {"application/json": {"schema": query}}},
            "responses": {"200": ok_json("The rows", answer), "400": error_response("Not a query"), "404": error_response("No such product"),
                          "422": error_response("A column or filter value the product does not have"), "503": error_response("The product's source cannot be read")}}},
        "/api/v1/mesh/products/{id}/lineage": {"get": {"summary": "Lineage as recorded by the running system: producers and what they read (upstream topics), consumer groups (downstream), the events of the last refresh",
            "parameters": [product_id.clone()],
            "responses": {"200": ok_json("The lineage", json!({"type": "object", "required": ["product_id", "topics", "producers", "upstream_topics", "downstream_groups"]})),
                          "404": error_response("No such product")}}},
        "/api/v1/mesh/products/{id}/related": {"get": {"summary": "Related products: read by the same consumer groups, same domain and tags, most used",
            "parameters": [product_id, limit(50, 5)],
            "responses": {"200": ok_json("Related products, best first", json!({"type": "object", "properties": {"related": {"type": "array"}}})),
                          "404": error_response("No such product")}}},
        "/api/v1/mesh/search": {"get": {"summary": "Full-text product search (name boosted, description, tags; fuzzy), with facets by domain, tier and tag",
            "parameters": [q("q", "Words (the last may be a prefix; typos forgiven in long words)", json!({"type": "string", "maxLength": 200})),
                           q("domain", "Only this domain", json!({"type": "string"})), q("tier", "Only this tier", tier),
                           q("tag", "Only products with all these tags (comma-separated)", json!({"type": "string"})), limit(100, 10)],
            "responses": {"200": ok_json("Hits ranked by relevance and usage, and facet counts over every match", json!({"type": "object", "required": ["hits", "total", "facets"], "properties": {
                "hits": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "domain": {"type": "string"}, "score": {"type": "number"}}}},
                "total": {"type": "integer"}, "facets": facets}})),
                          "400": error_response("A bad parameter")}}},
        "/api/v1/mesh/autocomplete": {"get": {"summary": "Product names completing what is typed (most used first)",
            "parameters": [{"name": "q", "in": "query", "required": true, "schema": {"type": "string", "maxLength": 100}}, limit(50, 8)],
            "responses": {"200": ok_json("Suggestions", json!({"type": "object", "properties": {"suggestions": {"type": "array"}}})),
                          "400": error_response("A bad parameter")}}}
    })
}

/// The audit trail's operations (routed by `ultracore-audit`).
fn audit_paths() -> Value {
    let number = |name: &str, required: bool, description: &str| json!({"name": name, "in": "query", "required": required, "description": description, "schema": {"type": "integer", "minimum": 0}});
    let checkpoint = json!({"type": "object", "required": ["tree_size", "root_hash", "note", "verifier_key"], "properties": {
        "tree_size": {"type": "integer"}, "root_hash": {"type": "string", "description": "base64"}, "note": {"type": "string"},
        "verifier_key": {"type": "string", "description": "C2SP vkey: name+id+base64(0x01 ‖ key)"}, "origin": {"type": "string"}}});
    let proof = json!({"type": "object", "required": ["leaf_index", "tree_size", "leaf_hash", "audit_path"], "properties": {
        "leaf_index": {"type": "integer"}, "tree_size": {"type": "integer"}, "leaf_hash": {"type": "string", "description": "base64 SHA-256(0x00 ‖ leaf)"},
        "audit_path": {"type": "array", "items": {"type": "string"}}}});
    let consistency = json!({"type": "object", "required": ["consistency"], "properties": {
        "first": {"type": "integer"}, "second": {"type": "integer"}, "consistency": {"type": "array", "items": {"type": "string"}}}});
    let issue = json!({"type": "object", "properties": {
        "topic": {"type": "string"}, "partition": {"type": "integer"}, "offset": {"type": "integer"},
        "kind": {"enum": ["changed", "missing", "inserted", "duplicated", "reordered", "truncated", "checkpoint", "trail"]}, "detail": {"type": "string"}}});
    let report = json!({"type": "object", "required": ["integrity_valid", "verified_events", "issues"], "properties": {
        "integrity_valid": {"type": "boolean"}, "verified_events": {"type": "integer"}, "tree_size": {"type": "integer"}, "signed_size": {"type": "integer"},
        "expired": {"type": "integer"}, "not_yet_audited": {"type": "integer"}, "issues": {"type": "array", "items": issue}}});
    let verify_body = json!({"type": "object", "additionalProperties": false, "properties": {
        "verifier_key": {"type": "string", "description": "The verifier key you trust; the trail's own by default"}}});
    json!({
        "/api/v1/audit/checkpoint": {"get": {
            "summary": "The audit trail's latest signed checkpoint: a C2SP signed note (origin, tree size, base64 root) signed with Ed25519, and the verifier key",
            "responses": {"200": ok_json("The checkpoint", checkpoint), "404": error_response("No checkpoint signed yet")}
        }},
        "/api/v1/audit/proof": {"get": {
            "summary": "The RFC 9162 inclusion proof of one record (by its topic, partition and offset) in the tree of a checkpoint",
            "parameters": [
                {"name": "topic", "in": "query", "required": true, "schema": {"type": "string"}},
                number("partition", true, "The record's partition"),
                number("offset", true, "The record's offset"),
                number("tree_size", false, "The tree size to prove against; the latest checkpoint's by default")],
            "responses": {"200": ok_json("The proof", proof),
                          "400": error_response("A parameter is missing"), "404": error_response("The record is not in the trail, or not in a tree of that size"),
                          "422": error_response("A parameter is not a number, or the tree size is out of range")}
        }},
        "/api/v1/audit/consistency": {"get": {
            "summary": "The RFC 9162 consistency proof between two tree sizes of the audit trail",
            "parameters": [number("first", true, "The smaller tree size"), number("second", true, "The larger tree size")],
            "responses": {"200": ok_json("The proof", consistency),
                          "400": error_response("A parameter is missing"), "422": error_response("A size is out of range")}
        }},
        "/api/v1/audit/verify": {"post": {
            "summary": "Verifies the whole log against the audit trail and its signed checkpoints (reads every record; one at a time)",
            "requestBody": {"required": false, "content": {"application/json": {"schema": verify_body}}},
            "responses": {"200": ok_json("The report", report),
                          "400": error_response("The body is not JSON"), "409": error_response("A verification is running"),
                          "422": error_response("The verifier key is not a key")}
        }}
    })
}

fn document() -> Value {
    let portfolio = path_param("id", "Portfolio id", None);
    let limit = json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}});
    let cursor = json!({"name": "cursor", "in": "query", "required": false, "description": "The next_cursor of the page before; none for the first page", "schema": {"type": "string"}});
    let request = path_param(
        "request_id",
        "The request id the POST answered with",
        Some("uuid"),
    );
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "UltraCore API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Asynchronous ESG portfolio optimization over an event log. A POST publishes a portfolio_optimization_requested event and answers 202 at once; the optimization, reporting, execution and notification services react to the log. ESG data in the shipped data products is synthetic."
        },
        "paths": {
            "/api/v1/portfolios/{id}/optimizations": {"post": {
                "summary": "Request an ESG optimization of a portfolio",
                "parameters": [portfolio],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OptimizationRequest"}}}},
                "responses": {
                    "202": ok_json("Published; poll the result link", json!({"type": "object", "required": ["status", "request_id"], "properties": {"status": {"const": "pending"}, "request_id": {"type": "string", "format": "uuid"}, "portfolio_id": {"type": "string"}, "links": {"type": "object"}}})),
                    "400": error_response("The body is not a JSON object, or the portfolio id is invalid"),
                    "422": error_response("A field has an invalid value: `field` names it"),
                    "503": error_response("The log is unavailable")
                }
            }},
            "/api/v1/optimizations/{request_id}": {"get": {
                "summary": "Status and result of an optimization request",
                "parameters": [request],
                "responses": {
                    "200": ok_json("pending, completed (with the full result) or failed (with the reason and field)", json!({"$ref": "#/components/schemas/Optimization"})),
                    "400": error_response("Not a UUID"),
                    "404": error_response("Unknown request id")
                }
            }},
            "/api/v1/portfolios/{id}": {"get": {
                "summary": "The Portfolio aggregate: state, history and report; time travel with as_of or version",
                "parameters": [portfolio,
                    {"name": "as_of", "in": "query", "required": false, "schema": {"type": "string", "format": "date-time"}},
                    {"name": "version", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}],
                "responses": {
                    "200": ok_json("State and history", json!({"type": "object"})),
                    "400": error_response("Invalid id or query"),
                    "404": error_response("No events for this portfolio")
                }
            }},
            "/api/v1/portfolios/{id}/orders": {"get": {
                "summary": "Orders staged for a portfolio, newest first, a page at a time",
                "parameters": [portfolio, limit.clone(), cursor.clone()],
                "responses": {"200": ok_json("A page of orders; next_cursor is null after the last", json!({"type": "object", "properties": {"orders": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}}, "next_cursor": {"type": ["string", "null"]}}})), "400": error_response("Invalid id, limit or cursor")}
            }},
            "/api/v1/notifications": {"get": {
                "summary": "Stored notifications, newest first, a page at a time",
                "parameters": [
                    {"name": "portfolio_id", "in": "query", "required": false, "schema": {"type": "string"}},
                    limit, cursor],
                "responses": {"200": ok_json("A page of notifications (of the key's portfolios); next_cursor is null after the last", json!({"type": "object", "properties": {"notifications": {"type": "array"}, "next_cursor": {"type": ["string", "null"]}}})), "400": error_response("Invalid query")}
            }},
            "/api/v1/notifications/stream": {"get": {
                "summary": "Notifications as they are stored (server-sent events `notification`)",
                "responses": {"200": sse("One `notification` event per completed or failed request")}
            }},
            "/api/v1/alerts": {"get": {
                "summary": "Compliance alerts (personal data seen in agent answers: where and what kind, never the value), newest first, a page at a time",
                "parameters": [limit.clone(), cursor.clone()],
                "responses": {"200": ok_json("A page of alerts; next_cursor is null after the last", json!({"type": "object", "properties": {"alerts": {"type": "array"}, "next_cursor": {"type": ["string", "null"]}}})), "400": error_response("Invalid query")}
            }},
            "/api/v1/alerts/stream": {"get": {
                "summary": "Compliance alerts as they are stored (server-sent events `compliance_alert`)",
                "responses": {"200": sse("One `compliance_alert` event per alert")}
            }},
            "/api/v1/events/stream": {"get": {
                "summary": "Live events of the log (server-sent events named by event type)",
                "parameters": [{"name": "topic", "in": "query", "required": false, "description": "Comma-separated topics", "schema": {"type": "string"}}],
                "responses": {"200": sse("One event per envelope appended"), "400": error_response("Unknown topic")}
            }},
            "/healthz": {"get": {
                "summary": "Liveness and the services of this process",
                "responses": {"200": ok_json("Healthy", json!({"type": "object"})), "503": ok_json("A service failed or a check fails (the log stopped accepting writes): `problems` names it", json!({"type": "object"}))}
            }},
            "/readyz": {"get": {
                "summary": "Readiness: every consumer joined its group and caught up",
                "responses": {"200": ok_json("Ready", json!({"type": "object"})), "503": ok_json("Not ready yet: `waiting` lists the services", json!({"type": "object"}))}
            }},
            "/api/v1/decisions": {"post": {
                "summary": "Make a trading decision (regime specialists, risk checks); its events are published without blocking",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["symbol", "features"], "properties": {
                    "symbol": {"type": "string"}, "features": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                    "price": {"type": "number"}, "portfolio": {"type": "object"}, "correlation_id": {"type": "string"}}}}}},
                "responses": {"200": ok_json("The decision (the trading_decision payload)", json!({"type": "object"})),
                              "400": error_response("The body is not JSON"), "422": error_response("A field has an invalid value"),
                              "503": error_response("The decision's events cannot be queued")}
            }},
            "/api/v1/forensics": {"get": {
                "summary": "Stored decisions with their explanations' summary, newest first, filtered and paged (the trading desk's query API)",
                "parameters": [
                    {"name": "symbol", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "action", "in": "query", "required": false, "schema": {"enum": ["BUY", "SELL", "HOLD"]}},
                    {"name": "start_time", "in": "query", "required": false, "description": "RFC 3339 or epoch ms, inclusive", "schema": {"type": "string"}},
                    {"name": "end_time", "in": "query", "required": false, "description": "RFC 3339 or epoch ms, exclusive", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
                    {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "default": 0}}],
                "responses": {"200": ok_json("A page", json!({"type": "object", "required": ["total", "limit", "offset", "records"], "properties": {
                    "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
                    "records": {"type": "array", "items": {"type": "object", "properties": {
                        "decision_id": {"type": "string"}, "symbol": {"type": "string"}, "action": {"type": "string"}, "confidence": {"type": ["number", "null"]},
                        "decided_at": {"type": "string"}, "latency_ms": {"type": ["number", "null"]}, "dominant_regime": {"type": ["string", "null"]},
                        "top_contributions": {"type": "array"}, "explanation_url": {"type": "string"}}}}}})),
                    "400": error_response("A parameter is invalid: `field` names it"), "503": error_response("The store cannot be read")}
            }},
            "/api/v1/forensics/symbols/{symbol}/stats": {"get": {
                "summary": "One symbol's decisions over the last N days: counts per action, average confidence, decision latency, how far explanations ran behind",
                "parameters": [path_param("symbol", "The symbol", None),
                    {"name": "days", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 365, "default": 7}}],
                "responses": {"200": ok_json("Statistics", json!({"type": "object", "required": ["symbol", "decisions", "actions"]})),
                    "400": error_response("days is invalid"), "503": error_response("The store cannot be read")}
            }},
            "/api/v1/forensics/regimes": {"get": {
                "summary": "The dominant regime's distribution over the last N days, with the average confidence per regime",
                "parameters": [{"name": "days", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 365, "default": 7}}],
                "responses": {"200": ok_json("Regimes", json!({"type": "object", "required": ["decisions", "regimes"]})),
                    "400": error_response("days is invalid"), "503": error_response("The store cannot be read")}
            }},
            "/api/v1/forensics/{decision_id}": {"get": {
                "summary": "The SHAP explanation of a decision (each specialist and the regime-weighted ensemble, in numbers and words)",
                "parameters": [path_param("decision_id", "The decision id", Some("uuid"))],
                "responses": {"200": ok_json("The stored explanation", json!({"type": "object"})),
                              "400": error_response("Not a UUID"), "404": error_response("Unknown, not explained yet, or past retention")}
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics of every service: events published and consumed per topic, consumer lag per group and partition (records and seconds), HTTP requests and latency per route and status, service records, retries, dead letters and restarts; decisions, forensics and the emitter's own families",
                "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/mcp": {
                "post": {
                    "summary": "MCP (streamable HTTP) for AI agents: optimize_portfolio_esg (request-optimization), get_optimization_result and calculate_risk_metrics (read-portfolios); each tool checks the key's role and portfolios",
                    "responses": {"200": {"description": "MCP JSON-RPC over streamable HTTP"}}
                },
                "get": {
                    "summary": "The MCP session's server-to-client event stream",
                    "responses": {"200": sse("MCP messages"), "405": {"description": "Stateless sessions have no stream"}}
                },
                "delete": {
                    "summary": "Ends an MCP session",
                    "responses": {"200": {"description": "Ended"}, "405": {"description": "Stateless sessions cannot be ended"}}
                }
            },
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok_json("OpenAPI 3.1", json!({"type": "object"}))}}}
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key (`ultracore keys create`) or a JWT of the configured OIDC issuer"}},
            "schemas": {
            "Problem": {"type": "object", "description": "RFC 9457 problem details", "required": ["type", "title", "status", "detail"], "properties": {
                "type": {"type": "string", "format": "uri"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "field": {"type": "string", "description": "The request field at fault"},
                "code": {"type": "string", "description": "The problem type as a short word"}}},
            "OptimizationRequest": {"type": "object", "required": ["portfolio"], "additionalProperties": false, "properties": {
                "request_id": {"type": "string", "format": "uuid", "description": "Optional idempotency key; generated when absent"},
                "portfolio_id": {"type": "string", "description": "Optional; must equal the path's id"},
                "portfolio": {"type": "object", "additionalProperties": false, "properties": {
                    "holdings": {"type": "array", "items": {"type": "object", "additionalProperties": false, "properties": {
                        "ticker": {"type": "string"}, "isin": {"type": "string"}, "units": {"type": "number"}, "weight": {"type": "number"}}}},
                    "cash": {"type": "number", "minimum": 0}, "value": {"type": "number"}}},
                "objective": {"type": "object", "description": "kind: max_sharpe | min_volatility | max_return (target_volatility) | esg_tradeoff (risk_aversion, esg_weight) | epsilon (the Epsilon Agent's learned mix of base portfolios)", "properties": {"kind": {"enum": ["max_sharpe", "min_volatility", "max_return", "esg_tradeoff", "epsilon"]}}},
                "constraints": {"type": "object", "properties": {
                    "min_esg_score": {"type": "number"}, "max_carbon_intensity": {"type": "number"},
                    "exclude_sectors": {"type": "array", "items": {"type": "string"}}, "exclude_flagged": {"type": "boolean"},
                    "exclude": {"type": "array", "items": {"type": "string"}}, "weight_bounds": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                    "sector_bounds": {"type": "array"}, "max_turnover": {"type": "number"}, "transaction_cost_bps": {"type": "number"}, "min_trade_weight": {"type": "number"}}},
                "universe": {"type": "array", "items": {"type": "string"}},
                "lookback_years": {"type": "number", "default": 5}, "risk_free_rate": {"type": "number", "default": 0.02}}},
            "Optimization": {"type": "object", "required": ["request_id", "status"], "properties": {
                "request_id": {"type": "string"}, "portfolio_id": {"type": "string"},
                "status": {"enum": ["pending", "completed", "failed"]},
                "requested_at": {"type": ["string", "null"]}, "answered_at": {"type": ["string", "null"]},
                "latency_ms": {"type": ["integer", "null"]}, "result": {"type": ["object", "null"]}, "failure": {"type": ["object", "null"]},
                "orders_staged": {"type": "integer"}}},
            "Order": {"type": "object", "properties": {
                "order_id": {"type": "string"}, "request_id": {"type": "string"}, "ticker": {"type": "string"}, "isin": {"type": "string"},
                "side": {"enum": ["buy", "sell"]}, "units": {"type": "integer"}, "reference_price": {"type": "number"},
                "notional": {"type": "number"}, "status": {"type": "string"}, "staged_at": {"type": "string"}}}
        }}
    });
    for more in [
        audit_paths(),
        agent_paths(),
        operational_paths(),
        mesh_paths(),
        console_paths(),
    ] {
        if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    doc
}
