//! The catalogue on the embedded log with its services running: shipped
//! products on a fresh data dir, idempotent apply, refresh by events (the
//! cache never answers with the old version after), quality tiers that
//! drop when a producer stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use ultracore_es::{Database, EventStore, StoreOptions};
use ultracore_log::{EventLog, NewRecord};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_mesh::service::{quality_service, refresh_service};
use ultracore_mesh::{CacheOptions, Catalogue, ProductQuery, SearchQuery, Tier};
use ultracore_runtime::{Registry, Supervisor, SupervisorOptions};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn open(
    dir: &std::path::Path,
) -> Result<(EmbeddedLog, Arc<Catalogue<EmbeddedLog>>), Box<dyn std::error::Error + Send + Sync>> {
    let log = EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default())?;
    let store = EventStore::new(
        log.clone(),
        Database::open(dir, None)?,
        StoreOptions::default(),
    )?;
    let catalogue = Catalogue::open(store, CacheOptions::default(), &Registry::new()).await?;
    Ok((log, Arc::new(catalogue)))
}

async fn wait_for(
    what: &str,
    limit: Duration,
    mut ok: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("timed out after {limit:?} waiting for {what}"))
}

fn optimization(id: &str, status: &str) -> NewRecord {
    let value = json!({
        "event_id": format!("e-{id}-{status}"),
        "event_type": "portfolio_optimization_completed",
        "aggregate_id": id,
        "timestamp": "2026-12-06T00:00:00Z",
        "payload": {"request_id": id, "status": status, "requested_at": "2026-12-06T00:00:00Z",
                    "sharpe": 1.25}
    });
    NewRecord::new(id, serde_json::to_vec(&value).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_dir_has_the_shipped_products_and_apply_is_idempotent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, catalogue) = open(dir.path()).await?;
    let ids: Vec<String> = catalogue.products().into_iter().map(|p| p.def.id).collect();
    assert!(
        ids.contains(&"optimizations".to_owned()) && ids.len() >= 6,
        "{ids:?}"
    );
    let found = catalogue.search(&SearchQuery {
        text: "portfollio".into(),
        limit: 5,
        ..Default::default()
    })?;
    assert_eq!(found.hits[0].id, "optimizations", "{found:?}");

    let shipped = ultracore_mesh::spec::shipped();
    let again = catalogue.apply(shipped.clone()).await?;
    assert!(again.registered.is_empty() && again.updated.is_empty());
    assert_eq!(again.unchanged.len(), shipped.len());

    let before = catalogue.version("optimizations").unwrap();
    let mut changed = shipped
        .into_iter()
        .find(|p| p.id == "optimizations")
        .unwrap();
    changed
        .description
        .push_str(" Includes rebalancing proposals.");
    let report = catalogue.apply(vec![changed]).await?;
    assert_eq!(report.updated, ["optimizations"]);
    assert_eq!(catalogue.version("optimizations"), Some(before + 1));
    let found = catalogue.search(&SearchQuery {
        text: "rebalancing".into(),
        limit: 5,
        ..Default::default()
    })?;
    assert_eq!(found.hits.len(), 1, "the update is searchable at once");

    // Reopened, the catalogue is what the log holds: nothing registered twice.
    drop((log, catalogue));
    let (_log, reopened) = open(dir.path()).await?;
    assert_eq!(reopened.version("optimizations"), Some(before + 1));
    assert_eq!(reopened.products().len(), ids.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_events_make_old_answers_unreachable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, catalogue) = open(dir.path()).await?;
    ultracore_runtime::catalogue::ensure(&log, &["esg-portfolio-events"]).await?;
    let mut sup = Supervisor::new(Registry::new(), SupervisorOptions::default());
    sup.add(refresh_service(catalogue.clone(), log.clone()));
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));

    log.append(
        "esg-portfolio-events",
        vec![optimization("r-1", "completed")],
    )
    .await?;
    // (Rows alone can come from the start's rebuild, before any refresh.)
    wait_for("the first refresh", Duration::from_secs(10), || {
        catalogue
            .product("optimizations")
            .is_some_and(|p| p.rows == 1 && p.refreshes == 1)
    })
    .await?;
    let q = ProductQuery::default();
    for round in 0..5 {
        let (old, _) = catalogue.query("optimizations", q.clone())?;
        let (again, hit) = catalogue.query("optimizations", q.clone())?;
        assert!(hit, "the second read is cached");
        assert_eq!(again.version, old.version);

        let id = format!("r-{}", round + 2);
        log.append("esg-portfolio-events", vec![optimization(&id, "completed")])
            .await?;
        let took = wait_for("the refresh", Duration::from_secs(5), || {
            catalogue.version("optimizations") > Some(old.version)
        })
        .await?;
        assert!(took < Duration::from_secs(1), "refresh took {took:?}");
        for _ in 0..1000 {
            let (a, _) = catalogue.query("optimizations", q.clone())?;
            assert!(
                a.version > old.version,
                "an answer of the old version after the refresh"
            );
            assert_eq!(a.rows.len(), round + 2);
        }
    }
    let p = catalogue.product("optimizations").unwrap();
    assert_eq!(p.refreshes, 6);
    token.cancel();
    running.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_producer_drops_the_tier_within_an_interval_and_a_second() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, catalogue) = open(dir.path()).await?;
    let mut def = ultracore_mesh::spec::shipped()
        .into_iter()
        .find(|p| p.id == "optimizations")
        .unwrap();
    def.contract.freshness_secs = 5;
    catalogue.apply(vec![def]).await?;
    ultracore_runtime::catalogue::ensure(&log, &["esg-portfolio-events"]).await?;
    let interval = Duration::from_millis(500);
    let mut sup = Supervisor::new(Registry::new(), SupervisorOptions::default());
    sup.add(refresh_service(catalogue.clone(), log.clone()));
    sup.add(quality_service(catalogue.clone(), interval));
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));

    // The producer runs: gold.
    let mut last = Instant::now();
    for i in 0..10 {
        log.append(
            "esg-portfolio-events",
            vec![optimization(&format!("r-{i}"), "completed")],
        )
        .await?;
        last = Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for("gold", Duration::from_secs(5), || {
        catalogue.product("optimizations").and_then(|p| p.tier) == Some(Tier::Gold)
    })
    .await?;
    // It stops: the contract is broken 5 s after its last event.
    wait_for("silver", Duration::from_secs(10), || {
        catalogue.product("optimizations").and_then(|p| p.tier) == Some(Tier::Silver)
    })
    .await?;
    let late = last.elapsed().saturating_sub(Duration::from_secs(5));
    assert!(
        late <= interval + Duration::from_secs(1),
        "the tier dropped {late:?} after the SLO was missed"
    );
    // The tier change is a facet within a second of its event.
    wait_for("the silver facet", Duration::from_secs(1), || {
        catalogue
            .search(&SearchQuery {
                tier: Some(Tier::Silver),
                limit: 10,
                ..Default::default()
            })
            .is_ok_and(|r| r.hits.iter().any(|h| h.id == "optimizations"))
    })
    .await?;
    token.cancel();
    running.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_rebuilt_from_the_topics_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let (log, _catalogue) = open(dir.path()).await?;
        ultracore_runtime::catalogue::ensure(&log, &["esg-portfolio-events"]).await?;
        let records = (0..3)
            .map(|i| optimization(&format!("r-{i}"), "completed"))
            .collect();
        log.append("esg-portfolio-events", records).await?;
    }
    // A new process: no refresh has happened, the rows come from the topic.
    let (log, catalogue) = open(dir.path()).await?;
    assert_eq!(catalogue.product("optimizations").map(|p| p.rows), Some(0));
    let mut sup = Supervisor::new(Registry::new(), SupervisorOptions::default());
    sup.add(refresh_service(catalogue.clone(), log.clone()));
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    wait_for("the rows", Duration::from_secs(10), || {
        catalogue
            .product("optimizations")
            .is_some_and(|p| p.rows == 3)
    })
    .await?;
    let (answer, _) = catalogue.query("optimizations", ProductQuery::default())?;
    assert_eq!(answer.rows.len(), 3);
    token.cancel();
    running.await??;
    Ok(())
}
