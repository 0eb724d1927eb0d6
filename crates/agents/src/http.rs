//! `POST /api/v1/assist`: the customer assistant over HTTP, the same
//! pipeline as `ultracore assist`.
//!
//! Body: `{"query": "…", "customer_id": "c-1", "portfolios": ["pf-1"],
//! "conversation_id": "conv-1"}`; all but `query` optional.
//!
//! When the question is about a customer and the server keeps
//! conversations, the question (masked) and the answer are appended to
//! `conversation_id` (which must be one of the customer's: 404 otherwise,
//! before anything is answered) or to a new conversation; the reply names
//! it in `conversation_id`. Should keeping them fail after the answer was
//! made, the answer is still returned, with `conversation_error`.
//!
//! | answer | when |
//! |---|---|
//! | 200 and the reply | answered (each agent's answer, tools, critic checks) |
//! | 400 | the body is not a JSON object of these fields |
//! | 404 | a customer or portfolio this key may not see (as if it did not exist) |
//! | 422 | a field with a bad value; `field` names it |
//! | 503 | the agents are not running |
//!
//! Who may ask about whom: a `customer` key speaks for its one customer
//! (`customer_id` left out or the same) and its agents see the key's
//! portfolios; staff with the `assist` permission (admin) name any
//! customer and the portfolios to consider. The principal reaches the
//! agents through their tasks, so every execution on `agent.executions`
//! records whom it answered.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use ultracore_http::{Principal, Problem, Scope};
use ultracore_log::EventLog;

use crate::assist::{AssistError, Assistant};
use crate::conversation::{ConversationSink, SinkError};

/// What the route works with.
struct Assist<L: EventLog> {
    assistant: Arc<Assistant<L>>,
    conversations: Option<Arc<dyn ConversationSink>>,
}

