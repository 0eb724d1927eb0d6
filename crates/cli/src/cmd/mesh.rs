//! `ultracore mesh build | show | apply | products | search | lineage`:
//! the data mesh's data products and their catalogue.

mod catalogue;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use ultracore_marketdata::mesh::{build_products, DataMesh, PriceFilter};
use ultracore_marketdata::read_prices_file;

use crate::output::table;

#[derive(Debug, Subcommand)]
pub enum MeshCommand {
    /// Register or update data products from a YAML file (idempotent:
    /// applying the same file again changes nothing).
    ///
    /// Example: ultracore mesh apply crates/mesh/products/shipped.yaml
    Apply(catalogue::ApplyArgs),
    /// The registered data products with their tier and version.
    ///
    /// Example: ultracore mesh products --domain markets
    Products(catalogue::ProductsArgs),
    /// Search the catalogue: names (boosted), descriptions and tags, typos
    /// forgiven, facets by domain, tier and tag.
    ///
    /// Example: ultracore mesh search portfollio --domain wealth --json
    Search(catalogue::SearchArgs),
    /// A product's lineage as the running system recorded it: who writes
    /// its topics and what they read, which groups read it, what caused
    /// its last refresh.
    ///
    /// Example: ultracore mesh lineage optimizations
    Lineage(catalogue::LineageArgs),
    /// Build financial_data_product.parquet and esg_data_product.parquet
    /// (the ESG data is synthetic: generated, labelled so in the file).
    ///
    /// Example: ultracore mesh build --prices sample-data/sp500_prices.csv --prices sample-data/factor_etf_prices.csv --out data/mesh
    Build {
        /// Price files (any layout `--prices` accepts elsewhere); repeat for several.
        #[arg(long = "prices", required = true)]
        prices: Vec<PathBuf>,
        /// Directory for the two products.
        #[arg(long, default_value = "data/mesh")]
        out: PathBuf,
    },
    /// Print the ESG product and what a filtered price read touches.
    ///
    /// Example: ultracore mesh show --dir data/mesh --isin ZZMSFT000005 --from 2021-01-01
    Show {
        #[arg(long, default_value = "data/mesh")]
        dir: PathBuf,
        /// Only these ISINs (repeat or comma-separate).
        #[arg(long = "isin", value_delimiter = ',')]
        isins: Vec<String>,
        /// Only prices on or after this date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: &crate::LogArgs, command: MeshCommand) -> Result<()> {
    match command {
        MeshCommand::Apply(a) => catalogue::apply(args, a).await,
        MeshCommand::Products(a) => catalogue::products(args, a).await,
        MeshCommand::Search(a) => catalogue::search(args, a).await,
        MeshCommand::Lineage(a) => catalogue::lineage(args, a).await,
        MeshCommand::Build { prices, out } => {
            let mut series = Vec::new();
            for p in &prices {
                series.extend(
                    read_prices_file(p, None)
                        .with_context(|| format!("reading prices from {}", p.display()))?,
                );
            }
            let s = build_products(&series, &out)?;
            println!(
                "{}: {} price rows of {} instruments in {} row groups",
                s.financial.display(),
                s.price_rows,
                s.tickers,
                s.row_groups
            );
            println!(
                "{}: {} issuers (SYNTHETIC ESG data, labelled so in the file; replace with your vendor's)",
                s.esg.display(),
                s.tickers
            );
            Ok(())
        }
        MeshCommand::Show {
            dir,
            isins,
            from,
            json,
        } => {
            let mesh = DataMesh::open(&dir)?;
            let set: Option<BTreeSet<String>> =
                (!isins.is_empty()).then(|| isins.into_iter().collect());
            let esg = mesh.esg(set.as_ref())?;
            let (prices, stats) = mesh.prices(&PriceFilter { isins: set, from })?;
            let synthetic = mesh.esg_is_synthetic()?;
            if json {
                let series: Vec<_> = prices
                    .iter()
                    .map(|(isin, s)| {
                        serde_json::json!({"isin": isin, "ticker": s.ticker, "rows": s.bars.len(),
                            "first": s.first_date(), "last": s.last_date()})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"esg": esg, "esg_synthetic": synthetic, "prices": series, "scan": stats})
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = esg
                .iter()
                .map(|r| {
                    vec![
                        r.isin.clone(),
                        r.ticker.clone(),
                        r.sector.clone(),
                        format!("{:.1}", r.esg_score),
                        format!("{:.1}", r.carbon_intensity),
                        if r.controversy_flag {
                            "yes".into()
                        } else {
                            "".into()
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["isin", "ticker", "sector", ">esg", ">carbon", "controversy"],
                    &rows
                )
            );
            if synthetic {
                println!(
                    "(ESG data is SYNTHETIC: generated for the sample universe, not vendor data)"
                );
            }
            println!(
                "prices: {} series, {} rows; read {} of {} row groups ({} rows scanned)",
                prices.len(),
                stats.rows_returned,
                stats.row_groups_read,
                stats.row_groups,
                stats.rows_read
            );
            Ok(())
        }
    }
}
