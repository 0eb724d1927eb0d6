//! The platform's events: one module per topic family (see the topic
//! catalogue in the design notes). Each family is an enum implementing
//! [`EventFamily`](ultracore_log::EventFamily): its `event_type` strings,
//! schema versions and upcasting from older versions live next to the types.
//!
//! # Layout
//!
//! - `agents`: `agent.executions` — `agent_execution`.
//! - `compliance`: `compliance.alerts` — `compliance_alert`.
//! - `external`: `external.crm.events` — `customer_interaction_logged`;
//!   `external.market.data` — `market_prices_published`.
//! - `portfolio`: `portfolio-events` — `portfolio_optimized`, `risk_metrics_calculated`,
//!   `trade_orders_staged`.
//! - `query`: `query-events` — `price_data_queried`.
//! - `trading`: `trading_decisions`, `model_updates`, `regime_changes`,
//!   `risk_decisions` — one event type each.

pub mod agents;
pub mod compliance;
pub mod external;
pub mod portfolio;
pub mod query;
pub mod trading;

/// Implements `EventFamily` for an enum whose variants each wrap one payload
/// struct at schema version 1: `event_type` is the given string, and decoding
/// an unknown type or a newer version is an error, never a guess.
#[macro_export]
macro_rules! event_family_v1 {
    ($family:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl ::ultracore_log::EventFamily for $family {
            fn event_type(&self) -> &'static str {
                match self {
                    $($family::$variant(_) => $name,)+
                }
            }
            fn schema_version(&self) -> u32 {
                1
            }
            fn to_payload(&self) -> ::serde_json::Value {
                match self {
                    $($family::$variant(p) => ::serde_json::to_value(p)
                        .expect("event payloads always serialize"),)+
                }
            }
            fn decode(
                event_type: &str,
                schema_version: u32,
                payload: ::serde_json::Value,
            ) -> Result<Self, ::ultracore_log::DecodeError> {
                if schema_version > 1 {
                    return Err(::ultracore_log::DecodeError::UnsupportedVersion {
                        event_type: event_type.to_owned(),
                        version: schema_version,
                        newest: 1,
                    });
                }
                match event_type {
                    $($name => ::ultracore_log::payload_as(event_type, payload).map($family::$variant),)+
                    other => Err(::ultracore_log::DecodeError::UnknownEventType(other.to_owned())),
                }
            }
        }
    };
}
