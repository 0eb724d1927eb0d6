//! The service's Prometheus metrics: after a known set of decisions and a
//! reload, the exposition has the right counts, and every line is valid
//! Prometheus text (format 0.0.4) with each family declared once.

mod common;

use std::collections::{BTreeMap, BTreeSet};

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

/// Parses Prometheus text: every sample as `name{labels}` → value. Fails on
/// a line that is neither a comment (`# HELP` / `# TYPE`) nor a sample, a
/// family declared twice, or a sample of an undeclared family.
pub fn parse(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !valid_name(name) || !helped.insert(name.to_owned()) {
                return Err(format!("bad or repeated HELP: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            let known = ["counter", "gauge", "histogram", "summary", "untyped"];
            if !valid_name(name) || !known.contains(&kind) {
                return Err(format!("bad TYPE: {line}"));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(format!("family {name} declared twice"));
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or(format!("not a sample: {line}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value in: {line}"))?,
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .ok_or(format!("unclosed labels: {line}"))?;
                for pair in labels.split(',') {
                    let (k, v) = pair.split_once('=').ok_or(format!("bad label: {line}"))?;
                    let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
                    if !(valid_name(k) && quoted) {
                        return Err(format!("bad label {pair} in: {line}"));
                    }
                }
                name
            }
            None => series,
        };
        if !valid_name(name) {
            return Err(format!("bad metric name: {line}"));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(format!("sample of an undeclared family: {line}"));
        }
        if samples.insert(series.to_owned(), value).is_some() {
            return Err(format!("sample repeated: {line}"));
        }
    }
    Ok(samples)
}

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
    let samples = parse(&text)?;
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
    assert!(parse("# TYPE a counter\na 1\n").is_ok());
    assert!(parse("a 1\n").is_err(), "undeclared");
    assert!(parse("# TYPE a counter\n# TYPE a counter\na 1\n").is_err());
    assert!(parse("# TYPE a counter\na{x=1} 1\n").is_err(), "unquoted");
    assert!(parse("# TYPE a counter\na one\n").is_err());
    assert!(parse("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n").is_ok());
}
