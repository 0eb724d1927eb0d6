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

impl EfficientFrontier {
    /// `points` portfolios (at least 2) with target returns evenly spaced
    /// from the minimum-volatility portfolio's return to the maximum
    /// achievable return, each solved as efficient-return under the same
    /// bounds, groups and penalty.
    pub fn frontier(&self, points: usize) -> Result<Frontier> {
        let points = points.max(2);
        let min_volatility = self.min_volatility()?;
        let max_return = self.max_return()?;
        let lo = min_volatility.expected_return;
        let hi = max_return.expected_return;
        let mut out = Vec::with_capacity(points);
        out.push(FrontierPoint {
            volatility: min_volatility.volatility,
            expected_return: lo,
        });
        for i in 1..points - 1 {
            let target = lo + (hi - lo) * i as f64 / (points - 1) as f64;
            let p = self.efficient_return(target)?;
            out.push(FrontierPoint {
                volatility: p.volatility,
                expected_return: p.expected_return,
            });
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
