//! `ultracore governance scan | corpus | score`: personal data in text.

use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use ultracore_governance::corpus::{self, Kind};
use ultracore_governance::{mask, Entity, Likelihood, Scanner};

use crate::output::table;

#[derive(Debug, Subcommand)]
pub enum GovernanceCommand {
    /// Find personal data in text read from stdin, one document per line:
    /// card numbers, IBANs, Australian TFNs, ABNs and Medicare numbers, US
    /// SSNs, e-mail addresses and phone numbers, each validated (checksum,
    /// numbering plan) and weighed by the words around it. Prints where
    /// (byte offsets in the line), never the value.
    ///
    /// Example: ultracore governance scan --json < transcripts.txt
    Scan(ScanArgs),
    /// Write the seeded labelled corpus (JSON lines: text, kind, spans)
    /// the recognizers are scored on.
    ///
    /// Example: ultracore governance corpus --seed 42 --sentences 10000 > corpus.jsonl
    Corpus(CorpusArgs),
    /// Score the recognizers on the corpus: precision and recall per
    /// entity (exact spans), near misses and lookalikes flagged.
    ///
    /// Example: ultracore governance score --json
    Score(CorpusArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Report findings from this likelihood up: very_unlikely, unlikely,
    /// possible, likely, very_likely.
    #[arg(
        long,
        default_value = "possible",
        env = "ULTRACORE_GOVERNANCE_MIN_LIKELIHOOD"
    )]
    min_likelihood: String,
    /// Only these entities (comma-separated, e.g. CREDIT_CARD,AU_TFN).
    #[arg(long, value_delimiter = ',')]
    entities: Vec<String>,
    /// Print each line with its findings replaced by <ENTITY> instead.
    #[arg(long, conflicts_with = "json")]
    mask: bool,
    /// One JSON object per line: {"line": N, "findings": [{"entity", "start", "end", "likelihood", "recognizer"}]}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CorpusArgs {
    #[arg(long, default_value_t = 42, env = "ULTRACORE_GOVERNANCE_SEED")]
    seed: u64,
    #[arg(long, default_value_t = 10_000)]
    sentences: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: GovernanceCommand) -> Result<()> {
    match cmd {
        GovernanceCommand::Scan(a) => scan(a),
        GovernanceCommand::Corpus(a) => write_corpus(a),
        GovernanceCommand::Score(a) => score(a),
    }
}

fn scanner(a: &ScanArgs) -> Result<Scanner> {
    let min = Likelihood::parse(&a.min_likelihood).with_context(|| {
        format!(
            "--min-likelihood {:?} is not a likelihood: use very_unlikely, unlikely, possible, likely or very_likely",
            a.min_likelihood
        )
    })?;
    let mut s = Scanner::new().min_likelihood(min);
    if !a.entities.is_empty() {
        let mut entities = Vec::new();
        for name in &a.entities {
            match Entity::parse(name.trim()) {
                Some(e) => entities.push(e),
                None => bail!(
                    "--entities: {name:?} is not an entity; use any of {}",
                    Entity::ALL.map(Entity::name).join(", ")
                ),
            }
        }
        s = s.entities(&entities);
    }
    Ok(s)
}

fn scan(a: ScanArgs) -> Result<()> {
    let scanner = scanner(&a)?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let mut n = 0usize;
    let mut rows = Vec::new();
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading stdin")?
            == 0
        {
            break;
        }
        n += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let findings = scanner.scan_bytes(&line);
        if a.json {
            serde_json::to_writer(&mut out, &json!({"line": n, "findings": findings}))?;
            out.write_all(b"\n")?;
        } else if a.mask {
            let text = String::from_utf8_lossy(&line);
            // Lossy decoding moves offsets only past invalid bytes: re-scan the decoded text.
            let findings = scanner.scan(&text);
            writeln!(out, "{}", mask(&text, &findings))?;
        } else {
            for f in findings {
                rows.push(vec![
                    n.to_string(),
                    f.entity.name().to_owned(),
                    format!("{}..{}", f.start, f.end),
                    f.likelihood.name().to_owned(),
                    f.recognizer.to_owned(),
                ]);
            }
        }
    }
    if !a.json && !a.mask {
        if rows.is_empty() {
            writeln!(out, "no personal data found in {}", lines(n))?;
        } else {
            write!(
                out,
                "{}",
                table(
                    &["line", "entity", "bytes", "likelihood", "recognizer"],
                    &rows
                )
            )?;
            writeln!(
                out,
                "{} finding{} in {}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" },
                lines(n)
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

fn lines(n: usize) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

fn write_corpus(a: CorpusArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for s in corpus::generate(a.seed, a.sentences) {
        serde_json::to_writer(&mut out, &s)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn score(a: CorpusArgs) -> Result<()> {
    let sentences = corpus::generate(a.seed, a.sentences);
    let scanner = Scanner::new();
    let s = corpus::score(&sentences, |text| {
        scanner
            .scan(text)
            .into_iter()
            .map(|f| (f.entity, f.start, f.end))
            .collect()
    });
    if a.json {
        let entities: serde_json::Map<String, serde_json::Value> = s
            .entities
            .iter()
            .map(|(e, c)| {
                (
                    e.name().to_owned(),
                    json!({"labelled": c.labelled, "true_positives": c.true_positives,
                           "false_positives": c.false_positives, "false_negatives": c.false_negatives,
                           "precision": c.precision(), "recall": c.recall()}),
                )
            })
            .collect();
        println!(
            "{}",
            json!({"seed": a.seed, "sentences": s.sentences, "entities": entities,
                   "near_misses": s.near_misses, "near_misses_flagged": s.near_misses_flagged,
                   "lookalikes": s.lookalikes, "lookalikes_flagged": s.lookalikes_flagged})
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = s
        .entities
        .iter()
        .map(|(e, c)| {
            vec![
                e.name().to_owned(),
                c.labelled.to_string(),
                format!("{:.4}", c.precision()),
                format!("{:.4}", c.recall()),
                c.false_positives.to_string(),
                c.false_negatives.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "entity",
                "labelled",
                "precision",
                "recall",
                "false +",
                "false −"
            ],
            &rows
        )
    );
    let kinds = |k: Kind| sentences.iter().filter(|x| x.kind == k).count();
    println!(
        "{} sentences (seed {}): {} with personal data; near misses flagged {} of {}; lookalikes flagged {} of {}",
        s.sentences,
        a.seed,
        kinds(Kind::Pii),
        s.near_misses_flagged,
        s.near_misses,
        s.lookalikes_flagged,
        s.lookalikes
    );
    Ok(())
}
