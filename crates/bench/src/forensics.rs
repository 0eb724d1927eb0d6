//! `ultracore bench forensics`: SHAP time per trading decision.
//!
//! A decision is explained by all three regime specialists (bull, bear,
//! sideways: 100 trees of depth 4 each), so one decision costs three SHAP
//! computations. The rows are synthetic: each feature taken from a random
//! row of the reference fixture, scaled by a random factor in [0.9, 1.1],
//! missing where that row is; the cost of both algorithms hardly depends on
//! the values (every tree is visited whole).
//!
//! With `--vs-python`, shap's TreeExplainer (one row at a time and the whole
//! array at once) and XGBoost's `pred_contribs` are timed in the same run, on
//! the rows the exact case explains, by `tools/bench_shap.py` (one thread),
//! and the ratios compare those times with ours; the run fails unless
//! their SHAP values agree with ours. Without it, no ratio is printed: a
//! time measured on another machine or another day is no baseline.
//!
//! # Layout
//!
//! - this file: the options, our cases and the table;
//! - `vs_python`: the child Python process and the agreement check.

mod vs_python;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use ultracore_models::{FastTreeShap, Model, TreeShap};

const SPECIALISTS: [&str; 3] = ["bull", "bear", "sideways"];

#[derive(Debug, Args)]
pub struct ForensicsBench {
    /// Directory with bull.json, bear.json and sideways.json.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// The reference fixture whose rows the synthetic rows are drawn from.
    #[arg(
        long,
        default_value = "crates/models/tests/fixtures/reference_shap.json"
    )]
    fixture: PathBuf,
    /// Decisions explained by the fast algorithm per run (the exact one gets a tenth).
    #[arg(long, default_value_t = 50_000)]
    decisions: usize,
    /// Rows per batch for the batched fast runs (`shap_values_batch`).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Threads for the multi-threaded fast run (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed runs per case; the best is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long)]
    json: bool,
    /// Skip the SHAP-only figures (run only --pipeline / --api).
    #[arg(long)]
    no_shap: bool,
    /// Also time shap's TreeExplainer and XGBoost's pred_contribs on this
    /// run's rows with this Python (default: the venv of
    /// scripts/bench-env.sh, ~/.cache/ultracore/benchvenv/bin/python, if it
    /// exists, else python3), and print our speed-ups over them.
    ///
    /// Example: ultracore bench forensics --vs-python
    #[arg(long, value_name = "PYTHON", conflicts_with = "no_shap")]
    vs_python: Option<Option<PathBuf>>,
    /// The script --vs-python runs.
    #[arg(long, default_value = "tools/bench_shap.py")]
    python_script: PathBuf,
    #[command(flatten)]
    service: crate::forensics_service::PipelineArgs,
}

struct Specialist {
    model: Model,
    exact: TreeShap,
    fast: FastTreeShap,
}

pub async fn run(b: ForensicsBench, seed: u64) -> Result<()> {
    let mut out = if b.no_shap {
        serde_json::Map::new()
    } else {
        match shap(&b, seed)? {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    };
    if b.service.pipeline || b.service.api {
        let specialists = std::sync::Arc::new(
            ultracore_forensics::Specialists::load(&b.models)
                .context("run from the repository root, or pass --models DIR")?,
        );
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&b.fixture).with_context(|| {
                format!("cannot read {} (pass --fixture FILE)", b.fixture.display())
            })?)?;
        let rows = synthetic_rows(&fixture, specialists.feature_names().len(), 4_096, seed)?;
        let json = b.json;
        let say = move |s: &str| {
            if !json {
                println!("{s}");
            }
        };
        let parts =
            crate::forensics_service::run(&b.service, specialists, &rows, seed, &say).await?;
        if let Value::Object(parts) = parts {
            out.extend(parts);
        }
    }
    if b.json {
        println!("{}", Value::Object(out));
    }
    Ok(())
}

