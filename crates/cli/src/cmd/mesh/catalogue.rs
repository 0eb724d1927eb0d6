//! `ultracore mesh apply | products | search | lineage`: the data mesh
//! catalogue on this data directory. `apply` writes (the data directory
//! must not be in use by a running server: POST /api/v1/mesh/products
//! there); the others read beside one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use ultracore_es::{EventStore, StoreOptions};
use ultracore_log::Error as LogError;
use ultracore_log_any::{Access, AnyLog};
use ultracore_mesh::{Catalogue, SearchQuery, Tier};

use crate::output::table;
use crate::LogArgs;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A products file: `products:`, a list of products (see
    /// crates/mesh/products/shipped.yaml).
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProductsArgs {
    #[arg(long)]
    pub domain: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words; typos are forgiven in long words and the last word may be a prefix.
    pub query: String,
    #[arg(long)]
    pub domain: Option<String>,
    /// gold, silver or bronze.
    #[arg(long)]
    pub tier: Option<String>,
    /// Only products with this tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// `{hits: [{id, name, domain, score}], total, facets: {domain, tier, tags}}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The product id.
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

/// The catalogue of the data directory: written to when the directory is
/// free (a fresh one gets the shipped products), read beside a server
/// otherwise.
async fn open(args: &LogArgs, write: bool) -> Result<Catalogue<AnyLog>> {
    let config = args.config();
    let (log, read_only) = match AnyLog::open(&config, Access::Write).await {
        Err(LogError::Locked { .. }) if write => anyhow::bail!(
            "the data directory {} is in use by a running server: stop it, or send the products to the server (POST /api/v1/mesh/products with an admin key)",
            config.data_dir().display()
        ),
        Err(LogError::Locked { .. }) => (AnyLog::open(&config, Access::ReadOnly).await?, true),
        other => (other?, false),
    };
    let db = crate::cmd::serve::open_database(&config)?;
    let store = EventStore::new(log, db, StoreOptions::default())?;
    let catalogue = if read_only {
        Catalogue::open_read_only(store).await
    } else {
        Catalogue::open(
            store,
            Default::default(),
            &ultracore_metrics::Registry::new(),
        )
        .await
    };
    let catalogue = catalogue.context("opening the data mesh catalogue")?;
    // The Parquet products, answered (and dated) by their files, as the
    // server does.
    if let Ok(mesh) = ultracore_marketdata::mesh::DataMesh::open(config.data_dir().join("mesh")) {
        catalogue.set_source(
            "financial_prices",
            Arc::new(crate::mesh_sources::Prices(mesh.clone())),
        );
        catalogue.set_source("esg_scores", Arc::new(crate::mesh_sources::Esg(mesh)));
    }
    Ok(catalogue)
}

pub async fn apply(args: &LogArgs, a: ApplyArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let defs = ultracore_mesh::spec::parse(&text, ultracore_runtime::catalogue::is_known)
        .with_context(|| format!("{} is not a products file", a.file.display()))?;
    let catalogue = open(args, true).await?;
    let report = catalogue.apply(defs).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut rows = Vec::new();
    for (what, ids) in [
        ("registered", &report.registered),
        ("updated", &report.updated),
        ("unchanged", &report.unchanged),
    ] {
        for id in ids {
            let version = catalogue.version(id).unwrap_or(0);
            rows.push(vec![id.clone(), what.to_owned(), version.to_string()]);
        }
    }
    print!("{}", table(&["product", "applied", ">version"], &rows));
    Ok(())
}

pub async fn products(args: &LogArgs, a: ProductsArgs) -> Result<()> {
    let catalogue = open(args, false).await?;
    let products: Vec<_> = catalogue
        .products()
        .into_iter()
        .filter(|p| a.domain.as_ref().is_none_or(|d| *d == p.def.domain))
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "products": products }))?
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = products
        .iter()
        .map(|p| {
            vec![
                p.def.id.clone(),
                p.def.name.clone(),
                p.def.domain.clone(),
                // Graded now (the stored tier is the last the quality
                // service saw, which may have been before the last refresh).
                catalogue
                    .quality_now(&p.def.id, ultracore_log::now_millis())
                    .map(|q| q.tier.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.data_version.to_string(),
                p.refreshes.to_string(),
                p.def.owner.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "id",
                "name",
                "domain",
                "tier",
                ">version",
                ">refreshes",
                "owner"
            ],
            &rows
        )
    );
    Ok(())
}

