//! The wealth agent through the assist pipeline on a real embedded log and
//! the data products built from the shipped prices: risk figures and
//! correlations equal to the risk module's, passing the critic; an ESG
//! rebalancing published on `esg-portfolio-events` as the API publishes it,
//! answered as pending with its link; and portfolios outside the caller's
//! refused in words that do not depend on whether they exist.

use std::time::Duration;

use chrono::Utc;
use ultracore_agents::assist::{AssistReply, Assistant, Caller};
use ultracore_agents::runtime::RuntimeConfig;
use ultracore_agents::wealth::{LOOKBACK_YEARS, RISK_FREE_RATE};
use ultracore_agents::{GovernanceKey, Intent, Screen};
use ultracore_es::{Database, EventStore, StoreOptions};
use ultracore_esg::risk::{
    calculate_correlation, calculate_risk_metrics, CorrelationRequest, RiskRequest,
};
use ultracore_esg::{EsgPortfolioEvent, OptimizationRequest, OptimizationResult};
use ultracore_flow::setup::{open_mesh, sample_request};
use ultracore_flow::{Completed, Portfolio, PortfolioCommand};
use ultracore_log::testing::all_records;
use ultracore_log::Envelope;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_marketdata::mesh::DataMesh;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    _dir: tempfile::TempDir,
    log: EmbeddedLog,
    store: EventStore<EmbeddedLog>,
    mesh: DataMesh,
    assistant: Assistant<EmbeddedLog>,
}

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let store = EventStore::new(
        log.clone(),
        Database::open(dir.path(), None)?,
        StoreOptions::default(),
    )?;
    let (mesh, _) = open_mesh(&dir.path().join("mesh"))?;
    ultracore_runtime::catalogue::ensure(&log, &["agent.executions"]).await?;
    let screen = Screen::new(GovernanceKey::load_or_create(dir.path())?);
    let config = RuntimeConfig {
        // Debug builds on a busy machine: room for the price reads.
        timeout: Duration::from_secs(60),
        ..RuntimeConfig::default()
    };
    let assistant =
        Assistant::with_agents(log.clone(), store.clone(), mesh.clone(), screen, config);
    Ok(Setup {
        _dir: dir,
        log,
        store,
        mesh,
        assistant,
    })
}

/// Records the demo's optimization of `portfolio_id` as completed: its
/// weights become the portfolio's holdings.
async fn optimized(
    s: &Setup,
    portfolio_id: &str,
) -> Result<OptimizationResult, Box<dyn std::error::Error>> {
    let mesh = s.mesh.clone();
    let request = sample_request(portfolio_id);
    let result =
        tokio::task::spawn_blocking(move || ultracore_esg::optimize(&mesh, &request)).await??;
    s.store
        .execute::<Portfolio>(
            portfolio_id,
            PortfolioCommand::RecordCompletion(Box::new(Completed {
                completed_at: Utc::now(),
                result: result.clone(),
            })),
        )
        .await?;
    Ok(result)
}

/// The one answer of a reply, by the wealth agent, that passed the critic.
fn wealth_answer(reply: &AssistReply) -> &ultracore_agents::assist::AgentAnswer {
    assert_eq!(reply.intents, [Intent::Wealth], "{reply:?}");
    assert_eq!(reply.answers.len(), 1);
    let a = &reply.answers[0];
    assert_eq!(a.agent_id, "wealth");
    assert!(a.passed, "{:?}\n{}", a.critic, a.text);
    a
}

