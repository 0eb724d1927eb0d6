//! `ultracore bench cdc` as a user runs it, on SQLite and on the test
//! PostgreSQL cluster (`scripts/pg-up.sh`, URL in `ULTRACORE_TEST_PG`):
//! every figure is there and positive. Speed is not asserted.

mod common;

use common::{in_data_dir, TestResult};
use serde_json::Value;

/// The test cluster. Unset is a failure, not a skip: this test is part of the suite.
fn cluster() -> String {
    std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts a local PostgreSQL \
             cluster (scripts/pg-up.sh) and sets it"
        )
    })
}

#[test]
fn bench_cdc_prints_every_figure() -> TestResult {
    let data = tempfile::tempdir()?;
    let out = in_data_dir(data.path())
        .env("DATABASE_URL", cluster())
        .args([
            "bench",
            "cdc",
            "--seconds",
            "1",
            "--projection-events",
            "2000",
            "--json",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "bench cdc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Value = serde_json::from_slice(&out.stdout)?;
    for db in ["sqlite", "postgres"] {
        for figure in [
            "commit_to_durable_p50_ms",
            "commit_to_durable_p95_ms",
            "commit_to_durable_p99_ms",
            "commit_to_durable_max_ms",
            "paced_changes_per_sec",
            "sustained_changes_per_sec",
            "sustained_relayed_changes_per_sec",
            "projection_events_per_sec",
        ] {
            let key = format!("{db}_{figure}");
            assert!(
                figures[&key].as_f64().is_some_and(|v| v > 0.0),
                "{key}: {figures}"
            );
        }
        let key = format!("{db}_relay_lag_at_end_changes");
        assert!(figures[&key].as_u64().is_some(), "{key}: {figures}");
    }
    assert_eq!(figures["paced_rate_per_sec"], 1_000);
    assert_eq!(figures["sqlite_paced_changes"], 1_000);
    assert_eq!(figures["postgres_paced_changes"], 1_000);
    assert_eq!(figures["projection_events"], 2_000);
    assert!(
        figures["postgres_to_sqlite_projection_ratio"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{figures}"
    );
    Ok(())
}
