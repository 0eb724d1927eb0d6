//! Cost of storing explanations under different SQLite settings (a tool for
//! tuning the store; `cargo run --release -p ultracore-forensics --example store_cost`).

use std::time::Instant;

use rusqlite::{params, Connection};

fn main() -> rusqlite::Result<()> {
    let dir = std::env::temp_dir().join(format!("store-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let n = 120_000usize;
    // Today's row: the encoded decision and SHAP blobs (~1.1 KB with the
    // columns), indexed by time and by (symbol, time), 8 symbols.
    let decision = vec![3u8; 700];
    let blob = vec![7u8; 330];
    let symbols = ["AAPL", "MSFT", "JNJ", "XOM", "KO", "QUAL", "USMV", "MTUM"];
    for page in [4096, 8192, 16384, 32768, 65536] {
        let label = format!("{}k FULL", page / 1024);
        let path = dir.join(format!("{page}.sqlite"));
        let mut conn = Connection::open(&path)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size={page}; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;"
        ))?;
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, decision_id BLOB NOT NULL UNIQUE, event_id BLOB NOT NULL, decided_at INTEGER NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL, model_version TEXT NOT NULL, explained_at INTEGER NOT NULL, source_offset INTEGER NOT NULL, decision BLOB NOT NULL, shap BLOB NOT NULL, narrative TEXT, confidence REAL, dominant_regime TEXT, latency_us INTEGER);
             CREATE INDEX t_time ON t (decided_at);
             CREATE INDEX t_symbol ON t (symbol, decided_at);",
        )?;
        let start = Instant::now();
        let cpu0 = cpu();
        let per_tx = 6_700;
        for chunk in 0..n / per_tx + 1 {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO t (decision_id, event_id, decided_at, symbol, action, model_version, explained_at, source_offset, decision, shap, narrative, confidence, dominant_regime, latency_us) VALUES (?1, ?2, ?3, ?4, 'buy', 'v1', ?3, ?3, ?5, ?6, NULL, 0.7, 'bull', 120) ON CONFLICT (decision_id) DO NOTHING")?;
                for i in chunk * per_tx..((chunk + 1) * per_tx).min(n) {
                    let id = uuid_like(2 * i);
                    let event = uuid_like(2 * i + 1);
                    stmt.execute(params![
                        &id[..],
                        &event[..],
                        i as i64,
                        symbols[i % symbols.len()],
                        &decision,
                        &blob,
                    ])?;
                }
            }
            tx.commit()?;
        }
        let wall = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        let cpu = (cpu() - cpu0) * 1e6 / n as f64;
        println!("{label:10} wall {wall:6.2} us/row  cpu {cpu:6.2} us/row");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn uuid_like(i: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(i as u64).to_be_bytes());
    b[8..].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
    b
}

/// Process CPU time in seconds.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
