//! The portfolio pages: optimizations, their results and staged orders,
//! with charts (weights before and after, ESG score and carbon intensity
//! before and after, the efficient frontier with the portfolio on it).
//! A key scoped to some portfolios sees only those.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use serde_json::Value;
use ultracore_flow::{OptimizationView, OrderView};
use ultracore_http::{Principal, Problem};
use ultracore_log::EventLog;

use crate::charts::{frontier, paired_bars, Marked};
use crate::diagram::esc;
use crate::pages::{respond, Fragment};
use crate::Console;

/// Optimizations the list page reads.
const RECENT: usize = 500;

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn when(v: &OptimizationView) -> String {
    v.requested_at
        .map_or("—".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ultracore_flow::Result<T> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::unavailable("the read models", e))?
        .map_err(|e| Problem::unavailable("the read models", e))
}

pub(crate) async fn list<L: EventLog>(
    State(c): State<Arc<Console<L>>>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Result<Response, Problem> {
    let Some((reports, _)) = c.portfolio_models() else {
        return Ok(respond(
            &f,
            &who,
            "/portfolios",
            "Portfolios",
            "<h1>Portfolios</h1><p>The portfolio services do not run in this server.</p>".into(),
        ));
    };
    let views = blocking(move || reports.recent(RECENT)).await?;
    let mut latest: BTreeMap<String, (OptimizationView, usize)> = BTreeMap::new();
    for v in views
        .into_iter()
        .filter(|v| who.can_access_portfolio(&v.portfolio_id))
    {
        latest
            .entry(v.portfolio_id.clone())
            .and_modify(|e| e.1 += 1)
            .or_insert((v, 1));
    }
    let mut s = format!(
        r#"<h1>Portfolios</h1><p class="lede">{} portfolios with optimizations (of the latest {RECENT} requests), each with its latest request.</p><table id="portfolios"><thead><tr><th>portfolio</th><th>latest request</th><th>status</th><th>objective</th><th>latency</th><th>orders staged</th><th>requests</th></tr></thead><tbody>"#,
        latest.len()
    );
    for (id, (v, n)) in &latest {
        let _ = write!(
            s,
            r#"<tr data-id="portfolio:{id}"><td><a href="/portfolios/{id}">{id}</a></td><td>{when}</td><td class="state {st}">{st}</td><td>{obj}</td><td class="num">{lat}</td><td class="num">{orders}</td><td class="num">{n}</td></tr>"#,
            id = esc(id),
            when = when(v),
            st = esc(&v.status),
            obj = esc(&objective(v)),
            lat = v.latency_ms.map_or("—".into(), |ms| format!("{ms} ms")),
            orders = v.orders_staged,
        );
    }
    s.push_str("</tbody></table>");
    Ok(respond(&f, &who, "/portfolios", "Portfolios", s))
}

fn objective(v: &OptimizationView) -> String {
    match &v.objective {
        Some(Value::Object(o)) => o
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The weights before and after of a result: after from `weights`,
/// before = after − each trade's change.
pub(crate) fn weights_before_after(result: &Value) -> Vec<(String, f64, f64)> {
    let mut rows: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    if let Some(w) = result["weights"].as_object() {
        for (t, v) in w {
            let after = v.as_f64().unwrap_or(0.0);
            rows.insert(t.clone(), (after, after));
        }
    }
    for trade in result["trades"].as_array().into_iter().flatten() {
        let (Some(t), Some(change)) = (trade["ticker"].as_str(), trade["weight_change"].as_f64())
        else {
            continue;
        };
        let e = rows.entry(t.to_owned()).or_insert((0.0, 0.0));
        e.0 = e.1 - change;
    }
    let mut out: Vec<(String, f64, f64)> = rows
        .into_iter()
        .map(|(t, (b, a))| (t, b.max(0.0), a))
        .collect();
    out.sort_by(|x, y| (y.2.max(y.1)).total_cmp(&x.2.max(x.1)).then(x.0.cmp(&y.0)));
    out
}

fn charts(result: &Value) -> String {
    let mut s = String::from(r#"<div class="charts">"#);
    let weights = weights_before_after(result);
    if !weights.is_empty() {
        s.push_str(&paired_bars("Weights before and after", &weights, pct));
    }
    let (b, a) = (&result["before"], &result["after"]);
    let figure = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    s.push_str(&paired_bars(
        "ESG score (higher is better)",
        &[(
            "ESG score".into(),
            figure(b, "esg_score"),
            figure(a, "esg_score"),
        )],
        |v| format!("{v:.1}"),
    ));
    s.push_str(&paired_bars(
        "Carbon intensity (t CO₂e / $M revenue)",
        &[(
            "carbon".into(),
            figure(b, "carbon_intensity"),
            figure(a, "carbon_intensity"),
        )],
        |v| format!("{v:.1}"),
    ));
    let points: Vec<(f64, f64)> = result["frontier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["volatility"].as_f64()?, p["expected_return"].as_f64()?)))
        .collect();
    let mut marks = vec![
        Marked {
            label: "before",
            volatility: figure(b, "volatility"),
            expected_return: figure(b, "expected_return"),
            colour: "#9ca3af",
        },
        Marked {
            label: "after",
            volatility: figure(a, "volatility"),
            expected_return: figure(a, "expected_return"),
            colour: "#4f46e5",
        },
    ];
    let free = &result["without_esg_constraints"];
    if free.is_object() {
        marks.push(Marked {
            label: "without ESG limits",
            volatility: figure(free, "volatility"),
            expected_return: figure(free, "expected_return"),
            colour: "#10b981",
        });
    }
    s.push_str(&frontier(
        if points.is_empty() {
            "Risk and return (no frontier in this result)"
        } else {
            "Efficient frontier (long-only, without ESG limits)"
        },
        &points,
        &marks,
    ));
    s.push_str("</div>");
    s
}

pub(crate) async fn portfolio<L: EventLog>(
    State(c): State<Arc<Console<L>>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(f): Query<Fragment>,
) -> Result<Response, Problem> {
    if !ultracore_http::is_valid_portfolio_id(&id) {
        return Err(Problem::bad_request(
            "invalid_id",
            "a portfolio id is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let Some((reports, orders)) = c.portfolio_models() else {
        return Err(Problem::not_found(
            "the portfolio services do not run in this server",
        ));
    };
    let pid = id.clone();
    let (views, staged): (Vec<OptimizationView>, Vec<OrderView>) =
        blocking(move || Ok((reports.optimizations_of(&pid)?, orders.of(&pid)?))).await?;
    if views.is_empty() && staged.is_empty() {
        return Err(Problem::not_found(format!(
            "portfolio '{id}' has no optimization yet"
        )));
    }
    let mut s = format!(
        r#"<h1>{}</h1><p class="lede">{} optimizations, {} orders staged.</p>"#,
        esc(&id),
        views.len(),
        staged.len()
    );
    if let Some(done) = views.iter().find(|v| v.status == "completed") {
        if let Some(result) = &done.result {
            let _ = write!(
                s,
                r#"<h2>Latest result <code>{}</code></h2>{}"#,
                esc(&done.request_id),
                charts(result)
            );
            let lines: Vec<String> = result["explanation"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|l| format!("<li>{}</li>", esc(l)))
                .collect();
            if !lines.is_empty() {
                let _ = write!(s, "<h3>Why</h3><ul>{}</ul>", lines.join(""));
            }
        }
    }
    s.push_str(r#"<h2>Optimizations</h2><table id="optimizations"><thead><tr><th>request</th><th>requested</th><th>status</th><th>objective</th><th>latency</th><th>orders</th></tr></thead><tbody>"#);
    for v in &views {
        let _ = write!(
            s,
            r#"<tr><td><code>{r}</code> <a href="/traces?correlation_id={r}">flow</a></td><td>{when}</td><td class="state {st}">{st}</td><td>{obj}</td><td class="num">{lat}</td><td class="num">{o}</td></tr>"#,
            r = esc(&v.request_id),
            when = when(v),
            st = esc(&v.status),
            obj = esc(&objective(v)),
            lat = v.latency_ms.map_or("—".into(), |ms| format!("{ms} ms")),
            o = v.orders_staged
        );
    }
    s.push_str(r#"</tbody></table><h2>Staged orders</h2><table id="orders"><thead><tr><th>order</th><th>ticker</th><th>side</th><th>units</th><th>price</th><th>notional</th><th>status</th><th>staged</th></tr></thead><tbody>"#);
    for o in &staged {
        let _ = write!(
            s,
            r#"<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{:.2}</td><td class="num">{:.2}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&o.order_id),
            esc(&o.ticker),
            esc(&o.side),
            o.units,
            o.reference_price,
            o.notional,
            esc(&o.status),
            o.staged_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    s.push_str("</tbody></table>");
    Ok(respond(&f, &who, "/portfolios", &id, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weights_before_come_from_the_trades() {
        let result = json!({
            "weights": {"MSFT": 0.4, "KO": 0.1},
            "trades": [
                {"ticker": "MSFT", "weight_change": 0.3},
                {"ticker": "XOM", "weight_change": -0.5},
                {"ticker": "KO", "weight_change": -0.2}
            ]
        });
        let rows = weights_before_after(&result);
        let get = |t: &str| rows.iter().find(|r| r.0 == t).map(|r| (r.1, r.2)).unwrap();
        let close =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12;
        assert!(close(get("MSFT"), (0.1, 0.4)));
        assert!(close(get("XOM"), (0.5, 0.0)));
        assert!(close(get("KO"), (0.3, 0.1)));
        // Largest first.
        assert_eq!(rows[0].0, "XOM");
        let html = charts(&json!({"weights": {"A": 1.0}, "trades": [], "before": {}, "after": {}}));
        assert!(html.contains("no frontier"), "{html}");
    }
}
