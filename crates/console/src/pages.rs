//! The console's pages, rendered on the server. Each page's main content
//! is also served alone with `?fragment=1`: the page's script fetches it
//! again when the live stream says what it shows changed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use ultracore_http::{Permission, Principal, Problem};
use ultracore_log::EventLog;

use crate::api::{group_rows, topic_rows, DiagramQuery};
use crate::diagram::{esc, layout, DEdge, DNode, Diagram, Direction};
use crate::topology::{EdgeKind, NodeKind, Topology};
use crate::Console;

type Shared<L> = State<Arc<Console<L>>>;

const SCRIPT: &str = include_str!("../assets/console.js");
const STYLE: &str = concat!(
    include_str!("../assets/console.css"),
    include_str!("../assets/diagram.css")
);
/// The tab's icon (browsers ask for it on every site).
const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#111827"/><path d="M9 8v10a7 7 0 0 0 14 0V8" fill="none" stroke="#a5b4fc" stroke-width="4"/></svg>"##;

/// Pages of the menu: path, label, the permission that shows it.
const MENU: &[(&str, &str, Option<Permission>)] = &[
    ("/", "Overview", None),
    (
        "/portfolios",
        "Portfolios",
        Some(Permission::ReadPortfolios),
    ),
    ("/topics", "Topics", Some(Permission::ReadMetrics)),
    ("/groups", "Consumer groups", Some(Permission::ReadMetrics)),
    ("/topology", "Topology", Some(Permission::ReadMetrics)),
    (
        "/architecture",
        "Architecture",
        Some(Permission::ReadMetrics),
    ),
    ("/traces", "Request flow", Some(Permission::ReadEvents)),
    ("/decisions", "Decisions", Some(Permission::ReadForensics)),
    ("/audit", "Audit", Some(Permission::ReadAudit)),
    ("/alerts", "Alerts", Some(Permission::ReadCompliance)),
    ("/agents", "Agents", Some(Permission::ReadMetrics)),
    ("/mesh", "Data mesh", Some(Permission::ReadDataProducts)),
    ("/access", "Access", Some(Permission::Admin)),
];

/// `Content-Security-Policy` of every page: only this server's script and
/// style, no inline script, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn html(body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A whole page around `main`.
fn page(who: &Principal, active: &str, title: &str, main: &str) -> Response {
    let mut nav = String::new();
    for (path, label, needs) in MENU {
        if needs.is_some_and(|p| !who.allows(p)) {
            continue;
        }
        let current = if *path == active {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(nav, r#"<a href="{path}"{current}>{label}</a>"#);
    }
    html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t} · UltraCore</title><link rel="icon" href="/console/assets/icon.svg"><link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head><body data-page="{active}"><header><a class="brand" href="/">UltraCore</a><nav>{nav}</nav><span class="who" title="{id}">{name} · {role}</span><button type="button" id="sign-out">Sign out</button></header><main id="main">{main}</main><footer><span id="live-status">connecting…</span></footer></body></html>"#,
        t = esc(title),
        id = esc(who.id()),
        name = esc(who.name().unwrap_or(who.id())),
        role = who.role().as_str(),
    ))
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Fragment {
    fragment: Option<String>,
}

/// The page, or only its main content for `?fragment=…`.
pub(crate) fn respond(
    f: &Fragment,
    who: &Principal,
    active: &str,
    title: &str,
    main: String,
) -> Response {
    if f.fragment.is_some() {
        return html(main);
    }
    page(who, active, title, &main)
}

pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => {
            return Problem::not_found(format!(
                "the console has no asset '{}'",
                file.chars().take(60).collect::<String>()
            ))
            .into_response()
        }
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `/favicon.ico`, which browsers fetch whatever the page says.
pub(crate) async fn favicon() -> Response {
    let mut r = ICON.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `/login`: an API key or a pasted token, and, when the server has
/// OpenID Connect sign-in, a link that starts it (carrying `next`, which
/// the sign-in checks again).
pub(crate) async fn login<L: EventLog>(
    State(c): Shared<L>,
    Query(q): Query<LoginQuery>,
) -> Response {
    login_page(
        c.guard.oidc_sign_in().is_some(),
        q.next.as_deref().unwrap_or("/"),
    )
}

fn login_page(oidc: bool, next: &str) -> Response {
    let organisation = if oidc {
        let next = ultracore_http::encode_next(next);
        format!(
            r#"<a class="oidc" id="sign-in-oidc" href="{}">Sign in with your organisation</a><p class="or">or</p>"#,
            esc(&format!("{}?next={next}", ultracore_http::oidc::LOGIN_PATH))
        )
    } else {
        String::new()
    };
    html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · UltraCore</title><link rel="icon" href="/console/assets/icon.svg"><link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head><body data-page="/login"><main class="login"><h1>UltraCore</h1>{organisation}<form id="sign-in"><label>API key <input type="password" name="api_key" autocomplete="off" placeholder="uck_…"></label><p class="or">or</p><label>Identity provider token <textarea name="token" rows="3" placeholder="a JWT from your identity provider"></textarea></label><button type="submit">Sign in</button><p id="sign-in-error" role="alert"></p></form><p class="hint">{hint}</p></main></body></html>"#,
        hint = esc("Keys are made with `ultracore keys create --role viewer|auditor|admin …`. The session lasts 8 hours, or 30 minutes unused.")
    ))
}

/// An edge's label: its rate, none when nothing flows (or a group's
/// membership).
pub(crate) fn rate_label(e: &crate::topology::Edge) -> String {
    if e.kind == EdgeKind::MemberOf || e.rate < 0.05 {
        String::new()
    } else {
        fmt_rate(e.rate)
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}/s")
    } else {
        format!("{r:.1}/s")
    }
}

fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Group node class by lag and status.
fn lag_class(lag: Option<u64>, status: Option<&str>) -> &'static str {
    match status {
        Some("STALL" | "STOP" | "REWIND" | "ERR") => "bad",
        Some("WARN") => "warn",
        _ if lag.unwrap_or(0) > 0 => "lagging",
        _ => "",
    }
}

/// A node's badge as the topology shows it.
pub(crate) fn badge(n: &crate::topology::Node) -> String {
    match n.kind {
        NodeKind::Service => n.state.clone().unwrap_or_else(|| "elsewhere".into()),
        NodeKind::Topic => match n.records {
            Some(r) => format!("{} records", num(r)),
            None => String::new(),
        },
        NodeKind::Group => {
            let lag = format!("lag {}", num(n.lag.unwrap_or(0)));
            match &n.status {
                Some(s) => format!("{lag} · {s}"),
                None => lag,
            }
        }
    }
}

pub(crate) fn node_class(n: &crate::topology::Node) -> String {
    let kind = match n.kind {
        NodeKind::Service => "service",
        NodeKind::Topic => "topic",
        NodeKind::Group => "group",
    };
    let extra = match n.kind {
        NodeKind::Group => lag_class(n.lag, n.status.as_deref()),
        NodeKind::Service if n.state.as_deref().is_some_and(|s| s == "failed") => "bad",
        NodeKind::Service if n.state.as_deref().is_some_and(|s| s == "restarting") => "warn",
        _ => "",
    };
    format!("{kind} {extra}").trim().to_owned()
}

