//! Point-in-time features: everything a decision at the close of day `d`
//! may know, computed from prices up to and including day `d`.
//!
//! Per asset: returns over 1, 4, 13 and 52 weeks, 13-week volatility and
//! downside volatility, drawdown from the 52-week high. For the market:
//! the average pairwise correlation, turbulence (Kritzman and Li 2010),
//! the equal-weight index's return, volatility and drawdown, and the
//! cross-sectional dispersion of returns. For each base portfolio: the
//! same figures of the portfolio (its assets' features through its
//! weights), its ESG and carbon slack against the request's limits, and
//! how far it is from the current (drifted) weights.

use crate::Result;

/// Days of history a decision needs: 252 returns before day `d`.
pub const WARMUP: usize = 253;

pub const ASSET_FEATURES: [&str; 7] = [
    "return_5d",
    "return_21d",
    "return_63d",
    "return_252d",
    "volatility_63d",
    "downside_volatility_63d",
    "drawdown_252d",
];

pub const MARKET_FEATURES: [&str; 6] = [
    "average_correlation_63d",
    "turbulence",
    "equal_weight_return_21d",
    "equal_weight_volatility_63d",
    "equal_weight_drawdown_252d",
    "dispersion_21d",
];

/// Features of one base portfolio; the last, `turnover`, depends on the
/// current weights and is filled in at decision time.
pub const BASE_FEATURES: [&str; 9] = [
    "return_21d",
    "return_63d",
    "return_252d",
    "volatility_63d",
    "downside_volatility_63d",
    "drawdown_252d",
    "esg_slack",
    "carbon_slack",
    "turnover",
];

/// Base features known before the current weights are.
pub const STATIC_BASE_FEATURES: usize = BASE_FEATURES.len() - 1;

const YEAR: f64 = 252.0;

/// The ESG side of the features: scores and intensities per asset and the
/// request's limits.
#[derive(Debug, Clone)]
pub struct EsgInputs {
    pub esg_score: Vec<f64>,
    pub carbon_intensity: Vec<f64>,
    pub min_esg_score: Option<f64>,
    pub max_carbon_intensity: Option<f64>,
}

impl EsgInputs {
    /// `(w·esg − min) / 100`: how far above the minimum score the
    /// portfolio is (the score itself, scaled, without a minimum).
    pub fn esg_slack(&self, w: &[f64]) -> f64 {
        (dot(w, &self.esg_score) - self.min_esg_score.unwrap_or(0.0)) / 100.0
    }

