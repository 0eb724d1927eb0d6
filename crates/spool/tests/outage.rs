//! A real Kafka-protocol broker stopped and restarted under a stream of
//! events: every event arrives (deduplicated by id), the breaker opens and
//! closes, and a spool left by one run is forwarded by the next.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ultracore_log::{Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_log_kafka::{KafkaConfig, KafkaLog};
use ultracore_spool::{BreakerConfig, BreakerState, EmitterOptions, EmitterStats, SpooledEmitter};

/// The broker binary, from `ULTRACORE_TEST_TANSU` (set by scripts/test.sh).
fn tansu() -> PathBuf {
    std::env::var_os("ULTRACORE_TEST_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "ULTRACORE_TEST_TANSU is not set: run scripts/test.sh, which builds the \
                 Kafka-protocol broker (Tansu) once and points this variable at its binary"
            )
        })
}

/// A broker of our own on a free port, so it can be killed and restarted.
struct Broker {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut b = Broker {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        b.restart();
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "broker did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn options() -> EmitterOptions {
    EmitterOptions {
        breaker: BreakerConfig {
            failure_threshold: 3,
            open_timeout: Duration::from_millis(500),
        },
        append_timeout: Duration::from_millis(500),
        ..EmitterOptions::default()
    }
}

async fn target(broker: &Broker) -> KafkaLog {
    KafkaLog::connect(KafkaConfig::new(broker.addr()).with_request_timeout(Duration::from_secs(5)))
        .await
        .expect("connect to the broker")
}

/// Every distinct value on `topic`, read by a fresh group until `want` are seen.
async fn distinct_values(log: &KafkaLog, topic: &str, want: usize) -> BTreeSet<String> {
    let mut c = log
        .consumer(ConsumerOptions::new(
            format!("verify-{:08x}", rand::random::<u32>()),
            [topic],
        ))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < want && Instant::now() < deadline {
        for r in c.poll(1000, Duration::from_millis(500)).await.unwrap() {
            seen.insert(String::from_utf8(r.value).unwrap());
        }
    }
    seen
}

/// Waits until nothing is queued or spooled, or the limit passes.
async fn drained(emitter: &SpooledEmitter, limit: Duration) -> EmitterStats {
    let deadline = Instant::now() + limit;
    loop {
        let s = emitter.stats();
        if (s.queued == 0 && s.spool_backlog == 0) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_mid_stream_loses_no_event() {
    let broker_dir = tempfile::tempdir().unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(broker_dir.path());
    let log = target(&broker).await;
    log.ensure_topic(&TopicSpec::new("decisions", 3))
        .await
        .unwrap();
    let spool = EmbeddedLog::open(spool_dir.path(), EmbeddedOptions::default()).unwrap();
    let emitter = SpooledEmitter::start(log.clone(), spool, options())
        .await
        .unwrap();

    let total = 4000;
    let started = Instant::now();
    let mut killed = false;
    let mut restarted = false;
    for i in 0..total {
        let id = format!("decision-{i:05}");
        emitter
            .emit("decisions", NewRecord::new(format!("SYM{}", i % 7), id))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t = started.elapsed();
        if !killed && t > Duration::from_millis(1000) {
            broker.kill();
            killed = true;
        }
        if killed && !restarted && t > Duration::from_millis(5000) {
            assert!(
                emitter.stats().spooled > 0,
                "events emitted while the broker was down went to the spool"
            );
            broker.restart();
            restarted = true;
        }
    }
    assert!(killed && restarted, "the stream outlasted the outage");
    let stats = drained(&emitter, Duration::from_secs(60)).await;
    assert_eq!((stats.queued, stats.spool_backlog), (0, 0), "{stats:?}");
    assert_eq!(stats.emitted, total as u64);
    assert_eq!(stats.delivered + stats.spooled, stats.emitted, "{stats:?}");
    assert_eq!(stats.forwarded, stats.spooled, "{stats:?}");
    assert!(
        stats.breaker_transitions >= 3,
        "open, half-open, closed: {stats:?}"
    );
    assert_eq!(stats.breaker, BreakerState::Closed);
    let stats = emitter.shutdown().await;
    assert_eq!(stats.spool_backlog, 0);

    let got = distinct_values(&log, "decisions", total).await;
    let want: BTreeSet<String> = (0..total).map(|i| format!("decision-{i:05}")).collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} events lost, e.g. {missing:?}",
        want.len() - got.len()
    );
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_one_run_is_forwarded_by_the_next() {
    let broker_dir = tempfile::tempdir().unwrap();
    let spool_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(broker_dir.path());
    let log = target(&broker).await;
    log.ensure_topic(&TopicSpec::new("decisions", 1))
        .await
        .unwrap();
    broker.kill();

    let spool = EmbeddedLog::open(spool_dir.path(), EmbeddedOptions::default()).unwrap();
    let emitter = SpooledEmitter::start(log.clone(), spool, options())
        .await
        .unwrap();
    for i in 0..200 {
        emitter
            .emit("decisions", NewRecord::new("k", format!("left-{i:03}")))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while emitter.stats().spooled < 200 {
        assert!(Instant::now() < deadline, "{:?}", emitter.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = emitter.shutdown().await;
    assert_eq!(
        (stats.spooled, stats.spool_backlog, stats.forwarded),
        (200, 200, 0),
        "{stats:?}"
    );

    broker.restart();
    let spool = EmbeddedLog::open(spool_dir.path(), EmbeddedOptions::default()).unwrap();
    let emitter = SpooledEmitter::start(log.clone(), spool, options())
        .await
        .unwrap();
    assert_eq!(emitter.stats().spool_backlog, 200);
    emitter
        .emit("decisions", NewRecord::new("k", "after-restart"))
        .unwrap();
    let stats = drained(&emitter, Duration::from_secs(60)).await;
    // The new event queued behind the old backlog, so it went through the spool too.
    assert_eq!(
        (stats.spooled, stats.forwarded, stats.spool_backlog),
        (1, 201, 0),
        "{stats:?}"
    );
    emitter.shutdown().await;

    let got = distinct_values(&log, "decisions", 201).await;
    assert_eq!(got.len(), 201, "{got:?}");
    // One partition, one key: the spooled events come first, in order, then the new one.
    let mut c = log
        .consumer(ConsumerOptions::new("order-check", ["decisions"]))
        .await
        .unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < 201 {
        assert!(Instant::now() < deadline, "read only {values:?}");
        for r in c.poll(1000, Duration::from_millis(500)).await.unwrap() {
            let v = String::from_utf8(r.value).unwrap();
            if !values.contains(&v) {
                values.push(v);
            }
        }
    }
    let want: Vec<String> = (0..200)
        .map(|i| format!("left-{i:03}"))
        .chain(["after-restart".to_owned()])
        .collect();
    assert_eq!(values, want);
}
