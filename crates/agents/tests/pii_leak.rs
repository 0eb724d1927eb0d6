//! No personal data is kept anywhere: customers ask the assistant
//! questions carrying the labelled corpus's values (card numbers, TFNs,
//! IBANs, e-mail addresses, phone numbers …), the governance service
//! screens every execution, and then every byte the platform wrote — each
//! file of the log and the read models, and every log line — is searched
//! for every value, as written and as bare digits. None may be found.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ultracore_agents::assist::Assistant;
use ultracore_agents::runtime::RuntimeConfig;
use ultracore_agents::{GovernanceKey, GovernanceService, Screen};
use ultracore_es::{Database, EventStore, StoreOptions};
use ultracore_governance::corpus::{generate, Kind};
use ultracore_log::testing::all_records;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_runtime::Handler;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every line the process logs, at every level.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bytes_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            bytes_under(&path, out)?;
        } else {
            out.push((path.display().to_string(), std::fs::read(&path)?));
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() >= 6 && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_is_kept_in_any_record_read_model_or_log_line() -> TestResult {
    let lines = Lines::default();
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let store = EventStore::new(
        log.clone(),
        Database::open(&dir.path().join("db"), None)?,
        StoreOptions::default(),
    )?;
    ultracore_agents::demo::seed_demo_accounts(&store).await?;
    ultracore_runtime::catalogue::ensure(&log, &[ultracore_events::agents::TOPIC]).await?;
    let mesh_dir = dir.path().join("mesh");
    let mut series = ultracore_marketdata::read_prices_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/sp500_prices.csv"),
        None,
    )?;
    series.truncate(5);
    ultracore_marketdata::mesh::build_products(&series, &mesh_dir)?;
    let mesh = ultracore_marketdata::mesh::DataMesh::open(&mesh_dir)?;
    let screen = Screen::new(GovernanceKey::from_bytes(&[9; 32]));
    let assistant = Assistant::with_agents(
        log.clone(),
        store.clone(),
        mesh,
        screen.clone(),
        RuntimeConfig::default(),
    );

    // Questions carrying the corpus's personal data, to every agent.
    let sentences: Vec<_> = generate(42, 600)
        .into_iter()
        .filter(|s| s.kind == Kind::Pii)
        .take(120)
        .collect();
    assert!(sentences.len() >= 100);
    let asks = [
        "what's my card balance? ",
        "how much could I borrow on 95k? ",
        "how risky is my portfolio? ",
        "",
    ];
    for (i, s) in sentences.iter().enumerate() {
        let query = format!("{}{}", asks[i % asks.len()], s.text);
        assistant
            .assist(Some(["c-1", "c-2"][i % 2]), &query, &[])
            .await
            .map_err(|e| format!("{query}: {e}"))?;
    }
    // The governance service screens every recorded execution.
    let mut governance = GovernanceService::new(log.clone(), screen);
    let executions = all_records(&log, ultracore_events::agents::TOPIC).await;
    // (A question the planner finds general runs no agent.)
    assert!(
        executions.len() >= sentences.len() / 2,
        "{}",
        executions.len()
    );
    governance.handle(&executions).await?;
    let alerts = all_records(&log, ultracore_events::compliance::TOPIC).await;
    assert!(
        alerts.len() >= sentences.len(),
        "every question had personal data: {} alerts",
        alerts.len()
    );

    // Everything written: files of the log and the read models, and logs.
    let mut written = Vec::new();
    bytes_under(dir.path(), &mut written)?;
    written.push(("log lines".into(), lines.0.lock().unwrap().clone()));
    let mut found = Vec::new();
    for s in &sentences {
        for v in &s.values {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            for (name, bytes) in &written {
                if contains(bytes, v.as_bytes())
                    || (digits.len() >= 8 && contains(bytes, digits.as_bytes()))
                {
                    found.push(format!("{v:?} in {name}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} values kept: {:?}",
        found.len(),
        &found[..found.len().min(10)]
    );
    Ok(())
}
