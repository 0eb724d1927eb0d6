//! Requests against data products built from the shipped sample data.

use std::path::PathBuf;

use serde_json::json;
use ultracore_esg::{optimize, EsgPortfolioEvent, OptimizationRequest, Side};
use ultracore_log::EventFamily;
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::read_prices_file;

fn mesh() -> (tempfile::TempDir, DataMesh) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
    let mut series = read_prices_file(&root.join("sp500_prices.csv"), None).unwrap();
    series.extend(read_prices_file(&root.join("factor_etf_prices.csv"), None).unwrap());
    let dir = tempfile::tempdir().unwrap();
    build_products(&series, dir.path()).unwrap();
    let mesh = DataMesh::open(dir.path()).unwrap();
    (dir, mesh)
}

/// A request as a client sends it: JSON, decoded like any event payload.
fn request(v: serde_json::Value) -> OptimizationRequest {
    match EsgPortfolioEvent::decode("portfolio_optimization_requested", 1, v).unwrap() {
        EsgPortfolioEvent::Requested(r) => *r,
        other => panic!("{other:?}"),
    }
}

fn sample_request() -> serde_json::Value {
    json!({
        "request_id": "0190f5a0-0000-7000-8000-000000000001",
        "portfolio_id": "pf-1",
        "portfolio": {
            "holdings": [
                {"ticker": "XOM", "units": 400},
                {"ticker": "CVX", "units": 200},
                {"ticker": "AAPL", "units": 150},
                {"ticker": "JPM", "units": 100},
                {"ticker": "KO", "units": 300}
            ],
            "cash": 20000.0
        },
        "objective": {"kind": "max_sharpe"},
        "constraints": {
            "min_esg_score": 60.0,
            "max_carbon_intensity": 150.0,
            "max_turnover": 1.2,
            "transaction_cost_bps": 10.0,
            "min_trade_weight": 0.005,
            "weight_bounds": [0.0, 0.25]
        },
        "universe": ["MSFT", "JNJ", "PG", "WMT", "HD", "UNH", "PEP", "LLY", "USMV", "QUAL"],
        "lookback_years": 5
    })
}

#[test]
fn a_request_becomes_weights_trades_figures_and_words() {
    let (_dir, mesh) = mesh();
    let r = optimize(&mesh, &request(sample_request())).unwrap();
    let total: f64 = r.weights.values().sum();
    assert!((total - 1.0).abs() < 1e-6, "{total}");
    assert!(r.weights.values().all(|w| *w <= 0.25 + 1e-7));
    assert!(r.after.esg_score >= 60.0 - 1e-6, "{:?}", r.after);
    assert!(r.after.carbon_intensity <= 150.0 + 1e-6, "{:?}", r.after);
    assert!(r.after.turnover <= 1.2 + 1e-6);
    assert!(
        r.before.carbon_intensity > 150.0,
        "the energy-heavy start is dirtier"
    );
    // Buying minus selling spends exactly the cash: the new portfolio is fully invested.
    let net: f64 = r
        .trades
        .iter()
        .map(|t| match t.side {
            Side::Buy => t.notional,
            Side::Sell => -t.notional,
        })
        .sum();
    assert!(
        (net - 20_000.0).abs() < 1e-3 * r.portfolio_value,
        "net {net}"
    );
    for t in &r.trades {
        assert!((t.units * t.price - t.notional).abs() < 1e-6 * t.notional.max(1.0));
        assert!(t.weight_change.abs() >= 0.005 - 1e-7, "{t:?}");
    }
    let xom = r
        .trades
        .iter()
        .find(|t| t.ticker == "XOM")
        .expect("XOM is sold");
    assert_eq!(xom.side, Side::Sell);
    let text = r.explanation.join(" ");
    assert!(text.contains("SYNTHETIC"), "{text}");
    assert!(text.contains("Largest changes"), "{text}");
    assert!(text.contains("ESG constraints cost"), "{text}");
    assert!(r.esg_data_synthetic);
    assert!(r.observations > 1000);
    // The completed event carries all of it and decodes back.
    let event = EsgPortfolioEvent::Completed(Box::new(r.clone()));
    let back = EsgPortfolioEvent::decode(event.event_type(), 1, event.to_payload()).unwrap();
    assert_eq!(back, event);
}

#[test]
fn bad_requests_fail_naming_the_field() {
    let (_dir, mesh) = mesh();
    let fail = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = sample_request();
        patch(&mut v);
        optimize(&mesh, &request(v)).unwrap_err()
    };
    let f = fail(&|v| v["portfolio"]["holdings"][1]["ticker"] = json!("NOPE"));
    assert_eq!(f.field.as_deref(), Some("portfolio.holdings[1].ticker"));
    assert!(f.reason.contains("NOPE is not in the data products"), "{f}");

    let f = fail(&|v| v["portfolio"] = json!({"holdings": [{"ticker": "KO", "weight": 0.5}]}));
    assert_eq!(f.field.as_deref(), Some("portfolio.value"));

    let f = fail(&|v| v["constraints"]["min_esg_score"] = json!(99.0));
    assert_eq!(f.field.as_deref(), Some("constraints.min_esg_score"));
    assert!(f.reason.contains("maximum achievable"), "{f}");

    let f = fail(&|v| v["lookback_years"] = json!(-1));
    assert_eq!(f.field.as_deref(), Some("lookback_years"));

    let f = fail(&|v| v["portfolio"]["holdings"][0]["units"] = json!(-5));
    assert_eq!(f.field.as_deref(), Some("portfolio.holdings[0].units"));

    // Unknown fields are refused when the event is decoded, before any work.
    let mut v = sample_request();
    v["constraints"]["max_esg"] = json!(1);
    assert!(EsgPortfolioEvent::decode("portfolio_optimization_requested", 1, v).is_err());
}

