//! `ultracore bench mesh`: the data mesh catalogue on `--products` seeded
//! products (besides the shipped ones), on a fresh embedded log.
//!
//! 1. Search: `--searches` searches of one word (a third of them mistyped)
//!    with two facet filters (domain and tag, or domain and tier) on a warm
//!    searcher; p50/p95.
//! 2. Autocomplete: prefixes of 2–6 letters of the vocabulary; p50/p95.
//! 3. Query cache: `--queries` queries drawn Zipf(1.1) from 1,000 distinct
//!    queries over 20 products with rows; a refresh event every 1,000
//!    queries makes one product's answers stale. Hit rate, and p95 of the
//!    cached answers and of every answer.
//! 4. Refresh: `--refreshes` events on `esg-portfolio-events`, 20 ms
//!    apart, with the `mesh-refresh` service running: from the append's
//!    acknowledgement to the instant the new version is visible to a
//!    query; p50/p99/max.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use ultracore_log::{EventLog, NewRecord, Record};
use ultracore_mesh::{
    CacheOptions, Catalogue, Column, ColumnType, Contract, Filter, Op, OutputPort, PortKind,
    ProductDef, ProductQuery, SearchQuery, Tier,
};
use ultracore_runtime::{Registry, Supervisor, SupervisorOptions};
use ultracore_term::table;

use crate::Rng;

#[derive(Debug, Args)]
pub struct MeshBench {
    /// Seeded products registered besides the shipped ones.
    #[arg(long, default_value_t = 10_000)]
    products: usize,
    #[arg(long, default_value_t = 5_000)]
    searches: usize,
    #[arg(long, default_value_t = 50_000)]
    queries: usize,
    #[arg(long, default_value_t = 200)]
    refreshes: usize,
    #[arg(long)]
    json: bool,
}

const WORDS: &[&str] = &[
    "portfolio",
    "risk",
    "prices",
    "equity",
    "bond",
    "yield",
    "carbon",
    "emissions",
    "customer",
    "onboarding",
    "loan",
    "mortgage",
    "card",
    "payments",
    "ledger",
    "balance",
    "liquidity",
    "exposure",
    "volatility",
    "returns",
    "benchmark",
    "index",
    "holdings",
    "trades",
    "orders",
    "settlement",
    "compliance",
    "sanctions",
    "screening",
    "fraud",
    "alerts",
    "agents",
    "latency",
    "decisions",
    "model",
    "regime",
    "factor",
    "momentum",
    "value",
    "dividends",
    "fx",
    "rates",
    "treasury",
    "deposits",
    "credit",
    "scores",
    "esg",
    "governance",
    "climate",
    "daily",
];
const DOMAINS: &[&str] = &[
    "markets",
    "esg",
    "wealth",
    "customer",
    "agents",
    "trading",
    "compliance",
    "risk",
    "payments",
    "lending",
    "treasury",
    "operations",
];
const TAGS: &[&str] = &[
    "prices",
    "esg",
    "pii",
    "audit",
    "risk",
    "daily",
    "intraday",
    "reference",
    "derived",
    "regulatory",
    "gold-source",
    "experimental",
    "kpi",
    "features",
    "time-series",
    "events",
];

/// Products with rows, queried in phase 3.
const HOT: usize = 20;
const ROWS_PER_HOT: usize = 2_000;
const DISTINCT_QUERIES: usize = 1_000;

