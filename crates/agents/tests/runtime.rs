//! The agent runtime's scheduling, retries, cache and memory, on tokio's
//! paused clock (every agent run takes simulated time, so waits are exact
//! and the test takes no real time).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;
use ultracore_agents::runtime::{
    Agent, AgentOutput, AgentRuntime, Exchange, ExecutionSink, Priority, RuntimeConfig, Task,
};
use ultracore_events::agents::{AgentExecution, ExecutionStatus};

/// An agent that takes `work` per run and fails its first `failures` runs.
struct Sleeper {
    id: &'static str,
    work: Duration,
    failures: u32,
    calls: AtomicU32,
}

impl Agent for Sleeper {
    fn id(&self) -> &str {
        self.id
    }
    fn run<'a>(
        &'a self,
        task: &'a Task,
        memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.work).await;
            if n < self.failures {
                return Err(format!("failure {}", n + 1));
            }
            Ok(AgentOutput {
                output: json!({"echo": task.input, "remembered": memory.len()}),
                tools: vec![],
                trace: vec![],
            })
        })
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<AgentExecution>>);

impl ExecutionSink for Collect {
    fn record(&self, e: AgentExecution) -> BoxFuture<'_, ()> {
        self.0.lock().unwrap().push(e);
        Box::pin(async {})
    }
}

fn sleeper(id: &'static str, ms: u64, failures: u32) -> Arc<Sleeper> {
    Arc::new(Sleeper {
        id,
        work: Duration::from_millis(ms),
        failures,
        calls: AtomicU32::new(0),
    })
}

fn task(agent: &str, i: usize, priority: Priority) -> Task {
    Task {
        agent_id: agent.into(),
        input: json!({"i": i}),
        customer_id: Some(format!("c-{}", i % 50)),
        request_id: None,
        priority,
        data_version: "v1".into(),
    }
}

fn p95(mut waits: Vec<Duration>) -> Duration {
    waits.sort();
    waits[(waits.len() * 95 / 100).min(waits.len() - 1)]
}

