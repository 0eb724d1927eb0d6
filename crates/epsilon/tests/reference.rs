//! Two legs of the backtest against an independent computation: raw 1/N
//! and the minimum-variance base, over the test years (2000 to the end of
//! the shipped S&P 500 prices) at 10 bp.
//!
//! The pinned values were printed by
//!
//! ```text
//! ~/.cache/ultracore/benchvenv/bin/python tools/reference_epsilon.py
//! ```
//!
//! which rebuilds the weekly decision dates, the drifted-weight turnover and
//! the figures with numpy, the Ledoit-Wolf covariance with scikit-learn
//! (checked there against PyPortfolioOpt) and each minimum-variance
//! portfolio with cvxpy + CLARABEL, reading the ESG records and constraints
//! from `models/epsilon.json` (whose data hash it checks against the CSV).
//! Here the steps come from the crate itself (`train::build_steps`), the
//! paths from `train::fixed_path` and the figures from `backtest::figures`,
//! as `backtest::run` computes them.

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use ultracore_epsilon::app::{default_constraints, esg_inputs, universe};
use ultracore_epsilon::backtest::{figures, Figures};
use ultracore_epsilon::base::Universe;
use ultracore_epsilon::data::Panel;
use ultracore_epsilon::train::{build_steps, fixed_path, Step};
use ultracore_epsilon::Result;

const COST: f64 = 0.001;
const FIRST_TEST_YEAR: i32 = 2000;

// Printed by tools/reference_epsilon.py (see the module docs).
const TEST_STEPS: usize = 1198;
const FIRST_STEP: &str = "2000-01-07";
const LAST_STEP: &str = "2022-12-16";
const TICKERS: [&str; 20] = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT",
    "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
];

/// Raw 1/N: weeks, violations (every week: it holds the flagged issuers),
/// then the other figures in [`named`] order.
const EQUAL_WEIGHT: (usize, usize, [f64; 11]) = (
    1198,
    1198,
    [
        0.12781211418854466,  // cagr
        0.1823668995474578,   // volatility
        0.7518784162831947,   // sharpe
        0.642209391643143,    // sharpe_rf2
        1.103043554682011,    // sortino
        -0.47981754336721105, // max_drawdown
        0.2663764923883333,   // calmar
        1.317738398557052,    // turnover
        19.999999999999996,   // effective_n
        62.83,                // esg_score
        127.93000000000006,   // carbon_intensity
    ],
);

/// The minimum-variance base, likewise.
const MIN_VARIANCE: (usize, usize, [f64; 11]) = (
    1198,
    0,
    [
        0.08296290109293092, // cagr
        0.14485321850627295, // volatility
        0.6243024712909221,  // sharpe
        0.4862316696460562,  // sharpe_rf2
        0.8557267315648394,  // sortino
        -0.3655690006358888, // max_drawdown
        0.22694183847268543, // calmar
        1.4365331522544051,  // turnover
        6.443714080277522,   // effective_n
        60.979560165356006,  // esg_score
        91.67283600094,      // carbon_intensity
    ],
);

/// Minimum-variance weights (the CSV's ticker order) on the first test
/// step, in the 2008 crisis and in 2022.
const MIN_VARIANCE_WEIGHTS: [(&str, [f64; 20]); 3] = [
    (
        "2000-01-07",
        [
            0.0,                  // AAPL
            0.007336486870150233, // AMD
            0.035175223347235336, // BAC
            0.02853226705430614,  // BBY
            0.04043717897731787,  // CVX
            0.03671604702403047,  // GE
            0.04733700673878629,  // HD
            0.0,                  // JNJ
            0.0,                  // JPM
            0.11477425403489223,  // KO
            0.0,                  // LLY
            0.11334041284698333,  // MRK
            0.08825025701134279,  // MSFT
            0.07951134185342076,  // PEP
            0.0,                  // PFE
            0.11876287772573023,  // PG
            0.006825729481322763, // RRC
            0.07744664744805385,  // UNH
            0.033973384408205395, // WMT
            0.17158088517822503,  // XOM
        ],
    ),
    (
        "2008-10-10",
        [
            0.0,                   // AAPL
            0.0,                   // AMD
            0.0,                   // BAC
            0.0,                   // BBY
            0.009317999233534048,  // CVX
            0.0,                   // GE
            0.0,                   // HD
            0.0,                   // JNJ
            0.0,                   // JPM
            0.20777917819214764,   // KO
            0.0,                   // LLY
            0.049548906646987086,  // MRK
            0.02507382932966955,   // MSFT
            0.25,                  // PEP
            0.0,                   // PFE
            0.25,                  // PG
            0.027564758306898574,  // RRC
            0.0009971556763445158, // UNH
            0.1754108272337062,    // WMT
            0.00430734538071218,   // XOM
        ],
    ),
    (
        "2022-06-17",
        [
            0.0,                   // AAPL
            0.0008452246845314926, // AMD
            0.0,                   // BAC
            0.0,                   // BBY
            0.0,                   // CVX
            0.0,                   // GE
            0.02543735171382183,   // HD
            0.0,                   // JNJ
            0.0,                   // JPM
            0.20984058933057026,   // KO
            0.0,                   // LLY
            0.25,                  // MRK
            0.0022264239834938115, // MSFT
            0.0,                   // PEP
            0.0,                   // PFE
            0.19781089782742187,   // PG
            0.003849350883424654,  // RRC
            0.0,                   // UNH
            0.25,                  // WMT
            0.05999016157673557,   // XOM
        ],
    ),
];