/// The topology's diagram: every node with an edge, in four columns —
/// services that only write, topics, consumer groups, the services that
/// read (whose writes go back to the topics column); nodes without any edge
/// are listed beside it.
pub(crate) fn topology_diagram(t: &Topology) -> (Diagram, Vec<&crate::topology::Node>) {
    let consumers: std::collections::BTreeSet<&str> = t
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::MemberOf)
        .map(|e| e.to.as_str())
        .collect();
    let linked: std::collections::BTreeSet<&str> = t
        .edges
        .iter()
        .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        .collect();
    let mut idle = Vec::new();
    let mut nodes = Vec::new();
    for n in &t.nodes {
        if !linked.contains(n.id.as_str()) {
            idle.push(n);
            continue;
        }
        let rank = match n.kind {
            NodeKind::Service if consumers.contains(n.id.as_str()) => 3,
            NodeKind::Service => 0,
            NodeKind::Topic => 1,
            NodeKind::Group => 2,
        };
        nodes.push(DNode {
            id: n.id.clone(),
            label: n.name.clone(),
            badge: badge(n),
            class: node_class(n),
            rank: Some(rank),
        });
    }
    let edges = t
        .edges
        .iter()
        .map(|e| DEdge {
            from: e.from.clone(),
            to: e.to.clone(),
            label: rate_label(e),
            class: format!("{:?}", e.kind).to_lowercase(),
        })
        .collect();
    (
        Diagram {
            nodes,
            edges,
            bands: Vec::new(),
        },
        idle,
    )
}