/// The optimization requests on the ESG topic.
async fn requests(
    log: &EmbeddedLog,
) -> Result<Vec<(Envelope<EsgPortfolioEvent>, OptimizationRequest)>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for r in all_records(log, ultracore_esg::TOPIC).await {
        let env = Envelope::<EsgPortfolioEvent>::from_record(&r)?;
        if let EsgPortfolioEvent::Requested(req) = &env.payload {
            let req = (**req).clone();
            out.push((env, req));
        }
    }
    Ok(out)
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_figures_of_named_shares_are_the_risk_modules() -> TestResult {
    let s = setup().await?;
    let reply = s
        .assistant
        .assist(Some("c-1"), "how risky is AAPL and MSFT", &[])
        .await?;
    let a = wealth_answer(&reply);
    assert_eq!(a.tools, ["risk_metrics"]);
    let mesh = s.mesh.clone();
    let expected = tokio::task::spawn_blocking(move || {
        calculate_risk_metrics(
            &mesh,
            &RiskRequest {
                tickers: vec!["AAPL".into(), "MSFT".into()],
                lookback_years: Some(LOOKBACK_YEARS),
                weights: None,
                risk_free_rate: RISK_FREE_RATE,
                benchmark: None,
            },
        )
    })
    .await??;
    for (ticker, name) in [("AAPL", "Apple Inc."), ("MSFT", "Microsoft Corporation")] {
        let m = &expected.assets[ticker];
        let said = format!(
            "{ticker} ({name}): annual return {}, volatility {}, Sharpe ratio {:.2}, maximum drawdown {}",
            pct(m.cagr),
            pct(m.volatility),
            m.sharpe,
            pct(m.max_drawdown)
        );
        assert!(a.text.contains(&said), "{said}\n{}", a.text);
    }
    assert!(a.text.contains(&expected.end.to_string()), "{}", a.text);
    assert!(a.text.contains("not a forecast"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_of_named_shares_and_of_a_portfolio() -> TestResult {
    let s = setup().await?;
    let reply = s
        .assistant
        .assist(Some("c-1"), "how correlated are KO and PEP", &[])
        .await?;
    let a = wealth_answer(&reply);
    assert_eq!(a.tools, ["correlation"]);
    let mesh = s.mesh.clone();
    let expected = tokio::task::spawn_blocking(move || {
        calculate_correlation(
            &mesh,
            &CorrelationRequest {
                tickers: vec!["KO".into(), "PEP".into()],
                lookback_years: Some(LOOKBACK_YEARS),
            },
        )
    })
    .await??;
    let c = expected.matrix[0][1];
    assert_eq!(expected.tickers, ["KO", "PEP"]);
    assert!(
        (0.3..1.0).contains(&c),
        "two drinks makers move together: {c}"
    );
    assert!(
        a.text
            .contains(&format!("KO and PEP have a correlation of {c:.2}")),
        "{}",
        a.text
    );

    // Of a portfolio's holdings: the most and least correlated pair.
    let result = optimized(&s, "pf-1").await?;
    assert!(result.weights.len() >= 3, "{:?}", result.weights);
    let reply = s
        .assistant
        .assist(
            Some("c-1"),
            "how correlated are the holdings in my portfolio",
            &["pf-1".to_owned()],
        )
        .await?;
    let a = wealth_answer(&reply);
    assert_eq!(a.tools, ["portfolio_weights", "correlation"]);
    assert!(
        a.text
            .contains("of the holdings of pf-1 the most correlated pair is"),
        "{}",
        a.text
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalancing_is_requested_through_the_flow_and_pending() -> TestResult {
    let s = setup().await?;
    let before = optimized(&s, "pf-1").await?;
    let mine = ["pf-1".to_owned()];

    // The portfolio's figures at its current weights.
    let reply = s
        .assistant
        .assist(Some("c-1"), "how risky is my portfolio?", &mine)
        .await?;
    let a = wealth_answer(&reply);
    assert_eq!(a.tools, ["portfolio_weights", "risk_metrics"]);
    assert!(
        a.text
            .contains("Your portfolio pf-1, at the weights of its latest completed optimization"),
        "{}",
        a.text
    );
    assert!(requests(&s.log).await?.is_empty());

    // A customer's own key reads the portfolio but may not change it.
    let customer = Caller {
        principal: "k-customer".into(),
        may_rebalance: false,
    };
    let reply = s
        .assistant
        .assist_as(
            &customer,
            Some("c-1"),
            "rebalance pf-1 to be more sustainable",
            &mine,
        )
        .await?;
    let a = wealth_answer(&reply);
    assert_eq!(a.tools, ["portfolio_weights"]);
    assert!(
        a.text.contains("your adviser or portfolio manager"),
        "{}",
        a.text
    );
    assert!(requests(&s.log).await?.is_empty());

    // A portfolio manager's may; the request records who asked.
    let manager = Caller {
        principal: "k-manager".into(),
        may_rebalance: true,
    };
    let reply = s
        .assistant
        .assist_as(
            &manager,
            Some("c-1"),
            "rebalance pf-1 to be more sustainable",
            &mine,
        )
        .await?;
    let a = wealth_answer(&reply);
    assert_eq!(a.tools, ["portfolio_weights", "request_optimization"]);
    assert!(a.text.contains("It is pending"), "{}", a.text);
    let link = "/api/v1/optimizations/";
    let at = a.text.find(link).ok_or("no link in the answer")? + link.len();
    let request_id: uuid::Uuid = a.text[at..at + 36].parse()?;

    // One request on the topic, keyed and attributed as the API's are.
    let published = requests(&s.log).await?;
    assert_eq!(published.len(), 1);
    let (env, request) = &published[0];
    assert_eq!(request.request_id, request_id);
    assert_eq!(request.portfolio_id, "pf-1");
    assert_eq!(env.aggregate_type, ultracore_esg::AGGREGATE_TYPE);
    assert_eq!(env.aggregate_id, "pf-1");
    assert_eq!(env.principal.as_deref(), Some("k-manager"));
    assert_eq!(env.correlation_id, Some(request_id.to_string()));
    // From the portfolio's current holdings: the weights and value of its
    // latest completed optimization; the demo's objective and constraints.
    let holdings: Vec<(String, f64)> = request
        .portfolio
        .holdings
        .iter()
        .map(|h| {
            (
                h.ticker.clone().unwrap_or_default(),
                h.weight.unwrap_or(-1.0),
            )
        })
        .collect();
    let current: Vec<(String, f64)> = before.weights.clone().into_iter().collect();
    assert_eq!(holdings.len(), current.len());
    for ((t, w), (ct, cw)) in holdings.iter().zip(&current) {
        assert_eq!(t, ct);
        assert!((w - cw).abs() < 1e-9, "{t}: {w} for {cw}");
    }
    assert_eq!(request.portfolio.value, Some(before.portfolio_value));
    let demo = sample_request("pf-1");
    assert_eq!(request.constraints, demo.constraints);
    assert_eq!(request.objective, demo.objective);
    // And the optimization service can answer it.
    let mesh = s.mesh.clone();
    let request = request.clone();
    let answer =
        tokio::task::spawn_blocking(move || ultracore_esg::optimize(&mesh, &request)).await?;
    assert!(answer.is_ok(), "{answer:?}");

    // Without a portfolio of theirs: nothing is published.
    let reply = s
        .assistant
        .assist(Some("c-2"), "rebalance my portfolio to be greener", &[])
        .await?;
    let a = wealth_answer(&reply);
    assert!(a.tools.is_empty());
    assert!(
        a.text.contains("can't see a portfolio of yours"),
        "{}",
        a.text
    );
    assert_eq!(requests(&s.log).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portfolio_outside_the_callers_is_refused_alike_whether_it_exists_or_not() -> TestResult {
    let s = setup().await?;
    optimized(&s, "pf-1").await?;
    optimized(&s, "pf-2").await?;
    let mine = ["pf-1".to_owned()];
    let mut refusals = Vec::new();
    for id in ["pf-2", "pf-404"] {
        for question in [
            format!("how risky is {id}"),
            format!("rebalance {id} to be more sustainable"),
        ] {
            let reply = s.assistant.assist(Some("c-1"), &question, &mine).await?;
            let a = wealth_answer(&reply);
            assert!(a.tools.is_empty(), "{:?}", a.tools);
            assert!(
                a.text
                    .starts_with(&format!("I can't see a portfolio called {id} among yours")),
                "{}",
                a.text
            );
            refusals.push(a.text.replace(id, "<id>"));
        }
    }
    // The same words for the portfolio that exists and the one that does not.
    assert_eq!(refusals[0], refusals[2]);
    assert_eq!(refusals[1], refusals[3]);
    assert!(requests(&s.log).await?.is_empty());

    // A question it cannot serve: what it can do, no figures.
    let reply = s
        .assistant
        .assist(Some("c-1"), "should I buy bitcoin?", &mine)
        .await?;
    let a = wealth_answer(&reply);
    assert!(a.tools.is_empty());
    assert!(
        a.text.starts_with("I can work out risk figures"),
        "{}",
        a.text
    );
    assert!(!a.text.chars().any(|c| c.is_ascii_digit()), "{}", a.text);
    Ok(())
}
