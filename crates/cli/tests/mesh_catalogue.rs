//! The data mesh catalogue in `ultracore serve`: the shipped products on a
//! fresh data dir, search and queries over HTTP, and lineage recorded from
//! the running services — after the demo flow (an optimization request),
//! the optimizations product knows who writes it, what they read and which
//! groups read it, with nothing registered by hand; its refreshes emitted
//! as OpenLineage run events that validate against the published schema.

mod common;

use std::time::{Duration, Instant};

use common::{Serve, TestResult};
use serde_json::{json, Value};

fn get(s: &Serve, path: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let (status, body) = s.http("GET", path, "").ok_or("no answer")?;
    if status != 200 {
        return Err(format!("GET {path}: {status} {body}").into());
    }
    Ok(serde_json::from_str(&body)?)
}

/// Every record value of a topic of the embedded log beside the server.
fn read_topic(
    dir: &std::path::Path,
    topic: &str,
) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let log = ultracore_log_embedded::EmbeddedLog::open_read_only(dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = Vec::new();
    runtime.block_on(ultracore_log::read_to_end(
        &log,
        "test-read",
        topic,
        ultracore_log::Seek::Beginning,
        tokio::time::Instant::now() + Duration::from_secs(30),
        Duration::from_millis(200),
        |r| out.push(r.value.clone()),
    ))?;
    Ok(out)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out waiting for {what}").into())
}

