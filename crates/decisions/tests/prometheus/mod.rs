//! A strict reader of the Prometheus text format (0.0.4), for tests that
//! check an exposition: `crates/decisions/tests/metrics.rs`, and
//! `crates/cli/tests/serve_metrics.rs` through `#[path]`.

use std::collections::{BTreeMap, BTreeSet};

/// Parses Prometheus text: every sample as `name{labels}` → value. Fails on
/// a line that is neither a comment (`# HELP` / `# TYPE`) nor a sample, a
/// family declared twice, or a sample of an undeclared family.
pub fn parse(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !valid_name(name) || !helped.insert(name.to_owned()) {
                return Err(format!("bad or repeated HELP: {line}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            let known = ["counter", "gauge", "histogram", "summary", "untyped"];
            if !valid_name(name) || !known.contains(&kind) {
                return Err(format!("bad TYPE: {line}"));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(format!("family {name} declared twice"));
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or(format!("not a sample: {line}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value in: {line}"))?,
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .ok_or(format!("unclosed labels: {line}"))?;
                for pair in labels.split(',') {
                    let (k, v) = pair.split_once('=').ok_or(format!("bad label: {line}"))?;
                    let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
                    if !(valid_name(k) && quoted) {
                        return Err(format!("bad label {pair} in: {line}"));
                    }
                }
                name
            }
            None => series,
        };
        if !valid_name(name) {
            return Err(format!("bad metric name: {line}"));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(format!("sample of an undeclared family: {line}"));
        }
        if samples.insert(series.to_owned(), value).is_some() {
            return Err(format!("sample repeated: {line}"));
        }
    }
    Ok(samples)
}
