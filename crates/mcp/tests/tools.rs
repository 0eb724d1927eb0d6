//! The tools through rmcp's own client, in process (a duplex pipe stands
//! in for stdio): listing, the submit → poll → completed flow, tool errors
//! naming the field, and the events the tools leave on the log.

mod common;

use std::time::{Duration, Instant};

use common::{fixture, risk_checks, TestResult};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use ultracore_esg::{EsgPortfolioEvent, TOPIC};
use ultracore_log::{Consumer, ConsumerOptions, Envelope, EventLog};
use ultracore_mcp::TOOLS;

async fn connect(
    server: ultracore_mcp::McpServer<ultracore_log_embedded::EmbeddedLog>,
) -> TestResult<RunningService<RoleClient, ()>> {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    Ok(().serve(client_io).await?)
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &'static str,
    args: Value,
) -> TestResult<CallToolResult> {
    let Value::Object(args) = args else {
        return Err("arguments must be an object".into());
    };
    Ok(client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await?)
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn request() -> Value {
    json!({
        "portfolio_id": "pf-rust-1",
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 100}, {"ticker": "KO", "units": 100}], "cash": 5000.0},
        "objective": {"kind": "min_volatility"},
        "constraints": {"min_esg_score": 55.0},
        "universe": ["MSFT", "JNJ", "PG", "WMT"]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_submitted_answered_and_on_the_log() -> TestResult {
    let f = fixture().await?;
    let client = connect(f.server.clone()).await?;

    let tools = client.list_all_tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), TOOLS.len(), "{names:?}");
    for t in TOOLS {
        assert!(names.contains(&t), "{t} not listed: {names:?}");
    }
    for t in &tools {
        assert!(t.description.as_deref().is_some_and(|d| d.len() > 80));
        assert_eq!(t.input_schema.get("type"), Some(&json!("object")));
    }

    let submitted = call(&client, "optimize_portfolio_esg", request()).await?;
    assert_ne!(submitted.is_error, Some(true), "{}", text(&submitted));
    let body = submitted
        .structured_content
        .clone()
        .ok_or("no structured content")?;
    assert_eq!(body["status"], "pending");
    let request_id = body["request_id"]
        .as_str()
        .ok_or("no request_id")?
        .to_owned();

    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let r = call(
            &client,
            "get_optimization_result",
            json!({"request_id": request_id}),
        )
        .await?;
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
        let body = r.structured_content.ok_or("no structured content")?;
        if body["status"] != "pending" {
            break body;
        }
        assert!(Instant::now() < deadline, "no answer within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(answer["status"], "completed", "{answer}");
    assert!(!answer["result"]["weights"]
        .as_object()
        .ok_or("weights")?
        .is_empty());
    assert!(!answer["result"]["trades"]
        .as_array()
        .ok_or("trades")?
        .is_empty());
    assert!(answer["note"]
        .as_str()
        .is_some_and(|n| n.contains("synthetic")));

    // The request and its answer are events on the topic, one each.
    let mut consumer = f
        .log
        .consumer(ConsumerOptions::new("check", [TOPIC]))
        .await?;
    let mut kinds = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while kinds.len() < 2 && Instant::now() < until {
        for r in consumer.poll(100, Duration::from_millis(200)).await? {
            let env = Envelope::<EsgPortfolioEvent>::from_record(&r)?;
            assert_eq!(env.aggregate_id, "pf-rust-1");
            kinds.push(match env.payload {
                EsgPortfolioEvent::Requested(r) => ("requested", r.request_id.to_string()),
                EsgPortfolioEvent::Completed(c) => ("completed", c.request_id.to_string()),
                EsgPortfolioEvent::Failed(x) => ("failed", x.request_id.to_string()),
            });
        }
    }
    assert_eq!(
        kinds,
        vec![("requested", request_id.clone()), ("completed", request_id)]
    );
    client.cancel().await?;
    f.stop.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_tool_error_naming_the_field() -> TestResult {
    let f = fixture().await?;
    let client = connect(f.server.clone()).await?;
    let with = |path: &[&str], v: Value| {
        let mut r = request();
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*p],
            };
        }
        at[path[path.len() - 1]] = v;
        r
    };
    let cases = [
        (
            with(&["portfolio", "holdings", "0", "units"], json!(-5)),
            "portfolio.holdings[0].units",
        ),
        (with(&["lookback_years"], json!("five")), "lookback_years"),
        (with(&["lookback_years"], json!(0)), "lookback_years"),
        (with(&["universe"], json!(["MSFT", "NOPE"])), "universe[1]"),
        (
            with(&["constraints", "exclude"], json!(["XYZ"])),
            "constraints.exclude[0]",
        ),
        (
            with(&["objective"], json!({"kind": "max_return"})),
            "objective",
        ),
        (with(&["portfolio_id"], json!("")), "portfolio_id"),
        (with(&["request_id"], json!("x")), "request_id"),
        (with(&["colour"], json!("blue")), "colour"),
    ];
    for (args, field) in cases {
        let r = call(&client, "optimize_portfolio_esg", args.clone()).await?;
        assert_eq!(r.is_error, Some(true), "{args} accepted: {}", text(&r));
        assert!(text(&r).contains(field), "{field} not named: {}", text(&r));
    }
    // A missing field is named too.
    let mut missing = request();
    missing.as_object_mut().ok_or("object")?.remove("portfolio");
    let r = call(&client, "optimize_portfolio_esg", missing).await?;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("portfolio"), "{}", text(&r));

    for (args, field) in [
        (json!({"request_id": "nope"}), "request_id"),
        (json!({"request_id": uuid::Uuid::now_v7()}), "request_id"),
        (json!({}), "request_id"),
    ] {
        let r = call(&client, "get_optimization_result", args).await?;
        assert_eq!(r.is_error, Some(true), "{}", text(&r));
        assert!(text(&r).contains(field), "{}", text(&r));
    }
    for (args, field) in [
        (json!({"tickers": []}), "tickers"),
        (json!({"tickers": ["AAPL", "NOPE"]}), "tickers[1]"),
        (
            json!({"tickers": ["AAPL"], "benchmark": "NOPE"}),
            "benchmark",
        ),
        (
            json!({"tickers": ["AAPL"], "lookback_years": -2}),
            "lookback_years",
        ),
        (
            json!({"tickers": ["AAPL"], "weights": {"AAPL": 0.4}}),
            "weights",
        ),
        (json!({"tickers": "AAPL"}), "tickers"),
    ] {
        let r = call(&client, "calculate_risk_metrics", args).await?;
        assert_eq!(r.is_error, Some(true), "{}", text(&r));
        assert!(text(&r).contains(field), "{field}: {}", text(&r));
    }
    // Nothing was appended by the rejected calls.
    let topic = f.log.describe_topic(TOPIC).await?;
    assert_eq!(topic.records(), 0);
    client.cancel().await?;
    f.stop.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_metrics_equal_those_of_ultracore_risk() -> TestResult {
    let f = fixture().await?;
    let client = connect(f.server.clone()).await?;
    let checks = risk_checks()?;
    let r = call(
        &client,
        "calculate_risk_metrics",
        checks["risk"]["request"].clone(),
    )
    .await?;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let report = r.structured_content.ok_or("no structured content")?;
    // Exactly equal: the same prices, the same arithmetic, JSON round trips f64 exactly.
    assert_eq!(report["assets"], checks["risk"]["assets"]);
    assert!(report["observations"].as_u64().is_some_and(|n| n > 700));

    // Weights give the portfolio's metrics; all in one asset is that asset.
    let mut args = checks["risk"]["request"].clone();
    args["weights"] = json!({"MSFT": 1.0});
    args["benchmark"] = json!("USMV");
    let r = call(&client, "calculate_risk_metrics", args).await?;
    let report = r.structured_content.ok_or("no structured content")?;
    assert_eq!(report["portfolio"]["metrics"], report["assets"]["MSFT"]);
    assert!(report["assets"]["MSFT"]["beta"].is_f64());
    assert!((report["assets"]["USMV"]["beta"].as_f64().ok_or("beta")? - 1.0).abs() < 1e-12);
    client.cancel().await?;
    f.stop.cancel();
    Ok(())
}
