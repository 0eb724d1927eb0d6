//! `ultracore etf import --publish`: the imported closes go on
//! `external.market.data` as `market_prices_published`, one event per
//! series, readable with `events tail`; importing the same file again
//! publishes events with the same ids; prices the edge refuses are not
//! published, and the command says so.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `ultracore` on the data directory `data`, with no deployment settings inherited.
fn ultracore(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("ULTRACORE_LOG")
        .env_remove("ULTRACORE_DATA_DIR");
    c
}

fn ok(out: Output) -> Result<String, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn import(data: &Path, file: &Path) -> std::io::Result<Output> {
    ultracore(data)
        .args(["etf", "import"])
        .arg(file)
        .arg("--out")
        .arg(data)
        .arg("--publish")
        .output()
}

/// The records of `external.market.data`, as `events tail --json` prints them.
fn tail(data: &Path) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let text = ok(ultracore(data)
        .args([
            "events",
            "tail",
            "external.market.data",
            "--from-beginning",
            "--no-follow",
            "--json",
        ])
        .output()?)?;
    Ok(text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

#[test]
fn imported_prices_are_published_once_per_series() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // A space in the name: the event's source becomes an id without one.
    let csv = dir.path().join("factor prices.csv");
    std::fs::write(
        &csv,
        "date,QUAL,USMV\n2024-01-02,150.1,80.2\n2024-01-03,151.0,80.5\n2024-01-04,150.7,\n",
    )?;
    let out = ok(import(&data, &csv)?)?;
    assert!(
        out.contains(
            "published 2 market_prices_published event(s), 5 price(s), on external.market.data"
        ),
        "{out}"
    );
    assert!(data.join("etf/historical/QUAL.parquet").is_file());

    let records = tail(&data)?;
    assert_eq!(records.len(), 2, "{records:?}");
    let mut tickers = Vec::new();
    for r in &records {
        let v = &r["value"];
        assert_eq!(v["event_type"], "market_prices_published");
        assert_eq!(v["aggregate_type"], "Instrument");
        assert_eq!(v["principal"], "local");
        assert_eq!(r["key"], v["payload"]["ticker"]);
        assert_eq!(v["payload"]["source"], "factor_prices.csv");
        tickers.push(v["payload"]["ticker"].as_str().ok_or("ticker")?.to_owned());
    }
    tickers.sort();
    assert_eq!(tickers, ["QUAL", "USMV"]);
    let qual = records.iter().find(|r| r["key"] == "QUAL").ok_or("QUAL")?;
    assert_eq!(
        qual["value"]["payload"]["prices"],
        serde_json::json!([
            {"date": "2024-01-02", "close": 150.1},
            {"date": "2024-01-03", "close": 151.0},
            {"date": "2024-01-04", "close": 150.7}
        ])
    );

    // The same file again: the same events, recognisable by their ids.
    ok(import(&data, &csv)?)?;
    let records = tail(&data)?;
    assert_eq!(records.len(), 4);
    let mut ids: Vec<&str> = records
        .iter()
        .filter_map(|r| r["value"]["event_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{ids:?}");

    // A close the edge refuses: the file is imported, nothing is published.
    let bad = dir.path().join("SIZE.csv");
    std::fs::write(&bad, "date,SIZE\n2024-01-02,-1.5\n")?;
    let out = import(&data, &bad)?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not published"), "{err}");
    assert!(err.contains("prices[0].close"), "{err}");
    assert!(data.join("etf/historical/SIZE.parquet").is_file());
    assert_eq!(tail(&data)?.len(), 4);
    Ok(())
}
