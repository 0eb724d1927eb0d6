//! `ultracore risk | correlation | optimize | etf import`: portfolio
//! analytics on price files, with no event log needed. When a log is
//! configured, each command also publishes what it read and computed
//! (`price_data_queried`, `risk_metrics_calculated`, `portfolio_optimized`)
//! without waiting for the log. `etf import --publish` also puts the
//! imported closes on `external.market.data` (`market_prices_published`),
//! waiting until they are on the log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use ultracore_events::external::MARKET_DATA_TOPIC;
use ultracore_log::Error as LogError;
use ultracore_log_any::{Access, AnyLog};
use ultracore_marketdata::{DataProvider, ImportSummary, Lookback, PriceMatrix};
use ultracore_portfolio::{
    correlation_matrix, estimate_covariance, estimate_expected_returns, frontier_svg,
    returns_from_prices, risk_metrics_per_asset, CovarianceMethod, EfficientFrontier,
    ExpectedReturnsMethod, FrontierPoint, Matrix, MetricsConfig, Objective, PlotInput,
    DEFAULT_COV_SPAN, DEFAULT_EMA_SPAN,
};

use ultracore_events::portfolio::{self, AssetRisk, PortfolioEvent};
use ultracore_events::query::{self, PriceDataQueried, QueryEvent};

use crate::emit::{elapsed_ms, Emitter};
use crate::output::table;
use crate::LogArgs;

/// Prices as read for one command, with the id of the event that recorded the read.
struct Loaded {
    prices: PriceMatrix,
    returns: Matrix,
    query_event: Option<uuid::Uuid>,
}

impl Loaded {
    fn start(&self) -> chrono::NaiveDate {
        self.prices.dates[0]
    }
    fn end(&self) -> chrono::NaiveDate {
        self.prices.dates[self.prices.dates.len() - 1]
    }
}

/// Where prices come from and which part of them to use.
#[derive(Debug, Args)]
pub struct PriceArgs {
    /// A price file (wide CSV, long CSV/Parquet, Yahoo CSV) or a directory with etf/historical/TICKER.parquet.
    #[arg(long)]
    prices: PathBuf,
    /// Comma-separated tickers (default: all in the file).
    #[arg(long, value_delimiter = ',')]
    tickers: Vec<String>,
    /// Use only the last N years of prices (default: all).
    #[arg(long)]
    lookback_years: Option<f64>,
}

impl PriceArgs {
    fn source(&self) -> String {
        self.prices.display().to_string()
    }

    fn load(&self, extra: Option<&str>, emitter: &Emitter) -> Result<Loaded> {
        let started = Instant::now();
        let provider = DataProvider::open(&self.prices)
            .with_context(|| format!("reading prices from {}", self.prices.display()))?;
        let mut tickers = self.tickers.clone();
        if let (Some(t), false) = (extra, tickers.is_empty()) {
            if !tickers.iter().any(|x| x == t) {
                tickers.push(t.to_owned());
            }
        }
        let lookback = self.lookback_years.map_or(Lookback::All, Lookback::Years);
        let prices = provider.price_matrix(&tickers, lookback, 3)?;
        let returns = returns_from_prices(&Matrix::from_row_major(
            prices.dates.len(),
            prices.tickers.len(),
            prices.values.clone(),
        )?)?;
        let query_event = emitter.emit(
            query::TOPIC,
            (query::AGGREGATE_TYPE, &self.source()),
            None,
            QueryEvent::PriceDataQueried(PriceDataQueried {
                source: self.source(),
                requested: tickers,
                tickers: prices.tickers.clone(),
                lookback_years: self.lookback_years,
                start: prices.dates[0],
                end: prices.dates[prices.dates.len() - 1],
                rows: prices.dates.len(),
                duration_ms: elapsed_ms(started),
            }),
        );
        Ok(Loaded {
            prices,
            returns,
            query_event,
        })
    }
}

