//! `external.crm.events`: customer interactions from the CRM (its webhook,
//! or the MCP tool `log_customer_interaction`), checked at the edge,
//! screened for personal data, then published.
//!
//! The summary is free text a person typed, so it is screened in blocking
//! mode: card numbers, tax file numbers and the like are masked before
//! the event is written, and each masked value raises a
//! `compliance_alert` (fingerprint only). The event id is derived from the
//! CRM's source and interaction id, so a webhook delivered twice is one
//! event to every consumer.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use ultracore_events::external::{
    CrmEvent, CustomerInteraction, Invalid, CRM_AGGREGATE_TYPE, CRM_TOPIC,
};
use ultracore_http::{Principal, Problem};
use ultracore_log::{derive_event_id, EnvelopeBuilder, EventLog, EventLogExt, EVENT_ID_NAMESPACE};
use uuid::Uuid;

use crate::screen::{Mode, Screen};

/// What was published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Logged {
    pub event_id: Uuid,
    pub interaction_id: String,
    pub customer_id: String,
    pub topic: &'static str,
    /// Entities masked in the summary before it was published.
    pub masked: Vec<String>,
}

/// Why an interaction was not published.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the event log did not accept the interaction: {0}")]
    Log(String),
}

/// The event id of an interaction: the same source and interaction id,
/// the same event.
pub fn interaction_event_id(source: &str, interaction_id: &str) -> Uuid {
    let tag = format!("crm\u{0}{source}\u{0}{interaction_id}");
    derive_event_id(EVENT_ID_NAMESPACE, tag.as_bytes(), 0)
}

/// What the CRM webhook and the MCP tool share: the log (its topics
/// created once, when it is opened) and the governance screen.
#[derive(Debug, Clone)]
pub struct Crm<L: EventLog> {
    log: L,
    screen: Screen,
}

impl<L: EventLog> Crm<L> {
    /// Creates `external.crm.events` and `compliance.alerts` if missing.
    pub async fn open(log: L, screen: Screen) -> Result<Crm<L>, CrmError> {
        ultracore_runtime::catalogue::ensure(
            &log,
            &[CRM_TOPIC, ultracore_events::compliance::TOPIC],
        )
        .await
        .map_err(|e| CrmError::Log(e.to_string()))?;
        Ok(Crm { log, screen })
    }

    /// Checks, screens and publishes one interaction; `principal` (who
    /// sent it) goes in the envelope.
    pub async fn log_interaction(
        &self,
        mut interaction: CustomerInteraction,
        principal: &str,
    ) -> Result<Logged, CrmError> {
        let (log, screen) = (&self.log, &self.screen);
        interaction.validate(Utc::now())?;
        let event_id = interaction_event_id(&interaction.source, &interaction.interaction_id);
        let mut summary = Value::String(std::mem::take(&mut interaction.summary));
        let found = screen.screen(&mut summary, Mode::Block);
        interaction.summary = summary.as_str().unwrap_or_default().to_owned();
        let customer = interaction.customer_id.clone();
        let masked: Vec<String> = found
            .iter()
            .map(|s| s.finding.entity.name().to_owned())
            .collect();
        for s in &found {
            let alert = screen.alert(
                s,
                CRM_TOPIC,
                event_id,
                "/summary",
                Mode::Block,
                (None, None, Some(customer.clone())),
            );
            crate::screen::publish_alert(log, alert)
                .await
                .map_err(CrmError::Log)?;
        }
        let interaction_id = interaction.interaction_id.clone();
        let mut env = EnvelopeBuilder::new(CRM_AGGREGATE_TYPE, &customer)
            .principal(principal)
            .build(CrmEvent::InteractionLogged(interaction));
        env.event_id = event_id;
        log.append_one(CRM_TOPIC, env.to_record())
            .await
            .map_err(|e| CrmError::Log(e.to_string()))?;
        Ok(Logged {
            event_id,
            interaction_id,
            customer_id: customer,
            topic: CRM_TOPIC,
            masked,
        })
    }
}

/// `POST /api/v1/external/crm/events`: the CRM's webhook. 202 with what
/// was published; 400 (not an interaction: the reason names the field),
/// 422 (a field with a bad value), 503 (the log refused it: retry).
pub fn router<L: EventLog>(crm: Arc<Crm<L>>) -> Router {
    Router::new()
        .route("/api/v1/external/crm/events", post(webhook::<L>))
        .with_state(crm)
}

async fn webhook<L: EventLog>(
    State(crm): State<Arc<Crm<L>>>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Response {
    let interaction: CustomerInteraction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return Problem::bad_request(
                "invalid_body",
                format!(
                    "the body is not a customer interaction: {e}; send {{interaction_id, customer_id, channel, kind, summary, occurred_at, source}}"
                ),
            )
            .into_response()
        }
    };
    // Behind the guard every request has a principal; without one, refuse.
    let Some(Extension(who)) = principal else {
        return Problem::unauthorized("authentication required", "Bearer").into_response();
    };
    match crm.log_interaction(interaction, who.id()).await {
        Ok(logged) => (StatusCode::ACCEPTED, Json(logged)).into_response(),
        Err(CrmError::Invalid(i)) => Problem::invalid_field(i.field, i.reason).into_response(),
        Err(e @ CrmError::Log(_)) => Problem::unavailable("the event log", e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_interaction_one_event_id() {
        let a = interaction_event_id("salesforce", "CRM-1");
        assert_eq!(a, interaction_event_id("salesforce", "CRM-1"));
        assert_ne!(a, interaction_event_id("dynamics", "CRM-1"));
        assert_ne!(a, interaction_event_id("salesforce", "CRM-2"));
    }
}
