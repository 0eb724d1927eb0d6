//! One module per top-level command.

pub mod analytics;
pub mod bench;
pub mod demo;
pub mod events;
pub mod mesh;
