//! The assistant's, agents', CRM and ESG tools through rmcp's client, in
//! process (as `ultracore mcp` on stdio: the local user), on a real
//! embedded log: answers from the tools, preferences recorded as events on
//! the Portfolio, personal data masked before a CRM event is written.

mod common;

use std::sync::Arc;

use common::{fixture, TestResult};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use ultracore_agents::{GovernanceKey, Screen};
use ultracore_es::{Database, EventStore, StoreOptions};
use ultracore_log::testing::all_records;
use ultracore_mcp::{AgentTools, McpServer, AGENT_TOOLS, ESG_TOOLS, TOOLS};

type Client = RunningService<RoleClient, ()>;

async fn connect(server: McpServer<ultracore_log_embedded::EmbeddedLog>) -> TestResult<Client> {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    Ok(().serve(client_io).await?)
}

async fn call(client: &Client, tool: &'static str, args: Value) -> TestResult<CallToolResult> {
    let Value::Object(args) = args else {
        return Err("arguments must be an object".into());
    };
    Ok(client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await?)
}

/// The structured answer of a call that must succeed.
async fn ok(client: &Client, tool: &'static str, args: Value) -> TestResult<Value> {
    let r = call(client, tool, args).await?;
    let body = r.structured_content.clone().unwrap_or(Value::Null);
    if r.is_error == Some(true) {
        return Err(format!("{tool} failed: {body}").into());
    }
    Ok(body)
}

