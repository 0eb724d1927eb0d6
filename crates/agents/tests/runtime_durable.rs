//! The agent runtime's journal across a crash, on a real embedded log and
//! real files: a crash is a tokio runtime shut down with the agent
//! runtime's tasks in flight (every run, publish and journal write cut at
//! its next await), and a restart is a new runtime on the same journal and
//! log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::json;
use ultracore_agents::runtime::{
    execution_id_for, Agent, AgentOutput, AgentRuntime, Exchange, ExecutionSink, LogSink, Priority,
    RuntimeConfig, RuntimeError, Task,
};
use ultracore_events::agents::{AgentEvent, AgentExecution, ExecutionStatus, TOPIC};
use ultracore_log::testing::all_records;
use ultracore_log::Envelope;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs per task (by the `i` of its input), over every agent and runtime.
type Runs = Arc<Mutex<HashMap<u64, u32>>>;

/// An agent that takes `work` per run and counts its runs per task.
struct Counting {
    id: &'static str,
    work: Duration,
    runs: Runs,
    total: Arc<AtomicU32>,
}

impl Agent for Counting {
    fn id(&self) -> &str {
        self.id
    }
    fn run<'a>(
        &'a self,
        task: &'a Task,
        _memory: &'a [Exchange],
    ) -> BoxFuture<'a, Result<AgentOutput, String>> {
        Box::pin(async move {
            let i = task.input["i"].as_u64().ok_or("no i")?;
            *self.runs.lock().unwrap().entry(i).or_default() += 1;
            tokio::time::sleep(self.work).await;
            self.total.fetch_add(1, Ordering::SeqCst);
            Ok(AgentOutput {
                output: json!({"done": i}),
                tools: vec![],
                trace: vec![],
            })
        })
    }
}

const AGENTS: [&str; 3] = ["card", "loan", "wealth"];

fn agents(work: Duration, runs: &Runs, total: &Arc<AtomicU32>) -> Vec<Arc<dyn Agent>> {
    AGENTS
        .iter()
        .map(|id| {
            Arc::new(Counting {
                id,
                work,
                runs: runs.clone(),
                total: total.clone(),
            }) as Arc<dyn Agent>
        })
        .collect()
}

fn task(i: usize, priority: Priority) -> Task {
    Task {
        agent_id: AGENTS[i % 3].into(),
        input: json!({"i": i}),
        customer_id: Some(format!("c-{}", i % 50)),
        request_id: None,
        priority,
        data_version: "v1".into(),
    }
}

fn config(journal: &Path) -> RuntimeConfig {
    RuntimeConfig {
        workers: 8,
        per_agent: 4,
        journal: Some(journal.to_owned()),
        ..RuntimeConfig::default()
    }
}

fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

async fn open_log(dir: &Path) -> Result<EmbeddedLog, Box<dyn std::error::Error>> {
    let log = EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default())?;
    ultracore_runtime::catalogue::ensure(&log, &[TOPIC]).await?;
    Ok(log)
}

/// Every execution on `agent.executions`, with its envelope's event id.
async fn published(
    log: &EmbeddedLog,
) -> Result<Vec<(String, AgentExecution)>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for r in all_records(log, TOPIC).await {
        let env = Envelope::<AgentEvent>::from_record(&r)?;
        let AgentEvent::Execution(e) = env.payload;
        out.push((env.event_id.to_string(), e));
    }
    Ok(out)
}

/// Stops `runtime` and lets go of it: its journal closes once its workers
/// have returned (a later open waits for that).
fn close(runtime: AgentRuntime) {
    runtime.stop();
    drop(runtime);
}

