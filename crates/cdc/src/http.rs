//! The users and conversations API, merged into the platform's server
//! behind its guard (authentication, the access table, limits).
//!
//! | route | who | answers |
//! |---|---|---|
//! | `POST /api/v1/users` | admin | 201 the user; 409 a taken id or e-mail |
//! | `GET /api/v1/users?limit=&cursor=` | admin | 200 `{users, next_cursor}` in id order |
//! | `GET /api/v1/users/{id}` | admin | 200 the user; 404 |
//! | `PATCH /api/v1/users/{id}` | admin | 200 the user; 404; 409 a taken e-mail |
//! | `DELETE /api/v1/users/{id}` | admin | 204; 404 |
//! | `POST /api/v1/conversations` | assist | 201 the conversation |
//! | `GET /api/v1/conversations?customer_id=&limit=&cursor=` | assist | 200 `{conversations, next_cursor}` |
//! | `GET /api/v1/conversations/{id}` | assist | 200 the conversation; 404 |
//! | `POST /api/v1/conversations/{id}/messages` | assist | 201 the conversation; 404; 409 a full conversation |
//!
//! A `customer` key sees and writes only its own customer's conversations
//! (others are 404, as if they did not exist) and writes only `customer`
//! messages; staff with `assist` (admin) any. Bodies are JSON objects of
//! the documented fields only (400 otherwise); a bad value is 422 naming
//! the field.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use ultracore_http::{Principal, Problem};

use crate::model::{self, NewConversation, NewMessage, NewUser, UserPatch};
use crate::store::Operational;
use crate::Error;

pub const USERS_ROUTE: &str = "/api/v1/users";
pub const USER_ROUTE: &str = "/api/v1/users/{id}";
pub const CONVERSATIONS_ROUTE: &str = "/api/v1/conversations";
pub const CONVERSATION_ROUTE: &str = "/api/v1/conversations/{id}";
pub const MESSAGES_ROUTE: &str = "/api/v1/conversations/{id}/messages";

/// The routes, to be merged into the platform's server.
pub fn router(db: Operational) -> Router {
    Router::new()
        .route(USERS_ROUTE, post(create_user).get(list_users))
        .route(
            USER_ROUTE,
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route(
            CONVERSATIONS_ROUTE,
            post(create_conversation).get(list_conversations),
        )
        .route(CONVERSATION_ROUTE, get(get_conversation))
        .route(MESSAGES_ROUTE, post(add_message))
        .with_state(db)
}

fn problem(e: Error) -> Problem {
    match e {
        Error::Invalid { field, message } => {
            Problem::invalid_field(field.clone(), format!("{field} {message}"))
        }
        e @ Error::NotFound { .. } => Problem::not_found(e.to_string()),
        Error::Conflict(m) => Problem::conflict(m),
        e => Problem::unavailable("the operational database", e),
    }
}

/// Answers of these routes: a response, or a problem.
type Answer = Result<Response, Problem>;

fn body<T: DeserializeOwned>(bytes: &[u8], example: &str) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::bad_request(
            "invalid_json",
            format!("the body is not what this route takes: {e}; send {example}"),
        )
    })
}

fn principal(p: Option<Extension<Principal>>) -> Result<Principal, Problem> {
    // Behind the guard every request has a principal; without one, refuse.
    p.map(|Extension(who)| who)
        .ok_or_else(|| Problem::unauthorized("authentication required", "Bearer"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    customer_id: Option<String>,
}

impl PageQuery {
    fn page(&self) -> Result<(usize, Option<String>), Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Problem::bad_request(
                "invalid_query",
                format!("limit {limit} is out of range: use 1 to 1000"),
            )
            .with_field("limit"));
        }
        if let Some(c) = &self.cursor {
            model::check_id("cursor", c).map_err(|_| {
                Problem::bad_request(
                    "invalid_query",
                    "cursor is not one this API handed out: pass the next_cursor of the page before, or none for the first page",
                )
                .with_field("cursor")
            })?;
        }
        Ok((limit, self.cursor.clone()))
    }
}

/// The id of the last item of a full page: where the next page starts.
fn next_cursor<T>(items: &[T], limit: usize, id: impl Fn(&T) -> &str) -> Option<String> {
    (items.len() == limit)
        .then(|| items.last().map(|i| id(i).to_owned()))
        .flatten()
}

fn path_id(id: &str) -> Result<(), Problem> {
    model::check_id("id", id).map_err(problem)
}

