//! Every optimizer objective against PyPortfolioOpt 1.6 solved with
//! CLARABEL at tight tolerances, plus infeasible targets and bad input.

mod common;

use common::*;
use serde_json::Value;
use ultracore_portfolio::*;

/// Sector name, member tickers, lower and upper bound (as in the Python script).
type Sector = (
    &'static str,
    &'static [&'static str],
    Option<f64>,
    Option<f64>,
);

const SECTORS: [Sector; 4] = [
    ("energy", &["CVX", "XOM", "RRC"], Some(0.05), None),
    (
        "consumer",
        &["BBY", "HD", "KO", "PEP", "PG", "WMT"],
        Some(0.2),
        None,
    ),
    ("tech", &["AAPL", "AMD", "MSFT"], None, Some(0.2)),
    (
        "health",
        &["JNJ", "LLY", "MRK", "PFE", "UNH"],
        None,
        Some(0.3),
    ),
];

fn frontier_for(
    ds: &str,
    case: &Value,
) -> Result<(EfficientFrontier, Objective), Box<dyn std::error::Error>> {
    let (tickers, prices) = prices(ds)?;
    let returns = returns_from_prices(&prices)?;
    let mu = mean_historical_return(&returns, true)?;
    let cov = match case["covariance"].as_str() {
        Some("ledoit_wolf") => ledoit_wolf(&returns)?.0,
        _ => sample_cov(&returns)?,
    };
    let bounds = vec_f64(&case["weight_bounds"]);
    let mut ef = EfficientFrontier::new(mu, cov)?
        .with_weight_bounds(bounds[0], bounds[1])?
        .with_risk_free_rate(case["risk_free_rate"].as_f64().unwrap_or(0.0))?;
    if let Some(g) = case["gamma"].as_f64() {
        ef = ef.with_l2_gamma(g)?;
    }
    if case["sectors"].as_bool() == Some(true) {
        for (name, members, lower, upper) in SECTORS {
            let members = members
                .iter()
                .map(|m| tickers.iter().position(|t| t == m).ok_or("ticker"))
                .collect::<Result<Vec<_>, _>>()?;
            ef = ef.with_group(GroupBounds {
                name: name.into(),
                members,
                lower,
                upper,
            })?;
        }
    }
    let p = &case["params"];
    let objective = match case["objective_kind"].as_str().unwrap_or("") {
        "min_volatility" => Objective::MinVolatility,
        "max_sharpe" => Objective::MaxSharpe,
        "efficient_risk" => Objective::EfficientRisk {
            target_volatility: p["target_volatility"].as_f64().ok_or("target")?,
        },
        "efficient_return" => Objective::EfficientReturn {
            target_return: p["target_return"].as_f64().ok_or("target")?,
        },
        "max_quadratic_utility" => Objective::MaxQuadraticUtility {
            risk_aversion: p["risk_aversion"].as_f64().ok_or("delta")?,
        },
        other => return Err(format!("unknown objective {other}").into()),
    };
    Ok((ef, objective))
}

#[test]
fn every_objective_matches_pypfopt() -> TestResult {
    let fx = fixture()?;
    let mut checked = 0;
    for ds in ["sp500", "factors"] {
        for case in fx["datasets"][ds]["optimizations"]
            .as_array()
            .ok_or("cases")?
        {
            let label = format!("{ds} {}", case["label"].as_str().unwrap_or("?"));
            let (ef, objective) = frontier_for(ds, case)?;
            let got = ef
                .optimize(objective)
                .map_err(|e| format!("{label}: {e}"))?;
            let want_w = vec_f64(&case["weights"]);
            for (i, (g, w)) in got.weights.iter().zip(&want_w).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-3,
                    "{label}: weight {i} got {g}, expected {w}"
                );
            }
            assert!(
                (got.weights.iter().sum::<f64>() - 1.0).abs() < 1e-8,
                "{label}: sum"
            );
            let want = case["objective"].as_f64().ok_or("objective")?;
            assert_close(
                &format!("{label} objective"),
                got.objective_value,
                want,
                1e-6,
                1e-6,
            );
            for (name, v) in [
                ("expected_return", got.expected_return),
                ("volatility", got.volatility),
                ("sharpe", got.sharpe),
            ] {
                let want = case[name].as_f64().ok_or("value")?;
                assert_close(&format!("{label} {name}"), v, want, 1e-5, 1e-3);
            }
            assert!(got.iterations > 0);
            checked += 1;
        }
    }
    assert_eq!(checked, 33);
    Ok(())
}