#[test]
fn infeasible_requests_name_the_constraint_at_fault() {
    let (_dir, mesh) = mesh();
    let fail = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = sample_request();
        patch(&mut v);
        optimize(&mesh, &request(v)).unwrap_err()
    };
    // (case, change to the sample request, field at fault, words of the reason)
    type Patch = fn(&mut serde_json::Value);
    let cases: [(&str, Patch, &str, &str); 7] = [
        (
            "carbon limit below the cleanest portfolio",
            |v| v["constraints"]["max_carbon_intensity"] = json!(0.5),
            "constraints.max_carbon_intensity",
            "maximum carbon intensity 0.5 is below the minimum achievable",
        ),
        (
            "ESG score above the best portfolio",
            |v| v["constraints"]["min_esg_score"] = json!(99.0),
            "constraints.min_esg_score",
            "maximum achievable",
        ),
        (
            "turnover too small to leave the excluded sector",
            |v| {
                v["constraints"]["max_turnover"] = json!(0.01);
                v["constraints"]["exclude_sectors"] = json!(["Energy"]);
                v["constraints"]["min_esg_score"] = json!(null);
                v["constraints"]["max_carbon_intensity"] = json!(null);
            },
            "constraints.max_turnover",
            "maximum turnover 0.01 is too small",
        ),
        (
            "weight bounds the wrong way round",
            |v| v["constraints"]["weight_bounds"] = json!([0.3, 0.2]),
            "constraints.weight_bounds",
            "need lower ≤ upper",
        ),
        (
            "weight caps too low to invest everything",
            |v| v["constraints"]["weight_bounds"] = json!([0.0, 0.01]),
            "constraints",
            "leave no fully invested portfolio",
        ),
        (
            "target volatility below the least volatile portfolio",
            |v| {
                v["objective"] = json!({"kind": "max_return", "target_volatility": 0.001});
                v["constraints"]["min_esg_score"] = json!(null);
                v["constraints"]["max_carbon_intensity"] = json!(null);
            },
            "objective.target_volatility",
            "target volatility 0.0010 is below the minimum achievable",
        ),
        (
            "risk aversion that is not positive",
            |v| {
                v["objective"] =
                    json!({"kind": "esg_tradeoff", "risk_aversion": -1.0, "esg_weight": 0.1})
            },
            "objective.risk_aversion",
            "invalid risk aversion -1",
        ),
    ];
    for (case, patch, field, words) in cases {
        let f = fail(&patch);
        assert_eq!(f.field.as_deref(), Some(field), "{case}: {f}");
        assert!(f.reason.contains(words), "{case}: '{words}' not in: {f}");
    }
}

#[test]
fn the_epsilon_objective_mixes_feasible_bases_and_says_why() {
    let (_dir, mesh) = mesh();
    let mut v = sample_request();
    v["objective"] = json!({"kind": "epsilon"});
    let req = request(v);
    let r = optimize(&mesh, &req).unwrap();
    let agent = r
        .agent
        .as_ref()
        .expect("an epsilon result carries the agent's decision");
    assert_eq!(
        agent.agent_version,
        ultracore_epsilon::Agent::shipped().version(),
        "the model hash"
    );
    assert_eq!(agent.agent_version.len(), 64);
    let mix: f64 = agent.mix.values().sum();
    assert!((mix - 1.0).abs() < 1e-9, "the mix sums to {mix}");
    assert_eq!(agent.mix.len(), 4);
    assert!(agent.reasons.iter().any(|s| s.contains("Epsilon Agent")));
    // Every constraint of the request holds.
    let total: f64 = r.weights.values().sum();
    assert!((total - 1.0).abs() < 1e-6, "weights sum to {total}");
    assert!(r.weights.values().all(|w| *w <= 0.25 + 1e-6 && *w >= -1e-9));
    assert!(
        r.after.esg_score >= 60.0 - 1e-6,
        "ESG {}",
        r.after.esg_score
    );
    assert!(r.after.carbon_intensity <= 150.0 + 1e-6);
    assert!(
        r.after.turnover <= 1.2 + 1e-6,
        "turnover {}",
        r.after.turnover
    );
    assert!(!r.trades.is_empty());
    assert!(r
        .explanation
        .iter()
        .any(|s| s.contains("minimum trade size")));
    // Replaying the same request gives the same weights.
    let again = optimize(&mesh, &req).unwrap();
    assert_eq!(r.weights, again.weights);
    assert_eq!(agent, again.agent.as_ref().unwrap());
    // The other objectives carry no agent decision.
    assert!(optimize(&mesh, &request(sample_request()))
        .unwrap()
        .agent
        .is_none());
}