/// A hash of the graph's shape (nodes and edges, not their numbers): the
/// page fetches a new drawing only when it changes.
pub(crate) fn structure(t: &Topology) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for n in &t.nodes {
        n.id.hash(&mut h);
    }
    for e in &t.edges {
        (&e.from, &e.to).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn topology_main(t: &Topology) -> String {
    let (d, idle) = topology_diagram(t);
    let svg = if d.nodes.is_empty() {
        "<p class=\"empty\">No service has produced or consumed yet.</p>".to_owned()
    } else {
        layout(&d, Direction::LeftRight).to_svg("UltraCore topology")
    };
    let mut idle_list = String::new();
    for n in idle {
        let label = if n.kind == NodeKind::Topic {
            format!(r#"<a href="/topics/{0}">{0}</a>"#, esc(&n.name))
        } else {
            esc(&n.name)
        };
        let _ = write!(
            idle_list,
            r#"<li class="node {c}" data-id="{id}">{label} <span class="badge">{b}</span></li>"#,
            c = node_class(n),
            id = esc(&n.id),
            b = esc(&badge(n))
        );
    }
    format!(
        r#"<h1>Topology</h1><p class="lede">Services, the topics they write, the consumer groups that read them. Rates over the last {w:.0} s; lag badges live.</p><div id="topology" data-structure="{s}">{svg}</div><h2>Not connected yet</h2><p class="lede">Topics no service wrote or read since the start, and services that use no topic (tasks).</p><ul id="idle-topics" class="chips">{idle_list}</ul>"#,
        w = t.window_seconds,
        s = structure(t),
    )
}

pub(crate) async fn topology<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    let t = c.topology();
    respond(&f, &who, "/topology", "Topology", topology_main(&t))
}

fn overview_main<L: EventLog>(c: &Console<L>, who: &Principal) -> String {
    let mut s = String::from("<h1>Overview</h1>");
    if !who.allows(Permission::ReadMetrics) {
        let _ = write!(
            s,
            r#"<p class="lede">Signed in as {} ({}). The operations pages need the read-metrics permission (auditor, admin); portfolios are read through the API (<code>/api/v1/portfolios/{{id}}</code>).</p>"#,
            esc(who.name().unwrap_or(who.id())),
            who.role().as_str()
        );
        return s;
    }
    let t = c.topology();
    let services = c.services();
    let ok = services.values().filter(|s| *s == "running").count();
    let groups = group_rows(c);
    let lagging = groups.iter().filter(|g| g.lag > 0).count();
    let alerts: Vec<&crate::api::GroupRow> = groups
        .iter()
        .filter(|g| g.status.as_deref().is_some_and(|s| s != "OK"))
        .collect();
    let dead: Vec<(String, u64)> = t
        .nodes
        .iter()
        .filter(|n| {
            n.kind == NodeKind::Topic
                && n.name.ends_with(ultracore_log::DLQ_SUFFIX)
                && n.records.unwrap_or(0) > 0
        })
        .map(|n| (n.name.clone(), n.records.unwrap_or(0)))
        .collect();
    let _ = write!(
        s,
        r#"<section class="cards"><div class="card"><b>{ok}/{all}</b> services running</div><div class="card"><b>{topics}</b> topics</div><div class="card"><b>{g}</b> consumer groups, {lagging} lagging</div><div class="card {dc}"><b>{d}</b> dead-letter topics with records</div></section>"#,
        all = services.len(),
        topics = t.nodes.iter().filter(|n| n.kind == NodeKind::Topic).count(),
        g = groups.len(),
        d = dead.len(),
        dc = if dead.is_empty() { "" } else { "warn" },
    );
    s.push_str("<section><h2>Services</h2><table><thead><tr><th>service</th><th>state</th><th>layer</th></tr></thead><tbody>");
    for (name, state) in &services {
        let _ = write!(
            s,
            r#"<tr><td>{n}</td><td class="state {st}">{st}</td><td>{l}</td></tr>"#,
            n = esc(name),
            st = esc(state),
            l = crate::architecture::service_layer(name)
        );
    }
    s.push_str("</tbody></table></section>");
    let mut per_topic: BTreeMap<&str, f64> = BTreeMap::new();
    for e in t.edges.iter().filter(|e| e.kind == EdgeKind::Produces) {
        *per_topic
            .entry(e.to.trim_start_matches("topic:"))
            .or_default() += e.rate;
    }
    let mut busiest: Vec<(&str, f64)> = per_topic.into_iter().collect();
    busiest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    s.push_str("<section><h2>Events per second</h2><table><thead><tr><th>topic</th><th>events/s</th></tr></thead><tbody>");
    for (topic, rate) in busiest.iter().take(20) {
        let _ = write!(
            s,
            r#"<tr><td><a href="/topics/{t}">{t}</a></td><td class="num">{r}</td></tr>"#,
            t = esc(topic),
            r = fmt_rate(*rate)
        );
    }
    s.push_str("</tbody></table></section><section><h2>Errors and alerts</h2><ul>");
    for (name, records) in &dead {
        let _ = write!(
            s,
            r#"<li class="warn"><a href="/topics/{n}">{n}</a>: {r} records could not be handled</li>"#,
            n = esc(name),
            r = num(*records)
        );
    }
    for (name, state) in services.iter().filter(|(_, s)| *s != "running") {
        let _ = write!(
            s,
            r#"<li class="warn">service {} is {}</li>"#,
            esc(name),
            esc(state)
        );
    }
    for g in &alerts {
        let _ = write!(
            s,
            r#"<li class="bad">group {} is {} (lag {})</li>"#,
            esc(&g.group),
            esc(g.status.as_deref().unwrap_or("")),
            num(g.lag)
        );
    }
    if dead.is_empty() && alerts.is_empty() && ok == services.len() {
        s.push_str("<li>none</li>");
    }
    s.push_str("</ul></section>");
    let ops = c.recent_ops_alerts();
    s.push_str(r#"<section><h2>Lag status changes</h2><p class="lede">From the lag monitor, on <code>ops.alerts</code>, newest first.</p><table id="ops-alerts"><thead><tr><th>when</th><th>group</th><th>status</th><th>lag</th><th>behind</th><th>worst partition</th></tr></thead><tbody>"#);
    for a in ops.iter().take(20) {
        let worst = a.partitions.first().map_or(String::new(), |p| {
            format!(
                "{} / {}: {} ({})",
                p.topic,
                p.partition,
                p.status.as_str(),
                num(p.lag)
            )
        });
        let _ = write!(
            s,
            r#"<tr class="{cls}"><td>{when}</td><td>{g}</td><td>{from} → {to}</td><td class="num">{lag}</td><td class="num">{behind}</td><td>{worst}</td></tr>"#,
            cls = lag_class(Some(a.total_lag), Some(a.status.as_str())),
            when = a.evaluated_at.format("%Y-%m-%d %H:%M:%S"),
            g = esc(&a.group),
            from = a.previous_status.as_str(),
            to = a.status.as_str(),
            lag = num(a.total_lag),
            behind = a
                .max_time_lag_seconds
                .map_or("—".into(), |t| format!("{t:.1} s")),
            worst = esc(&worst),
        );
    }
    if ops.is_empty() {
        s.push_str(r#"<tr><td colspan="6">no change since the monitor started</td></tr>"#);
    }
    s.push_str("</tbody></table></section>");
    s
}

pub(crate) async fn overview<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    let main = overview_main(&c, &who);
    respond(&f, &who, "/", "Overview", main)
}

pub(crate) async fn topics<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    let rows = topic_rows(&c);
    let mut s = format!(
        r#"<h1>Topics</h1><p class="lede">{} topics. Producers are the services that wrote to a topic since this server started; consumers, the groups that read it.</p><input type="search" id="filter-rows" placeholder="filter topics" aria-label="filter topics"><table id="topics"><thead><tr><th>topic</th><th>partitions</th><th>records</th><th>retention</th><th>events/s</th><th>producers</th><th>consumer groups</th></tr></thead><tbody>"#,
        rows.len()
    );
    for r in &rows {
        let _ = write!(
            s,
            r#"<tr data-id="topic:{n}"><td><a href="/topics/{n}">{n}</a></td><td class="num">{p}</td><td class="num">{rec}</td><td>{ret}</td><td class="num">{rate}</td><td>{prod}</td><td>{cons}</td></tr>"#,
            n = esc(&r.name),
            p = r.partitions.len(),
            rec = num(r.records),
            ret = esc(&r.retention),
            rate = fmt_rate(r.rate),
            prod = esc(&r.producers.join(", ")),
            cons = esc(&r.consumers.join(", ")),
        );
    }
    s.push_str("</tbody></table>");
    respond(&f, &who, "/topics", "Topics", s)
}

pub(crate) async fn topic<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(f): Query<Fragment>,
) -> Response {
    let rows = topic_rows(&c);
    let Some(r) = rows.iter().find(|r| r.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            page(
                &who,
                "/topics",
                "Topic not found",
                &format!(
                    "<h1>Topic not found</h1><p>No topic '{}' on this log. <a href=\"/topics\">All topics</a></p>",
                    esc(&name.chars().take(100).collect::<String>())
                ),
            ),
        )
            .into_response();
    };
    let mut s = format!(
        r#"<h1>{n}</h1><p class="lede">Retention {ret}; {rate}; produced by {prod}; read by {cons}.</p><table><thead><tr><th>partition</th><th>log start</th><th>high watermark</th><th>records</th></tr></thead><tbody>"#,
        n = esc(&r.name),
        ret = esc(&r.retention),
        rate = fmt_rate(r.rate),
        prod = esc(&if r.producers.is_empty() {
            "no service yet".into()
        } else {
            r.producers.join(", ")
        }),
        cons = esc(&if r.consumers.is_empty() {
            "no group".into()
        } else {
            r.consumers.join(", ")
        }),
    );
    for p in &r.partitions {
        let _ = write!(
            s,
            r#"<tr><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            p.partition,
            num(p.log_start_offset),
            num(p.high_watermark),
            num(p.high_watermark - p.log_start_offset)
        );
    }
    let _ = write!(
        s,
        r#"</tbody></table><h2>Messages</h2><form id="browse" data-topic="{n}"><label>partition <input name="partition" type="number" min="0" placeholder="all"></label><label>offset <input name="offset" type="number" min="0" placeholder="latest"></label><label>from time <input name="from_time" placeholder="2026-12-06T08:00:00Z"></label><label>key <input name="key"></label><label>JSON path <input name="filter" placeholder="$.payload.portfolio_id=pf-1"></label><label>limit <input name="limit" type="number" min="1" max="500" value="50"></label><button type="submit">Read</button></form><p id="browse-status"></p><div id="messages"></div>"#,
        n = esc(&r.name)
    );
    respond(&f, &who, "/topics", &r.name.clone(), s)
}