pub async fn search(args: &LogArgs, a: SearchArgs) -> Result<()> {
    let tier = a
        .tier
        .as_deref()
        .map(|t| {
            Tier::parse(t).with_context(|| format!("--tier {t:?}: use gold, silver or bronze"))
        })
        .transpose()?;
    if !(1..=100).contains(&a.limit) {
        anyhow::bail!("--limit {}: use 1 to 100", a.limit);
    }
    let catalogue = open(args, false).await?;
    let r = catalogue.search(&SearchQuery {
        text: a.query,
        domain: a.domain,
        tier,
        tags: a.tags,
        limit: a.limit,
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = r
        .hits
        .iter()
        .map(|h| {
            vec![
                h.id.clone(),
                h.name.clone(),
                h.domain.clone(),
                format!("{:.2}", h.score),
            ]
        })
        .collect();
    print!("{}", table(&["id", "name", "domain", ">score"], &rows));
    let facet = |name: &str, counts: &std::collections::BTreeMap<String, u64>| {
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "{name}: {}",
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(", ")
            }
        )
    };
    println!("{} of {} matching", r.hits.len(), r.total);
    println!("{}", facet("domain", &r.facets.domain));
    println!("{}", facet("tier", &r.facets.tier));
    println!("{}", facet("tags", &r.facets.tags));
    Ok(())
}

/// When an edge was seen. (Record counts are as each process first
/// published the edge; the server's own API shows them live.)
fn seen(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub async fn lineage(args: &LogArgs, a: LineageArgs) -> Result<()> {
    let catalogue = open(args, false).await?;
    let recorded = ultracore_runtime::lineage::read_lineage(
        catalogue.store().log(),
        tokio::time::Instant::now() + Duration::from_secs(30),
    )
    .await?;
    let catalogue = Arc::new(catalogue.with_lineage(recorded.lineage));
    let view = catalogue.product_lineage(&a.id).with_context(|| {
        format!(
            "no data product '{}'; list them with `ultracore mesh products`",
            a.id
        )
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!(
        "{} (version {}), change feeds: {}",
        view.product_id,
        view.version,
        view.topics.join(", ")
    );
    let rows: Vec<Vec<String>> = view
        .producers
        .iter()
        .map(|p| {
            vec![
                p.service.clone(),
                p.topic.clone(),
                seen(p.first_seen_ms),
                p.reads.join(", "),
            ]
        })
        .collect();
    println!(
        "\nproduced by\n{}",
        table(&["service", "writes", "since", "reads"], &rows)
    );
    println!(
        "upstream topics: {}",
        if view.upstream_topics.is_empty() {
            "-".into()
        } else {
            view.upstream_topics.join(", ")
        }
    );
    let rows: Vec<Vec<String>> = view
        .downstream
        .iter()
        .map(|d| {
            vec![
                d.group.clone(),
                d.service.clone(),
                d.topic.clone(),
                seen(d.last_seen_ms),
            ]
        })
        .collect();
    println!(
        "\nread by\n{}",
        table(&["group", "service", "topic", "seen"], &rows)
    );
    match &view.last_refresh {
        Some(r) => println!(
            "last refresh: {} from {} event(s), e.g. {}",
            chrono::DateTime::from_timestamp_millis(r.at_ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            r.causes.len(),
            r.causes
                .first()
                .map(|c| format!("{}[{}]@{}", c.topic, c.partition, c.offset))
                .unwrap_or_default()
        ),
        None => println!("last refresh: none yet"),
    }
    Ok(())
}