#[derive(Debug, Args)]
pub struct RiskArgs {
    #[command(flatten)]
    prices: PriceArgs,
    /// Ticker to compute each asset's beta against (it must be in the price data).
    #[arg(long)]
    benchmark: Option<String>,
    /// Annual risk-free rate for Sharpe and Sortino.
    #[arg(long, default_value_t = 0.0)]
    risk_free_rate: f64,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CorrelationArgs {
    #[command(flatten)]
    prices: PriceArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ObjectiveArg {
    MinVolatility,
    MaxSharpe,
    EfficientRisk,
    EfficientReturn,
    MaxUtility,
}

impl ObjectiveArg {
    fn event_name(self) -> &'static str {
        match self {
            ObjectiveArg::MinVolatility => "min_volatility",
            ObjectiveArg::MaxSharpe => "max_sharpe",
            ObjectiveArg::EfficientRisk => "efficient_risk",
            ObjectiveArg::EfficientReturn => "efficient_return",
            ObjectiveArg::MaxUtility => "max_quadratic_utility",
        }
    }
}

/// The name clap accepts for a value, as recorded in events.
fn value_name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_owned())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReturnsArg {
    /// Compounded mean (CAGR), PyPortfolioOpt's default.
    Mean,
    MeanArithmetic,
    Ema,
    Capm,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CovarianceArg {
    Sample,
    LedoitWolf,
    Exp,
}

impl ReturnsArg {
    fn name(self) -> String {
        value_name(self)
    }
}

impl CovarianceArg {
    fn name(self) -> String {
        value_name(self)
    }
}

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    prices: PriceArgs,
    #[arg(long, value_enum)]
    objective: ObjectiveArg,
    /// Volatility budget for efficient-risk (annualised, e.g. 0.15).
    #[arg(long)]
    target_volatility: Option<f64>,
    /// Required return for efficient-return (annualised, e.g. 0.10).
    #[arg(long)]
    target_return: Option<f64>,
    /// Annual risk-free rate.
    #[arg(long, default_value_t = 0.02)]
    risk_free_rate: f64,
    /// Risk aversion for max-utility.
    #[arg(long, default_value_t = 1.0)]
    risk_aversion: f64,
    /// Bounds of every weight, LO,HI.
    #[arg(long, value_delimiter = ',', default_values_t = [0.0, 1.0])]
    weight_bounds: Vec<f64>,
    #[arg(long, value_enum, default_value = "mean")]
    expected_returns: ReturnsArg,
    #[arg(long, value_enum, default_value = "sample")]
    covariance: CovarianceArg,
    /// Draw the efficient frontier with this portfolio, the assets and the minimum-volatility point to an SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EtfCommand {
    /// Import price files into the DIR/etf/historical/TICKER.parquet layout.
    ///
    /// Example: ultracore etf import QUAL.csv --ticker QUAL --out data --publish
    Import {
        files: Vec<PathBuf>,
        /// Ticker of a single-ticker file (Yahoo export); default: from the file name.
        #[arg(long)]
        ticker: Option<String>,
        /// Root of the layout.
        #[arg(long, default_value = "data")]
        out: PathBuf,
        /// Also publish each imported series' closes on the event log as
        /// `market_prices_published` on `external.market.data` (source: the
        /// file name; at most 10,000 prices an event), where the
        /// market-data service merges them into the data mesh.
        #[arg(long)]
        publish: bool,
    },
}

pub async fn risk(log: &LogArgs, args: RiskArgs) -> Result<()> {
    let emitter = Emitter::start(log);
    let result = risk_with(&emitter, args);
    emitter.finish().await;
    result
}

