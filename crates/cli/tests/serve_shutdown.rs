//! `ultracore serve` under a storm of decisions, stopped with SIGINT: every
//! decision answered 200 is on the log (or in the spool) afterwards, the
//! process exits 0, and `/readyz` said ready before the storm.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::{http, ultracore, Serve, TestResult};

/// The `decision_id`s of the trading decisions in a log's topic.
fn decisions_in(
    data: &std::path::Path,
    topic: &str,
) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let out = ultracore()
        .args(["--data-dir", data.to_str().ok_or("path")?])
        .args([
            "events",
            "tail",
            topic,
            "--from-beginning",
            "--no-follow",
            "--json",
        ])
        .output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // A spool that never had to take anything has no topic.
        if err.contains("does not exist") {
            return Ok(BTreeSet::new());
        }
        return Err(format!("events tail {topic}: {err}").into());
    }
    let mut ids = BTreeSet::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        // The spool wraps the original record: its value is the envelope too.
        if let Some(id) = record["value"]["payload"]["decision_id"].as_str() {
            ids.insert(id.to_owned());
        }
    }
    Ok(ids)
}

#[test]
fn sigint_during_a_decision_storm_loses_no_answered_decision() -> TestResult {
    let mut server = Serve::start(&[])?;
    let port = server.port;
    let key = server.admin.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match http(port, "GET", "/readyz", "", None) {
            Some((200, body)) => {
                let r: serde_json::Value = serde_json::from_str(&body)?;
                assert_eq!(r["ready"], true, "{body}");
                break;
            }
            Some((503, body)) => {
                let r: serde_json::Value = serde_json::from_str(&body)?;
                assert!(
                    r["waiting"].as_array().is_some_and(|w| !w.is_empty()),
                    "{body}"
                );
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "serve never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    let answered = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let features = r#""return_20d": 8, "sma_50_200_ratio": 1.05, "vix_level": 12, "volatility_20d": 11, "macd": 1.5, "sentiment_score": 0.9"#;
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (answered, stop, key) = (answered.clone(), stop.clone(), key.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                // Bounded: the storm ends when the server stops answering,
                // or after 20,000 requests per worker.
                while !stop.load(Ordering::Relaxed) && i < 20_000 {
                    i += 1;
                    let body = format!(
                        r#"{{"symbol": "S{w}", "features": {{{features}}}, "price": 100,
                            "portfolio": {{"position_units": 0, "value": 10000000, "correlation_with_holdings": 0.1}}}}"#
                    );
                    match http(port, "POST", "/api/v1/decisions", &body, Some(&key)) {
                        Some((200, answer)) => {
                            let d: serde_json::Value = match serde_json::from_str(&answer) {
                                Ok(d) => d,
                                Err(_) => continue,
                            };
                            if let Some(id) = d["decision_id"].as_str() {
                                answered.lock().unwrap().insert(id.to_owned());
                            }
                        }
                        Some(_) => {}
                        // Refused: the server is going away.
                        None => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        })
        .collect();
    // Let the storm build up, then interrupt the server in the middle of it.
    let storm = Instant::now();
    while answered.lock().unwrap().len() < 300 {
        assert!(
            storm.elapsed() < Duration::from_secs(60),
            "the storm did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status()?;
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = server.child.try_wait()? {
            break exit;
        }
        assert!(
            storm.elapsed() < Duration::from_secs(120),
            "serve did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| "a worker panicked")?;
    }
    assert!(exit.success(), "serve exited with {exit}");

    let answered = answered.lock().unwrap().clone();
    let mut recorded = decisions_in(server.data_dir(), "trading_decisions")?;
    recorded.extend(decisions_in(
        &server.data_dir().join("spool").join("decisions"),
        "spool",
    )?);
    let lost: Vec<&String> = answered.difference(&recorded).collect();
    assert!(
        lost.is_empty(),
        "{} of {} decisions answered 200 are neither on the log nor in the spool, e.g. {:?}",
        lost.len(),
        answered.len(),
        lost.iter().take(3).collect::<Vec<_>>()
    );
    Ok(())
}
