//! The authorization matrix of `ultracore serve`, generated from its own
//! OpenAPI document: every operation × (no key, a role without the
//! permission, a key of another portfolio, the right role) gets the
//! status its access rule says. A route added later without a rule fails
//! here (the document marks each operation's rule; the guard refuses a
//! route without one).

mod common;

use common::{status, Serve, TestResult};
use serde_json::Value;

const ROLES: [&str; 7] = [
    "viewer",
    "trader",
    "portfolio-manager",
    "auditor",
    "admin",
    "customer",
    "integration",
];

/// The roles granting each permission (the table in `ultracore-auth`).
fn grants(role: &str, permission: &str) -> bool {
    match permission {
        "none" | "any" => true,
        "read-portfolios" => role != "integration",
        "assist" => matches!(role, "customer" | "admin"),
        "ingest-external" => matches!(role, "integration" | "admin"),
        "request-optimization" => matches!(role, "portfolio-manager" | "admin"),
        "trade" => matches!(role, "trader" | "admin"),
        "read-data-products" => matches!(role, "portfolio-manager" | "auditor" | "admin"),
        "read-forensics" | "read-events" | "read-audit" | "read-metrics" | "read-compliance" => {
            matches!(role, "auditor" | "admin")
        }
        _ => role == "admin",
    }
}

/// The path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "pf-matrix")
        .replace("{request_id}", "0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b")
        .replace("{decision_id}", "0190f7a2-0000-7000-8000-000000000001")
}

