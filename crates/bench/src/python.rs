//! The Python a `--vs-python` benchmark runs its reference in.

use std::path::PathBuf;

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