#[test]
fn serve_catalogues_searches_queries_and_traces_the_demo_flow() -> TestResult {
    let s = Serve::start(&[])?;
    s.wait_ready()?;

    // The shipped products on a fresh data dir, searchable at once.
    let products = get(&s, "/api/v1/mesh/products")?;
    let ids: Vec<&str> = products["products"]
        .as_array()
        .ok_or("no products")?
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    for want in [
        "financial_prices",
        "esg_scores",
        "customer_360",
        "agent_performance",
        "trading_decisions_audit",
        "optimizations",
    ] {
        assert!(ids.contains(&want), "{want} not in {ids:?}");
    }
    let found = get(&s, "/api/v1/mesh/search?q=portfollio&limit=5")?;
    assert_eq!(found["hits"][0]["id"], "optimizations", "{found}");
    assert!(found["facets"]["domain"]["wealth"].as_u64() >= Some(1));
    let complete = get(&s, "/api/v1/mesh/autocomplete?q=fin")?;
    assert_eq!(
        complete["suggestions"][0]["id"], "financial_prices",
        "{complete}"
    );

    // The Parquet products are as fresh as their files (built at start).
    let prices = get(&s, "/api/v1/mesh/products/financial_prices")?;
    assert!(
        prices["quality"]["age_secs"]
            .as_f64()
            .is_some_and(|a| a < 600.0),
        "{prices}"
    );
    assert_eq!(prices["quality"]["tier"], "gold", "{prices}");

    // A Parquet product queried with pushdown, the second answer cached.
    let q = json!({"filters": [{"column": "date", "op": "ge", "value": "2022-06-01"}],
                   "columns": ["isin", "date", "close"], "limit": 5})
    .to_string();
    let (status, body) = s
        .http("POST", "/api/v1/mesh/products/financial_prices/query", &q)
        .ok_or("no answer")?;
    assert_eq!(status, 200, "{body}");
    let first: Value = serde_json::from_str(&body)?;
    assert_eq!(first["rows"].as_array().map(Vec::len), Some(5), "{first}");
    assert_eq!(first["cached"], false);
    let (_, body) = s
        .http("POST", "/api/v1/mesh/products/financial_prices/query", &q)
        .ok_or("no answer")?;
    let second: Value = serde_json::from_str(&body)?;
    assert_eq!(second["cached"], true);
    assert_eq!(second["rows"], first["rows"]);
    // Bad queries say what is wrong.
    let bad = json!({"columns": ["price"]}).to_string();
    let (status, body) = s
        .http("POST", "/api/v1/mesh/products/financial_prices/query", &bad)
        .ok_or("no answer")?;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("'price' is not a column"), "{body}");
    let (status, _) = s
        .http("GET", "/api/v1/mesh/products/nope", "")
        .ok_or("no answer")?;
    assert_eq!(status, 404);
    let (status, body) = s
        .http("GET", "/api/v1/mesh/search?tier=platinum", "")
        .ok_or("no answer")?;
    assert_eq!(status, 400, "{body}");

    // A product's own permission: compliance alerts need read-compliance.
    let manager = s.key("portfolio-manager", None)?;
    let status = common::status(
        s.port,
        "POST",
        "/api/v1/mesh/products/compliance_alerts/query",
        "{}",
        Some(&manager),
    );
    assert_eq!(status, Some(403));
    let status = common::status(
        s.port,
        "POST",
        "/api/v1/mesh/products/optimizations/query",
        "{}",
        Some(&manager),
    );
    assert_eq!(status, Some(200));
    let scoped = s.key("portfolio-manager", Some("pf-one"))?;
    let status = common::status(
        s.port,
        "POST",
        "/api/v1/mesh/products/optimizations/query",
        "{}",
        Some(&scoped),
    );
    assert_eq!(
        status,
        Some(403),
        "product data spans portfolios: keys for all only"
    );

    // Customer 360 from the users table by change capture, personal data masked.
    let user = json!({"id": "c-mesh", "name": "Ada Lovelace", "email": "ada@example.com", "country": "GB"}).to_string();
    let (status, body) = s.http("POST", "/api/v1/users", &user).ok_or("no answer")?;
    assert_eq!(status, 201, "{body}");
    let mut customer = Value::Null;
    wait_for("the customer's row", Duration::from_secs(30), || {
        let (_, body) = s
            .http("POST", "/api/v1/mesh/products/customer_360/query", "{}")
            .unwrap_or_default();
        customer = serde_json::from_str(&body).unwrap_or_default();
        customer["rows"].as_array().is_some_and(|r| !r.is_empty())
    })?;
    let text = customer.to_string();
    assert!(
        text.contains("a***@example.com") && text.contains("A***"),
        "{text}"
    );
    assert!(
        !text.contains("ada@example.com") && !text.contains("Lovelace"),
        "{text}"
    );

    // The demo flow: an optimization request, answered.
    let (status, body) = s
        .http(
            "POST",
            "/api/v1/portfolios/pf-lineage/optimizations",
            r#"{"portfolio": {"holdings": [{"ticker": "XOM", "units": 300}, {"ticker": "KO", "units": 400}], "cash": 20000},
                "objective": {"kind": "max_sharpe"}, "universe": ["MSFT", "JNJ", "PG", "WMT", "AAPL", "MRK"]}"#,
        )
        .ok_or("no answer")?;
    assert_eq!(status, 202, "{body}");
    let rid = serde_json::from_str::<Value>(&body)?["request_id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    wait_for("the optimization", Duration::from_secs(60), || {
        get(&s, &format!("/api/v1/optimizations/{rid}")).is_ok_and(|v| v["status"] == "completed")
    })?;

    // The product refreshed from those events; its lineage recorded.
    wait_for(
        "the lineage of the optimizations product",
        Duration::from_secs(30),
        || {
            get(&s, "/api/v1/mesh/products/optimizations/lineage").is_ok_and(|l| {
                let groups = l["downstream_groups"].as_array().map(Vec::len).unwrap_or(0);
                let producers = l["producers"].as_array().map(Vec::len).unwrap_or(0);
                groups >= 3 && producers >= 1 && l["last_refresh"].is_object()
            })
        },
    )?;
    let lineage = get(&s, "/api/v1/mesh/products/optimizations/lineage")?;
    let groups: Vec<&str> = lineage["downstream_groups"]
        .as_array()
        .ok_or("groups")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for g in ["reporting", "execution", "notification", "mesh-refresh"] {
        assert!(
            groups.iter().any(|x| x.contains(g)),
            "{g} not among {groups:?}"
        );
    }
    let producers: Vec<&str> = lineage["producers"]
        .as_array()
        .ok_or("producers")?
        .iter()
        .filter_map(|p| p["service"].as_str())
        .collect();
    assert!(producers.contains(&"optimization"), "{producers:?}");
    let upstream: Vec<&str> = lineage["upstream_topics"]
        .as_array()
        .ok_or("upstream")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(upstream.contains(&"esg-portfolio-events"), "{upstream:?}");
    let causes = lineage["last_refresh"]["causes"]
        .as_array()
        .ok_or("causes")?;
    assert!(
        !causes.is_empty() && causes.iter().all(|c| c["topic"] == "esg-portfolio-events"),
        "{causes:?}"
    );

    // The product's rows: the request and its result in one row.
    let (_, body) = s
        .http(
            "POST",
            "/api/v1/mesh/products/optimizations/query",
            &json!({"filters": [{"column": "request_id", "op": "eq", "value": rid}]}).to_string(),
        )
        .ok_or("no answer")?;
    let answer: Value = serde_json::from_str(&body)?;
    let columns: Vec<&str> = answer["columns"]
        .as_array()
        .ok_or("columns")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let row = answer["rows"][0]
        .as_array()
        .ok_or_else(|| format!("no row: {answer}"))?;
    let cell = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .map(|i| row[i].clone())
    };
    assert_eq!(cell("portfolio_id"), Some(json!("pf-lineage")), "{answer}");
    assert_eq!(cell("objective"), Some(json!("max_sharpe")), "{answer}");
    assert!(cell("sharpe").is_some_and(|v| v.is_f64()), "{answer}");
    assert_eq!(
        cell("last_event"),
        Some(json!("portfolio_optimization_completed")),
        "{answer}"
    );

    // Each refresh is an OpenLineage run event on mesh.openlineage that
    // validates against the published schema.
    let python = std::env::var("ULTRACORE_TEST_PYTHON")
        .map_err(|_| "ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares the Python test client")?;
    // The services as streaming jobs too (the jobs service looks every 5 s).
    wait_for(
        "the optimization service as a streaming job",
        Duration::from_secs(30),
        || {
            read_topic(s.data_dir(), "mesh.openlineage").is_ok_and(|events| {
                events.iter().any(|e| {
                    serde_json::from_slice::<Value>(e).is_ok_and(|v| {
                        v["job"]["name"] == "optimization"
                            && v["eventType"] == "START"
                            && v["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
                    })
                })
            })
        },
    )?;
    let events = read_topic(s.data_dir(), "mesh.openlineage")?;
    let file = s.data_dir().join("openlineage.jsonl");
    let mut lines = String::new();
    for value in events {
        lines.push_str(std::str::from_utf8(&value)?);
        lines.push('\n');
    }
    assert!(
        lines.lines().count() >= 1,
        "no run events on mesh.openlineage"
    );
    assert!(lines.contains("mesh.refresh.optimizations"), "{lines}");
    std::fs::write(&file, &lines)?;
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let checked = std::process::Command::new(python)
        .arg(format!("{root}/tools/validate_openlineage.py"))
        .arg(&file)
        .output()?;
    assert!(
        checked.status.success(),
        "OpenLineage events do not validate:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Related products from co-consumption, domain and tags.
    let related = get(&s, "/api/v1/mesh/products/optimizations/related?limit=3")?;
    assert_eq!(
        related["related"].as_array().map(Vec::len),
        Some(3),
        "{related}"
    );

    // The catalogue is read beside the server by the CLI.
    let out = common::ultracore()
        .args(["--data-dir", s.data_dir().to_str().ok_or("path")?])
        .args(["mesh", "search", "portfolio", "--json"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        cli["hits"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x["id"] == "optimizations")),
        "{cli}"
    );
    Ok(())
}
