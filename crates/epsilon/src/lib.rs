//! The Epsilon Agent: a learned ESG allocation policy, honestly backtested.
//!
//! The agent never proposes weights of its own. At every weekly decision
//! it mixes a few *base portfolios* that the convex optimizer solves under
//! the request's own ESG constraints — ESG-projected 1/N, minimum variance
//! with Ledoit-Wolf, maximum Sharpe with shrunk means, ESG-projected
//! inverse volatility. A convex combination of feasible points is
//! feasible, so whatever the network outputs, the portfolio satisfies
//! every convex constraint the bases satisfy.
//!
//! # Layout
//!
//! - `data`: the price panel, its hash, returns and weekly decision dates.
//! - `features`: point-in-time features of assets, the market and bases.
//! - `base`: the base portfolios, solved under the request's constraints.
//! - `policy`: the network (hand-written gradients) and Adam.
//! - `train`: steps, rollouts, the differential Sharpe ratio, training.
//! - `model`: walk-forward training and the model file.
//! - `backtest`: every strategy on the same dates, costs and constraints.
//! - `rng`: the one seeded generator (SplitMix64), bit-reproducible.
//! - `sharpe_test`: Ledoit and Wolf's (2008) test of a Sharpe ratio
//!   difference (studentised circular block bootstrap).
//! - `plot`: SVG equity curves and drawdowns.

pub mod agent;
pub mod app;
pub mod backtest;
pub mod base;
pub mod data;
pub mod features;
pub mod model;
pub mod plot;
pub mod policy;
pub mod rng;
pub mod sharpe_test;
pub mod train;

pub use agent::{Agent, Decision};
pub use rng::SplitMix64;

/// What can go wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("price data: {reason}")]
    Data { reason: String },
    #[error("model: {reason}")]
    Model { reason: String },
    #[error(transparent)]
    Portfolio(#[from] ultracore_portfolio::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