#[test]
fn a_crash_part_way_loses_no_task_and_runs_none_twice() -> TestResult {
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("agents.journal");
    let runs: Runs = Arc::default();
    let total = Arc::new(AtomicU32::new(0));
    let work = Duration::from_millis(5);

    // Before the crash: 1,000 tasks of mixed priorities, accepted durably
    // (concurrently, so the journal commits them in groups).
    let first = tokio_runtime()?;
    let log = first.block_on(open_log(dir.path()))?;
    let sink = Arc::new(LogSink::new(log.clone()));
    let started = Instant::now();
    let runtime = first.block_on(AgentRuntime::open(
        config(&journal),
        agents(work, &runs, &total),
        sink.clone(),
        None,
    ))?;
    let mut rng = ultracore_rng::SplitMix64::new(7);
    let priorities: Vec<Priority> = (0..1000)
        .map(|_| Priority::ALL[(rng.next_f64() * 4.0) as usize % 4])
        .collect();
    let submitted = first.block_on(futures::future::try_join_all(
        priorities
            .iter()
            .enumerate()
            .map(|(i, p)| runtime.enqueue(task(i, *p))),
    ))?;
    let accepted = started.elapsed();
    // Crash with about a third of the runs done.
    let deadline = Instant::now() + Duration::from_secs(60);
    while total.load(Ordering::SeqCst) < 330 {
        assert!(
            Instant::now() < deadline,
            "the first runtime made no progress"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(runtime);
    first.shutdown_timeout(Duration::from_secs(10));
    let crashed_after = total.load(Ordering::SeqCst);

    // After the restart, on the same journal and log.
    let second = tokio_runtime()?;
    let restarted = Instant::now();
    let (on_log_at_crash, executions) = second.block_on(async {
        let at_crash = published(&log).await?.len();
        let runtime = AgentRuntime::open(
            config(&journal),
            agents(work, &runs, &total),
            sink.clone(),
            None,
        )
        .await?;
        tokio::time::timeout(Duration::from_secs(120), runtime.idle()).await?;
        close(runtime);
        Ok::<_, Box<dyn std::error::Error>>((at_crash, published(&log).await?))
    })?;
    let recovered_in = restarted.elapsed();

    // One execution id per task, derived from its task id, published at
    // least once; the same id whenever it was published again.
    let mut by_task: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for (event_id, e) in &executions {
        assert_eq!(
            event_id, &e.execution_id,
            "the envelope carries the execution id"
        );
        assert_eq!(e.status, ExecutionStatus::Succeeded);
        let i = e.input["i"].as_u64().ok_or("no i")?;
        by_task.entry(i).or_default().insert(&e.execution_id);
    }
    assert_eq!(by_task.len(), 1000, "every task published");
    for (i, s) in submitted.iter().enumerate() {
        let ids = &by_task[&(i as u64)];
        assert_eq!(ids.len(), 1, "task {i} has executions {ids:?}");
        assert!(ids.contains(execution_id_for(&s.task_id).as_str()));
        assert_eq!(s.execution_id, execution_id_for(&s.task_id));
    }
    let distinct: BTreeSet<&str> = executions
        .iter()
        .map(|(_, e)| e.execution_id.as_str())
        .collect();
    assert_eq!(distinct.len(), 1000);
    let republished = executions.len() - distinct.len();
    // A task runs twice only when the crash cut its first run (or its
    // publish, before the log acknowledged it).
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 1000);
    assert!(runs.values().all(|n| (1..=2).contains(n)), "{runs:?}");
    let twice = runs.values().filter(|n| **n == 2).count();
    println!(
        "accepted 1,000 tasks in {accepted:?}; crashed after {crashed_after} runs \
         ({on_log_at_crash} executions on the log); the restart finished the rest in \
         {recovered_in:?}: {twice} tasks ran twice, {republished} executions published twice"
    );
    assert!(on_log_at_crash < 1000, "the crash came part-way");
    Ok(())
}

/// Publishes, then never returns: a crash between the log's
/// acknowledgement and the runtime recording it.
struct StuckAfterPublishing(LogSink<EmbeddedLog>);

impl ExecutionSink for StuckAfterPublishing {
    fn record(&self, execution: AgentExecution) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.publish(execution).await;
        })
    }
    fn publish(&self, execution: AgentExecution) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0.publish(execution).await?;
            futures::future::pending::<()>().await;
            Ok(())
        })
    }
}