fn risk_with(emitter: &Emitter, args: RiskArgs) -> Result<()> {
    let loaded = args.prices.load(args.benchmark.as_deref(), emitter)?;
    let (prices, returns) = (&loaded.prices, &loaded.returns);
    let benchmark = match &args.benchmark {
        Some(b) => {
            let i = prices
                .tickers
                .iter()
                .position(|t| t == b)
                .with_context(|| format!("benchmark {b} is not in the price data"))?;
            Some(returns.column(i))
        }
        None => None,
    };
    let config = MetricsConfig {
        risk_free_rate: args.risk_free_rate,
        ..MetricsConfig::default()
    };
    let metrics = risk_metrics_per_asset(returns, benchmark.as_deref(), &config)?;
    emitter.emit(
        portfolio::TOPIC,
        (portfolio::AGGREGATE_TYPE, &args.prices.source()),
        loaded.query_event,
        PortfolioEvent::RiskMetricsCalculated(portfolio::RiskMetricsCalculated {
            source: args.prices.source(),
            start: loaded.start(),
            end: loaded.end(),
            observations: returns.rows(),
            risk_free_rate: args.risk_free_rate,
            benchmark: args.benchmark.clone(),
            metrics: prices
                .tickers
                .iter()
                .zip(&metrics)
                .map(|(t, m)| {
                    let risk = AssetRisk {
                        cagr: m.cagr,
                        mean_return: m.mean_return,
                        volatility: m.volatility,
                        sharpe: m.sharpe,
                        sortino: m.sortino,
                        max_drawdown: m.max_drawdown,
                        calmar: m.calmar,
                        var_95: m.var_95,
                        cvar_95: m.cvar_95,
                        beta: m.beta,
                    };
                    (t.clone(), risk)
                })
                .collect(),
        }),
    );
    if args.json {
        let out: Map<String, Value> = prices
            .tickers
            .iter()
            .zip(&metrics)
            .map(|(t, m)| Ok((t.clone(), serde_json::to_value(m)?)))
            .collect::<Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = prices
        .tickers
        .iter()
        .zip(&metrics)
        .map(|(t, m)| {
            let mut row = vec![t.clone()];
            row.extend(
                [
                    m.cagr,
                    m.mean_return,
                    m.volatility,
                    m.sharpe,
                    m.sortino,
                    m.max_drawdown,
                    m.calmar,
                    m.var_95,
                    m.cvar_95,
                ]
                .map(|v| format!("{v:.4}")),
            );
            row.push(m.beta.map_or_else(|| "-".into(), |b| format!("{b:.3}")));
            row
        })
        .collect();
    println!(
        "{} daily prices, {} to {}",
        prices.dates.len(),
        prices.dates[0],
        prices.dates[prices.dates.len() - 1]
    );
    print!(
        "{}",
        table(
            &[
                "ticker",
                ">cagr",
                ">mean",
                ">volatility",
                ">sharpe",
                ">sortino",
                ">max_dd",
                ">calmar",
                ">var_95",
                ">cvar_95",
                ">beta"
            ],
            &rows
        )
    );
    Ok(())
}

pub async fn correlation(log: &LogArgs, args: CorrelationArgs) -> Result<()> {
    let emitter = Emitter::start(log);
    let result = correlation_with(&emitter, args);
    emitter.finish().await;
    result
}

fn correlation_with(emitter: &Emitter, args: CorrelationArgs) -> Result<()> {
    let loaded = args.prices.load(None, emitter)?;
    let (prices, returns) = (&loaded.prices, &loaded.returns);
    let corr = correlation_matrix(returns)?;
    let n = prices.tickers.len();
    if args.json {
        let out: Map<String, Value> = (0..n)
            .map(|i| {
                (
                    prices.tickers[i].clone(),
                    json!((0..n)
                        .map(|j| (prices.tickers[j].clone(), json!(corr.get(i, j))))
                        .collect::<Map<_, _>>()),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let mut header: Vec<String> = vec!["".into()];
    header.extend(prices.tickers.iter().map(|t| format!(">{t}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = (0..n)
        .map(|i| {
            std::iter::once(prices.tickers[i].clone())
                .chain((0..n).map(|j| format!("{:.3}", corr.get(i, j))))
                .collect()
        })
        .collect();
    print!("{}", table(&header, &rows));
    Ok(())
}

pub async fn optimize(log: &LogArgs, args: OptimizeArgs) -> Result<()> {
    let emitter = Emitter::start(log);
    let result = optimize_with(&emitter, args);
    emitter.finish().await;
    result
}

fn optimize_with(emitter: &Emitter, args: OptimizeArgs) -> Result<()> {
    let loaded = args.prices.load(None, emitter)?;
    let (prices, returns) = (&loaded.prices, &loaded.returns);
    let mu = estimate_expected_returns(
        returns,
        match args.expected_returns {
            ReturnsArg::Mean => ExpectedReturnsMethod::Mean,
            ReturnsArg::MeanArithmetic => ExpectedReturnsMethod::MeanArithmetic,
            ReturnsArg::Ema => ExpectedReturnsMethod::Ema {
                span: DEFAULT_EMA_SPAN,
            },
            ReturnsArg::Capm => ExpectedReturnsMethod::Capm {
                risk_free_rate: args.risk_free_rate,
            },
        },
        None,
    )?;
    let cov = estimate_covariance(
        returns,
        match args.covariance {
            CovarianceArg::Sample => CovarianceMethod::Sample,
            CovarianceArg::LedoitWolf => CovarianceMethod::LedoitWolf,
            CovarianceArg::Exp => CovarianceMethod::Exp {
                span: DEFAULT_COV_SPAN,
            },
        },
    )?;
    let objective = match args.objective {
        ObjectiveArg::MinVolatility => Objective::MinVolatility,
        ObjectiveArg::MaxSharpe => Objective::MaxSharpe,
        ObjectiveArg::EfficientRisk => Objective::EfficientRisk {
            target_volatility: args
                .target_volatility
                .context("--objective efficient-risk needs --target-volatility (e.g. 0.15)")?,
        },
        ObjectiveArg::EfficientReturn => Objective::EfficientReturn {
            target_return: args
                .target_return
                .context("--objective efficient-return needs --target-return (e.g. 0.10)")?,
        },
        ObjectiveArg::MaxUtility => Objective::MaxQuadraticUtility {
            risk_aversion: args.risk_aversion,
        },
    };
    let [lo, hi] = args.weight_bounds[..] else {
        bail!("--weight-bounds takes two numbers: LO,HI")
    };
    let asset_points: Vec<FrontierPoint> = (0..mu.len())
        .map(|i| FrontierPoint {
            volatility: cov.get(i, i).sqrt(),
            expected_return: mu[i],
        })
        .collect();
    let ef = EfficientFrontier::new(mu, cov)?
        .with_weight_bounds(lo, hi)?
        .with_risk_free_rate(args.risk_free_rate)?;
    let solve_started = Instant::now();
    let p = ef.optimize(objective)?;
    let solve_ms = elapsed_ms(solve_started);
    emitter.emit(
        portfolio::TOPIC,
        (portfolio::AGGREGATE_TYPE, &args.prices.source()),
        loaded.query_event,
        PortfolioEvent::PortfolioOptimized(portfolio::PortfolioOptimized {
            source: args.prices.source(),
            start: loaded.start(),
            end: loaded.end(),
            objective: args.objective.event_name().into(),
            target_volatility: args.target_volatility,
            target_return: args.target_return,
            risk_free_rate: args.risk_free_rate,
            weight_bounds: (lo, hi),
            expected_returns_method: args.expected_returns.name(),
            covariance_method: args.covariance.name(),
            weights: prices
                .tickers
                .iter()
                .cloned()
                .zip(p.weights.iter().copied())
                .collect(),
            expected_return: p.expected_return,
            volatility: p.volatility,
            sharpe: p.sharpe,
            solver_status: p.status.to_string(),
            iterations: p.iterations,
            solve_ms,
        }),
    );
    if let Some(path) = &args.plot {
        let frontier = ef.frontier(50)?;
        let label = format!("{:?}", args.objective).to_lowercase();
        let svg = frontier_svg(&PlotInput {
            frontier: &frontier,
            chosen: Some((
                &label,
                FrontierPoint {
                    volatility: p.volatility,
                    expected_return: p.expected_return,
                },
            )),
            asset_names: &prices.tickers,
            asset_points: &asset_points,
            title: "Efficient frontier",
        });
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let weights: Map<String, Value> = prices
            .tickers
            .iter()
            .zip(&p.weights)
            .map(|(t, w)| (t.clone(), json!(w)))
            .collect();
        println!(
            "{}",
            json!({"weights": weights, "expected_return": p.expected_return, "volatility": p.volatility, "sharpe": p.sharpe,
                   "status": p.status.to_string(), "iterations": p.iterations})
        );
        return Ok(());
    }
    let mut rows: Vec<(String, f64)> = prices
        .tickers
        .iter()
        .cloned()
        .zip(p.weights.iter().copied())
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|(_, w)| w.abs() > 1e-6)
        .map(|(t, w)| vec![t, format!("{:.2} %", w * 100.0)])
        .collect();
    print!("{}", table(&["ticker", ">weight"], &rows));
    println!(
        "\nexpected return {:.2} %, volatility {:.2} %, Sharpe {:.3}  (solver: {}, {} iterations)",
        p.expected_return * 100.0,
        p.volatility * 100.0,
        p.sharpe,
        p.status,
        p.iterations
    );
    if let Some(path) = &args.plot {
        println!("frontier plot written to {}", path.display());
    }
    Ok(())
}

pub async fn etf(log: &LogArgs, command: EtfCommand) -> Result<()> {
    match command {
        EtfCommand::Import {
            files,
            ticker,
            out,
            publish,
        } => {
            if files.is_empty() {
                bail!("name at least one file to import");
            }
            let summaries = ultracore_marketdata::import_files(&files, ticker.as_deref(), &out)?;
            let rows: Vec<Vec<String>> = summaries
                .iter()
                .map(|s| {
                    vec![
                        s.ticker.clone(),
                        s.rows.to_string(),
                        s.first_date.map_or_else(|| "-".into(), |d| d.to_string()),
                        s.path.display().to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["ticker", ">rows", "first_date", "file"], &rows)
            );
            if publish {
                publish_imported(log, &summaries)
                    .await
                    .context("the files are imported, but their prices were not published")?;
            }
            Ok(())
        }
    }
}

/// Publishes the series `etf import` wrote, as read back from their files.
async fn publish_imported(args: &LogArgs, imported: &[ImportSummary]) -> Result<()> {
    let mut events = Vec::new();
    for s in imported {
        let written = ultracore_marketdata::read_prices_file(&s.path, Some(&s.ticker))?;
        let source = source_name(&s.source);
        for series in written {
            events.extend(ultracore_flow::market_prices(
                &s.ticker,
                &source,
                series.bars.iter().map(|b| (b.date, b.close)),
            ));
        }
    }
    let config = args.config();
    let log = match AnyLog::open(&config, Access::Write).await {
        Err(LogError::Locked { .. }) => bail!(
            "the data directory {} is in use by a running server: stop it, or send the prices to the server's market-data endpoint",
            config.data_dir().display()
        ),
        other => other?,
    };
    let published = ultracore_flow::publish_prices(&log, events).await?;
    let prices: usize = published.iter().map(|p| p.prices).sum();
    println!(
        "published {} market_prices_published event(s), {prices} price(s), on {MARKET_DATA_TOPIC}",
        published.len()
    );
    Ok(())
}

/// An event's `source`: the file name, as an id the edge accepts (1 to 128
/// printable ASCII characters without spaces; others become `_`).
fn source_name(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(128)
        .collect();
    if id.is_empty() {
        "import".to_owned()
    } else {
        id
    }
}
