//! One module per top-level command.

pub mod analytics;
pub mod assist;
pub mod audit;
pub mod cdc;
pub mod decide;
pub mod demo;
pub mod epsilon;
pub mod es;
pub mod esg;
pub mod events;
pub mod forensics;
pub mod forensics_service;
pub mod governance;
pub mod keys;
pub mod mcp;
pub mod mesh;
pub mod serve;