fn sp500_frontier() -> Result<EfficientFrontier, Box<dyn std::error::Error>> {
    let (_, prices) = prices("sp500")?;
    let returns = returns_from_prices(&prices)?;
    Ok(EfficientFrontier::new(
        mean_historical_return(&returns, true)?,
        sample_cov(&returns)?,
    )?)
}

#[test]
fn unreachable_volatility_names_the_minimum() -> TestResult {
    let ef = sp500_frontier()?;
    let min = ef.min_volatility()?.volatility;
    let err = ef
        .optimize(Objective::EfficientRisk {
            target_volatility: 0.05,
        })
        .err()
        .ok_or("expected an error")?;
    match err {
        Error::TargetVolatilityTooLow { target, min: m } => {
            assert_eq!(target, 0.05);
            assert!((m - min).abs() < 1e-6);
        }
        other => return Err(format!("wrong error {other}").into()),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("target volatility 0.0500 is below the minimum achievable 0.169"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn unreachable_return_names_the_maximum() -> TestResult {
    let ef = sp500_frontier()?;
    let max = ef.max_return()?.expected_return;
    let mu_max = ef.expected_returns().iter().fold(0.0f64, |a, &b| a.max(b));
    assert!((max - mu_max).abs() < 1e-7);
    let err = ef
        .optimize(Objective::EfficientReturn { target_return: 0.9 })
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::TargetReturnTooHigh { .. }), "{err}");
    assert!(
        err.to_string().contains("is above the maximum achievable"),
        "{err}"
    );
    Ok(())
}

#[test]
fn max_sharpe_needs_an_asset_above_the_risk_free_rate() -> TestResult {
    let ef = sp500_frontier()?.with_risk_free_rate(5.0)?;
    let err = ef
        .optimize(Objective::MaxSharpe)
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::NoAssetAboveRiskFree { .. }), "{err}");
    Ok(())
}

#[test]
fn bounds_are_respected_and_contradictions_rejected() -> TestResult {
    let ef = sp500_frontier()?.with_weight_bounds(0.03, 0.08)?;
    for objective in [
        Objective::MinVolatility,
        Objective::MaxSharpe,
        Objective::MaxQuadraticUtility { risk_aversion: 2.0 },
    ] {
        let p = ef.optimize(objective)?;
        assert!(p
            .weights
            .iter()
            .all(|w| (0.03 - 1e-7..=0.08 + 1e-7).contains(w)));
    }
    let err = sp500_frontier()?
        .with_weight_bounds(0.06, 1.0)
        .err()
        .ok_or("sum of lower bounds")?;
    assert!(
        err.to_string().contains("lower bounds add up to 1.2000"),
        "{err}"
    );
    let err = sp500_frontier()?
        .with_weight_bounds(0.0, 0.04)
        .err()
        .ok_or("sum of upper bounds")?;
    assert!(matches!(
        err,
        Error::InfeasibleConstraints {
            constraint: Constraint::WeightBounds,
            ..
        }
    ));
    Ok(())
}

#[test]
fn contradictory_groups_are_an_infeasibility_error() -> TestResult {
    let ef = sp500_frontier()?
        .with_group(GroupBounds {
            name: "a".into(),
            members: vec![0, 1, 2],
            lower: Some(0.7),
            upper: None,
        })?
        .with_group(GroupBounds {
            name: "b".into(),
            members: vec![3, 4, 5],
            lower: Some(0.7),
            upper: None,
        })?;
    let err = ef
        .optimize(Objective::MinVolatility)
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::InfeasibleConstraints { .. }), "{err}");
    assert_eq!(err.constraint(), Some(Constraint::Bounds), "{err}");
    Ok(())
}

