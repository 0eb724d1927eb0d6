//! `--vs-python`: shap's and XGBoost's times on this run's rows, measured by
//! `tools/bench_shap.py` in a child Python process, and the agreement of
//! their SHAP values with ours.
//!
//! The rows go to the script through a temporary file (little-endian f64,
//! row-major, NaN = missing), deleted when the measurement ends, so both
//! sides explain the same values on the same machine within one run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Specialist, SPECIALISTS};

/// Rows the script explains one at a time (a Python call per row and
/// specialist costs about a millisecond, so more only lengthens the run).
const ONE_ROW_DECISIONS: usize = 1_000;
/// Rows whose SHAP values are compared with ours.
const CHECK_ROWS: usize = 16;
/// Bound on |ours - shap| / (1 + |shap|). XGBoost computes and returns the
/// values in float32, whose rounding alone reaches ~1e-7 of the value; a
/// wrong path or cover shows up as 1e-3 or more.
const AGREEMENT: f64 = 1e-5;

/// What the script measured, in seconds per decision (three specialists),
/// and how its values compare with ours.
pub(super) struct Python {
    pub interpreter: PathBuf,
    pub versions: Value,
    pub thread_settings: Value,
    pub rows: usize,
    pub one_row_rows: usize,
    pub shap_one_row: f64,
    pub shap_batch: f64,
    pub xgboost_batch: f64,
    pub check_rows: usize,
    /// Largest |ours - shap| and |ours - shap| / (1 + |shap|) over the
    /// checked rows, features and specialists, for the exact and the fast
    /// algorithm.
    pub exact: Worst,
    pub fast: Worst,
}