/// An inline sparkline of a lag trend.
fn sparkline(trend: &[(i64, u64)]) -> String {
    if trend.len() < 2 {
        return String::new();
    }
    let max = trend.iter().map(|t| t.1).max().unwrap_or(0).max(1) as f64;
    let (w, h) = (120.0, 24.0);
    let step = w / (trend.len() - 1) as f64;
    let points: Vec<String> = trend
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", i as f64 * step, h - (*v as f64 / max) * h))
        .collect();
    format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-hidden="true"><polyline points="{}"/></svg>"#,
        points.join(" ")
    )
}

pub(crate) async fn groups<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    let rows = group_rows(&c);
    let mut s = format!(
        r#"<h1>Consumer groups</h1><p class="lede">{} groups. Lag is the records a group has not committed; the trend covers the last minute. Status from the lag monitor (Burrow's rules) when it runs.</p><table id="groups"><thead><tr><th>group</th><th>status</th><th>lag</th><th>time lag</th><th>trend</th><th>partitions</th></tr></thead><tbody>"#,
        rows.len()
    );
    for g in &rows {
        let mut parts = String::new();
        for p in &g.partitions {
            let _ = write!(
                parts,
                "<li>{} / {}: committed {}, end {}, lag <b>{}</b>{}{}</li>",
                esc(&p.topic),
                p.partition,
                p.committed.map_or("none".into(), num),
                num(p.high_watermark),
                num(p.lag),
                p.time_lag_seconds
                    .map_or(String::new(), |t| format!(", {t:.1} s behind")),
                p.status
                    .as_deref()
                    .map_or(String::new(), |s| format!(" · {}", esc(s))),
            );
        }
        let _ = write!(
            s,
            r#"<tr data-id="group:{n}" class="{cls}"><td>{n}</td><td>{st}</td><td class="num lag">{lag}</td><td class="num">{tl}</td><td>{spark}</td><td><details><summary>{np} partitions</summary><ul>{parts}</ul></details></td></tr>"#,
            n = esc(&g.group),
            cls = lag_class(Some(g.lag), g.status.as_deref()),
            st = esc(g.status.as_deref().unwrap_or("—")),
            lag = num(g.lag),
            tl = g
                .time_lag_seconds
                .map_or("—".to_owned(), |t| format!("{t:.1} s")),
            spark = sparkline(&g.trend),
            np = g.partitions.len(),
        );
    }
    s.push_str("</tbody></table>");
    respond(&f, &who, "/groups", "Consumer groups", s)
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ArchitectureQuery {
    fragment: Option<String>,
    layers: Option<String>,
    direction: Option<String>,
}