#[test]
fn bad_input_is_rejected() -> TestResult {
    let one_row = Matrix::from_rows(&[vec![1.0, 2.0]])?;
    assert!(matches!(
        returns_from_prices(&one_row),
        Err(Error::TooFewObservations {
            needed: 2,
            got: 1,
            ..
        })
    ));
    let nan = Matrix::from_rows(&[vec![1.0, 2.0], vec![f64::NAN, 2.1], vec![1.1, 2.2]])?;
    match returns_from_prices(&nan) {
        Err(Error::NonFinite {
            row: 1, column: 0, ..
        }) => {}
        other => return Err(format!("expected NonFinite, got {other:?}").into()),
    }
    let neg = Matrix::from_rows(&[vec![1.0, 2.0], vec![-1.0, 2.1]])?;
    assert!(matches!(
        returns_from_prices(&neg),
        Err(Error::NonPositivePrice { .. })
    ));
    let one_return = Matrix::from_rows(&[vec![0.01, 0.02]])?;
    assert!(matches!(
        sample_cov(&one_return),
        Err(Error::TooFewObservations { .. })
    ));
    assert!(risk_metrics(&[0.01], None, &MetricsConfig::default()).is_err());
    let cov = Matrix::from_rows(&[vec![0.04, 0.01], vec![0.01, 0.09]])?;
    assert!(EfficientFrontier::new(vec![0.1], cov.clone()).is_err());
    assert!(EfficientFrontier::new(vec![0.1, f64::NAN], cov.clone()).is_err());
    let asym = Matrix::from_rows(&[vec![0.04, 0.02], vec![0.01, 0.09]])?;
    assert!(EfficientFrontier::new(vec![0.1, 0.2], asym).is_err());
    let ef = EfficientFrontier::new(vec![0.1, 0.2], cov)?;
    assert!(ef
        .optimize(Objective::MaxQuadraticUtility { risk_aversion: 0.0 })
        .is_err());
    assert!(ef
        .optimize(Objective::EfficientRisk {
            target_volatility: -1.0
        })
        .is_err());
    Ok(())
}

#[test]
fn singular_covariance_still_solves_efficient_risk() -> TestResult {
    // Two identical assets: no Cholesky factor, the eigen fallback applies.
    let cov = Matrix::from_rows(&[
        vec![0.04, 0.04, 0.0],
        vec![0.04, 0.04, 0.0],
        vec![0.0, 0.0, 0.09],
    ])?;
    let ef = EfficientFrontier::new(vec![0.08, 0.08, 0.15], cov)?;
    let p = ef.optimize(Objective::EfficientRisk {
        target_volatility: 0.2,
    })?;
    assert!((p.volatility - 0.2).abs() < 1e-6, "{}", p.volatility);
    Ok(())
}

#[test]
fn frontier_and_plot() -> TestResult {
    let (tickers, _) = prices("sp500")?;
    let ef = sp500_frontier()?;
    let frontier = ef.frontier(20)?;
    assert_eq!(frontier.points.len(), 20);
    for pair in frontier.points.windows(2) {
        assert!(pair[1].expected_return >= pair[0].expected_return - 1e-9);
        assert!(pair[1].volatility >= pair[0].volatility - 1e-7);
    }
    let chosen = ef.optimize(Objective::MaxSharpe)?;
    let assets: Vec<FrontierPoint> = (0..ef.assets())
        .map(|i| FrontierPoint {
            volatility: ef.covariance().get(i, i).sqrt(),
            expected_return: ef.expected_returns()[i],
        })
        .collect();
    let svg = frontier_svg(&PlotInput {
        frontier: &frontier,
        chosen: Some((
            "max Sharpe",
            FrontierPoint {
                volatility: chosen.volatility,
                expected_return: chosen.expected_return,
            },
        )),
        asset_names: &tickers,
        asset_points: &assets,
        title: "Efficient frontier <S&P 500 sample>",
    });
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("&lt;S&amp;P 500 sample&gt;"));
    assert!(svg.contains(">AAPL<") && svg.contains("minimum volatility"));
    assert!(svg.contains("polyline") && svg.contains("Volatility (annualised)"));
    Ok(())
}