/// The field a failing call names.
async fn field(client: &Client, tool: &'static str, args: Value) -> TestResult<Value> {
    let r = call(client, tool, args).await?;
    assert_eq!(r.is_error, Some(true), "{tool} should fail");
    Ok(r.structured_content.unwrap_or(Value::Null)["field"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_and_esg_tools_answer_from_their_tools() -> TestResult {
    let f = fixture().await?;
    let db = tempfile::tempdir()?;
    let store = EventStore::new(
        f.log.clone(),
        Database::open(db.path(), None)?,
        StoreOptions::default(),
    )?;
    ultracore_agents::demo::seed_demo_accounts(&store).await?;
    ultracore_runtime::catalogue::ensure(&f.log, &[ultracore_events::agents::TOPIC]).await?;
    let screen = Screen::new(GovernanceKey::from_bytes(&[7; 32]));
    let mesh = ultracore_marketdata::mesh::DataMesh::open(f._dirs.0.path())?;
    let assistant = Arc::new(ultracore_agents::assist::Assistant::with_agents(
        f.log.clone(),
        store.clone(),
        mesh,
        screen.clone(),
        ultracore_agents::runtime::RuntimeConfig::default(),
    ));
    let crm = Arc::new(ultracore_agents::crm::Crm::open(f.log.clone(), screen).await?);
    let server = f.server.clone().with_agents(AgentTools {
        assistant,
        store: store.clone(),
        crm,
    });
    let client = connect(server).await?;

    let listed = client.list_all_tools().await?;
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
    for t in TOOLS.iter().chain(&AGENT_TOOLS).chain(&ESG_TOOLS) {
        assert!(names.contains(t), "{t} not listed: {names:?}");
    }
    assert_eq!(
        names.len(),
        TOOLS.len() + AGENT_TOOLS.len() + ESG_TOOLS.len()
    );

    // The pipeline: two intents, each answered from its tools.
    let reply = ok(
        &client,
        "assist",
        json!({"query": "what's my card balance and what would a $600,000 loan cost a month over 30 years at 6.09%", "customer_id": "c-1"}),
    )
    .await?;
    let agents: Vec<&str> = reply["answers"]
        .as_array()
        .ok_or("no answers")?
        .iter()
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    assert_eq!(agents, ["card", "loan"], "{reply}");
    for a in reply["answers"].as_array().ok_or("no answers")? {
        assert_eq!(a["passed"], true, "{a}");
    }
    assert!(
        reply["text"].as_str().unwrap_or("").contains("$555.85"),
        "{reply}"
    );

    // The card agent's account tool, on the same event-sourced account.
    let account = ok(&client, "get_card_account", json!({"customer_id": "c-1"})).await?;
    assert_eq!(account["balance"], 555.85, "{account}");
    assert_eq!(
        field(&client, "get_card_account", json!({})).await?,
        "customer_id"
    );

    // The loan tools: numbers checked against their definitions.
    let lvr = ok(
        &client,
        "calculate_lvr",
        json!({"price": 800000, "deposit": 160000}),
    )
    .await?;
    assert_eq!(
        (lvr["loan"].as_f64(), lvr["lvr"].as_f64()),
        (Some(640000.0), Some(0.8))
    );
    assert_eq!(lvr["lmi"], false);
    let repay = ok(
        &client,
        "calculate_loan_repayment",
        json!({"amount": 600000, "annual_rate": 0.0609, "years": 30}),
    )
    .await?;
    let r: f64 = 0.0609 / 12.0;
    let expected = 600000.0 * r / (1.0 - (1.0 + r).powi(-360));
    let got = repay["monthly_repayment"].as_f64().ok_or("no repayment")?;
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    assert_eq!(repay["balance_by_year"].as_array().map(Vec::len), Some(30));
    assert_eq!(
        field(
            &client,
            "calculate_loan_repayment",
            json!({"amount": 1000, "annual_rate": 6.09, "years": 30})
        )
        .await?,
        "annual_rate"
    );
    let power = ok(
        &client,
        "calculate_borrowing_power",
        json!({"incomes": [120000], "annual_rate": 0.0609}),
    )
    .await?;
    assert!(
        power["max_loan"].as_f64().is_some_and(|x| x > 100_000.0),
        "{power}"
    );
    let cards = ok(
        &client,
        "recommend_cards",
        json!({"age": 35, "annual_income": 90000, "monthly_spend": 3000, "travels": true}),
    )
    .await?;
    assert!(cards["cards"].as_array().is_some_and(|c| c.len() > 3));

    // ESG: a profile, a screening, a report.
    let xom = ok(&client, "get_esg_profile", json!({"issuer": "XOM"})).await?;
    assert_eq!(xom["sector"], "Energy", "{xom}");
    let weights = json!({"XOM": 0.5, "MSFT": 0.5});
    let screened = ok(
        &client,
        "screen_portfolio_esg",
        json!({"weights": weights, "criteria": {"exclude_sectors": ["Energy"]}}),
    )
    .await?;
    assert_eq!(screened["compliant"], false);
    assert_eq!(
        screened["violations"][0]["kind"], "excluded_sector",
        "{screened}"
    );
    let report = ok(
        &client,
        "generate_esg_report",
        json!({"weights": weights, "format": "markdown"}),
    )
    .await?;
    assert!(report["markdown"]
        .as_str()
        .is_some_and(|m| m.contains("| ")));

    // Preferences and exclusions: events on the Portfolio, used by the
    // screening of the portfolio; the same preferences again record nothing.
    let prefs = json!({"portfolio_id": "pf-1", "criteria": {"min_esg_score": 40.0}});
    let set = ok(&client, "set_esg_preferences", prefs.clone()).await?;
    assert_eq!(set["recorded"], true, "{set}");
    let again = ok(&client, "set_esg_preferences", prefs).await?;
    assert_eq!(again["recorded"], false, "{again}");
    let excluded = ok(
        &client,
        "update_exclusion_list",
        json!({"portfolio_id": "pf-1", "add": ["XOM"], "reason": "client's instruction"}),
    )
    .await?;
    assert_eq!(excluded["exclusions"], json!(["XOM"]), "{excluded}");
    let by_portfolio = ok(
        &client,
        "screen_portfolio_esg",
        json!({"portfolio_id": "pf-1", "weights": weights}),
    )
    .await?;
    assert_eq!(by_portfolio["compliant"], false, "{by_portfolio}");
    assert!(
        by_portfolio["violations"]
            .as_array()
            .ok_or("no violations")?
            .iter()
            .any(|v| v["kind"] == "excluded_issuer" && v["ticker"] == "XOM"),
        "{by_portfolio}"
    );
    let types: Vec<String> = all_records(&f.log, "es.Portfolio")
        .await
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.value).ok())
        .filter_map(|v| v["event_type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(types, ["esg_preference_set", "exclusion_list_updated"]);

    // The CRM: a card number in the summary never reaches the topic.
    let interaction = json!({
        "interaction_id": "CRM-7", "customer_id": "c-1", "channel": "phone", "kind": "complaint",
        "summary": "Customer read out card 4929 3813 3266 4295 to dispute a charge.",
        "occurred_at": "2026-12-01T10:00:00Z", "source": "salesforce"});
    let logged = ok(&client, "log_customer_interaction", interaction.clone()).await?;
    assert_eq!(logged["masked"], json!(["CREDIT_CARD"]), "{logged}");
    let twice = ok(&client, "log_customer_interaction", interaction).await?;
    assert_eq!(twice["event_id"], logged["event_id"]);
    let crm = all_records(&f.log, "external.crm.events").await;
    assert_eq!(crm.len(), 2);
    for r in &crm {
        let v = String::from_utf8_lossy(&r.value);
        assert!(
            !v.contains("4929 3813 3266 4295") && !v.contains("4929381332664295"),
            "{v}"
        );
    }
    assert_eq!(
        field(
            &client,
            "log_customer_interaction",
            json!({"interaction_id": "CRM-8", "customer_id": "c 1", "channel": "phone", "kind": "note",
                   "summary": "x", "occurred_at": "2026-12-01T10:00:00Z", "source": "salesforce"})
        )
        .await?,
        "customer_id"
    );
    f.stop.cancel();
    Ok(())
}
