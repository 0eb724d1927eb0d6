//! One [`AnyLog`] for every UltraCore process: the backend is chosen by
//! configuration, never by code, and dispatched through one enum.
//!
//! # Layout
//!
//! - `config`: [`LogConfig`]: `--log URL`, `EVENT_STORE_TYPE`,
//!   `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_TOPIC_PREFIX`,
//!   `EVENT_STORE_RETENTION_DAYS`, the data directory, and how they combine
//!   into a [`Backend`].
//! - `any`: [`AnyLog`] and [`AnyConsumer`], the dispatching enums.

mod any;
mod config;

pub use any::{embedded_options_from_env, AnyConsumer, AnyLog};
pub use config::{Access, Backend, ConfigError, LogConfig};