#[test]
fn bench_runs_on_a_small_synthetic_universe() -> TestResult {
    let options = bench::BenchOptions {
        runs: 1,
        synthetic_assets: vec![15],
        synthetic_observations: 300,
        seed: 7,
        optimize_up_to_assets: 15,
        frontier_points: 10,
    };
    let cases = bench::bench_optimize(None, &options)?;
    assert_eq!(cases.len(), 6);
    assert!(cases
        .iter()
        .any(|c| c.case == "frontier" && c.iterations == 10));
    assert!(cases
        .iter()
        .any(|c| c.case == "efficient-risk" && c.iterations > 0));
    let a = bench::synthetic_returns(5, 10, 1);
    assert_eq!(a, bench::synthetic_returns(5, 10, 1));
    Ok(())
}

#[test]
fn working_set_matches_the_full_problem() -> TestResult {
    let returns = bench::synthetic_returns(160, 400, 11);
    let mu = mean_historical_return(&returns, true)?;
    let cov = sample_cov(&returns)?;
    let ws = EfficientFrontier::new(mu.clone(), cov.clone())?;
    let full = EfficientFrontier::new(mu, cov)?.with_solver_settings(SolverSettings {
        working_set_from_assets: usize::MAX,
        ..SolverSettings::default()
    });
    let lo = ws.min_volatility()?.volatility;
    let hi = ws.max_return()?.volatility;
    for frac in [0.05, 0.3, 0.7] {
        let objective = Objective::EfficientRisk {
            target_volatility: lo + frac * (hi - lo),
        };
        let a = ws.optimize(objective)?;
        let b = full.optimize(objective)?;
        assert_close(
            "objective",
            a.objective_value,
            b.objective_value,
            1e-7,
            1e-6,
        );
        for (x, y) in a.weights.iter().zip(&b.weights) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
    let lo_ret = ws.min_volatility()?.expected_return;
    let hi_ret = ws.max_return()?.expected_return;
    for objective in [
        Objective::MaxSharpe,
        Objective::MinVolatility,
        Objective::EfficientReturn {
            target_return: lo_ret + 0.5 * (hi_ret - lo_ret),
        },
        Objective::MaxQuadraticUtility { risk_aversion: 3.0 },
    ] {
        let a = ws.optimize(objective)?;
        let b = full.optimize(objective)?;
        assert_close(
            &format!("{objective:?}"),
            a.objective_value,
            b.objective_value,
            1e-7,
            1e-6,
        );
        for (x, y) in a.weights.iter().zip(&b.weights) {
            assert!((x - y).abs() < 1e-4, "{objective:?}: {x} vs {y}");
        }
    }
    // The frontier's sweep (working sets seeded from the point before, runs
    // on several threads) gives each point the optimum of its own solve.
    let swept = ws.frontier(12)?;
    let alone = full.frontier(12)?;
    for (a, b) in swept.points.iter().zip(&alone.points) {
        assert_close(
            "frontier return",
            a.expected_return,
            b.expected_return,
            1e-7,
            1e-6,
        );
        assert_close(
            "frontier volatility",
            a.volatility,
            b.volatility,
            1e-6,
            1e-6,
        );
    }
    let err = ws
        .optimize(Objective::EfficientRisk {
            target_volatility: lo * 0.9,
        })
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::TargetVolatilityTooLow { .. }), "{err}");
    assert_eq!(err.constraint(), Some(Constraint::TargetVolatility));
    Ok(())
}
