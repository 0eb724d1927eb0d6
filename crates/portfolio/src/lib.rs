//! Portfolio math for UltraCore: returns, risk metrics, expected-return and
//! covariance estimators, and mean-variance optimization.
//!
//! Pure computation: no I/O, no async, no Arrow. Inputs are dense
//! [`Matrix`] values (prices or returns `observations × assets`, one column
//! per asset) and plain vectors; the data layer (`ultracore-marketdata`)
//! loads and aligns prices. Definitions follow the libraries quants already
//! check against — empyrical for metrics, PyPortfolioOpt 1.6 (and
//! scikit-learn for Ledoit-Wolf) for estimators and optimization — and the
//! tests pin values computed with them on the shipped sample data
//! (`tools/reference_portfolio.py`).
//!
//! Everything is annualised with 252 periods a year.
//!
//! # Layout
//!
//! - [`matrix`](Matrix): the dense row-major matrix used for data exchange.
//! - `returns`: simple returns from prices, portfolio returns.
//! - `metrics`: empyrical metrics (CAGR, volatility, Sharpe, Sortino, max
//!   drawdown, Calmar, VaR, CVaR, beta) and the correlation matrix.
//! - `expected_returns`: mean historical (compounded, arithmetic), EMA, CAPM.
//! - `covariance`: sample, Ledoit-Wolf (constant variance), exponentially
//!   weighted.
//! - `optimizer`: [`EfficientFrontier`] with clarabel — min volatility, max
//!   Sharpe, efficient risk, efficient return, max quadratic utility; bounds,
//!   group bounds, L2 penalty.
//!   `optimizer::esg`: [`EsgOptimizer`], rebalancing a current portfolio
//!   under ESG score, carbon, exclusion, sector, turnover and cost constraints.
//! - `frontier`: points along the efficient frontier.
//! - `plot`: an SVG chart of the frontier.
//! - [`bench`]: timing entry points for `ultracore bench optimize`.
//! - `error`: [`Error`] and [`Result`].
//!
//! # Example
//!
//! ```
//! use ultracore_portfolio::{
//!     mean_historical_return, returns_from_prices, sample_cov, EfficientFrontier, Matrix,
//!     Objective,
//! };
//! let prices = Matrix::from_rows(&[
//!     vec![10.0, 20.0, 30.0],
//!     vec![10.5, 19.0, 30.3],
//!     vec![10.2, 19.9, 30.9],
//!     vec![10.9, 20.4, 30.6],
//!     vec![11.1, 20.1, 31.2],
//! ])?;
//! let returns = returns_from_prices(&prices)?;
//! let ef = EfficientFrontier::new(mean_historical_return(&returns, true)?, sample_cov(&returns)?)?;
//! let p = ef.optimize(Objective::MinVolatility)?;
//! assert!((p.weights.iter().sum::<f64>() - 1.0).abs() < 1e-8);
//! # Ok::<(), ultracore_portfolio::Error>(())
//! ```

pub mod bench;
mod covariance;
mod error;
mod expected_returns;
mod frontier;
mod matrix;
mod metrics;
mod optimizer;
mod plot;
mod returns;

pub use covariance::{
    estimate_covariance, exp_cov, ledoit_wolf, sample_cov, CovarianceMethod, DEFAULT_COV_SPAN,
};
pub use error::{Constraint, Error, Result};
pub use expected_returns::{
    capm_return, ema_historical_return, estimate_expected_returns, mean_historical_return,
    ExpectedReturnsMethod, DEFAULT_EMA_SPAN,
};
pub use frontier::{frontier_targets, Frontier, FrontierPoint};
pub use matrix::Matrix;
pub use metrics::{
    annual_return, annual_volatility, beta, calmar_ratio, conditional_value_at_risk,
    correlation_matrix, downside_risk, max_drawdown, risk_metrics, risk_metrics_per_asset,
    sharpe_ratio, sortino_ratio, value_at_risk, MetricsConfig, RiskMetrics, PERIODS_PER_YEAR,
};
pub use optimizer::{
    EfficientFrontier, EsgConstraints, EsgData, EsgObjective, EsgOptimizer, EsgRebalance,
    GroupBounds, Objective, OptimizedPortfolio, PortfolioFigures, SectorBound, SolverSettings,
    WeightChange,
};
pub use plot::{frontier_svg, PlotInput};
pub use returns::{equal_weight_returns, portfolio_returns, returns_from_prices};