fn product(i: usize, rng: &mut Rng) -> ProductDef {
    let mut words = |n: usize| {
        (0..n)
            .map(|_| *rng.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let name = words(3);
    let description = words(20);
    let domain = DOMAINS[rng.below(DOMAINS.len())].to_owned();
    let mut tags: Vec<String> = (0..1 + rng.below(4))
        .map(|_| TAGS[rng.below(TAGS.len())].to_owned())
        .collect();
    tags.sort();
    tags.dedup();
    let id = format!("bench_{i:05}");
    ProductDef {
        output_ports: vec![OutputPort {
            kind: PortKind::Query,
            address: format!("/api/v1/mesh/products/{id}/query"),
        }],
        id,
        name,
        domain,
        owner: "Bench team".into(),
        description,
        tags,
        schema: vec![
            column("key", ColumnType::String, true),
            column("bucket", ColumnType::Integer, true),
            column("value", ColumnType::Float, false),
        ],
        contract: Contract {
            freshness_secs: 60,
            completeness: 0.99,
            schema_conformance: 1.0,
        },
        version: "1.0.0".into(),
        requires: vec![],
    }
}

fn column(name: &str, kind: ColumnType, required: bool) -> Column {
    Column {
        name: name.into(),
        kind,
        required,
        description: String::new(),
        source: vec![],
        mask: false,
    }
}

fn row_record(product: usize, row: usize, value: f64) -> Record {
    let body = json!({
        "event_id": format!("bench-{product}-{row}"),
        "payload": {"key": format!("k{row:05}"), "bucket": row % 50, "value": value}
    });
    Record {
        topic: "bench".into(),
        partition: 0,
        offset: row as u64,
        timestamp: 0,
        key: None,
        value: serde_json::to_vec(&body).unwrap_or_default(),
        headers: vec![],
    }
}

/// Ranks 0..n drawn with probability ∝ 1/(rank+1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e6
}

pub async fn run(b: MeshBench, seed: u64) -> Result<()> {
    if b.products < HOT || b.searches == 0 || b.queries == 0 || b.refreshes == 0 {
        bail!("--products must be at least {HOT}; --searches, --queries and --refreshes positive");
    }
    let say = |s: &str| {
        if !b.json {
            eprintln!("{s}");
        }
    };
    let (_scratch, log, store) = crate::scratch_store("ultracore-bench-mesh-")?;
    let catalogue =
        Arc::new(Catalogue::open(store, CacheOptions::default(), &Registry::new()).await?);
    let mut rng = Rng::new(seed);
    let defs: Vec<ProductDef> = (0..b.products).map(|i| product(i, &mut rng)).collect();
    let started = Instant::now();
    for (n, chunk) in defs.chunks(1_000).enumerate() {
        catalogue.apply(chunk.to_vec()).await?;
        say(&format!(
            "registered {} of {} products ({:.1} s)",
            n * 1_000 + chunk.len(),
            b.products,
            started.elapsed().as_secs_f64()
        ));
    }
    let register_s = started.elapsed().as_secs_f64();
    // Usage, so ranking has something to weigh.
    for _ in 0..b.products {
        let d = &defs[rng.below(defs.len())];
        catalogue.query(&d.id, ProductQuery::default())?;
    }

    // 1. Search: a word and two facet filters.
    let search_one = |rng: &mut Rng| -> Result<usize> {
        let mut word = (*rng.pick(WORDS)).to_owned();
        if rng.chance(1.0 / 3.0) && word.len() > 4 {
            word.remove(rng.below(word.len()));
        }
        let domain = Some(DOMAINS[rng.below(DOMAINS.len())].to_owned());
        let (tier, tags) = if rng.chance(0.5) {
            (None, vec![TAGS[rng.below(TAGS.len())].to_owned()])
        } else {
            (Some(Tier::Bronze), vec![])
        };
        let r = catalogue.search(&SearchQuery {
            text: word,
            domain,
            tier,
            tags,
            limit: 10,
        })?;
        Ok(r.total)
    };
    for _ in 0..200 {
        search_one(&mut rng)?;
    }
    let mut search = hist();
    let mut matched = 0usize;
    for _ in 0..b.searches {
        let t = Instant::now();
        matched += search_one(&mut rng)?;
        search.record(t.elapsed().as_nanos().max(1) as u64)?;
    }
    say(&format!("search: {} searches", b.searches));

    // 2. Autocomplete.
    let mut complete = hist();
    for i in 0..b.searches + 200 {
        let w = rng.pick(WORDS);
        let n = (2 + rng.below(5)).min(w.len());
        let t = Instant::now();
        catalogue.autocomplete(&w[..n], 8)?;
        if i >= 200 {
            complete.record(t.elapsed().as_nanos().max(1) as u64)?;
        }
    }

    // 3. The query cache under a Zipf(1.1) workload.
    for (p, d) in defs.iter().take(HOT).enumerate() {
        let records: Vec<Record> = (0..ROWS_PER_HOT)
            .map(|r| row_record(p, r, rng.next_f64()))
            .collect();
        let refs: Vec<&Record> = records.iter().collect();
        catalogue.refresh(&d.id, &refs).await?;
    }
    let distinct: Vec<(usize, ProductQuery)> = (0..DISTINCT_QUERIES)
        .map(|i| {
            let p = i % HOT;
            let bucket = (i / HOT) % 50;
            (
                p,
                ProductQuery {
                    filters: vec![
                        Filter {
                            column: "bucket".into(),
                            op: Op::Eq,
                            value: json!(bucket),
                        },
                        Filter {
                            column: "value".into(),
                            op: Op::Ge,
                            value: json!((i / (HOT * 50)) as f64 / 10.0),
                        },
                    ],
                    columns: vec!["key".into(), "value".into()],
                    limit: 100,
                },
            )
        })
        .collect();
    let zipf = Zipf::new(DISTINCT_QUERIES, 1.1);
    let stats0 = catalogue.cache().stats();
    let mut cached = hist();
    let mut every = hist();
    for i in 0..b.queries {
        if i > 0 && i % 1_000 == 0 {
            let p = rng.below(HOT);
            let r = row_record(p, rng.below(ROWS_PER_HOT), rng.next_f64());
            catalogue.refresh(&defs[p].id, &[&r]).await?;
        }
        let (p, q) = &distinct[zipf.draw(&mut rng)];
        let t = Instant::now();
        let (_, hit) = catalogue.query(&defs[*p].id, q.clone())?;
        let ns = t.elapsed().as_nanos().max(1) as u64;
        every.record(ns)?;
        if hit {
            cached.record(ns)?;
        }
    }
    let stats = catalogue.cache().stats();
    let hits = stats.hits - stats0.hits;
    let misses = stats.misses - stats0.misses;
    let hit_rate = hits as f64 / (hits + misses).max(1) as f64;
    say(&format!("query cache: {} queries", b.queries));

    // 4. Refresh event → new version visible.
    let mut sup = Supervisor::new(Registry::new(), SupervisorOptions::default());
    sup.add(ultracore_mesh::service::refresh_service(
        catalogue.clone(),
        log.clone(),
    ));
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    ultracore_runtime::catalogue::ensure(&log, &["esg-portfolio-events"]).await?;
    let wait_version = |above: u64| {
        let catalogue = catalogue.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let v = catalogue.version("optimizations").unwrap_or(0);
                if v > above {
                    return Ok(v);
                }
                if Instant::now() > deadline {
                    bail!("the refresh service did not refresh within 30 s");
                }
                tokio::task::yield_now().await;
            }
        }
    };
    let mut refresh = hist();
    let mut version = catalogue.version("optimizations").unwrap_or(0);
    for i in 0..b.refreshes + 5 {
        let value = json!({
            "event_id": format!("bench-refresh-{i}"),
            "payload": {"request_id": format!("r{i}"), "status": "completed",
                        "requested_at": "2026-12-06T00:00:00Z"}
        });
        log.append(
            "esg-portfolio-events",
            vec![NewRecord::new(format!("r{i}"), serde_json::to_vec(&value)?)],
        )
        .await?;
        let t = Instant::now();
        version = wait_version(version).await?;
        let (answer, _) = catalogue.query("optimizations", ProductQuery::default())?;
        if answer.version < version {
            bail!(
                "a query answered version {} after {version} was visible",
                answer.version
            );
        }
        if i >= 5 {
            refresh.record(t.elapsed().as_nanos().max(1) as u64)?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    running
        .await
        .context("the refresh service")?
        .map_err(|f| anyhow::anyhow!("{f}"))?;

    let report = json!({
        "products": b.products + ultracore_mesh::spec::shipped().len(),
        "register_seconds": register_s,
        "searches": b.searches,
        "search_matches_mean": matched as f64 / b.searches as f64,
        "search_p50_ms": ms(&search, 0.5),
        "search_p95_ms": ms(&search, 0.95),
        "autocomplete_p50_ms": ms(&complete, 0.5),
        "autocomplete_p95_ms": ms(&complete, 0.95),
        "queries": b.queries,
        "distinct_queries": DISTINCT_QUERIES,
        "cache_hit_rate": hit_rate,
        "cached_query_p50_ms": ms(&cached, 0.5),
        "cached_query_p95_ms": ms(&cached, 0.95),
        "query_p95_ms": ms(&every, 0.95),
        "refreshes": b.refreshes,
        "refresh_p50_ms": ms(&refresh, 0.5),
        "refresh_p99_ms": ms(&refresh, 0.99),
        "refresh_max_ms": ms(&refresh, 1.0),
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    let rows = vec![
        vec![
            "search p50 / p95 (word + 2 facets)".into(),
            format!("{:.3} / {:.3} ms", f("search_p50_ms"), f("search_p95_ms")),
            "p95 < 1 ms".into(),
        ],
        vec![
            "autocomplete p50 / p95".into(),
            format!(
                "{:.3} / {:.3} ms",
                f("autocomplete_p50_ms"),
                f("autocomplete_p95_ms")
            ),
            "p95 < 2 ms".into(),
        ],
        vec![
            "cached query p50 / p95".into(),
            format!(
                "{:.3} / {:.3} ms",
                f("cached_query_p50_ms"),
                f("cached_query_p95_ms")
            ),
            "p95 < 1 ms".into(),
        ],
        vec![
            "every query p95".into(),
            format!("{:.3} ms", f("query_p95_ms")),
            String::new(),
        ],
        vec![
            "cache hit rate (Zipf 1.1, 1,000 queries)".into(),
            format!("{:.1} %", 100.0 * f("cache_hit_rate")),
            "> 70 %".into(),
        ],
        vec![
            "refresh event → visible p50 / p99 / max".into(),
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                f("refresh_p50_ms"),
                f("refresh_p99_ms"),
                f("refresh_max_ms")
            ),
            "p99 < 1,000 ms".into(),
        ],
    ];
    println!(
        "data mesh catalogue: {} products (registered in {:.1} s)\n{}",
        report["products"],
        register_s,
        table(&["figure", ">measured", "goal"], &rows)
    );
    Ok(())
}
