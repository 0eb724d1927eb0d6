//! The Python a `--vs-python` benchmark runs its reference in.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The bench venv's interpreter (`scripts/bench-env.sh` makes it under
/// `$ULTRACORE_CACHE`, default `~/.cache/ultracore`) if it exists, else
/// `python3`.
pub(crate) fn default_interpreter() -> PathBuf {
    std::env::var_os("ULTRACORE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ultracore")))
        .map(|cache| cache.join("benchvenv/bin/python"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The interpreter a `--vs-python [PYTHON]` flag names, or the default.
pub(crate) fn interpreter(given: &str) -> PathBuf {
    if given.is_empty() {
        default_interpreter()
    } else {
        PathBuf::from(given)
    }
}

/// A script of `tools/`, which must be run from the repository root.
pub(crate) fn script(path: &'static str) -> Result<&'static Path> {
    let script = Path::new(path);
    if !script.exists() {
        bail!(
            "{} not found: run from the repository root",
            script.display()
        );
    }
    Ok(script)
}

/// Runs `script` with `python` and `args`: its standard output, or an
/// error with its standard error and how to get a working venv.
pub(crate) fn run<I, S>(python: &Path, script: &Path, args: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}\ncreate the venv with scripts/bench-env.sh, or pass --vs-python PYTHON",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}