/// The assist route, to be merged into the platform's server; with
/// `conversations`, answers about a customer are kept there.
pub fn router<L: EventLog>(
    assistant: Arc<Assistant<L>>,
    conversations: Option<Arc<dyn ConversationSink>>,
) -> Router {
    Router::new()
        .route("/api/v1/assist", post(assist::<L>))
        .with_state(Arc::new(Assist {
            assistant,
            conversations,
        }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssistBody {
    query: String,
    #[serde(default)]
    customer_id: Option<String>,
    #[serde(default)]
    portfolios: Option<Vec<String>>,
    #[serde(default)]
    conversation_id: Option<String>,
}

/// The customer and portfolios a principal may ask about, from the body;
/// a `Problem` (404 for what the key may not see) otherwise.
pub fn resolve(
    who: &Principal,
    customer_id: Option<&str>,
    portfolios: Option<&[String]>,
) -> Result<(Option<String>, Vec<String>), Problem> {
    let customer = match (who.customer(), customer_id) {
        (Some(own), None) => Some(own.to_owned()),
        (_, Some(c)) if !who.can_access_customer(c) => {
            return Err(Problem::not_found(format!(
                "customer '{c}' is not found for this key"
            )))
        }
        (_, c) => c.map(str::to_owned),
    };
    let portfolios = match portfolios {
        Some(ids) => {
            for (i, id) in ids.iter().enumerate() {
                if !ultracore_http::is_valid_portfolio_id(id) {
                    return Err(Problem::invalid_field(
                        format!("portfolios[{i}]"),
                        format!("'{id}' is not a portfolio id: 1 to 64 letters, digits, '-', '_' or '.'"),
                    ));
                }
                if !who.can_access_portfolio(id) {
                    return Err(Problem::not_found(format!(
                        "portfolio '{id}' is not found for this key"
                    )));
                }
            }
            ids.to_vec()
        }
        None => match who.scope() {
            Scope::Portfolios(ids) => ids.iter().cloned().collect(),
            Scope::All | Scope::None => Vec::new(),
        },
    };
    Ok((customer, portfolios))
}

/// The agents act with `who`'s rights.
pub fn caller(who: &Principal) -> crate::assist::Caller {
    crate::assist::Caller {
        principal: who.id().to_owned(),
        may_rebalance: who.allows(ultracore_http::Permission::RequestOptimization),
    }
}

fn sink_problem(e: SinkError) -> Problem {
    match e {
        SinkError::NotFound(m) => Problem::not_found(m),
        SinkError::Conflict(m) => Problem::conflict(m),
        SinkError::Unavailable(m) => Problem::unavailable("the conversations", m),
    }
}

async fn assist<L: EventLog>(
    State(state): State<Arc<Assist<L>>>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Response {
    let body: AssistBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return Problem::bad_request(
                "invalid_json",
                format!("the body is not an assist request: {e}; send {{\"query\": \"…\", \"customer_id\": \"…\"}}"),
            )
            .into_response()
        }
    };
    // Behind the guard every request has a principal; without one, refuse.
    let Some(Extension(who)) = principal else {
        return Problem::unauthorized("authentication required", "Bearer").into_response();
    };
    let (customer, portfolios) = match resolve(
        &who,
        body.customer_id.as_deref(),
        body.portfolios.as_deref(),
    ) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    // A named conversation must be the customer's, before anything is answered.
    if let Some(id) = &body.conversation_id {
        if !ultracore_http::is_valid_customer_id(id) {
            return Problem::invalid_field(
                "conversation_id",
                format!(
                    "'{id}' is not a conversation id: 1 to 64 letters, digits, '-', '_' or '.'"
                ),
            )
            .into_response();
        }
        let (Some(sink), Some(c)) = (&state.conversations, customer.as_deref()) else {
            return Problem::invalid_field(
                "conversation_id",
                "conversations are kept for questions about a customer on a server that keeps them: name customer_id, or leave conversation_id out",
            )
            .into_response();
        };
        if let Err(e) = sink.check(c, id).await {
            return sink_problem(e).into_response();
        }
    }
    let reply = match state
        .assistant
        .assist_as(&caller(&who), customer.as_deref(), &body.query, &portfolios)
        .await
    {
        Ok(reply) => reply,
        Err(AssistError::BadInput { field, reason }) => {
            return Problem::invalid_field(field, reason).into_response()
        }
        Err(e @ AssistError::Unavailable(_)) => {
            return Problem::unavailable("the assistant", e).into_response()
        }
    };
    let mut out = serde_json::to_value(&reply).expect("a reply serializes");
    if let (Some(sink), Some(c)) = (&state.conversations, customer.as_deref()) {
        match sink
            .append(
                c,
                body.conversation_id.as_deref(),
                &reply.question,
                &reply.text,
            )
            .await
        {
            Ok(id) => out["conversation_id"] = serde_json::json!(id),
            Err(e) => {
                tracing::warn!(error = %e, "an answer could not be kept in its conversation");
                out["conversation_id"] = serde_json::Value::Null;
                out["conversation_error"] = serde_json::json!(e.to_string());
            }
        }
    }
    (StatusCode::OK, Json(out)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_http::{AuthMethod, Role};

    fn key(role: Role, scope: Scope, customer: Option<&str>) -> Principal {
        Principal::new("k1", None, role, scope, AuthMethod::ApiKey).with_customer(customer)
    }

    #[test]
    fn a_customer_key_speaks_for_its_customer_and_portfolios() {
        let c1 = key(
            Role::Customer,
            Scope::portfolios(["pf-c1"]).unwrap(),
            Some("c-1"),
        );
        assert_eq!(
            resolve(&c1, None, None).unwrap(),
            (Some("c-1".into()), vec!["pf-c1".into()])
        );
        assert_eq!(
            resolve(&c1, Some("c-1"), None).unwrap().0.as_deref(),
            Some("c-1")
        );
        assert_eq!(
            resolve(&c1, Some("c-2"), None).unwrap_err().status.as_u16(),
            404
        );
        let other = ["pf-c2".to_owned()];
        assert_eq!(
            resolve(&c1, None, Some(&other))
                .unwrap_err()
                .status
                .as_u16(),
            404
        );
        let bad = ["no good".to_owned()];
        let p = resolve(&c1, None, Some(&bad)).unwrap_err();
        assert_eq!(
            (p.status.as_u16(), p.field.as_deref()),
            (422, Some("portfolios[0]"))
        );
    }

    #[test]
    fn staff_name_any_customer_and_their_portfolios() {
        let admin = key(Role::Admin, Scope::All, None);
        let pf = ["pf-9".to_owned()];
        assert_eq!(
            resolve(&admin, Some("c-2"), Some(&pf)).unwrap(),
            (Some("c-2".into()), vec!["pf-9".into()])
        );
        assert_eq!(resolve(&admin, None, None).unwrap(), (None, vec![]));
    }
}
