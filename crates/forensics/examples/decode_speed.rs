//! Time to decode one trading decision record: the event type's own
//! deserializer against the forensics service's borrowed view.
//!
//! `cargo run --release -p ultracore-forensics --example decode_speed`

use std::time::Instant;

use ultracore_events::trading::{
    Action, RiskCheck, TradingDecision, TradingDecisionEvent, AGGREGATE_TYPE,
};
use ultracore_log::{Envelope, Record};

fn main() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let records: Vec<Record> = (0..4096)
        .map(|i| {
            let d = TradingDecision {
                decision_id: uuid::Uuid::now_v7().to_string(),
                timestamp: chrono::Utc::now(),
                symbol: "AAPL".into(),
                action: Action::Buy,
                quantity: 100.0,
                confidence: next(),
                regime_probs: [("bull", next()), ("bear", next()), ("sideways", next())]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                strategy_weights: [("bull", next()), ("bear", next()), ("sideways", next())]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                features: (0..20)
                    .map(|f| (format!("feature_{f:02}"), next() * 100.0 - 50.0))
                    .collect(),
                risk_checks: (0..3)
                    .map(|c| RiskCheck {
                        name: format!("check_{c}"),
                        passed: true,
                        value: next(),
                        limit: 0.8,
                        detail: Some("correlation with holdings 0.42".into()),
                    })
                    .collect(),
                model_version: "specialists@0123456789abcdef".into(),
                latency_us: Some(20),
            };
            let env = Envelope::new(
                AGGREGATE_TYPE,
                "AAPL",
                i + 1,
                TradingDecisionEvent::TradingDecision(Box::new(d)),
            );
            let r = env.to_record();
            Record {
                topic: "trading_decisions".into(),
                partition: 0,
                offset: i,
                timestamp: 0,
                key: r.key,
                value: r.value,
                headers: r.headers,
            }
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        for r in records.iter().cycle().take(100_000) {
            let e = Envelope::<TradingDecisionEvent>::from_record(r).unwrap();
            std::hint::black_box(e);
        }
        let typed = t.elapsed().as_secs_f64() * 1e6 / 100_000.0;
        let t = Instant::now();
        for r in records.iter().cycle().take(100_000) {
            let d = ultracore_forensics::decode(r).unwrap();
            std::hint::black_box(d);
        }
        let view = t.elapsed().as_secs_f64() * 1e6 / 100_000.0;
        println!(
            "record {} bytes: Envelope<TradingDecisionEvent> {typed:.2} us, decode (view) {view:.2} us",
            records[0].value.len()
        );
    }
}