/// The SHAP-only figures; prints the table unless --json, returns the JSON.
fn shap(b: &ForensicsBench, seed: u64) -> Result<Value> {
    if b.decisions == 0 || b.runs == 0 || b.batch == 0 {
        bail!("--decisions, --runs and --batch must be positive");
    }
    let specialists = SPECIALISTS
        .iter()
        .map(|name| {
            let path = b.models.join(format!("{name}.json"));
            let model = Model::load(&path)
                .with_context(|| format!("model {}", path.display()))
                .context("run from the repository root, or pass --models DIR")?;
            Ok(Specialist {
                exact: TreeShap::new(&model),
                fast: FastTreeShap::new(&model),
                model,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(&b.fixture).with_context(|| {
            format!("cannot read {} (pass --fixture FILE)", b.fixture.display())
        })?)?;
    let n = specialists[0].model.num_features();
    let rows = synthetic_rows(&fixture, n, b.decisions, seed)?;
    let exact_rows = &rows[..(b.decisions / 10).max(1)];
    let threads = b
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get()))
        .max(1);

    // The two algorithms must agree before their speed means anything.
    let max_diff = max_difference(&specialists, &rows[..rows.len().min(2000)])?;

    let exact = best_of(b.runs, || explain_exact(&specialists, exact_rows))?;
    let fast = best_of(b.runs, || explain_fast(&specialists, &rows, 1))?;
    let fast_mt = best_of(b.runs, || {
        explain_fast_threads(&specialists, &rows, threads, 1)
    })?;
    let batch = best_of(b.runs, || explain_fast(&specialists, &rows, b.batch))?;
    let batch_mt = best_of(b.runs, || {
        explain_fast_threads(&specialists, &rows, threads, b.batch)
    })?;

    let per_decision = |d: Duration, count: usize| d.as_secs_f64() / count as f64;
    let exact_s = per_decision(exact, exact_rows.len());
    let fast_s = per_decision(fast, rows.len());
    let fast_mt_s = per_decision(fast_mt, rows.len());
    let batch_s = per_decision(batch, rows.len());
    let batch_mt_s = per_decision(batch_mt, rows.len());

    // After our cases, so the two never compete for the cores.
    let python = match &b.vs_python {
        None => None,
        Some(given) => Some(vs_python::measure(
            given
                .clone()
                .unwrap_or_else(crate::python::default_interpreter),
            &b.python_script,
            &b.models,
            &specialists,
            exact_rows,
            b.runs,
        )?),
    };

    let us = |s: f64| s * 1e6;
    let mut out = json!({
        "specialists": SPECIALISTS,
        "trees_per_specialist": specialists.iter().map(|s| s.model.num_trees()).collect::<Vec<_>>(),
        "max_depth": specialists.iter().map(|s| s.model.max_depth()).max(),
        "decisions": rows.len(),
        "exact": {
            "decisions": exact_rows.len(),
            "us_per_decision": us(exact_s),
            "decisions_per_s": 1.0 / exact_s,
        },
        "fast": {
            "decisions": rows.len(),
            "us_per_decision": us(fast_s),
            "decisions_per_s": 1.0 / fast_s,
        },
        "fast_threads": {
            "threads": threads,
            "us_per_decision": us(fast_mt_s),
            "decisions_per_s": 1.0 / fast_mt_s,
        },
        "fast_batched": {
            "batch": b.batch,
            "us_per_decision": us(batch_s),
            "decisions_per_s": 1.0 / batch_s,
        },
        "fast_batched_threads": {
            "batch": b.batch,
            "threads": threads,
            "us_per_decision": us(batch_mt_s),
            "decisions_per_s": 1.0 / batch_mt_s,
        },
        "max_abs_difference_fast_vs_exact": max_diff,
    });
    if let Some(p) = &python {
        // Each of ours on one thread against each of theirs: their time / ours.
        let ours = [
            ("exact", exact_s),
            ("fast", fast_s),
            ("fast_batched", batch_s),
        ];
        let theirs = [
            ("shap_one_row", p.shap_one_row),
            ("shap_batch", p.shap_batch),
            ("xgboost_pred_contribs_batch", p.xgboost_batch),
        ];
        let ratios: serde_json::Map<String, Value> = ours
            .iter()
            .map(|(name, s)| {
                let r: serde_json::Map<String, Value> = theirs
                    .iter()
                    .map(|(theirs, t)| (theirs.to_string(), json!(t / s)))
                    .collect();
                (name.to_string(), Value::Object(r))
            })
            .collect();
        out["vs_python"] = json!({
            "interpreter": p.interpreter.display().to_string(),
            "script": b.python_script.display().to_string(),
            "versions": p.versions,
            "threads": 1,
            "thread_settings": p.thread_settings,
            "decisions": p.rows,
            "one_row_decisions": p.one_row_rows,
            "us_per_decision": theirs
                .iter()
                .map(|(name, t)| (name.to_string(), json!(us(*t))))
                .collect::<serde_json::Map<_, _>>(),
            "speedup": ratios,
            "speedup_is": "their seconds per decision / ours, both on one thread",
            "agreement": {
                "rows": p.check_rows,
                "max_abs_difference_exact_vs_shap": p.exact.abs,
                "max_abs_difference_fast_vs_shap": p.fast.abs,
                "max_relative_difference_exact_vs_shap": p.exact.relative,
                "max_relative_difference_fast_vs_shap": p.fast.relative,
                "relative_to": "1 + |shap|",
            },
        });
    }
    if b.json {
        return Ok(out);
    }

    // Ratios only where both sides use one thread: a speed-up over a
    // single-threaded baseline bought with more cores says nothing.
    let ratio_cells = |s: Option<f64>| -> Vec<String> {
        match (&python, s) {
            (None, _) => Vec::new(),
            (Some(p), Some(s)) => [p.shap_one_row, p.shap_batch, p.xgboost_batch]
                .iter()
                .map(|t| format!("{:.1}x", t / s))
                .collect(),
            (Some(_), None) => vec!["-".into(); 3],
        }
    };
    let row = |name: &str, what: String, s: f64, ratios: Option<f64>| {
        let mut cells = vec![
            name.to_owned(),
            what,
            format!("{:.2}", us(s)),
            format!("{:.0}", 1.0 / s),
        ];
        cells.extend(ratio_cells(ratios));
        cells
    };
    let batched = format!("Fast TreeSHAP v2 (ours), batches of {}", b.batch);
    let mut table = vec![
        row(
            "exact TreeSHAP (ours)",
            "1 thread".into(),
            exact_s,
            Some(exact_s),
        ),
        row(
            "Fast TreeSHAP v2 (ours)",
            "1 thread".into(),
            fast_s,
            Some(fast_s),
        ),
        row(
            "Fast TreeSHAP v2 (ours)",
            format!("{threads} threads"),
            fast_mt_s,
            None,
        ),
        row(&batched, "1 thread".into(), batch_s, Some(batch_s)),
        row(&batched, format!("{threads} threads"), batch_mt_s, None),
    ];
    let mut header = vec!["algorithm", "threads", ">us/decision", ">decisions/s"];
    if let Some(p) = &python {
        header.extend([">vs shap 1 row", ">vs shap batch", ">vs XGBoost"]);
        table.extend([
            row(
                "shap TreeExplainer, one row at a time",
                "1 thread".into(),
                p.shap_one_row,
                None,
            ),
            row(
                "shap TreeExplainer, whole array",
                "1 thread".into(),
                p.shap_batch,
                None,
            ),
            row(
                "XGBoost pred_contribs, whole array",
                "1 thread".into(),
                p.xgboost_batch,
                None,
            ),
        ]);
    }
    println!(
        "SHAP per decision: 3 specialists x 100 trees of depth 4; fast vs exact max |difference| {max_diff:.1e}"
    );
    print!("{}", ultracore_term::table(&header, &table));
    if let Some(p) = &python {
        let version = |k: &str| p.versions[k].as_str().unwrap_or("?").to_owned();
        println!("vs columns: their time per decision / ours, both on one thread");
        println!(
            "Python {}, shap {}, xgboost {}, numpy {} ({})",
            version("python"),
            version("shap"),
            version("xgboost"),
            version("numpy"),
            p.interpreter.display(),
        );
        println!(
            "timed by {} in this run, on the exact case's {} rows (the first {} one row at a time)",
            b.python_script.display(),
            p.rows,
            p.one_row_rows,
        );
        println!(
            "shap vs ours on {} rows x 3 specialists: max |difference| {:.1e} exact, {:.1e} fast; \
             relative to 1 + |shap| {:.1e}, {:.1e} (shap returns XGBoost's float32)",
            p.check_rows, p.exact.abs, p.fast.abs, p.exact.relative, p.fast.relative,
        );
    }
    Ok(out)
}

fn best_of(runs: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    f()?; // warm-up: page in tables and code
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(f()?);
    }
    Ok(best)
}