    /// `(cap − w·carbon) / cap`: the unused share of the carbon budget
    /// (minus the intensity / 1,000 without a cap).
    pub fn carbon_slack(&self, w: &[f64]) -> f64 {
        let c = dot(w, &self.carbon_intensity);
        match self.max_carbon_intensity {
            Some(cap) if cap > 0.0 => (cap - c) / cap,
            _ => -c / 1000.0,
        }
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn std(v: &[f64]) -> f64 {
    let m = mean(v);
    let n = v.len();
    if n < 2 {
        return 0.0;
    }
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// Annualised downside deviation (returns below zero), empyrical's definition.
fn downside(v: &[f64]) -> f64 {
    let s: f64 = v.iter().map(|x| x.min(0.0).powi(2)).sum();
    (s / v.len().max(1) as f64).sqrt() * YEAR.sqrt()
}

/// Drawdown of the last point of a wealth path from its maximum.
fn drawdown_of(wealth: impl Iterator<Item = f64>) -> f64 {
    let (mut peak, mut last) = (f64::MIN, 0.0);
    for v in wealth {
        peak = peak.max(v);
        last = v;
    }
    if peak > 0.0 {
        last / peak - 1.0
    } else {
        0.0
    }
}

/// The price panel and its daily returns, as features read them.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    pub prices: &'a [Vec<f64>],
    /// `returns[d]`: day `d − 1` to day `d`.
    pub returns: &'a [Vec<f64>],
}

impl History<'_> {
    fn assets(&self) -> usize {
        self.prices[0].len()
    }

    fn check(&self, d: usize) -> Result<()> {
        if d + 1 < WARMUP || d >= self.prices.len() {
            return Err(crate::Error::Data {
                reason: format!(
                    "a decision on day {d} needs {WARMUP} days of history and a price that day ({} days available)",
                    self.prices.len()
                ),
            });
        }
        Ok(())
    }

    /// Daily returns of fixed weights `w` over the `days` days ending at `d`.
    fn portfolio_returns(&self, w: &[f64], d: usize, days: usize) -> Vec<f64> {
        (d + 1 - days..=d)
            .map(|t| dot(w, &self.returns[t]))
            .collect()
    }

    /// Per asset, [`ASSET_FEATURES`] at the close of day `d`.
    pub fn asset_features(&self, d: usize) -> Result<Vec<[f64; 7]>> {
        self.check(d)?;
        let p = self.prices;
        Ok((0..self.assets())
            .map(|i| {
                let r = |h: usize| p[d][i] / p[d - h][i] - 1.0;
                let daily: Vec<f64> = (d - 62..=d).map(|t| self.returns[t][i]).collect();
                [
                    r(5),
                    r(21),
                    r(63),
                    r(252),
                    std(&daily) * YEAR.sqrt(),
                    downside(&daily),
                    drawdown_of((d - 251..=d).map(|t| p[t][i])),
                ]
            })
            .collect())
    }

    /// [`MARKET_FEATURES`] at the close of day `d`.
    pub fn market_features(&self, d: usize) -> Result<[f64; 6]> {
        self.check(d)?;
        let n = self.assets();
        let equal = vec![1.0 / n as f64; n];
        // Average pairwise correlation over 63 days.
        let window: Vec<&Vec<f64>> = (d - 62..=d).map(|t| &self.returns[t]).collect();
        let cols: Vec<Vec<f64>> = (0..n)
            .map(|i| window.iter().map(|r| r[i]).collect())
            .collect();
        let sd: Vec<f64> = cols.iter().map(|c| std(c)).collect();
        let means: Vec<f64> = cols.iter().map(|c| mean(c)).collect();
        let (mut sum, mut pairs) = (0.0, 0usize);
        for i in 0..n {
            for j in i + 1..n {
                if sd[i] > 0.0 && sd[j] > 0.0 {
                    let cov = cols[i]
                        .iter()
                        .zip(&cols[j])
                        .map(|(a, b)| (a - means[i]) * (b - means[j]))
                        .sum::<f64>()
                        / (window.len() - 1) as f64;
                    sum += cov / (sd[i] * sd[j]);
                    pairs += 1;
                }
            }
        }
        let correlation = if pairs > 0 { sum / pairs as f64 } else { 0.0 };
        let ew = self.portfolio_returns(&equal, d, 252);
        let mut wealth = 1.0;
        let ew_path: Vec<f64> = ew
            .iter()
            .map(|r| {
                wealth *= 1.0 + r;
                wealth
            })
            .collect();
        let r21: Vec<f64> = (0..n)
            .map(|i| self.prices[d][i] / self.prices[d - 21][i] - 1.0)
            .collect();
        Ok([
            correlation,
            self.turbulence(d),
            ew[ew.len() - 21..].iter().map(|r| 1.0 + r).product::<f64>() - 1.0,
            std(&ew[ew.len() - 63..]) * YEAR.sqrt(),
            drawdown_of(ew_path.into_iter()),
            std(&r21),
        ])
    }

    /// Turbulence (Kritzman and Li 2010): the Mahalanobis distance of the
    /// last 5 days' returns from the year before them, `(r − μ)ᵀ Σ⁻¹ (r − μ)`
    /// averaged over the 5 days and divided by the number of assets (about 1
    /// in calm markets). Σ gets a small ridge so it always inverts.
    pub fn turbulence(&self, d: usize) -> f64 {
        let n = self.assets();
        let hist: Vec<&Vec<f64>> = (d - 251..=d - 5).map(|t| &self.returns[t]).collect();
        let mu: Vec<f64> = (0..n)
            .map(|i| hist.iter().map(|r| r[i]).sum::<f64>() / hist.len() as f64)
            .collect();
        let mut cov = vec![0.0; n * n];
        for r in &hist {
            for i in 0..n {
                let a = r[i] - mu[i];
                for j in 0..=i {
                    cov[i * n + j] += a * (r[j] - mu[j]);
                }
            }
        }
        let denom = (hist.len() - 1) as f64;
        let mut trace = 0.0;
        for i in 0..n {
            for j in 0..=i {
                cov[i * n + j] /= denom;
                cov[j * n + i] = cov[i * n + j];
            }
            trace += cov[i * n + i];
        }
        for i in 0..n {
            cov[i * n + i] += 1e-6 * trace / n as f64;
        }
        let Some(l) = cholesky(&cov, n) else {
            return 0.0;
        };
        let mut total = 0.0;
        for t in d - 4..=d {
            let x: Vec<f64> = (0..n).map(|i| self.returns[t][i] - mu[i]).collect();
            let z = forward_substitute(&l, n, &x);
            total += dot(&z, &z);
        }
        total / 5.0 / n as f64
    }

    /// [`BASE_FEATURES`] but `turnover` of a portfolio `w` at day `d`,
    /// from its assets' features.
    pub fn base_features(
        &self,
        w: &[f64],
        assets: &[[f64; 7]],
        d: usize,
        esg: &EsgInputs,
    ) -> [f64; STATIC_BASE_FEATURES] {
        let through = |k: usize| w.iter().zip(assets).map(|(a, f)| a * f[k]).sum::<f64>();
        let daily = self.portfolio_returns(w, d, 252);
        let recent = &daily[daily.len() - 63..];
        let mut wealth = 1.0;
        let path = daily.iter().map(|r| {
            wealth *= 1.0 + r;
            wealth
        });
        [
            through(1),
            through(2),
            through(3),
            std(recent) * YEAR.sqrt(),
            downside(recent),
            drawdown_of(path),
            esg.esg_slack(w),
            esg.carbon_slack(w),
        ]
    }
}

/// Lower Cholesky factor of a symmetric positive definite `n × n`
/// row-major matrix, or `None` when it is not.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let v = a[i * n + i] - s;
                if v <= 0.0 || !v.is_finite() {
                    return None;
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `L z = x`.
pub fn forward_substitute(l: &[f64], n: usize, x: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * z[k]).sum();
        z[i] = (x[i] - s) / l[i * n + i];
    }
    z
}

