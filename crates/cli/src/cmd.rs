//! One module per top-level command.

pub mod analytics;
pub mod bench;
pub mod bench_decisions;
pub mod bench_es;
pub mod bench_flow;
pub mod bench_forensics;
pub mod bench_forensics_service;
pub mod decide;
pub mod demo;
pub mod es;
pub mod esg;
pub mod events;
pub mod forensics;
pub mod forensics_service;
pub mod keys;
pub mod mcp;
pub mod mesh;
pub mod serve;