pub(crate) async fn architecture<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ArchitectureQuery>,
) -> Result<Response, Problem> {
    let (layers, direction) =
        DiagramQuery::from_parts(q.layers.clone(), q.direction.clone()).parse()?;
    let a = c.architecture();
    let svg = layout(&a.diagram(&layers), direction).to_svg("UltraCore architecture");
    if q.fragment.as_deref() == Some("diagram") {
        return Ok(html(svg));
    }
    let query = format!(
        "layers={}&direction={}",
        esc(&layers.join(",")),
        if direction == Direction::LeftRight {
            "lr"
        } else {
            "td"
        }
    );
    let mut s = format!(
        r#"<h1>Architecture</h1><p class="lede">{n} components in {l} layers, from what runs in this server: its services, the log's topics, its stores and endpoints.</p><form id="arch-controls"><fieldset><legend>Layers</legend>"#,
        n = a.components.len(),
        l = a.layers.len()
    );
    for l in &a.layers {
        let checked = if layers.is_empty() || layers.iter().any(|x| x == l) {
            " checked"
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<label><input type="checkbox" name="layer" value="{l}"{checked}> {l}</label>"#
        );
    }
    let (td, lr) = if direction == Direction::LeftRight {
        ("", " selected")
    } else {
        (" selected", "")
    };
    let _ = write!(
        s,
        r#"</fieldset><label>Layout <select name="direction"><option value="td"{td}>top-down</option><option value="lr"{lr}>left-right</option></select></label><label>Search <input type="search" name="q" placeholder="component, protocol, function"></label><a id="export-svg" href="/api/v1/architecture/diagram.svg?{query}" download>Export SVG</a> <a id="export-drawio" href="/api/v1/architecture/diagram.drawio?{query}" download>Export draw.io</a></form><div id="diagram">{svg}</div><h2>Component explorer</h2><div id="components">"#
    );
    for comp in &a.components {
        let (inbound, outbound) = a.connections_of(&comp.id);
        let list = |cs: &[&crate::architecture::Connection], inbound: bool| -> String {
            if cs.is_empty() {
                return "<li>none</li>".into();
            }
            cs.iter()
                .map(|c| {
                    let other = if inbound { &c.from } else { &c.to };
                    format!("<li>{} <i>{}</i></li>", esc(other), esc(&c.kind))
                })
                .collect()
        };
        let _ = write!(
            s,
            r#"<details class="component" data-layer="{layer}" data-id="{id}" data-text="{text}"><summary><b>{name}</b> <span class="tag">{layer}</span> <span class="tag">{kind}</span>{live}</summary><p>{plain}</p><p class="technical">{tech}</p><p>Protocols: {protocols}</p>{functions}<div class="conn"><div><h4>Inbound</h4><ul>{inb}</ul></div><div><h4>Outbound</h4><ul>{outb}</ul></div></div></details>"#,
            layer = comp.layer,
            id = esc(&comp.id),
            text = esc(&format!(
                "{} {} {} {} {}",
                comp.name,
                comp.technical,
                comp.plain,
                comp.protocols.join(" "),
                comp.functions.join(" ")
            )
            .to_lowercase()),
            name = esc(&comp.name),
            kind = comp.kind,
            live = if comp.live {
                ""
            } else {
                r#" <span class="tag bad">not running</span>"#
            },
            plain = esc(&comp.plain),
            tech = esc(&comp.technical),
            protocols = esc(&comp.protocols.join(", ")),
            functions = if comp.functions.is_empty() {
                String::new()
            } else {
                format!("<p>Functions: {}</p>", esc(&comp.functions.join(", ")))
            },
            inb = list(&inbound, true),
            outb = list(&outbound, false),
        );
    }
    s.push_str("</div>");
    Ok(respond(
        &Fragment {
            fragment: q.fragment,
        },
        &who,
        "/architecture",
        "Architecture",
        s,
    ))
}