#[test]
fn a_task_already_published_is_not_run_again_after_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("agents.journal");
    let work = Duration::from_millis(1);

    let first = tokio_runtime()?;
    let log = first.block_on(open_log(dir.path()))?;
    let before = (Runs::default(), Arc::new(AtomicU32::new(0)));
    let runtime = first.block_on(AgentRuntime::open(
        config(&journal),
        agents(work, &before.0, &before.1),
        Arc::new(StuckAfterPublishing(LogSink::new(log.clone()))),
        None,
    ))?;
    for i in 0..3 {
        first.block_on(runtime.enqueue(task(i, Priority::Normal)))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.block_on(published(&log))?.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the executions were not published"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(runtime);
    first.shutdown_timeout(Duration::from_secs(10));

    let second = tokio_runtime()?;
    let after = (Runs::default(), Arc::new(AtomicU32::new(0)));
    second.block_on(async {
        let runtime = AgentRuntime::open(
            config(&journal),
            agents(work, &after.0, &after.1),
            Arc::new(LogSink::new(log.clone())),
            None,
        )
        .await?;
        // Nothing was queued again.
        assert!(runtime.queued().values().all(|n| *n == 0));
        tokio::time::timeout(Duration::from_secs(10), runtime.idle()).await?;
        close(runtime);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    assert_eq!(before.1.load(Ordering::SeqCst), 3);
    assert_eq!(after.1.load(Ordering::SeqCst), 0, "an agent ran again");
    assert!(after.0.lock().unwrap().is_empty());
    assert_eq!(second.block_on(published(&log))?.len(), 3);

    // And the journal is empty once that runtime has closed it.
    drop(second);
    let conn = rusqlite::Connection::open(&journal)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let left: i64 = conn.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))?;
    assert_eq!(left, 0);
    Ok(())
}

#[tokio::test]
async fn an_unreadable_journal_is_an_error_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("agents.journal");
    std::fs::write(&journal, "this is not a journal\n".repeat(400))?;
    let runs = Runs::default();
    let total = Arc::new(AtomicU32::new(0));
    let log = open_log(dir.path()).await?;
    let err = AgentRuntime::open(
        config(&journal),
        agents(Duration::ZERO, &runs, &total),
        Arc::new(LogSink::new(log)),
        None,
    )
    .await
    .expect_err("a corrupt journal opens");
    assert!(matches!(err, RuntimeError::Journal { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&journal.display().to_string()),
        "{message}"
    );
    println!("{message}");
    Ok(())
}

#[tokio::test]
async fn a_journaled_runtime_takes_tasks_through_enqueue() -> TestResult {
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("agents.journal");
    let runs = Runs::default();
    let total = Arc::new(AtomicU32::new(0));
    let log = open_log(dir.path()).await?;
    let runtime = AgentRuntime::open(
        config(&journal),
        agents(Duration::ZERO, &runs, &total),
        Arc::new(LogSink::new(log.clone())),
        None,
    )
    .await?;
    assert!(runtime.submit(task(1, Priority::High)).is_err());
    let s = runtime.enqueue(task(1, Priority::High)).await?;
    let outcome = s.outcome.await?;
    assert_eq!(outcome.execution_id, s.execution_id);
    assert_eq!(outcome.status, ExecutionStatus::Succeeded);
    // The cache answers the same task without the agent or the journal.
    let again = runtime
        .enqueue(task(1, Priority::High))
        .await?
        .outcome
        .await?;
    assert!(again.cached);
    assert_eq!(total.load(Ordering::SeqCst), 1);
    let on_log = published(&log).await?;
    assert_eq!(on_log.len(), 1);
    assert_eq!(on_log[0].1.execution_id, s.execution_id);
    Ok(())
}