fn explain_exact(specialists: &[Specialist], rows: &[Vec<f32>]) -> Result<Duration> {
    let mut workspaces: Vec<_> = specialists.iter().map(|s| s.exact.workspace()).collect();
    let mut phi = vec![0.0; rows[0].len()];
    let mut sink = 0.0;
    let start = Instant::now();
    for row in rows {
        for (s, ws) in specialists.iter().zip(&mut workspaces) {
            sink += s.exact.shap_values(row, ws, &mut phi)?;
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(sink);
    Ok(elapsed)
}

fn explain_fast(specialists: &[Specialist], rows: &[Vec<f32>], batch: usize) -> Result<Duration> {
    let start = Instant::now();
    std::hint::black_box(fast_chunk(specialists, rows, batch)?);
    Ok(start.elapsed())
}

/// Explains `rows` one at a time (`batch` 1) or `batch` at a time, as the
/// forensics service does with the decisions of a polled chunk (the rows
/// are gathered into one buffer per batch, which the service does too).
fn fast_chunk(specialists: &[Specialist], rows: &[Vec<f32>], batch: usize) -> Result<f64> {
    let mut workspaces: Vec<_> = specialists.iter().map(|s| s.fast.workspace()).collect();
    let n = rows[0].len();
    let mut sink = 0.0;
    if batch == 1 {
        let mut phi = vec![0.0; n];
        for row in rows {
            for (s, ws) in specialists.iter().zip(&mut workspaces) {
                sink += s.fast.shap_values(row, ws, &mut phi)?;
            }
        }
        return Ok(sink);
    }
    let mut flat = Vec::with_capacity(batch * n);
    let mut phi = vec![0.0; batch * n];
    let mut margins = vec![0.0; batch];
    for part in rows.chunks(batch) {
        flat.clear();
        for row in part {
            flat.extend_from_slice(row);
        }
        let k = part.len();
        for (s, ws) in specialists.iter().zip(&mut workspaces) {
            s.fast
                .shap_values_batch(&flat, ws, &mut phi[..k * n], &mut margins[..k])?;
            sink += margins[..k].iter().sum::<f64>();
        }
    }
    Ok(sink)
}

fn explain_fast_threads(
    specialists: &[Specialist],
    rows: &[Vec<f32>],
    threads: usize,
    batch: usize,
) -> Result<Duration> {
    let chunk = rows.len().div_ceil(threads);
    let start = Instant::now();
    // One scoped thread per chunk: the explainers are shared read-only, each
    // thread has its own workspaces.
    let sums: Vec<Result<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| scope.spawn(move || fast_chunk(specialists, part, batch)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a benchmark thread panicked"))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    for s in sums {
        std::hint::black_box(s?);
    }
    Ok(elapsed)
}

fn max_difference(specialists: &[Specialist], rows: &[Vec<f32>]) -> Result<f64> {
    let n = rows[0].len();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    let mut max = 0.0f64;
    for s in specialists {
        let (mut we, mut wf) = (s.exact.workspace(), s.fast.workspace());
        for row in rows {
            s.exact.shap_values(row, &mut we, &mut a)?;
            s.fast.shap_values(row, &mut wf, &mut b)?;
            for (x, y) in a.iter().zip(&b) {
                max = max.max((x - y).abs());
            }
        }
    }
    Ok(max)
}

/// `count` rows mixing the fixture's rows column by column, drawn by the
/// bench's generator from `seed`.
fn synthetic_rows(fixture: &Value, n: usize, count: usize, seed: u64) -> Result<Vec<Vec<f32>>> {
    let source: Vec<Vec<Option<f64>>> = serde_json::from_value(fixture["rows"].clone())
        .context("fixture rows are not arrays of numbers or nulls")?;
    // Leave out rows with extreme values (they exist to test edge cases).
    let source: Vec<&Vec<Option<f64>>> = source
        .iter()
        .filter(|r| r.len() == n && r.iter().flatten().all(|v| v.abs() < 1e6))
        .collect();
    if source.is_empty() {
        bail!("the fixture has no rows with {n} features");
    }
    let mut rng = crate::Rng::new(seed);
    Ok((0..count)
        .map(|_| {
            (0..n)
                .map(|f| {
                    let r = rng.next_u64();
                    let pick = source[(r % source.len() as u64) as usize][f];
                    let scale = 0.9 + 0.2 * ((r >> 32) as f64 / u32::MAX as f64);
                    pick.map_or(f32::NAN, |v| (v * scale) as f32)
                })
                .collect()
        })
        .collect())
}
