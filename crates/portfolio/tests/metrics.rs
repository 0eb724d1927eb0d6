//! Metrics and estimators against empyrical and PyPortfolioOpt values.

mod common;

use common::*;
use ultracore_portfolio::*;

const DATASETS: [&str; 2] = ["sp500", "factors"];
const REL: f64 = 1e-9;
/// Covariance estimators agree with PyPortfolioOpt to this relative error.
const COV_REL: f64 = 1e-12;

#[test]
fn metrics_match_empyrical() -> TestResult {
    let fx = fixture()?;
    for ds in DATASETS {
        let d = &fx["datasets"][ds];
        let (tickers, prices) = prices(ds)?;
        assert_eq!(prices.rows() as u64, d["rows"].as_u64().unwrap_or(0));
        let returns = returns_from_prices(&prices)?;
        let bench_idx = tickers
            .iter()
            .position(|t| Some(t.as_str()) == d["benchmark"].as_str())
            .ok_or("benchmark")?;
        let bench = returns.column(bench_idx);
        let config = MetricsConfig {
            risk_free_rate: d["risk_free_rate"].as_f64().ok_or("rf")?,
            ..MetricsConfig::default()
        };
        let per_asset = risk_metrics_per_asset(&returns, Some(&bench), &config)?;
        let check = |label: &str, m: &RiskMetrics, e: &serde_json::Value| {
            let pairs = [
                ("mean_return", m.mean_return),
                ("cagr", m.cagr),
                ("volatility", m.volatility),
                ("sharpe", m.sharpe),
                ("sortino", m.sortino),
                ("max_drawdown", m.max_drawdown),
                ("calmar", m.calmar),
                ("var_95", m.var_95),
                ("cvar_95", m.cvar_95),
                ("beta", m.beta.unwrap_or(f64::NAN)),
            ];
            for (name, v) in pairs {
                let want = e[name].as_f64().unwrap_or(f64::NAN);
                assert_close(&format!("{ds} {label} {name}"), v, want, REL, 1e-6);
            }
        };
        for (t, m) in tickers.iter().zip(&per_asset) {
            check(t, m, &d["metrics"][t]);
        }
        let ew = equal_weight_returns(&returns);
        let pm = risk_metrics(&ew, Some(&bench), &config)?;
        check("equal-weight", &pm, &d["equal_weight_portfolio"]);
        let w = vec![1.0 / tickers.len() as f64; tickers.len()];
        let pr = portfolio_returns(&returns, &w)?;
        for (a, b) in pr.iter().zip(&ew) {
            assert!((a - b).abs() < 1e-15);
        }
        let corr = correlation_matrix(&returns)?;
        assert_matrix_close(
            &format!("{ds} correlation"),
            &corr,
            &matrix(&d["correlation"]),
            REL,
        );
    }
    Ok(())
}

#[test]
fn expected_returns_match_pypfopt() -> TestResult {
    let fx = fixture()?;
    for ds in DATASETS {
        let d = &fx["datasets"][ds];
        let er = &d["expected_returns"];
        let (tickers, prices) = prices(ds)?;
        let returns = returns_from_prices(&prices)?;
        let rf = d["risk_free_rate"].as_f64().ok_or("rf")?;
        let bench_idx = tickers
            .iter()
            .position(|t| Some(t.as_str()) == d["benchmark"].as_str())
            .ok_or("benchmark")?;
        let market = returns.column(bench_idx);
        let cases: [(&str, Vec<f64>); 6] = [
            ("mean", mean_historical_return(&returns, true)?),
            ("mean_arithmetic", mean_historical_return(&returns, false)?),
            (
                "ema",
                ema_historical_return(&returns, DEFAULT_EMA_SPAN, true)?,
            ),
            (
                "ema_arithmetic",
                ema_historical_return(&returns, DEFAULT_EMA_SPAN, false)?,
            ),
            ("capm", capm_return(&returns, None, rf, true)?),
            (
                "capm_benchmark",
                capm_return(&returns, Some(&market), rf, true)?,
            ),
        ];
        for (name, got) in cases {
            let want = vec_f64(&er[name]);
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(&format!("{ds} {name}[{}]", tickers[i]), *g, *w, REL, 1e-6);
            }
        }
        // The dispatcher agrees with the direct calls.
        let via = estimate_expected_returns(
            &returns,
            ExpectedReturnsMethod::Capm { risk_free_rate: rf },
            None,
        )?;
        assert_eq!(via, capm_return(&returns, None, rf, true)?);
    }
    Ok(())
}

#[test]
fn covariances_match_pypfopt() -> TestResult {
    let fx = fixture()?;
    for ds in DATASETS {
        let c = &fx["datasets"][ds]["covariance"];
        let (_, prices) = prices(ds)?;
        let returns = returns_from_prices(&prices)?;
        assert_matrix_close(
            &format!("{ds} sample"),
            &sample_cov(&returns)?,
            &matrix(&c["sample"]),
            COV_REL,
        );
        let (lw, delta) = ledoit_wolf(&returns)?;
        assert_close(
            &format!("{ds} shrinkage"),
            delta,
            c["ledoit_wolf_shrinkage"].as_f64().ok_or("delta")?,
            COV_REL,
            0.0,
        );
        assert_matrix_close(
            &format!("{ds} ledoit-wolf"),
            &lw,
            &matrix(&c["ledoit_wolf"]),
            COV_REL,
        );
        assert_matrix_close(
            &format!("{ds} exp"),
            &exp_cov(&returns, DEFAULT_COV_SPAN)?,
            &matrix(&c["exp"]),
            COV_REL,
        );
    }
    Ok(())
}