pub(crate) async fn traces<L: EventLog>(
    State(_c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    let s = r#"<h1>Request flow</h1><p class="lede">The path a real request took through services and topics, with the time spent at each hop. Give its correlation id (the request id of an optimization, for one).</p><form id="trace-form"><label>Correlation id <input name="correlation_id" required size="40"></label><button type="submit">Show</button></form><div id="trace"></div>"#;
    respond(&f, &who, "/traces", "Request flow", s.to_owned())
}

/// A page whose content the page's script reads from the platform's own
/// JSON API (each under its own access rule) and renders.
fn data_page(
    who: &Principal,
    f: &Fragment,
    path: &str,
    title: &str,
    view: &str,
    lede: &str,
) -> Response {
    respond(
        f,
        who,
        path,
        title,
        format!(
            r#"<h1>{t}</h1><p class="lede">{l}</p><section id="view" data-view="{view}"><p class="loading">loading…</p></section>"#,
            t = esc(title),
            l = esc(lede)
        ),
    )
}

pub(crate) async fn decisions(
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    data_page(&who, &f, "/decisions", "Decisions and forensics", "decisions",
        "Trading decisions newest first, each with its SHAP explanation (a waterfall from the model's expected value to its margin), the words, and the regime probabilities; per-symbol statistics and the regime distribution over the last days.")
}

pub(crate) async fn audit(
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    data_page(&who, &f, "/audit", "Audit trail", "audit",
        "The signed checkpoint of the Merkle tree over every record, a verification of the whole log against it, and the inclusion proof of one record.")
}

pub(crate) async fn alerts(
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    data_page(&who, &f, "/alerts", "Compliance alerts", "alerts",
        "Personal data found in agent answers and conversations: what and where, never the value (a keyed hash). New alerts appear live.")
}

pub(crate) async fn agents(
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    data_page(&who, &f, "/agents", "Agents", "agents",
        "Every agent execution counted by the analytics service: success rate and duration percentiles per agent.")
}

pub(crate) async fn mesh(
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    data_page(&who, &f, "/mesh", "Data mesh", "mesh",
        "The data products: search (with typos forgiven), quality tier, freshness, and the lineage of each from what the services recorded.")
}

pub(crate) async fn access<L: EventLog>(
    State(c): Shared<L>,
    Extension(who): Extension<Principal>,
    Query(f): Query<Fragment>,
) -> Response {
    let mut s = format!(
        r#"<h1>Access</h1><p class="lede">{} console sessions open. API keys of this data directory (their secrets are never stored; revoke with <code>ultracore keys revoke ID</code>).</p><table><thead><tr><th>key id</th><th>name</th><th>role</th><th>portfolios</th><th>created</th><th>revoked</th></tr></thead><tbody>"#,
        c.guard.sessions().len()
    );
    match c.guard.authenticator().keys().list() {
        Ok(keys) => {
            for k in keys {
                let _ = write!(
                    s,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(k.id.as_str()),
                    esc(k.name.as_deref().unwrap_or("")),
                    k.role.as_str(),
                    esc(&k.portfolios.to_string()),
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    k.revoked_at.map_or(String::new(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
                );
            }
        }
        Err(e) => {
            let _ = write!(
                s,
                "<tr><td colspan=6>the key file could not be read: {}</td></tr>",
                esc(&e.to_string())
            );
        }
    }
    s.push_str("</tbody></table>");
    respond(&f, &who, "/access", "Access", s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_sparklines_render() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(fmt_rate(2.25), "2.2/s");
        assert_eq!(fmt_rate(1234.0), "1234/s");
        assert_eq!(sparkline(&[(0, 1)]), "");
        let s = sparkline(&[(0, 0), (1, 10), (2, 5)]);
        assert!(s.contains("0.0,24.0 60.0,0.0 120.0,12.0"), "{s}");
        assert_eq!(lag_class(Some(0), Some("STALL")), "bad");
        assert_eq!(lag_class(Some(3), None), "lagging");
        assert_eq!(lag_class(Some(0), Some("OK")), "");
    }

    #[tokio::test]
    async fn the_login_page_offers_the_organisation_sign_in_only_when_configured() {
        use axum::body::to_bytes;
        let page = |r: Response| async move {
            String::from_utf8(to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
        };
        let without = page(login_page(false, "/")).await;
        assert!(!without.contains("Sign in with your organisation"));
        assert!(without.contains("id=\"sign-in\""));
        let with = page(login_page(true, "/portfolios/pf-1?a=1&b=\"x")).await;
        assert!(with.contains("Sign in with your organisation"));
        assert!(
            with.contains(r#"href="/console/oidc/login?next=/portfolios/pf-1%3Fa%3D1%26b%3D%22x""#),
            "{with}"
        );
        assert!(with.contains("id=\"sign-in\""), "the other forms stay");
    }
}
