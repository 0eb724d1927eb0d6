//! `ultracore bench governance`: how fast the PII recognizers screen text
//! on one core, on the seeded labelled corpus (agent-style sentences with
//! personal data, near misses and lookalikes): one sentence per call (as
//! agent answers are screened) and the whole corpus as one document; with
//! `--vs-python`, Presidio's pattern recognizers on the same corpus in the
//! same run (`tools/reference_presidio.py`), as a ratio.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use ultracore_governance::corpus::{generate, score};
use ultracore_governance::Scanner;
use ultracore_term::table;

#[derive(Debug, Args)]
pub struct GovernanceBench {
    /// Sentences of the corpus (drawn from --seed).
    #[arg(long, default_value_t = 10_000)]
    sentences: usize,
    /// Seconds each measurement scans for (whole passes over the corpus, at least one).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Score and time Presidio's pattern recognizers on the same corpus in
    /// this run. The interpreter needs presidio-analyzer
    /// (scripts/bench-env.sh installs it); default: that venv's if it
    /// exists, else python3.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    vs_python: Option<String>,
    #[arg(long)]
    json: bool,
}

/// Scans with `f` in whole passes until `seconds` have gone by: (bytes
/// per second, passes, findings of the last pass).
fn rate(bytes_per_pass: usize, seconds: f64, mut f: impl FnMut() -> usize) -> (f64, u64, usize) {
    let budget = Duration::from_secs_f64(seconds.max(0.0));
    let started = Instant::now();
    let mut passes = 1u64;
    let mut findings = f();
    while started.elapsed() < budget {
        findings = f();
        passes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        bytes_per_pass as f64 * passes as f64 / elapsed,
        passes,
        findings,
    )
}

pub fn run(b: GovernanceBench, seed: u64) -> Result<()> {
    if b.sentences == 0 {
        bail!("--sentences must be at least 1");
    }
    let corpus = generate(seed, b.sentences);
    let bytes: usize = corpus.iter().map(|s| s.text.len()).sum();
    let scanner = Scanner::new();
    if !b.json {
        eprintln!(
            "scanning {} sentences ({:.2} MB) for {} s per measurement…",
            corpus.len(),
            bytes as f64 / 1e6,
            b.seconds
        );
    }
    let (per_sentence, passes, findings) = rate(bytes, b.seconds, || {
        corpus.iter().map(|s| scanner.scan(&s.text).len()).sum()
    });
    let whole_text: String = corpus
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let (whole, whole_passes, _) = rate(whole_text.len(), b.seconds, || {
        scanner.scan(&whole_text).len()
    });
    let quality = score(&corpus, |text| {
        scanner
            .scan(text)
            .into_iter()
            .map(|f| (f.entity, f.start, f.end))
            .collect()
    });
    let min = |f: fn(&ultracore_governance::corpus::Counts) -> f64| {
        quality.entities.values().map(f).fold(1.0, f64::min)
    };
    let sentence_us = 1e6 * bytes as f64 / per_sentence / corpus.len() as f64;
    let python = match &b.vs_python {
        Some(given) => Some(presidio(given, &corpus)?),
        None => None,
    };
    let ours_mb = per_sentence / 1e6;
    let doc = json!({
        "seed": seed,
        "sentences": corpus.len(),
        "bytes": bytes,
        "findings_per_pass": findings,
        "per_sentence": {"mb_per_s": ours_mb, "mean_us": sentence_us, "passes": passes},
        "whole_corpus": {"mb_per_s": whole / 1e6, "passes": whole_passes},
        "quality": {
            "min_precision": min(|c| c.precision()),
            "min_recall": min(|c| c.recall()),
            "near_misses_flagged": quality.near_misses_flagged,
            "lookalikes_flagged": quality.lookalikes_flagged,
        },
        "vs_python": python.clone().map(|p| {
            let mut p = p;
            if let Some(theirs) = p["mb_per_s"].as_f64().filter(|t| *t > 0.0) {
                p["ratio"] = json!(ours_mb / theirs);
            }
            p
        }),
    });
    if b.json {
        println!("{doc}");
        return Ok(());
    }
    let mut rows = vec![
        vec![
            "one sentence per call, 1 core".into(),
            format!("{:.1}", ours_mb),
            format!("{sentence_us:.2} µs per sentence"),
        ],
        vec![
            "the corpus as one document, 1 core".into(),
            format!("{:.1}", whole / 1e6),
            String::new(),
        ],
    ];
    if let Some(p) = &python {
        let theirs = p["mb_per_s"].as_f64().unwrap_or(f64::NAN);
        rows.push(vec![
            format!(
                "Presidio {} pattern recognizers, one sentence per call",
                p["presidio_version"].as_str().unwrap_or("?")
            ),
            format!("{theirs:.3}"),
            format!("UltraCore {:.0}× faster", ours_mb / theirs),
        ]);
    }
    print!("{}", table(&["screening", "MB/s", ""], &rows));
    println!(
        "{} sentences, {:.2} MB (seed {seed}); lowest precision {:.4}, lowest recall {:.4}; near misses flagged {}, lookalikes flagged {}",
        corpus.len(),
        bytes as f64 / 1e6,
        min(|c| c.precision()),
        min(|c| c.recall()),
        quality.near_misses_flagged,
        quality.lookalikes_flagged
    );
    if let Some(p) = &python {
        if let Some(entities) = p["entities"].as_object() {
            let rows: Vec<Vec<String>> = quality
                .entities
                .iter()
                .map(|(e, c)| {
                    let theirs = &entities.get(e.name()).cloned().unwrap_or(Value::Null);
                    let f = |v: &Value| v.as_f64().map_or("–".into(), |x| format!("{x:.4}"));
                    vec![
                        e.name().to_owned(),
                        format!("{:.4}", c.precision()),
                        format!("{:.4}", c.recall()),
                        f(&theirs["precision"]),
                        f(&theirs["recall"]),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "entity",
                        "precision",
                        "recall",
                        "Presidio precision",
                        "Presidio recall"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(())
}

/// Runs `tools/reference_presidio.py` on the same corpus: its JSON.
fn presidio(given: &str, corpus: &[ultracore_governance::corpus::Sentence]) -> Result<Value> {
    let script = crate::python::script("tools/reference_presidio.py")?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("corpus.jsonl");
    let mut lines = String::new();
    for s in corpus {
        lines.push_str(&serde_json::to_string(s)?);
        lines.push('\n');
    }
    std::fs::write(&file, lines)?;
    let python = crate::python::interpreter(given);
    eprintln!(
        "running Presidio on the same corpus ({})…",
        python.display()
    );
    let stdout = crate::python::run(&python, script, [&file])?;
    serde_json::from_slice(&stdout).with_context(|| {
        format!(
            "{} printed no JSON: {}",
            script.display(),
            String::from_utf8_lossy(&stdout)
        )
    })
}
