//! The audit service on the real embedded log: every topic (created later
//! too, dead letters too, its own output not), one leaf sequence, signed
//! checkpoints on the topic and in the file, restarts that double nothing,
//! and a verification of the log against the trail.

use std::time::{Duration, Instant};

use ultracore_audit::{
    verify, AuditOptions, AuditService, Note, NoteVerifier, TrailSnapshot, CHECKPOINT_TOPIC,
};
use ultracore_log::{
    Consumer, ConsumerOptions, EventLog, NewRecord, RawEnvelope, Record, TopicSpec,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_runtime::{ConsumerConfig, Supervisor, SupervisorOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn options(dir: &std::path::Path) -> AuditOptions {
    let mut o = AuditOptions::new(dir);
    o.origin = Some("test.example/audit".into());
    o.checkpoint_records = 100;
    o.checkpoint_interval = Duration::from_millis(150);
    o.consumer = ConsumerConfig {
        poll_timeout_ms: 20,
        topic_refresh_ms: 50,
        lag_interval_ms: 50,
        ..ConsumerConfig::default()
    };
    o
}

async fn append(log: &EmbeddedLog, topic: &str, n: usize, tag: &str) -> TestResult {
    let records = (0..n)
        .map(|i| {
            NewRecord::new(
                format!("k{}", i % 7),
                format!(r#"{{"n":{i},"tag":"{tag}","principal":"key-{}"}}"#, i % 3),
            )
            .with_header("event_type", "test")
        })
        .collect();
    log.append(topic, records).await?;
    Ok(())
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs the service until the returned sender fires.
fn start(
    service: &AuditService,
    log: &EmbeddedLog,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), ultracore_runtime::Failure>>,
) {
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    sup.add(service.registration(log.clone()));
    let token = sup.token();
    (
        token.clone(),
        tokio::spawn(sup.run(token.cancelled_owned())),
    )
}

async fn checkpoint_records(log: &EmbeddedLog) -> Result<Vec<Record>, Box<dyn std::error::Error>> {
    let mut c = log
        .consumer(ConsumerOptions::new(
            "checkpoint-reader",
            [CHECKPOINT_TOPIC],
        ))
        .await?;
    let mut out = Vec::new();
    loop {
        let got = c.poll(100, Duration::from_millis(300)).await?;
        if got.is_empty() && !c.assignment().is_empty() {
            return Ok(out);
        }
        out.extend(got);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_keeps_every_record_once_and_signs_what_it_keeps() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    log.create_topic(&TopicSpec::new("alpha", 3)).await?;
    log.create_topic(&TopicSpec::new("beta", 2)).await?;
    log.create_topic(&TopicSpec::new("alpha.dlq", 1)).await?;
    append(&log, "alpha", 150, "a").await?;
    append(&log, "beta", 60, "b").await?;
    append(&log, "alpha.dlq", 3, "dead").await?;

    let (service, opened) = AuditService::open(options(&dir.path().join("audit")))?;
    let vkey = opened.new_key.expect("a new trail makes a key");
    let verifier = NoteVerifier::parse(&vkey)?;
    let trail = service.trail();
    let size = || trail.lock().unwrap().size();
    let signed = || trail.lock().unwrap().latest().map_or(0, |c| c.tree_size);
    let (token, run) = start(&service, &log);
    wait_for("213 leaves", || size() == 213).await?;
    // A topic created while it runs.
    log.create_topic(&TopicSpec::new("later", 1)).await?;
    append(&log, "later", 7, "l").await?;
    wait_for("220 leaves", || size() == 220).await?;
    // The timer signs the tail that did not reach 100 records.
    wait_for("a checkpoint of 220", || signed() == 220).await?;
    token.cancel();
    run.await??;

    // Its own output is not in the trail, everything else once.
    let snapshot = TrailSnapshot::read(&dir.path().join("audit"))?;
    let topics: std::collections::BTreeSet<String> = (0..snapshot.index.len())
        .filter_map(|i| snapshot.index.get(i).map(|p| p.topic))
        .collect();
    assert_eq!(
        topics.into_iter().collect::<Vec<_>>(),
        ["alpha", "alpha.dlq", "beta", "later"]
    );

    // Checkpoints on the topic: envelopes whose notes verify, sizes rising.
    let published = checkpoint_records(&log).await?;
    assert!(!published.is_empty());
    let mut last = 0;
    for r in &published {
        let env = RawEnvelope::from_bytes(&r.value)?;
        assert_eq!(env.event_type, "audit_checkpoint");
        let note = Note::parse(env.payload["note"].as_str().unwrap_or_default())?;
        verifier.verify(&note)?;
        let size = note.checkpoint()?.size;
        assert!(size >= last, "{size} after {last}");
        last = size;
    }
    assert_eq!(last, 220);

    // One auditor per trail.
    let second = AuditService::open(options(&dir.path().join("audit")));
    assert!(
        matches!(&second, Err(e) if e.to_string().contains("in use by process")),
        "{second:?}"
    );
    drop(service);

    // A restart reads everything again from its committed position or
    // before: nothing doubles; new records are appended.
    let (service, opened) = AuditService::open(options(&dir.path().join("audit")))?;
    assert_eq!(opened.new_key, None);
    let trail = service.trail();
    let size = || trail.lock().unwrap().size();
    let (token, run) = start(&service, &log);
    append(&log, "beta", 5, "b2").await?;
    wait_for("225 leaves", || size() == 225).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(size(), 225);
    token.cancel();
    run.await??;

    let snapshot = TrailSnapshot::read(&dir.path().join("audit"))?;
    let report = verify(&log, &snapshot, &verifier).await?;
    assert!(report.integrity_valid, "{:#?}", report.issues);
    assert_eq!(report.verified_events, 225);
    assert_eq!(report.signed_size, 225);
    assert_eq!(report.not_yet_audited, 0);
    Ok(())
}