#[test]
fn every_route_answers_by_its_access_rule() -> TestResult {
    let server = Serve::start(&[])?;
    server.wait_ready()?;
    let port = server.port;
    let (_, doc) = server
        .http("GET", "/api/v1/openapi.json", "")
        .ok_or("no OpenAPI document")?;
    let doc: Value = serde_json::from_str(&doc)?;
    // One key per role over every portfolio (a customer's: none), and
    // each role scoped to another portfolio than the one probed.
    let mut all = std::collections::BTreeMap::new();
    let mut other = std::collections::BTreeMap::new();
    for role in ROLES {
        all.insert(role, server.key(role, None)?);
        // An outside system's key names no portfolio at all.
        let scoped = (role != "integration").then_some("pf-elsewhere");
        other.insert(role, server.key(role, scoped)?);
    }
    let mut failures = Vec::new();
    let mut probes = 0;
    for (path, item) in doc["paths"].as_object().ok_or("no paths")? {
        for (method, op) in item.as_object().ok_or("no operations")? {
            let method = method.to_ascii_uppercase();
            let Some(permission) = op["x-ultracore-permission"].as_str() else {
                failures.push(format!("{method} {path}: no access rule"));
                continue;
            };
            let portfolios = op["x-ultracore-portfolios"].as_str().unwrap_or("none");
            let url = concrete(path);
            let body = if method == "POST" { "{}" } else { "" };
            let mut check = |case: &str, key: Option<&str>, ok: &dyn Fn(u16) -> bool| {
                probes += 1;
                match status(port, &method, &url, body, key) {
                    Some(s) if ok(s) => {}
                    got => failures.push(format!("{method} {path} {case}: got {got:?}")),
                }
            };
            // Open routes answer anyone; the others refuse a stranger.
            if permission == "none" {
                check("without a key", None, &|s| s != 401 && s != 403);
                continue;
            }
            check("without a key", None, &|s| s == 401);
            // Every role: 403 where it lacks the permission, through where
            // it has it.
            for role in ROLES {
                let key = Some(all[role].as_str());
                if grants(role, permission) {
                    check(&format!("as {role}"), key, &|s| {
                        !matches!(s, 401 | 403 | 415 | 429 | 500)
                    });
                } else {
                    check(&format!("as {role} (lacks {permission})"), key, &|s| {
                        s == 403
                    });
                }
            }
            // A key of the right role for another portfolio.
            let role = ROLES
                .into_iter()
                .find(|r| grants(r, permission))
                .ok_or("no role grants it")?;
            let key = Some(other[role].as_str());
            match portfolios {
                p if p.starts_with("path:") => {
                    check(&format!("as {role} of another portfolio"), key, &|s| {
                        s == 404
                    })
                }
                "all" => check(&format!("as {role} of another portfolio"), key, &|s| {
                    s == 403
                }),
                // Checked by the handler against the resource: the
                // resource probed here does not exist, so 404 too, or
                // through for routes that filter what they list.
                _ => check(&format!("as {role} of another portfolio"), key, &|s| {
                    !matches!(s, 401 | 403 | 415 | 429 | 500)
                }),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {probes} probes failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        probes > 60,
        "only {probes} probes: is the document complete?"
    );
    Ok(())
}

#[test]
fn a_scoped_key_sees_only_its_portfolios_and_reused_request_ids_conflict() -> TestResult {
    let server = Serve::start(&[])?;
    server.wait_ready()?;
    let port = server.port;
    let manager = server.key("portfolio-manager", Some("pf-mine"))?;
    let body = r#"{"request_id": "0190f7a2-3c4d-7e5f-8a9b-00000000000a",
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 300}, {"ticker": "KO", "units": 400}], "cash": 20000.0},
        "objective": {"kind": "max_sharpe"}, "constraints": {"weight_bounds": [0.0, 0.4]},
        "universe": ["MSFT", "JNJ", "PG", "WMT", "AAPL"]}"#;
    let post = |pid: &str, key: &str, body: &str| {
        common::http(
            port,
            "POST",
            &format!("/api/v1/portfolios/{pid}/optimizations"),
            body,
            Some(key),
        )
    };
    let (s, answer) = post("pf-mine", &manager, body).ok_or("no answer")?;
    assert_eq!(s, 202, "{answer}");
    // The same request again is the same request: 202, published once.
    let (s, answer) = post("pf-mine", &manager, body).ok_or("no answer")?;
    assert_eq!(s, 202, "{answer}");
    // Its id for another portfolio, or with another body: 409.
    let (s, answer) = post("pf-victim", &server.admin, body).ok_or("no answer")?;
    assert_eq!(s, 409, "{answer}");
    let problem: Value = serde_json::from_str(&answer)?;
    assert_eq!(problem["field"], "request_id", "{answer}");
    let changed = body.replace("max_sharpe", "min_volatility");
    let (s, _) = post("pf-mine", &manager, &changed).ok_or("no answer")?;
    assert_eq!(s, 409);
    // Another portfolio is out of this key's sight.
    let (s, _) = post("pf-theirs", &manager, body).ok_or("no answer")?;
    assert_eq!(s, 404);
    let rid = "0190f7a2-3c4d-7e5f-8a9b-00000000000a";
    let url = format!("/api/v1/optimizations/{rid}");
    let viewer_elsewhere = server.key("viewer", Some("pf-elsewhere"))?;
    let (s, _) = common::http(port, "GET", &url, "", Some(&viewer_elsewhere)).ok_or("no answer")?;
    assert_eq!(s, 404, "another portfolio's request is hidden");
    let (s, view) = common::http(port, "GET", &url, "", Some(&manager)).ok_or("no answer")?;
    assert_eq!(s, 200, "{view}");
    let view: Value = serde_json::from_str(&view)?;
    assert_eq!(view["portfolio_id"], "pf-mine");
    // The request's envelope records who asked.
    let out = common::ultracore()
        .args(["--data-dir", server.data_dir().to_str().ok_or("path")?])
        .args([
            "events",
            "tail",
            "esg-portfolio-events",
            "--from-beginning",
            "--no-follow",
            "--json",
        ])
        .output()?;
    let key_id = &manager["uck_".len().."uck_".len() + 12];
    let requests: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["value"]["event_type"] == "portfolio_optimization_requested")
        .collect();
    assert_eq!(requests.len(), 1, "published once: {requests:?}");
    assert_eq!(requests[0]["value"]["principal"], key_id, "{}", requests[0]);
    Ok(())
}
