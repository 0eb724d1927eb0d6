//! The service's Prometheus metrics: after a known set of decisions and a
//! reload, the exposition has the right counts, and every line is valid
//! Prometheus text (format 0.0.4) with each family declared once.

mod common;
mod prometheus;

use ultracore_decisions::metrics::{
    DECIDE_SECONDS, DECISIONS_TOTAL, MODEL_RELOADS_TOTAL, MODEL_UPDATES_TOTAL,
    REGIME_CHANGES_TOTAL, REGIME_HISTORY_DROPPED, REGIME_HISTORY_SYMBOLS, REJECTED_TOTAL,
    RISK_REJECTIONS_TOTAL,
};
use ultracore_decisions::{
    DecisionConfig, DecisionEngine, DecisionService, EvaluationSet, ServiceOptions, Specialists,
    StabilityBounds,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_service_did() -> common::TestResult {
    let dir = tempfile::tempdir()?;
    let spool = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    let short = tempfile::tempdir()?;
    common::models_with_short_bull(short.path(), 50)?;
    let engine = DecisionEngine::new(
        Specialists::load_dir(short.path())?,
        DecisionConfig::default(),
    )?;
    let service =
        DecisionService::start(engine, log, spool.path(), ServiceOptions::default()).await?;

    // Two symbols switching regime (3 changes), and rejections.
    let mut made = Vec::new();
    for (symbol, bullish, units) in [
        ("A", true, 100.0),
        ("A", false, 100.0),
        ("A", true, 100.0),
        ("B", true, 100.0),
        ("B", true, 20_000.0),
        ("B", false, 100.0),
        ("C", false, 100.0),
    ] {
        let features = if bullish {
            common::bullish()
        } else {
            common::bearish()
        };
        let mut request = common::request(symbol, features);
        request.portfolio.position_units = units;
        made.push(service.decide(&request)?);
    }
    let shipped = Specialists::load_dir(common::models_dir())?;
    let set = EvaluationSet::load(
        common::models_dir().join("evaluation.csv"),
        shipped.feature_names(),
    )?;
    assert_eq!(
        service
            .reload(shipped, &set, StabilityBounds::default())?
            .len(),
        1
    );

    let text = service.render_metrics();
    let samples = prometheus::parse(&text)?;
    let get = |series: &str| {
        samples
            .get(series)
            .copied()
            .ok_or(format!("{series} missing from\n{text}"))
    };
    for action in ["BUY", "SELL", "HOLD"] {
        let want = made
            .iter()
            .filter(|d| d.decision.action.as_str() == action)
            .count();
        assert_eq!(
            get(&format!("{DECISIONS_TOTAL}{{action=\"{action}\"}}"))?,
            want as f64,
            "{action}"
        );
    }
    let rejected: Vec<_> = made.iter().filter(|d| !d.approved).collect();
    assert_eq!(rejected.len(), 1, "the 20,000-unit position");
    assert_eq!(get(REJECTED_TOTAL)?, 1.0);
    for check in ultracore_decisions::risk::CHECKS {
        let want = rejected
            .iter()
            .filter(|d| d.failed_checks.iter().any(|c| c == check))
            .count();
        assert_eq!(
            get(&format!("{RISK_REJECTIONS_TOTAL}{{check=\"{check}\"}}"))?,
            want as f64,
            "{check}"
        );
    }
    assert_eq!(get(&format!("{DECIDE_SECONDS}_count"))?, 7.0);
    assert_eq!(
        get(&format!("{DECIDE_SECONDS}_bucket{{le=\"+Inf\"}}"))?,
        7.0
    );
    assert!(get(&format!("{DECIDE_SECONDS}_sum"))? > 0.0);
    assert_eq!(
        get(REGIME_CHANGES_TOTAL)?,
        3.0,
        "A bull→bear→bull, B bull→bear"
    );
    assert_eq!(get(MODEL_RELOADS_TOTAL)?, 1.0);
    assert_eq!(get(MODEL_UPDATES_TOTAL)?, 1.0);
    assert_eq!(get(REGIME_HISTORY_SYMBOLS)?, 0.0);
    assert_eq!(get(REGIME_HISTORY_DROPPED)?, 0.0);
    assert!(
        !text.contains("ultracore_spool_"),
        "the emitter's families are the forensics router's"
    );
    assert_eq!(service.decisions(), 7);
    service.shutdown().await;
    Ok(())
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    assert!(prometheus::parse("# TYPE a counter\na 1\n").is_ok());
    assert!(prometheus::parse("a 1\n").is_err(), "undeclared");
    assert!(prometheus::parse("# TYPE a counter\n# TYPE a counter\na 1\n").is_err());
    assert!(
        prometheus::parse("# TYPE a counter\na{x=1} 1\n").is_err(),
        "unquoted"
    );
    assert!(prometheus::parse("# TYPE a counter\na one\n").is_err());
    assert!(prometheus::parse("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n").is_ok());
}
