//! Helpers shared by the black-box tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ultracore_decisions::{
    DecisionConfig, DecisionEngine, DecisionRequest, PortfolioContext, Specialists,
};
use ultracore_log::{Consumer, ConsumerOptions, EventLog, RawEnvelope};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The repository's `models/` directory (the shipped specialists).
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

pub fn engine() -> DecisionEngine {
    DecisionEngine::new(
        Specialists::load_dir(models_dir()).expect("the shipped models load"),
        DecisionConfig::default(),
    )
    .expect("the default configuration is valid")
}

/// A request that the default limits approve, with the given features.
pub fn request(symbol: &str, features: BTreeMap<String, f64>) -> DecisionRequest {
    DecisionRequest {
        symbol: symbol.into(),
        features,
        price: Some(100.0),
        portfolio: PortfolioContext {
            position_units: 100.0,
            value: Some(10_000_000.0),
            correlation_with_holdings: Some(0.2),
        },
        correlation_id: None,
    }
}

/// A clearly bullish row (every regime input says bull, the specialists agree).
pub fn bullish() -> BTreeMap<String, f64> {
    [
        ("return_20d", 8.0),
        ("sma_50_200_ratio", 1.05),
        ("vix_level", 12.0),
        ("volatility_20d", 11.0),
        ("macd", 1.5),
        ("macd_signal", 0.2),
        ("sentiment_score", 0.9),
        ("rsi_14", 35.0),
        ("return_5d", 2.0),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into()
}

/// A clearly bearish row.
pub fn bearish() -> BTreeMap<String, f64> {
    [
        ("return_20d", -9.0),
        ("sma_50_200_ratio", 0.94),
        ("vix_level", 38.0),
        ("volatility_20d", 40.0),
        ("macd", -1.5),
        ("macd_signal", -0.2),
        ("sentiment_score", -0.9),
        ("rsi_14", 70.0),
        ("return_5d", -3.0),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into()
}

/// Every envelope on `topic`, read by a fresh group until `want` are seen
/// or `limit` passes.
pub async fn read_envelopes<L: EventLog>(
    log: &L,
    topic: &str,
    want: usize,
    limit: Duration,
) -> Vec<RawEnvelope> {
    let mut consumer = log
        .consumer(ConsumerOptions::new(
            format!("verify-{}", uuid::Uuid::now_v7()),
            [topic],
        ))
        .await
        .expect("a consumer");
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    while out.len() < want && Instant::now() < deadline {
        for r in consumer
            .poll(1000, Duration::from_millis(200))
            .await
            .expect("poll")
        {
            out.push(RawEnvelope::from_bytes(&r.value).expect("an envelope"));
        }
    }
    out
}

/// Every envelope of `topic` up to its end when the read begins (copies
/// included): a count of records to wait for can stop short when one topic
/// holds more redelivered copies than another.
pub async fn read_all_envelopes<L: EventLog>(
    log: &L,
    topic: &str,
    limit: Duration,
) -> Vec<RawEnvelope> {
    let mut out = Vec::new();
    let read = ultracore_log::read_to_end(
        log,
        "verify-all",
        topic,
        ultracore_log::Seek::Beginning,
        tokio::time::Instant::now() + limit,
        Duration::from_millis(200),
        |r| out.push(RawEnvelope::from_bytes(&r.value).expect("an envelope")),
    )
    .await
    .expect("reading the topic");
    assert!(
        read.complete,
        "{topic} was not read to its end within {limit:?}"
    );
    out
}

/// A models directory whose bull specialist is the shipped one cut to its
/// first `trees` trees (what it was before boosting went on), the others
/// copied as shipped.
pub fn models_with_short_bull(dir: &std::path::Path, trees: usize) -> std::io::Result<()> {
    for name in ["bear", "sideways"] {
        std::fs::copy(
            models_dir().join(format!("{name}.json")),
            dir.join(format!("{name}.json")),
        )?;
    }
    let text = std::fs::read_to_string(models_dir().join("bull.json"))?;
    let mut json: serde_json::Value = serde_json::from_str(&text)?;
    let model = &mut json["learner"]["gradient_booster"]["model"];
    for key in ["trees", "tree_info"] {
        if let Some(a) = model[key].as_array_mut() {
            a.truncate(trees);
        }
    }
    if let Some(a) = model["iteration_indptr"].as_array_mut() {
        a.truncate(trees + 1);
    }
    model["gbtree_model_param"]["num_trees"] = serde_json::Value::String(trees.to_string());
    std::fs::write(dir.join("bull.json"), serde_json::to_vec(&json)?)
}