/// Runs `script` with `interpreter` on `rows`, then checks its SHAP values
/// against ours; fails if they disagree.
pub(super) fn measure(
    interpreter: PathBuf,
    script: &Path,
    models: &Path,
    specialists: &[Specialist],
    rows: &[Vec<f32>],
    runs: usize,
) -> Result<Python> {
    if !script.is_file() {
        bail!(
            "cannot find {} (run from the repository root, or pass --python-script FILE)",
            script.display()
        );
    }
    let n = rows[0].len();
    let file = tempfile::Builder::new()
        .prefix("ultracore-bench-rows-")
        .suffix(".f64")
        .tempfile()
        .context("cannot create the temporary file for the rows")?;
    {
        let mut w = BufWriter::new(file.as_file());
        for row in rows {
            for &v in row {
                w.write_all(&f64::from(v).to_le_bytes())?;
            }
        }
        w.flush().context("cannot write the rows for Python")?;
    }
    let output = Command::new(&interpreter)
        .arg(script)
        .arg("--models")
        .arg(models)
        .arg("--input")
        .arg(file.path())
        .args(["--shape", &rows.len().to_string(), &n.to_string()])
        .args(["--one-row", &ONE_ROW_DECISIONS.to_string()])
        .args(["--runs", &runs.to_string()])
        .args(["--check", &CHECK_ROWS.to_string()])
        .output();
    // The script has read the rows (or failed): the file goes now, whatever
    // happened, rather than when this function returns.
    file.close()
        .context("cannot delete the temporary file of rows")?;
    let output = output.with_context(|| {
        format!(
            "cannot run {} (create the venv with scripts/bench-env.sh, or pass --vs-python PYTHON)",
            interpreter.display()
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(module) = missing_module(&stderr) {
            bail!(
                "{} cannot import the Python module '{module}' ({} needs numpy, shap and xgboost): \
                 run scripts/bench-env.sh, which creates the venv --vs-python uses by default, \
                 or pass --vs-python \"$(scripts/bench-env.sh)\"",
                interpreter.display(),
                script.display()
            );
        }
        bail!(
            "{} {} failed ({}):\n{}",
            interpreter.display(),
            script.display(),
            output.status,
            stderr.trim_end()
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{} did not print one JSON object", script.display()))?;
    let seconds = |key: &str| {
        report["seconds_per_decision"][key]
            .as_f64()
            .filter(|s| *s > 0.0)
            .with_context(|| format!("{} printed no seconds_per_decision.{key}", script.display()))
    };
    let count = |key: &str| {
        report[key]
            .as_u64()
            .map(|c| c as usize)
            .with_context(|| format!("{} printed no {key}", script.display()))
    };
    let (exact, fast) = agreement(specialists, rows, &report["shap_values"])?;
    let python = Python {
        versions: report["versions"].clone(),
        thread_settings: report["thread_settings"].clone(),
        rows: count("rows")?,
        one_row_rows: count("one_row_rows")?,
        shap_one_row: seconds("shap_one_row")?,
        shap_batch: seconds("shap_batch")?,
        xgboost_batch: seconds("xgboost_pred_contribs_batch")?,
        check_rows: count("check_rows")?,
        exact,
        fast,
        interpreter,
    };
    if python.rows != rows.len() {
        bail!(
            "{} timed {} rows, not the {} written",
            script.display(),
            python.rows,
            rows.len()
        );
    }
    for (name, worst) in [("exact", exact), ("fast", fast)] {
        if worst.relative > AGREEMENT {
            bail!(
                "shap's SHAP values disagree with ours ({name} algorithm): \
                 |ours - shap| = {:.3e} on {} rows ({:.3e} relative to 1 + |shap|, allowed {AGREEMENT:e}); \
                 the timings compare different computations",
                worst.abs,
                python.check_rows,
                worst.relative
            );
        }
    }
    Ok(python)
}

/// The module a `ModuleNotFoundError` on stderr names.
fn missing_module(stderr: &str) -> Option<&str> {
    let (_, rest) = stderr.split_once("No module named '")?;
    rest.split_once('\'').map(|(module, _)| module)
}

#[derive(Clone, Copy, Default)]
pub(super) struct Worst {
    pub abs: f64,
    pub relative: f64,
}

/// Our exact and fast SHAP values against shap's (`values[specialist][row]`)
/// on the rows shap returned.
fn agreement(
    specialists: &[Specialist],
    rows: &[Vec<f32>],
    values: &Value,
) -> Result<(Worst, Worst)> {
    let n = rows[0].len();
    let (mut exact, mut fast) = (Worst::default(), Worst::default());
    let (mut phi_exact, mut phi_fast) = (vec![0.0; n], vec![0.0; n]);
    for (name, s) in SPECIALISTS.iter().zip(specialists) {
        let theirs: Vec<Vec<f64>> = serde_json::from_value(values[name].clone())
            .with_context(|| format!("tools/bench_shap.py printed no shap_values.{name}"))?;
        if theirs.is_empty() || theirs.len() > rows.len() {
            bail!(
                "tools/bench_shap.py printed {} rows of shap_values.{name}",
                theirs.len()
            );
        }
        let (mut we, mut wf) = (s.exact.workspace(), s.fast.workspace());
        for (row, theirs) in rows.iter().zip(&theirs) {
            if theirs.len() != n {
                bail!(
                    "tools/bench_shap.py printed {} SHAP values for {n} features",
                    theirs.len()
                );
            }
            s.exact.shap_values(row, &mut we, &mut phi_exact)?;
            s.fast.shap_values(row, &mut wf, &mut phi_fast)?;
            for (j, &t) in theirs.iter().enumerate() {
                for (worst, ours) in [(&mut exact, phi_exact[j]), (&mut fast, phi_fast[j])] {
                    let d = (ours - t).abs();
                    worst.abs = worst.abs.max(d);
                    worst.relative = worst.relative.max(d / (1.0 + t.abs()));
                }
            }
        }
    }
    Ok((exact, fast))
}

#[cfg(test)]
mod tests {
    use super::missing_module;

    #[test]
    fn names_the_missing_module() {
        let stderr = "Traceback (most recent call last):\n  File \"tools/bench_shap.py\", line 53, in <module>\n    import shap  # noqa: E402\nModuleNotFoundError: No module named 'shap'\n";
        assert_eq!(missing_module(stderr), Some("shap"));
        assert_eq!(
            missing_module("ModuleNotFoundError: No module named 'xgboost.core'"),
            Some("xgboost.core")
        );
        assert_eq!(missing_module("SyntaxError: invalid syntax"), None);
    }
}
