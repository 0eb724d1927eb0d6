//! What the flow tests share: a flow on a fresh embedded log, and the
//! read-model databases the tests run on (`database`).
#![allow(dead_code, unused_imports)] // not every test file uses all of it

mod database;

pub use database::*;

use std::path::Path;

use ultracore_es::Database;
use ultracore_flow::{Flow, FlowOptions};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A flow on a fresh embedded log and read-model database in a temporary
/// directory, with the options `options` makes from that directory.
pub async fn start(
    options: impl FnOnce(&Path) -> FlowOptions,
) -> (tempfile::TempDir, EmbeddedLog, Flow<EmbeddedLog>) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap();
    let db = Database::open(dir.path(), None).unwrap();
    let flow = Flow::start(log.clone(), db, options(dir.path()))
        .await
        .unwrap();
    (dir, log, flow)
}
