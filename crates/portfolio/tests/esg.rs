//! ESG rebalancing against PyPortfolioOpt 1.6 with the same constraints and
//! objectives (tools/reference_esg.py), plus the behaviour PyPortfolioOpt
//! has no counterpart for: diagnosis of infeasible constraint sets, the
//! minimum trade size, binding constraints and the cost of the ESG limits.

mod common;

use common::*;
use serde_json::Value;
use ultracore_portfolio::*;

struct Setup {
    mu: Vec<f64>,
    cov: Matrix,
    data: EsgData,
    current: Vec<f64>,
    rf: f64,
}

fn setup(fx: &Value) -> Result<Setup, Box<dyn std::error::Error>> {
    let (tickers, prices) = prices("sp500")?;
    let names: Vec<String> = serde_json::from_value(fx["tickers"].clone())?;
    assert_eq!(tickers, names);
    let returns = returns_from_prices(&prices)?;
    Ok(Setup {
        mu: mean_historical_return(&returns, true)?,
        cov: sample_cov(&returns)?,
        data: EsgData {
            names,
            esg_score: vec_f64(&fx["esg_score"]),
            carbon_intensity: vec_f64(&fx["carbon_intensity"]),
            sector: serde_json::from_value(fx["sector"].clone())?,
            flagged: serde_json::from_value(fx["flagged"].clone())?,
        },
        current: vec_f64(&fx["current"]),
        rf: fx["risk_free_rate"].as_f64().unwrap(),
    })
}

fn esg_fixture() -> Result<Value, Box<dyn std::error::Error>> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/esg_reference.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

fn optimizer<'a>(s: &'a Setup, constraints: EsgConstraints) -> Result<EsgOptimizer<'a>> {
    EsgOptimizer::new(&s.mu, &s.cov, s.current.clone(), &s.data, constraints, s.rf)
}

#[test]
fn every_case_matches_pypfopt() -> TestResult {
    let fx = esg_fixture()?;
    let s = setup(&fx)?;
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let constraints: EsgConstraints = serde_json::from_value(case["constraints"].clone())?;
        let objective: EsgObjective = serde_json::from_value(case["objective"].clone())?;
        let r = optimizer(&s, constraints)?.optimize(objective)?;
        let want = vec_f64(&case["weights"]);
        for (i, (&got, &w)) in r.weights.iter().zip(&want).enumerate() {
            assert!(
                (got - w).abs() <= 1e-3,
                "{name}: weight of {} is {got:.6}, PyPortfolioOpt {w:.6}",
                s.data.names[i]
            );
        }
        let after = r.after;
        let got = match objective {
            EsgObjective::MinVolatility => after.volatility.powi(2) + after.transaction_cost,
            EsgObjective::MaxSharpe => after.sharpe,
            EsgObjective::MaxReturn { .. } => after.expected_return,
            EsgObjective::EsgTradeoff {
                risk_aversion,
                esg_weight,
            } => {
                after.expected_return - risk_aversion / 2.0 * after.volatility.powi(2)
                    + esg_weight * after.esg_score / 100.0
            }
            EsgObjective::Epsilon => unreachable!("the reference cases are optimizer objectives"),
        };
        assert_close(
            &format!("{name}: objective"),
            got,
            case["objective_value"].as_f64().unwrap(),
            1e-6,
            1e-3,
        );
    }
    Ok(())
}

