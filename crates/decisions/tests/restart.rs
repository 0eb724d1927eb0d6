//! Regime history survives a restart: a new service on the same log knows
//! each symbol's last regime, so its first decision publishes a
//! `regime_change` exactly when the regime moved. On the embedded log
//! (reopened between runs) and on a Kafka-protocol broker when
//! `ULTRACORE_TEST_KAFKA` names one.

mod common;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use ultracore_decisions::{Decision, DecisionService, Regime, ServiceOptions};
use ultracore_events::trading::{RegimeChange, RegimeChangeEvent, REGIME_CHANGES_TOPIC};
use ultracore_log::{EventLog, EventLogExt, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_log_kafka::{KafkaConfig, KafkaLog};
use ultracore_spool::{BreakerConfig, EmitterOptions};

/// Starts a service on `log`, makes the decisions and shuts it down (so its
/// events are on the log before the next run starts).
async fn run<L: EventLog>(
    log: L,
    spool: &Path,
    options: ServiceOptions,
    requests: &[(&str, bool)],
) -> Result<(Vec<Decision>, Option<ultracore_decisions::RegimeHistory>), Box<dyn std::error::Error>>
{
    let service = DecisionService::start(common::engine(), log, spool, options).await?;
    let history = service.regime_history().cloned();
    let mut made = Vec::new();
    for (symbol, bullish) in requests {
        let features = if *bullish {
            common::bullish()
        } else {
            common::bearish()
        };
        made.push(service.decide(&common::request(symbol, features))?);
    }
    let stats = service.shutdown().await.ok_or("no emitter")?;
    assert_eq!(stats.delivered, stats.emitted, "{stats:?}");
    Ok((made, history))
}

/// The `regime_change` events on the log, oldest first per symbol.
async fn changes<L: EventLog>(log: &L) -> Result<Vec<RegimeChange>, Box<dyn std::error::Error>> {
    let n = log.describe_topic(REGIME_CHANGES_TOPIC).await?.records() as usize;
    let mut out = Vec::new();
    for e in common::read_envelopes(log, REGIME_CHANGES_TOPIC, n, Duration::from_secs(30)).await {
        let RegimeChangeEvent::RegimeChange(c) = e.typed::<RegimeChangeEvent>()?.payload;
        out.push(c);
    }
    assert_eq!(out.len(), n, "every change read back");
    out.sort_by_key(|c| (c.symbol.clone(), c.timestamp));
    Ok(out)
}

/// Three runs on one log, `open` giving a fresh handle each time (a restart):
///
/// 1. X bull; Z bull; W bull then bear (one change, W bull → bear).
/// 2. Without regime history (as before it existed): W bull, publishing no
///    change — so the latest word on W is a decision, later than its change.
/// 3. X bear → a change from X's bull of run 1; Z bull → none; W bull →
///    none (the latest decision, not the older change, is the truth).
async fn scenario<L, F, Fut>(open: F) -> common::TestResult
where
    L: EventLog,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<L, Box<dyn std::error::Error>>>,
{
    let spool = tempfile::tempdir()?;
    let (first, history) = run(
        open().await?,
        spool.path(),
        ServiceOptions::default(),
        &[("X", true), ("Z", true), ("W", true), ("W", false)],
    )
    .await?;
    assert_eq!(
        history.map(|h| h.symbols),
        Some(0),
        "a new log has no history"
    );
    assert_eq!(first[0].regime, Regime::Bull);
    assert_eq!(first[3].regime, Regime::Bear);

    let no_history = ServiceOptions {
        regime_history: None,
        ..ServiceOptions::default()
    };
    run(open().await?, spool.path(), no_history, &[("W", true)]).await?;

    let log = open().await?;
    let (third, history) = run(
        log.clone(),
        spool.path(),
        ServiceOptions::default(),
        &[("X", false), ("Z", true), ("W", true)],
    )
    .await?;
    let history = history.ok_or("no regime history report")?;
    assert_eq!(history.dropped, None, "{history:?}");
    assert_eq!(history.symbols, 3, "{history:?}");
    assert_eq!(history.regime_changes_read, 1, "{history:?}");
    assert_eq!(history.decisions_read, 5, "{history:?}");

    let changes = changes(&log).await?;
    let summary: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c.symbol.as_str(),
                c.previous_regime.as_str(),
                c.new_regime.as_str(),
            )
        })
        .collect();
    assert_eq!(summary, [("W", "bull", "bear"), ("X", "bull", "bear")]);
    let x = &changes[1];
    assert_eq!(
        x.decision_id.as_deref(),
        Some(third[0].decision.decision_id.as_str())
    );
    assert_eq!(x.previous_probs, first[0].decision.regime_probs);
    assert_eq!(x.new_probs, third[0].decision.regime_probs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regime_history_survives_a_restart_of_the_embedded_log() -> common::TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_owned();
    scenario(move || {
        let path = path.clone();
        async move { Ok(EmbeddedLog::open(&path, EmbeddedOptions::default())?) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regime_history_survives_a_restart_on_kafka() -> common::TestResult {
    let Ok(servers) = std::env::var("ULTRACORE_TEST_KAFKA") else {
        eprintln!("ULTRACORE_TEST_KAFKA is not set (scripts/test.sh sets it): skipped");
        return Ok(());
    };
    // Topics of this run's own, so the counts are exact.
    let prefix = format!("hist{}.", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let config = KafkaConfig::new(servers).with_prefix(prefix);
    let log = KafkaLog::connect(config.clone()).await?;
    for topic in ultracore_decisions::TOPICS {
        log.ensure_topic(&TopicSpec::new(topic, 3)).await?;
    }
    drop(log);
    scenario(move || {
        let config = config.clone();
        async move { Ok(KafkaLog::connect(config).await?) }
    })
    .await
}

/// A run whose log was down leaves its decisions in the spool; the next run
/// knows them before the spool is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regime_history_includes_what_is_still_in_the_spool() -> common::TestResult {
    let spool = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let down = KafkaLog::connect_lazy(
        KafkaConfig::new(format!("127.0.0.1:{port}"))
            .with_request_timeout(Duration::from_millis(500)),
    )?;
    let options = ServiceOptions {
        emitter: EmitterOptions {
            breaker: BreakerConfig {
                failure_threshold: 1,
                open_timeout: Duration::from_secs(60),
            },
            append_timeout: Duration::from_millis(200),
            ..EmitterOptions::default()
        },
        topic_timeout: Duration::from_millis(200),
        ..ServiceOptions::default()
    };
    let service =
        DecisionService::start(common::engine(), down, spool.path(), options.clone()).await?;
    let history = service.regime_history().cloned().ok_or("no report")?;
    assert!(
        history
            .dropped
            .as_deref()
            .is_some_and(|d| d.contains("did not answer")),
        "{history:?}"
    );
    let before = service.decide(&common::request("S", common::bullish()))?;
    let stats = service.shutdown().await.ok_or("no emitter")?;
    assert_eq!((stats.delivered, stats.spooled), (0, 2), "{stats:?}");

    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    let service = DecisionService::start(
        common::engine(),
        log.clone(),
        spool.path(),
        ServiceOptions::default(),
    )
    .await?;
    let history = service.regime_history().cloned().ok_or("no report")?;
    assert_eq!(
        (history.symbols, history.spooled_read),
        (1, 2),
        "{history:?}"
    );
    let after = service.decide(&common::request("S", common::bearish()))?;
    service.shutdown().await.ok_or("no emitter")?;
    let changes = changes(&log).await?;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (
            changes[0].previous_regime.as_str(),
            changes[0].new_regime.as_str()
        ),
        ("bull", "bear")
    );
    assert_eq!(changes[0].previous_probs, before.decision.regime_probs);
    assert_eq!(changes[0].new_probs, after.decision.regime_probs);
    Ok(())
}
