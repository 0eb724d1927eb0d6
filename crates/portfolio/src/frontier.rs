//! Points along the efficient frontier, for plots and tables.

use crate::{EfficientFrontier, OptimizedPortfolio, Result};

/// One point of the frontier.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FrontierPoint {
    /// Annualised volatility.
    pub volatility: f64,
    /// Annualised expected return.
    pub expected_return: f64,
}

/// The frontier between the minimum-volatility and maximum-return portfolios.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Frontier {
    /// Points in increasing return order.
    pub points: Vec<FrontierPoint>,
    /// The minimum-volatility portfolio (first point).
    pub min_volatility: OptimizedPortfolio,
    /// The maximum-return portfolio (last point).
    pub max_return: OptimizedPortfolio,
}

/// The target returns of a frontier of `points` points between the
/// returns `lo` and `hi` of its ends: the `points − 2` evenly spaced
/// between them.
pub fn frontier_targets(lo: f64, hi: f64, points: usize) -> Vec<f64> {
    let points = points.max(2);
    (1..points - 1)
        .map(|i| lo + (hi - lo) * i as f64 / (points - 1) as f64)
        .collect()
}

impl EfficientFrontier {
    /// `points` portfolios (at least 2) with target returns evenly spaced
    /// from the minimum-volatility portfolio's return to the maximum
    /// achievable return, each solved as efficient-return under the same
    /// bounds, groups and penalty.
    ///
    /// One call sweeps them all: the points are split into runs, one per
    /// core, and within a run each point of a large universe starts its
    /// working set from the assets that held weight at the point before.
    pub fn frontier(&self, points: usize) -> Result<Frontier> {
        let points = points.max(2);
        let min_volatility = self.min_volatility()?;
        let max_return = self.max_return()?;
        let lo = min_volatility.expected_return;
        let hi = max_return.expected_return;
        let targets = frontier_targets(lo, hi, points);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, targets.len().max(1));
        let run = targets.len().div_ceil(threads).max(1);
        let sweep = |targets: &[f64]| -> Result<Vec<FrontierPoint>> {
            let mut warm = Vec::new();
            targets
                .iter()
                .map(|&target| {
                    let (p, support) = self.efficient_return_from(target, &warm)?;
                    warm = support;
                    Ok(FrontierPoint {
                        volatility: p.volatility,
                        expected_return: p.expected_return,
                    })
                })
                .collect()
        };
        let runs: Vec<Result<Vec<FrontierPoint>>> = if threads > 1 {
            std::thread::scope(|s| {
                let handles: Vec<_> = targets
                    .chunks(run)
                    .map(|chunk| s.spawn(move || sweep(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        } else {
            vec![sweep(&targets)]
        };
        let mut out = Vec::with_capacity(points);
        out.push(FrontierPoint {
            volatility: min_volatility.volatility,
            expected_return: lo,
        });
        for r in runs {
            out.extend(r?);
        }
        out.push(FrontierPoint {
            volatility: max_return.volatility,
            expected_return: hi,
        });
        Ok(Frontier {
            points: out,
            min_volatility,
            max_return,
        })
    }
}