/// Raw 1/N is plain arithmetic on the same prices: the two sides differ
/// only in summation order (observed: 3e-14 relative at most).
const EQUAL_WEIGHT_RTOL: f64 = 1e-10;
/// The minimum-variance weights come from two different methods, the
/// crate's dual active-set solver and an interior point (CLARABEL at 1e-10)
/// that the script polishes on its active set until the KKT conditions
/// certify it. They agree to rounding, but only through that polish: the
/// interior point alone is off by up to 1.5e-5 on nearly degenerate weeks.
/// So the figures, built from 1,199 such portfolios, are held to 1e-6
/// relative and the weights to 1e-6 absolute (observed: 3e-13 and, over
/// every test week, 9e-13), which leaves room for another correct solver
/// but not for another window, covariance, constraint or cost: one day
/// less of returns in the window moves these weights by up to 8e-4 and the
/// figures by 1e-5 to 1e-3 relative; 15 bp instead of 10 moves the Sharpe
/// ratio by 8e-3 relative.
const MIN_VARIANCE_RTOL: f64 = 1e-6;
const WEIGHT_ATOL: f64 = 1e-6;

struct Fixture {
    universe: Universe,
    steps: Vec<Step>,
}

/// The shipped prices' steps under the default constraints, built once for
/// every test in this file (the bases take a while in a debug build).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| build().expect("the shipped prices give steps"))
}

fn build() -> Result<Fixture> {
    let prices =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/sp500_prices.csv");
    let panel = Panel::read(&prices)?;
    let universe = universe(&panel, default_constraints(panel.assets()), 0.02);
    let steps = build_steps(&panel, &universe, &esg_inputs(&universe), |_, _| {})?;
    Ok(Fixture { universe, steps })
}

fn test_steps(f: &Fixture) -> Vec<&Step> {
    f.steps
        .iter()
        .filter(|s| s.date.year() >= FIRST_TEST_YEAR)
        .collect()
}

/// The figures compared with a tolerance, in the order of the pinned arrays.
fn named(f: &Figures) -> [(&'static str, f64); 11] {
    [
        ("cagr", f.cagr),
        ("volatility", f.volatility),
        ("sharpe", f.sharpe),
        ("sharpe_rf2", f.sharpe_rf2),
        ("sortino", f.sortino),
        ("max_drawdown", f.max_drawdown),
        ("calmar", f.calmar),
        ("turnover", f.turnover),
        ("effective_n", f.effective_n),
        ("esg_score", f.esg_score),
        ("carbon_intensity", f.carbon_intensity),
    ]
}

/// Every figure off by more than `rtol` relative, in words.
fn compare(
    leg: &str,
    got: &Figures,
    (weeks, violations, want): (usize, usize, [f64; 11]),
    rtol: f64,
) -> Vec<String> {
    let mut bad = Vec::new();
    if got.weeks != weeks {
        bad.push(format!("{leg}.weeks: {} vs pinned {weeks}", got.weeks));
    }
    if got.violations != violations {
        bad.push(format!(
            "{leg}.violations: {} vs pinned {violations}",
            got.violations
        ));
    }
    for ((name, g), w) in named(got).into_iter().zip(want) {
        let rel = (g - w).abs() / w.abs();
        // NaN fails too.
        if rel.is_nan() || rel > rtol {
            bad.push(format!(
                "{leg}.{name}: {g:e} vs pinned {w:e} (relative {rel:.1e})"
            ));
        }
    }
    bad
}

/// A fixed-weight leg's figures over the test steps, as `backtest::run`
/// computes them.
fn leg(f: &Fixture, weights_of: impl FnMut(&Step) -> Vec<f64>) -> Figures {
    let test = test_steps(f);
    let path = fixed_path(&test, weights_of);
    figures(&path, 0..test.len(), COST, &f.universe)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a pinned date is YYYY-MM-DD")
}

#[test]
fn the_test_steps_and_tickers_are_the_references() {
    let f = fixture();
    assert_eq!(f.universe.data.names, TICKERS);
    let test = test_steps(f);
    assert_eq!(test.len(), TEST_STEPS);
    assert_eq!(test[0].date, date(FIRST_STEP));
    assert_eq!(test[test.len() - 1].date, date(LAST_STEP));
}

#[test]
fn raw_equal_weight_matches_the_reference() {
    let f = fixture();
    let n = f.universe.assets();
    let got = leg(f, |_| vec![1.0 / n as f64; n]);
    let bad = compare("equal_weight", &got, EQUAL_WEIGHT, EQUAL_WEIGHT_RTOL);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn minimum_variance_matches_the_reference() {
    let f = fixture();
    let got = leg(f, |s| s.bases[1].clone());
    let bad = compare("min_variance", &got, MIN_VARIANCE, MIN_VARIANCE_RTOL);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn minimum_variance_weights_match_the_reference() {
    let f = fixture();
    let mut bad = Vec::new();
    for (day, want) in MIN_VARIANCE_WEIGHTS {
        let step = f
            .steps
            .iter()
            .find(|s| s.date == date(day))
            .unwrap_or_else(|| panic!("no step on {day}"));
        for ((name, g), w) in f.universe.data.names.iter().zip(&step.bases[1]).zip(want) {
            let off = (g - w).abs();
            if off.is_nan() || off > WEIGHT_ATOL {
                bad.push(format!("{day} {name}: {g:e} vs pinned {w:e}"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