/// Solves `A x = b` given `A`'s Cholesky factor `L`.
pub fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let z = forward_substitute(l, n, b);
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (z[i] - s) / l[i * n + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(days: usize, n: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut rng = crate::SplitMix64::new(3);
        let mut prices = vec![vec![100.0; n]];
        let mut returns = vec![vec![0.0; n]];
        for _ in 1..days {
            let common = 0.01 * (rng.next_f64() - 0.5);
            let r: Vec<f64> = (0..n)
                .map(|i| common + 0.02 * (rng.next_f64() - 0.5) + 0.0002 * i as f64)
                .collect();
            let p: Vec<f64> = prices
                .last()
                .unwrap()
                .iter()
                .zip(&r)
                .map(|(p, r)| p * (1.0 + r))
                .collect();
            prices.push(p);
            returns.push(r);
        }
        (prices, returns)
    }

    #[test]
    fn asset_features_match_their_definitions() {
        let (prices, returns) = history(400, 3);
        let h = History {
            prices: &prices,
            returns: &returns,
        };
        let d = 399;
        let f = h.asset_features(d).unwrap();
        let i = 1;
        assert!((f[i][3] - (prices[d][i] / prices[d - 252][i] - 1.0)).abs() < 1e-15);
        let daily: Vec<f64> = (d - 62..=d).map(|t| returns[t][i]).collect();
        let m = daily.iter().sum::<f64>() / 63.0;
        let var = daily.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 62.0;
        assert!((f[i][4] - (var * 252.0).sqrt()).abs() < 1e-12);
        let peak = (d - 251..=d).map(|t| prices[t][i]).fold(f64::MIN, f64::max);
        assert!((f[i][6] - (prices[d][i] / peak - 1.0)).abs() < 1e-15);
        assert!(f[i][6] <= 0.0);
        assert!(h.asset_features(100).is_err(), "too little history");
    }

    #[test]
    fn a_single_asset_portfolio_has_the_assets_features() {
        let (prices, returns) = history(300, 4);
        let h = History {
            prices: &prices,
            returns: &returns,
        };
        let d = 299;
        let a = h.asset_features(d).unwrap();
        let esg = EsgInputs {
            esg_score: vec![50.0, 70.0, 60.0, 40.0],
            carbon_intensity: vec![100.0, 50.0, 200.0, 10.0],
            min_esg_score: Some(55.0),
            max_carbon_intensity: Some(150.0),
        };
        let w = [0.0, 1.0, 0.0, 0.0];
        let b = h.base_features(&w, &a, d, &esg);
        assert!((b[0] - a[1][1]).abs() < 1e-15);
        assert!((b[3] - a[1][4]).abs() < 1e-12);
        assert!((b[4] - a[1][5]).abs() < 1e-12);
        // Fixed weights of one asset: the drawdown of its price path.
        assert!((b[5] - a[1][6]).abs() < 1e-9);
        assert!((b[6] - 0.15).abs() < 1e-12);
        assert!((b[7] - 100.0 / 150.0).abs() < 1e-12);
    }

    #[test]
    fn turbulence_is_about_one_in_a_calm_stationary_market() {
        let (prices, returns) = history(600, 5);
        let h = History {
            prices: &prices,
            returns: &returns,
        };
        let t: f64 = (400..600).map(|d| h.turbulence(d)).sum::<f64>() / 200.0;
        assert!((0.6..1.6).contains(&t), "mean turbulence {t}");
        let m = h.market_features(599).unwrap();
        assert!(m[0] > 0.0 && m[0] < 1.0, "correlation {}", m[0]);
    }

    #[test]
    fn cholesky_solves() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let x = cholesky_solve(&l, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let r: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((r - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
