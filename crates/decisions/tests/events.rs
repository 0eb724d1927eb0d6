//! Decisions publish their events on a real log: the embedded log in a temp
//! directory, and a Kafka-protocol broker when `ULTRACORE_TEST_KAFKA` names
//! one (scripts/test.sh starts it).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ultracore_decisions::{
    DecisionConfig, DecisionEngine, DecisionService, EvaluationSet, ServiceOptions, Specialists,
    StabilityBounds,
};
use ultracore_events::trading::{
    ContextSource, ModelUpdateEvent, RegimeChangeEvent, RiskDecisionEvent, RiskOutcome,
    TradingDecisionEvent, UpdateType, DECISIONS_TOPIC, MODEL_UPDATES_TOPIC, REGIME_CHANGES_TOPIC,
    RISK_DECISIONS_TOPIC,
};
use ultracore_log::{EventLog, EventLogExt, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

/// Three decisions (a bull baseline, a switch to bear, a risk rejection) and
/// a reload of a grown bull model, then every event read back from `target`.
async fn scenario<L: EventLog>(target: L, prefix: &str) -> common::TestResult {
    let spool = tempfile::tempdir()?;
    let short = tempfile::tempdir()?;
    common::models_with_short_bull(short.path(), 50)?;
    let engine = DecisionEngine::new(
        Specialists::load_dir(short.path())?,
        DecisionConfig::default(),
    )?;
    let old_version = engine.model_version().to_owned();
    let service = DecisionService::start(
        engine,
        target.clone(),
        spool.path(),
        ServiceOptions::default(),
    )
    .await?;
    let service = Arc::new(service);

    let symbol = format!("{prefix}AAPL");
    let asked = Instant::now();
    let first = service.decide(&common::request(&symbol, common::bullish()))?;
    let answered = asked.elapsed();
    let mut bear = common::request(&symbol, common::bearish());
    bear.correlation_id = Some("flow-7".into());
    let second = service.decide(&bear)?;
    let mut rejected = common::request(&format!("{prefix}MSFT"), common::bullish());
    rejected.portfolio.position_units = 20_000.0;
    let third = service.decide(&rejected)?;
    assert!(!third.approved);

    let shipped = Specialists::load_dir(common::models_dir())?;
    let set = EvaluationSet::load(
        common::models_dir().join("evaluation.csv"),
        shipped.feature_names(),
    )?;
    let updates = service.reload(shipped, &set, StabilityBounds::default())?;
    assert_eq!(updates.len(), 1, "only bull changed: {updates:?}");
    let u = &updates[0];
    assert_eq!(u.model_id, "bull");
    assert_eq!(
        u.update_type,
        UpdateType::Incremental,
        "50 trees grown to 100"
    );
    assert_eq!(
        u.previous_version,
        old_version.split('+').next().unwrap_or_default()
    );
    assert_ne!(u.previous_version, u.new_version);
    assert!(u.sharpe_before.is_finite() && u.sharpe_after.is_finite());
    let fourth = service.decide(&common::request(&symbol, common::bearish()))?;
    assert_ne!(fourth.decision.model_version, first.decision.model_version);
    assert_eq!(
        service
            .reload(
                Specialists::load_dir(common::models_dir())?,
                &set,
                StabilityBounds::default()
            )?
            .len(),
        0
    );

    let service = Arc::into_inner(service).ok_or("the service is shared")?;
    let stats = service.shutdown().await.ok_or("no emitter")?;
    assert_eq!(stats.emitted, 4 + 4 + 1 + 1, "{stats:?}");
    assert_eq!((stats.delivered, stats.spooled), (10, 0), "{stats:?}");

    let limit = Duration::from_secs(30);
    let decisions = common::read_envelopes(&target, DECISIONS_TOPIC, 4, limit).await;
    let mine: Vec<_> = decisions
        .into_iter()
        .filter(|e| e.aggregate_id.starts_with(prefix))
        .collect();
    assert_eq!(mine.len(), 4);
    // Partitions keep order per symbol only: match by decision id.
    let by_id = |id: &str| mine.iter().find(|e| e.event_id.to_string() == id);
    for made in [&first, &second, &third, &fourth] {
        let envelope = by_id(&made.decision.decision_id).ok_or("a decision is missing")?;
        assert_eq!(envelope.event_type, "trading_decision");
        assert_eq!(envelope.aggregate_type, "TradingDecision");
        assert_eq!(envelope.aggregate_id, made.decision.symbol);
        let typed = envelope.clone().typed::<TradingDecisionEvent>()?;
        let TradingDecisionEvent::TradingDecision(published) = typed.payload;
        assert_eq!(*published, made.decision);
        // Every published decision says how long it took to make.
        assert!(published.latency_us.is_some(), "{published:?}");
    }
    // Measured inside the call: positive (three tree ensembles are not
    // free) and at most what the caller saw.
    let latency = first.decision.latency_us.ok_or("no latency")?;
    assert!(
        latency > 0 && u128::from(latency) <= answered.as_micros(),
        "{latency} us decided, {answered:?} answered"
    );
    let correlation = |d: &ultracore_decisions::Decision| {
        by_id(&d.decision.decision_id).and_then(|e| e.correlation_id.clone())
    };
    assert_eq!(correlation(&second).as_deref(), Some("flow-7"));
    assert_eq!(
        correlation(&first),
        Some(first.decision.decision_id.clone())
    );

    let risks = common::read_envelopes(&target, RISK_DECISIONS_TOPIC, 4, limit).await;
    let risks: Vec<_> = risks
        .into_iter()
        .filter(|e| e.aggregate_id.starts_with(prefix))
        .collect();
    assert_eq!(risks.len(), 4);
    let rejected_risk = risks
        .iter()
        .find(|e| e.causation_id.map(|c| c.to_string()) == Some(third.decision.decision_id.clone()))
        .ok_or("no risk decision for the rejected decision")?;
    let RiskDecisionEvent::RiskDecision(r) =
        rejected_risk.clone().typed::<RiskDecisionEvent>()?.payload;
    assert_eq!(r.outcome, RiskOutcome::Rejected);
    assert_eq!(r.failed_checks, ["position_limit", "concentration"]);
    // The position and value it was checked against were the caller's word.
    assert_eq!(r.context_source, ContextSource::Caller);
    assert_eq!(third.context_source, ContextSource::Caller);

    let changes = common::read_envelopes(&target, REGIME_CHANGES_TOPIC, 1, limit).await;
    let changes: Vec<_> = changes
        .into_iter()
        .filter(|e| e.aggregate_id.starts_with(prefix))
        .collect();
    assert_eq!(
        changes.len(),
        1,
        "bull → bear once; the fourth decision stays bear"
    );
    let RegimeChangeEvent::RegimeChange(c) =
        changes[0].clone().typed::<RegimeChangeEvent>()?.payload;
    assert_eq!(
        (c.previous_regime.as_str(), c.new_regime.as_str()),
        ("bull", "bear")
    );
    assert_eq!(
        c.decision_id.as_deref(),
        Some(second.decision.decision_id.as_str())
    );
    assert_eq!(c.previous_probs, first.decision.regime_probs);

    let models = common::read_envelopes(&target, MODEL_UPDATES_TOPIC, 1, limit).await;
    let ours: Vec<_> = models
        .into_iter()
        .filter_map(|e| e.typed::<ModelUpdateEvent>().ok())
        .map(|e| {
            let ModelUpdateEvent::ModelUpdate(u) = e.payload;
            u
        })
        .filter(|m| m.previous_version == u.previous_version && m.timestamp == u.timestamp)
        .collect();
    assert_eq!(ours, std::slice::from_ref(u));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_on_the_embedded_log() -> common::TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    scenario(log, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_on_kafka() -> common::TestResult {
    let Ok(servers) = std::env::var("ULTRACORE_TEST_KAFKA") else {
        eprintln!("ULTRACORE_TEST_KAFKA is not set (scripts/test.sh sets it): skipped");
        return Ok(());
    };
    // A topic prefix of this run's own: other runs' decisions are not read.
    let topics = format!("dec{}.", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let log = ultracore_log_kafka::KafkaLog::connect(
        ultracore_log_kafka::KafkaConfig::new(servers)
            .with_prefix(topics)
            .with_connect_timeout(std::time::Duration::from_secs(30)),
    )
    .await?;
    for topic in ultracore_decisions::TOPICS {
        log.ensure_topic(&TopicSpec::new(topic, 3)).await?;
    }
    // Other runs share the broker's topics: this run's symbols carry a unique prefix.
    let prefix = format!("T{}-", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    scenario(log, &prefix).await
}
