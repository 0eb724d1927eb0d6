//! The crate's one error type.

/// Everything that can go wrong in portfolio math.
///
/// Input problems (bad data, bad parameters), infeasible requests (a target
/// no portfolio can meet) and solver failures are separate variants so a
/// caller can map them to different responses (422 versus 500, say).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// Too few rows for the requested computation.
    #[error(
        "need at least {needed} {what}, got {got}; load more history or widen the lookback window"
    )]
    TooFewObservations {
        /// What was counted ("price rows", "returns").
        what: &'static str,
        /// Minimum required.
        needed: usize,
        /// What was supplied.
        got: usize,
    },
    /// A NaN or infinite input value.
    #[error("{what} at row {row}, column {column} is {value}, not a finite number; drop or fill it before computing")]
    NonFinite {
        /// Which input ("price", "expected return", "covariance", …).
        what: &'static str,
        /// Row index (0 for vectors).
        row: usize,
        /// Column index.
        column: usize,
        /// The offending value.
        value: f64,
    },
    /// A price that is zero or negative, so no simple return exists.
    #[error(
        "price at row {row}, column {column} is {value}; returns need strictly positive prices"
    )]
    NonPositivePrice {
        /// Row index.
        row: usize,
        /// Column index.
        column: usize,
        /// The offending value.
        value: f64,
    },
    /// Two inputs that must agree in size do not.
    #[error("{what} has {got} entries, expected {expected}")]
    DimensionMismatch {
        /// Which input.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Actual size.
        got: usize,
    },
    /// A parameter outside its domain.
    #[error("invalid {name} {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Supplied value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
        /// The optimization constraint or objective parameter it is, if it
        /// is one (not, say, a span of an estimator).
        constraint: Option<Constraint>,
    },
    /// The efficient-risk target is below the least volatile feasible portfolio.
    #[error("target volatility {target:.4} is below the minimum achievable {min:.4}")]
    TargetVolatilityTooLow {
        /// Requested volatility.
        target: f64,
        /// Volatility of the minimum-volatility portfolio under the same constraints.
        min: f64,
    },
    /// The efficient-return target is above the best feasible return.
    #[error("target return {target:.4} is above the maximum achievable {max:.4}")]
    TargetReturnTooHigh {
        /// Requested return.
        target: f64,
        /// Return of the maximum-return portfolio under the same constraints.
        max: f64,
    },
    /// Max Sharpe needs an asset that beats the risk-free rate.
    #[error("max Sharpe needs an asset whose expected return exceeds the risk-free rate {risk_free_rate:.4}; the highest is {max_return:.4}")]
    NoAssetAboveRiskFree {
        /// The risk-free rate used.
        risk_free_rate: f64,
        /// The largest expected return.
        max_return: f64,
    },
    /// Bounds and group constraints admit no fully invested portfolio.
    #[error("the constraints admit no fully invested portfolio: {reason}")]
    InfeasibleConstraints {
        /// The constraint at fault; when several conflict, the first the
        /// reason names.
        constraint: Constraint,
        /// What is contradictory.
        reason: String,
    },
    /// The solver stopped without a solution.
    #[error("the solver stopped with status {status} after {iterations} iterations")]
    Solver {
        /// Clarabel's status, as text.
        status: String,
        /// Iterations run.
        iterations: u32,
    },
    /// The solver rejected the problem before running.
    #[error("the solver rejected the problem: {0}")]
    SolverSetup(String),
}

impl Error {
    /// The constraint or objective parameter this error is about, if it is
    /// about one: what a caller points at as the input to change, without
    /// reading the message.
    pub fn constraint(&self) -> Option<Constraint> {
        match self {
            Error::InfeasibleConstraints { constraint, .. } => Some(*constraint),
            Error::InvalidParameter { constraint, .. } => *constraint,
            Error::TargetVolatilityTooLow { .. } => Some(Constraint::TargetVolatility),
            Error::TargetReturnTooHigh { .. } => Some(Constraint::TargetReturn),
            Error::NoAssetAboveRiskFree { .. } => Some(Constraint::RiskFreeRate),
            Error::TooFewObservations { .. }
            | Error::NonFinite { .. }
            | Error::NonPositivePrice { .. }
            | Error::DimensionMismatch { .. }
            | Error::Solver { .. }
            | Error::SolverSetup(_) => None,
        }
    }
}

/// A constraint or objective parameter of an optimization, as named by the
/// errors about it ([`Error::constraint`]). Deliberately exhaustive: a
/// caller mapping these to its own input fields should have to decide
/// about a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// Bounds of each asset's weight.
    WeightBounds,
    /// Bounds of a sector's (group's) total weight.
    SectorBounds,
    /// Assets, sectors or flagged issuers held at zero.
    Exclusions,
    /// The weight bounds, sector bounds and exclusions taken together: none
    /// of them alone is at fault.
    Bounds,
    /// The minimum weighted ESG score.
    MinEsgScore,
    /// The maximum weighted carbon intensity.
    MaxCarbonIntensity,
    /// The maximum turnover against the current weights.
    MaxTurnover,
    /// The linear transaction cost.
    TransactionCost,
    /// The minimum trade size.
    MinTradeWeight,
    /// The objective's target volatility.
    TargetVolatility,
    /// The objective's target return.
    TargetReturn,
    /// The risk-free rate (max Sharpe needs a return above it).
    RiskFreeRate,
    /// The objective's risk aversion.
    RiskAversion,
    /// The objective's weight of the ESG score.
    EsgWeight,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