#[test]
fn constraints_hold_and_binding_ones_are_named() -> TestResult {
    let fx = esg_fixture()?;
    let s = setup(&fx)?;
    let constraints = EsgConstraints {
        min_esg_score: Some(62.0),
        max_carbon_intensity: Some(180.0),
        exclude_flagged: true,
        max_turnover: Some(0.8),
        transaction_cost_bps: 5.0,
        ..EsgConstraints::default()
    };
    let r = optimizer(&s, constraints)?.optimize(EsgObjective::MaxSharpe)?;
    let a = r.after;
    assert!(a.esg_score >= 62.0 - 1e-6, "{a:?}");
    assert!(a.carbon_intensity <= 180.0 + 1e-6, "{a:?}");
    assert!(a.turnover <= 0.8 + 1e-6, "{a:?}");
    assert!((r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-8);
    for (i, flagged) in s.data.flagged.iter().enumerate() {
        if *flagged {
            assert!(r.weights[i].abs() < 1e-8, "{} is flagged", s.data.names[i]);
        }
    }
    assert!(
        r.binding.iter().any(|b| b.starts_with("exclusions")),
        "{:?}",
        r.binding
    );
    // The ESG limits cost return (or nothing); never gain Sharpe.
    let free = r
        .without_esg_constraints
        .expect("the unconstrained optimum");
    assert!(free.sharpe >= a.sharpe - 1e-9, "{free:?} vs {a:?}");
    // The trade list accounts for every change, and the costs add up.
    let cost: f64 = r.changes.iter().map(|c| c.cost).sum();
    assert_close("cost", cost, a.transaction_cost, 1e-9, 1e-9);
    assert!(r
        .changes
        .windows(2)
        .all(|p| p[0].delta().abs() >= p[1].delta().abs()));
    // The minimum-volatility portfolio under the same constraints has no better Sharpe.
    let constraints = EsgConstraints {
        min_esg_score: Some(62.0),
        max_carbon_intensity: Some(180.0),
        exclude_flagged: true,
        max_turnover: Some(0.8),
        transaction_cost_bps: 5.0,
        ..EsgConstraints::default()
    };
    let mv = optimizer(&s, constraints)?.optimize(EsgObjective::MinVolatility)?;
    assert!(mv.after.sharpe <= a.sharpe + 1e-9);
    Ok(())
}

#[test]
fn infeasible_sets_name_the_conflicting_constraints() -> TestResult {
    let fx = esg_fixture()?;
    let s = setup(&fx)?;
    let max_esg = s.data.esg_score.iter().cloned().fold(0.0, f64::max);
    let message = |c: EsgConstraints| -> String {
        match optimizer(&s, c).and_then(|o| o.optimize(EsgObjective::MinVolatility)) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("expected infeasible, got {:?}", r.after),
        }
    };
    let m = message(EsgConstraints {
        min_esg_score: Some(max_esg + 1.0),
        ..EsgConstraints::default()
    });
    assert!(
        m.contains("minimum ESG score") && m.contains(&format!("maximum achievable {max_esg:.2}")),
        "{m}"
    );
    let m = message(EsgConstraints {
        max_carbon_intensity: Some(1.0),
        ..EsgConstraints::default()
    });
    assert!(
        m.contains("maximum carbon intensity 1 is below the minimum achievable"),
        "{m}"
    );
    // Each alone is feasible; together they are not.
    let m = message(EsgConstraints {
        min_esg_score: Some(72.0),
        max_turnover: Some(0.12),
        ..EsgConstraints::default()
    });
    assert!(
        m.contains("minimum ESG score and the maximum turnover cannot both hold"),
        "{m}"
    );
    let m = message(EsgConstraints {
        exclude_sectors: vec!["tech".into(), "health".into(), "consumer".into()],
        weight_bounds: (0.0, 0.1),
        ..EsgConstraints::default()
    });
    assert!(m.contains("leave no fully invested portfolio"), "{m}");
    let m = match optimizer(
        &s,
        EsgConstraints {
            exclude: vec!["NOPE".into()],
            ..EsgConstraints::default()
        },
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("unknown asset accepted"),
    };
    assert!(m.contains("NOPE is not in the universe"), "{m}");
    Ok(())
}

#[test]
fn trades_below_the_minimum_size_are_cancelled() -> TestResult {
    let fx = esg_fixture()?;
    let s = setup(&fx)?;
    let constraints = EsgConstraints {
        min_esg_score: Some(58.0),
        min_trade_weight: Some(0.03),
        ..EsgConstraints::default()
    };
    let r = optimizer(&s, constraints)?.optimize(EsgObjective::MinVolatility)?;
    assert!(!r.cancelled_small_trades.is_empty(), "{r:?}");
    for c in &r.changes {
        assert!(
            c.delta().abs() >= 0.03 - 1e-7,
            "{} trades {:.4}, below the minimum",
            c.asset,
            c.delta()
        );
    }
    assert!(r.after.esg_score >= 58.0 - 1e-6);
    Ok(())
}

#[test]
fn the_epsilon_objective_is_refused_and_outside_weights_are_checked() {
    let mu = [0.08, 0.10, 0.06];
    let cov = Matrix::from_rows(&[
        vec![0.04, 0.006, 0.002],
        vec![0.006, 0.09, 0.004],
        vec![0.002, 0.004, 0.02],
    ])
    .unwrap();
    let data = EsgData {
        names: vec!["A".into(), "B".into(), "C".into()],
        esg_score: vec![70.0, 40.0, 65.0],
        carbon_intensity: vec![50.0, 300.0, 20.0],
        sector: vec!["X".into(), "Y".into(), "X".into()],
        flagged: vec![false, false, false],
    };
    let constraints = EsgConstraints {
        min_esg_score: Some(55.0),
        weight_bounds: (0.0, 0.6),
        ..EsgConstraints::default()
    };
    let opt = EsgOptimizer::new(&mu, &cov, vec![0.0; 3], &data, constraints, 0.02).unwrap();
    let err = opt.optimize(EsgObjective::Epsilon).unwrap_err().to_string();
    assert!(err.contains("Epsilon Agent"), "{err}");
    // The closest feasible point to a target that breaks the ESG minimum.
    let w = opt.closest(&[0.0, 1.0, 0.0]).unwrap();
    assert!(opt.breach(&w).is_none(), "{w:?}");
    let esg: f64 = w.iter().zip(&data.esg_score).map(|(a, b)| a * b).sum();
    assert!((esg - 55.0).abs() < 1e-6, "the ESG minimum binds: {esg}");
    assert!(w[1] > 0.3, "as much of B as the constraints allow: {w:?}");
    // A report of feasible outside weights; infeasible ones are refused.
    let r = opt.report(vec![0.4, 0.2, 0.4], "outside").unwrap();
    assert_eq!(r.status, "outside");
    assert!(r.without_esg_constraints.is_none());
    let bad = opt.report(vec![0.2, 0.6, 0.2], "outside").unwrap_err();
    assert_eq!(
        bad.constraint(),
        Some(ultracore_portfolio::Constraint::MinEsgScore)
    );
}
