//! The files in `deploy/` stay true to the code: the Prometheus rules pass
//! `promtool check rules`, the Grafana dashboard parses, and every metric
//! an alert rule or a panel queries is one the code exports.
//!
//! `promtool` (Debian's `prometheus` package) is used when it is on PATH;
//! with `CI` or `ULTRACORE_REQUIRE_PROMTOOL` set its absence is a failure,
//! so the check cannot silently skip where it must run (`scripts/test.sh`
//! installs it and sets the variable).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, ext, out)?;
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    Ok(())
}

/// Every `ultracore_…` word of `text`.
fn metric_words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ultracore_") {
        let word: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[i + word.len()..];
        out.insert(word);
    }
    out
}

/// Metric names the code defines: `"ultracore_…"` string literals in the
/// crates' sources.
fn exported() -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(root().join("crates"))? {
        let src = entry?.path().join("src");
        if src.is_dir() {
            files(&src, "rs", &mut sources)?;
        }
    }
    let mut names = BTreeSet::new();
    for path in sources {
        let text = std::fs::read_to_string(&path)?;
        for part in text.split('"').skip(1).step_by(2) {
            if part.starts_with("ultracore_")
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(part.to_owned());
            }
        }
    }
    Ok(names)
}

/// The metric a series name belongs to (a histogram's `_bucket`, `_sum`
/// and `_count` series belong to the histogram).
fn known(series: &str, names: &BTreeSet<String>) -> bool {
    names.contains(series)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| series.strip_suffix(s).is_some_and(|m| names.contains(m)))
}

#[test]
fn the_lag_crate_exports_what_it_says() -> TestResult {
    let names = exported()?;
    for m in ultracore_lag::metrics::ALL {
        assert!(names.contains(*m), "{m} is a literal in the sources");
    }
    Ok(())
}

#[test]
fn grafana_dashboard_queries_existing_metrics() -> TestResult {
    let names = exported()?;
    let path = root().join("deploy/grafana/ultracore-console.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let panels = dashboard["panels"].as_array().ok_or("a panels array")?;
    assert!(!panels.is_empty());
    let mut queried = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().ok_or("a panel title")?;
        let targets = panel["targets"].as_array().ok_or("panel targets")?;
        assert!(!targets.is_empty(), "panel {title} queries something");
        for t in targets {
            let expr = t["expr"].as_str().ok_or("a target expr")?;
            let words = metric_words(expr);
            assert!(!words.is_empty(), "panel {title}: {expr} names a metric");
            for w in words {
                assert!(
                    known(&w, &names),
                    "panel {title}: {w} is not exported by the code"
                );
                queried.insert(w);
            }
        }
    }
    for m in ultracore_lag::metrics::ALL {
        assert!(
            queried.iter().any(|q| q.starts_with(m)),
            "the dashboard shows {m}"
        );
    }
    Ok(())
}

#[test]
fn prometheus_rules_query_existing_metrics_and_pass_promtool() -> TestResult {
    let names = exported()?;
    let mut rules = Vec::new();
    files(&root().join("deploy/prometheus"), "yml", &mut rules)?;
    assert!(!rules.is_empty());
    for path in &rules {
        let text = std::fs::read_to_string(path)?;
        let exprs: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr:"))
            .collect();
        assert!(!exprs.is_empty(), "{} has rules", path.display());
        for expr in exprs {
            let words = metric_words(expr);
            assert!(!words.is_empty(), "{expr} names a metric");
            for w in words {
                assert!(
                    known(&w, &names),
                    "{}: {w} is not exported by the code",
                    path.display()
                );
            }
        }
    }

    let required = std::env::var_os("CI").is_some()
        || std::env::var_os("ULTRACORE_REQUIRE_PROMTOOL").is_some();
    let output = match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .args(&rules)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            eprintln!("promtool is not on PATH: rules not checked (apt-get install prometheus)");
            return Ok(());
        }
        Err(e) => return Err(format!("running promtool: {e} (apt-get install prometheus)").into()),
    };
    assert!(
        output.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