async fn create_user(State(db): State<Operational>, bytes: Bytes) -> Answer {
    let new: NewUser = body(
        &bytes,
        r#"{"name": "…", "email": "…", "country": "AU", "phone": "+61…", "risk_profile": "balanced"}"#,
    )?;
    let user = db.create_user(new).await.map_err(problem)?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

async fn list_users(State(db): State<Operational>, Query(q): Query<PageQuery>) -> Answer {
    let (limit, cursor) = q.page()?;
    let users = db.users(cursor, limit).await.map_err(problem)?;
    let next = next_cursor(&users, limit, |u| &u.id);
    Ok(Json(json!({"users": users, "next_cursor": next})).into_response())
}

fn no_user(id: String) -> Problem {
    problem(Error::NotFound { what: "user", id })
}

fn no_conversation(id: String) -> Problem {
    problem(Error::NotFound {
        what: "conversation",
        id,
    })
}

async fn get_user(State(db): State<Operational>, Path(id): Path<String>) -> Answer {
    path_id(&id)?;
    match db.user(id.clone()).await.map_err(problem)? {
        Some(user) => Ok(Json(user).into_response()),
        None => Err(no_user(id)),
    }
}

async fn patch_user(State(db): State<Operational>, Path(id): Path<String>, bytes: Bytes) -> Answer {
    path_id(&id)?;
    let patch: UserPatch = body(
        &bytes,
        r#"{"risk_profile": "growth"} (any of name, email, phone, country, risk_profile, status)"#,
    )?;
    match db.update_user(id.clone(), patch).await.map_err(problem)? {
        Some(user) => Ok(Json(user).into_response()),
        None => Err(no_user(id)),
    }
}

async fn delete_user(State(db): State<Operational>, Path(id): Path<String>) -> Answer {
    path_id(&id)?;
    match db.delete_user(id.clone()).await.map_err(problem)? {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(no_user(id)),
    }
}

/// A conversation's customer must be one the key may see; others are 404.
fn may_see(who: &Principal, customer_id: &str, id: &str) -> Result<(), Problem> {
    if who.can_access_customer(customer_id) {
        Ok(())
    } else {
        Err(no_conversation(id.to_owned()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    customer_id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
}

async fn create_conversation(
    State(db): State<Operational>,
    p: Option<Extension<Principal>>,
    bytes: Bytes,
) -> Answer {
    let who = principal(p)?;
    let b: ConversationBody = body(&bytes, r#"{"customer_id": "c-1", "subject": "…"}"#)?;
    let customer_id = match (b.customer_id, who.customer()) {
        (Some(c), _) => c,
        (None, Some(own)) => own.to_owned(),
        (None, None) => {
            return Err(problem(Error::Invalid {
                field: "customer_id".into(),
                message: "is required: name the customer the conversation is with".into(),
            }))
        }
    };
    if !who.can_access_customer(&customer_id) {
        return Err(Problem::not_found(format!(
            "customer '{customer_id}' is not found for this key"
        )));
    }
    let new = NewConversation {
        id: b.id,
        customer_id,
        subject: b.subject,
    };
    let c = db.create_conversation(new).await.map_err(problem)?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

async fn list_conversations(
    State(db): State<Operational>,
    p: Option<Extension<Principal>>,
    Query(q): Query<PageQuery>,
) -> Answer {
    let who = principal(p)?;
    let (limit, cursor) = q.page()?;
    // A customer's key lists its own customer's conversations only.
    let customer = match (q.customer_id, who.customer()) {
        (Some(c), _) if !who.can_access_customer(&c) => {
            return Err(Problem::not_found(format!(
                "customer '{c}' is not found for this key"
            )))
        }
        (Some(c), _) => Some(c),
        (None, own) => own.map(str::to_owned),
    };
    if let Some(c) = &customer {
        model::check_id("customer_id", c).map_err(problem)?;
    }
    let list = db
        .conversations(customer, cursor, limit)
        .await
        .map_err(problem)?;
    let next = next_cursor(&list, limit, |c| &c.id);
    Ok(Json(json!({"conversations": list, "next_cursor": next})).into_response())
}

async fn get_conversation(
    State(db): State<Operational>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> Answer {
    let who = principal(p)?;
    path_id(&id)?;
    match db.conversation(id.clone()).await.map_err(problem)? {
        Some(c) => {
            may_see(&who, &c.customer_id, &id)?;
            Ok(Json(c).into_response())
        }
        None => Err(no_conversation(id)),
    }
}

async fn add_message(
    State(db): State<Operational>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = principal(p)?;
    path_id(&id)?;
    let message: NewMessage = body(&bytes, r#"{"role": "customer", "text": "…"}"#)?;
    if who.customer().is_some() && message.role != "customer" {
        return Err(problem(Error::Invalid {
            field: "role".into(),
            message: "must be customer for a customer's key".into(),
        }));
    }
    // The conversation must be one the key may see before anything is written.
    match db.conversation(id.clone()).await.map_err(problem)? {
        Some(c) => may_see(&who, &c.customer_id, &id)?,
        None => return Err(no_conversation(id)),
    }
    match db.add_message(id.clone(), message).await.map_err(problem)? {
        Some(c) => Ok((StatusCode::CREATED, Json(c)).into_response()),
        None => Err(no_conversation(id)),
    }
}