#[tokio::test(start_paused = true)]
async fn high_priority_waits_a_third_of_low_on_eight_workers() {
    let agents: Vec<Arc<dyn Agent>> = vec![
        sleeper("card", 10, 0),
        sleeper("loan", 10, 0),
        sleeper("wealth", 10, 0),
    ];
    let sink = Arc::new(Collect::default());
    let rt = AgentRuntime::start(
        RuntimeConfig {
            workers: 8,
            per_agent: 4,
            ..RuntimeConfig::default()
        },
        agents,
        sink.clone(),
    );
    // A task arrives every millisecond, a quarter more than 8 workers
    // serve (800 runs of 10 ms a second): a queue builds while they arrive.
    // (Tokio's timer has millisecond resolution.)
    // 5 % critical, 20 % high, 35 % normal, 40 % low, interleaved.
    let mut rng = ultracore_rng::SplitMix64::new(7);
    let mut pending = Vec::new();
    for i in 0..1000 {
        let u = rng.next_f64();
        let p = if u < 0.05 {
            Priority::Critical
        } else if u < 0.25 {
            Priority::High
        } else if u < 0.60 {
            Priority::Normal
        } else {
            Priority::Low
        };
        let agent = ["card", "loan", "wealth"][i % 3];
        pending.push((p, rt.submit(task(agent, i, p)).unwrap()));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut waits: std::collections::BTreeMap<Priority, Vec<Duration>> = Default::default();
    for (p, rx) in pending {
        let o = rx.await.unwrap();
        assert_eq!(o.status, ExecutionStatus::Succeeded);
        waits.entry(p).or_default().push(o.waited);
    }
    for (p, w) in &waits {
        println!(
            "{}: {} tasks, p95 wait {:?}, max {:?}",
            p.name(),
            w.len(),
            p95(w.clone()),
            w.iter().max()
        );
    }
    let (high, low) = (
        p95(waits[&Priority::High].clone()),
        p95(waits[&Priority::Low].clone()),
    );
    assert!(high * 3 < low, "high p95 {high:?}, low p95 {low:?}");
    // Critical and high tasks wait at most for a worker to finish its run.
    for p in [Priority::Critical, Priority::High] {
        assert!(
            p95(waits[&p].clone()) <= Duration::from_millis(10),
            "{}",
            p.name()
        );
    }
    // Every task ran once: one execution each.
    let executions = sink.0.lock().unwrap();
    assert_eq!(executions.len(), 1000);
    let ids: std::collections::BTreeSet<&str> =
        executions.iter().map(|e| e.execution_id.as_str()).collect();
    assert_eq!(ids.len(), 1000);
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_with_backoff_then_given_up() {
    let flaky = sleeper("card", 5, 2);
    let broken = sleeper("loan", 5, u32::MAX);
    let sink = Arc::new(Collect::default());
    let rt = AgentRuntime::start(
        RuntimeConfig {
            attempts: 3,
            ..RuntimeConfig::default()
        },
        vec![flaky.clone(), broken.clone()],
        sink.clone(),
    );
    let ok = rt
        .submit(task("card", 1, Priority::Normal))
        .unwrap()
        .await
        .unwrap();
    assert_eq!((ok.status, ok.attempts), (ExecutionStatus::Succeeded, 3));
    let failed = rt
        .submit(task("loan", 2, Priority::Normal))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("failure 3"));
    assert_eq!(broken.calls.load(Ordering::SeqCst), 3);
    // One execution per task, however many runs it took.
    assert_eq!(sink.0.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_run_past_its_timeout_is_timed_out() {
    let slow = sleeper("wealth", 10_000, 0);
    let rt = AgentRuntime::start(
        RuntimeConfig {
            attempts: 1,
            timeout: Duration::from_secs(1),
            ..RuntimeConfig::default()
        },
        vec![slow],
        Arc::new(Collect::default()),
    );
    let o = rt
        .submit(task("wealth", 1, Priority::High))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(o.status, ExecutionStatus::TimedOut);
}

/// An agent that panics on every run.
struct Panics;

impl Agent for Panics {
    fn id(&self) -> &str {
        "loan"
    }
    fn run<'a>(
        &'a self,
        _task: &'a Task,
        _memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async { panic!("a bug in the agent") })
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_agent_fails_its_run_and_the_worker_goes_on() {
    let sink = Arc::new(Collect::default());
    let rt = AgentRuntime::start(
        RuntimeConfig {
            workers: 1,
            attempts: 1,
            ..RuntimeConfig::default()
        },
        vec![Arc::new(Panics), sleeper("card", 1, 0)],
        sink.clone(),
    );
    let o = rt
        .submit(task("loan", 1, Priority::High))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(o.status, ExecutionStatus::Failed);
    assert_eq!(o.error.as_deref(), Some("the agent panicked"));
    // The one worker still serves the next task.
    let next = rt
        .submit(task("card", 2, Priority::High))
        .unwrap()
        .await
        .unwrap();
    assert_eq!(next.status, ExecutionStatus::Succeeded);
    assert_eq!(sink.0.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_does_not_call_the_agent_and_memory_is_bounded() {
    let agent = sleeper("card", 5, 0);
    let rt = AgentRuntime::start(
        RuntimeConfig {
            memory_per_customer: 3,
            ..RuntimeConfig::default()
        },
        vec![agent.clone()],
        Arc::new(Collect::default()),
    );
    let first = rt
        .submit(task("card", 7, Priority::Normal))
        .unwrap()
        .await
        .unwrap();
    let again = rt
        .submit(task("card", 7, Priority::Normal))
        .unwrap()
        .await
        .unwrap();
    assert!(!first.cached && again.cached);
    assert_eq!(again.output, first.output);
    assert_eq!(agent.calls.load(Ordering::SeqCst), 1);
    // Another data version is another key.
    let mut newer = task("card", 7, Priority::Normal);
    newer.data_version = "v2".into();
    assert!(!rt.submit(newer).unwrap().await.unwrap().cached);
    // The same words from another customer are never answered from the
    // first customer's answer.
    let mut other = task("card", 7, Priority::Normal);
    other.customer_id = Some("c-8".into());
    assert!(!rt.submit(other).unwrap().await.unwrap().cached);
    assert_eq!(agent.calls.load(Ordering::SeqCst), 3);
    // The customer's memory keeps the last three exchanges.
    for i in [57, 107, 157, 207] {
        rt.submit(task("card", i, Priority::Normal))
            .unwrap()
            .await
            .unwrap();
    }
    let memory = rt.memory_of("c-7");
    assert_eq!(memory.len(), 3);
    assert_eq!(memory[2].input, json!({"i": 207}));
    // Past the TTL, the cache misses.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(
        !rt.submit(task("card", 7, Priority::Normal))
            .unwrap()
            .await
            .unwrap()
            .cached
    );
    assert!(rt.submit(task("nobody", 1, Priority::Low)).is_err());
}
