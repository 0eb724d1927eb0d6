//! Cost of storing explanations under different SQLite settings (a tool for
//! tuning the store; `cargo run --release -p ultracore-forensics --example store_cost`).

use std::time::Instant;

use rusqlite::{params, Connection};

fn main() -> rusqlite::Result<()> {
    let dir = std::env::temp_dir().join(format!("store-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let n = 40_000usize;
    let decision = "x".repeat(1_200);
    let words = "y".repeat(600);
    let blob = vec![7u8; 816];
    for (label, page, sync, with_words, with_decision) in [
        ("4k FULL all", 4096, "FULL", true, true),
        ("16k FULL all", 16384, "FULL", true, true),
        ("32k FULL all", 32768, "FULL", true, true),
        ("64k FULL all", 65536, "FULL", true, true),
        ("16k FULL no words", 16384, "FULL", false, true),
        ("32k FULL no words", 32768, "FULL", false, true),
        ("16k FULL blob only", 16384, "FULL", false, false),
    ] {
        let path = dir.join(format!("{}.sqlite", label.replace(' ', "_")));
        let mut conn = Connection::open(&path)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size={page}; PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};"
        ))?;
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, decision_id BLOB NOT NULL UNIQUE, decided_at INTEGER NOT NULL, symbol TEXT, decision TEXT, shap BLOB, narrative TEXT);
             CREATE INDEX t_time ON t (decided_at);",
        )?;
        let start = Instant::now();
        let cpu0 = cpu();
        for chunk in 0..n / 4096 + 1 {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO t (decision_id, decided_at, symbol, decision, shap, narrative) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (decision_id) DO NOTHING")?;
                for i in chunk * 4096..((chunk + 1) * 4096).min(n) {
                    let id = uuid_like(i);
                    stmt.execute(params![
                        &id[..],
                        i as i64,
                        "AAPL",
                        if with_decision { decision.as_str() } else { "" },
                        &blob,
                        if with_words { words.as_str() } else { "" }
                    ])?;
                }
            }
            tx.commit()?;
        }
        let wall = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        let cpu = (cpu() - cpu0) * 1e6 / n as f64;
        println!("{label:20} wall {wall:6.2} us/row  cpu {cpu:6.2} us/row");
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
