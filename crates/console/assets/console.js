// UltraCore console: sign-in, live updates over SSE, the message browser,
// the architecture explorer and the request-flow view. No framework, no
// build step; everything the pages show is rendered on the server.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

async function problem(res) {
  try {
    const p = await res.json();
    return p.detail || p.title || res.statusText;
  } catch (_) {
    return res.status + " " + res.statusText;
  }
}

// ---- sign-in and sign-out ----------------------------------------------
function safeNext() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function setupSignIn() {
  const form = $("#sign-in");
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = form.api_key.value.trim();
    const token = form.token.value.trim();
    const body = key ? { api_key: key } : { token };
    const res = await fetch("/console/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (res.ok) {
      location.assign(safeNext());
    } else {
      $("#sign-in-error").textContent = await problem(res);
    }
  });
}

function setupSignOut() {
  const button = $("#sign-out");
  if (!button) return;
  button.addEventListener("click", async () => {
    const who = await fetch("/console/session", { credentials: "same-origin" });
    const csrf = who.ok ? (await who.json()).csrf_token : "";
    await fetch("/console/session", {
      method: "DELETE",
      headers: { "x-csrf-token": csrf || "" },
      credentials: "same-origin",
    });
    location.assign("/login");
  });
}

// ---- live updates --------------------------------------------------------
let lastStructure = null;
let lastState = null;

function byId(id) {
  return $$(`[data-id="${CSS.escape(id)}"]`);
}

// Elements of the drawn topology by node id and by edge, built once per
// drawing: a tick then touches only what changed.
let index = null;
function topologyIndex() {
  if (index) return index;
  index = { nodes: new Map(), edges: new Map() };
  for (const el of $$("#topology [data-id], #idle-topics [data-id]")) {
    const list = index.nodes.get(el.dataset.id) || [];
    list.push(el);
    index.nodes.set(el.dataset.id, list);
  }
  for (const g of $$("#topology g.edge")) index.edges.set(g.dataset.from + ">" + g.dataset.to, g.querySelector(".rate"));
  return index;
}

function updateTopology(tick) {
  const holder = $("#topology");
  if (!holder) return;
  if (holder.dataset.structure !== tick.structure) {
    index = null;
    refetch();
    return;
  }
  const { nodes, edges } = topologyIndex();
  for (const [id, badge, cls] of tick.nodes) {
    for (const el of nodes.get(id) || []) {
      const b = el.querySelector(".badge");
      if (b && b.textContent !== badge) b.textContent = badge;
      el.setAttribute("class", "node " + cls);
    }
  }
  for (const [from, to, label] of tick.edges) {
    const rate = edges.get(from + ">" + to);
    if (rate && rate.textContent !== label) rate.textContent = label;
  }
}

let fetching = false;
async function refetch() {
  if (fetching) return;
  fetching = true;
  try {
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    const res = await fetch(url, { credentials: "same-origin" });
    if (res.status === 401 || res.redirected) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname));
      return;
    }
    if (!res.ok) return;
    const html = await res.text();
    const main = $("#main");
    const open = $$("details[open]", main).map((d) => d.closest("[data-id]")?.dataset.id);
    const filter = $("#filter-rows")?.value || "";
    main.innerHTML = html;
    index = null;
    for (const id of open) if (id) byId(id).forEach((el) => el.querySelector("details")?.setAttribute("open", ""));
    if ($("#filter-rows")) {
      $("#filter-rows").value = filter;
      filterRows();
    }
    setupFilter();
  } finally {
    fetching = false;
  }
}

function setupLive() {
  const page = document.body.dataset.page;
  if (!page || page === "/login") return;
  const status = $("#live-status");
  const source = new EventSource("/console/stream");
  source.addEventListener("open", () => { if (status) status.textContent = "live"; });
  source.addEventListener("error", () => { if (status) status.textContent = "reconnecting…"; });
  const livePages = new Set(["/", "/topics", "/groups"]);
  source.addEventListener("tick", (e) => {
    const tick = JSON.parse(e.data);
    if (status) status.textContent = "live · " + new Date(tick.t).toLocaleTimeString();
    if (!tick.structure) return;
    if (page === "/topology") {
      updateTopology(tick);
    } else if (livePages.has(location.pathname)) {
      if (lastState !== null && (tick.state !== lastState || tick.structure !== lastStructure)) refetch();
    }
    lastState = tick.state;
    lastStructure = tick.structure;
  });
}

// ---- tables --------------------------------------------------------------
function filterRows() {
  const input = $("#filter-rows");
  if (!input) return;
  const q = input.value.toLowerCase();
  for (const row of $$("tbody tr", $("#topics") || document)) {
    row.hidden = q !== "" && !row.textContent.toLowerCase().includes(q);
  }
}

function setupFilter() {
  const input = $("#filter-rows");
  if (input && !input.dataset.bound) {
    input.dataset.bound = "1";
    input.addEventListener("input", filterRows);
  }
}

// ---- message browser -----------------------------------------------------
function setupBrowser() {
  const form = $("#browse");
  if (!form) return;
  const read = async (e) => {
    if (e) e.preventDefault();
    const params = new URLSearchParams();
    for (const el of form.elements) {
      if (el.name && el.value !== "") params.set(el.name, el.value);
    }
    const url = `/api/v1/topics/${encodeURIComponent(form.dataset.topic)}/messages?${params}`;
    $("#browse-status").textContent = "reading…";
    const res = await fetch(url, { credentials: "same-origin" });
    const out = $("#messages");
    out.replaceChildren();
    if (!res.ok) {
      $("#browse-status").textContent = await problem(res);
      return;
    }
    const body = await res.json();
    $("#browse-status").textContent = `${body.returned} records (${body.scanned} read)`;
    const table = document.createElement("table");
    table.className = "messages";
    table.append(document.createElement("thead"));
    const head = document.createElement("tr");
    for (const h of ["partition", "offset", "time", "key", "event", "value"]) head.append(text("th", h));
    table.tHead.append(head);
    const tbody = document.createElement("tbody");
    for (const r of body.records) {
      const tr = document.createElement("tr");
      const v = r.value || {};
      tr.append(
        text("td", r.partition, "num"),
        text("td", r.offset, "num"),
        text("td", new Date(r.timestamp).toISOString()),
        text("td", r.key ?? ""),
        text("td", r.envelope ? v.event_type : "(not an envelope)"),
      );
      const cell = document.createElement("td");
      const details = document.createElement("details");
      details.append(text("summary", r.envelope ? (v.correlation_id ? "correlation " + v.correlation_id : v.event_id) : "raw"));
      details.append(text("pre", JSON.stringify(r.value, null, 2)));
      if (Object.keys(r.headers).length) details.append(text("pre", "headers " + JSON.stringify(r.headers, null, 2)));
      cell.append(details);
      tr.append(cell);
      tbody.append(tr);
    }
    table.append(tbody);
    out.append(table);
  };
  form.addEventListener("submit", read);
  read();
}

// ---- architecture --------------------------------------------------------
function setupArchitecture() {
  const form = $("#arch-controls");
  if (!form) return;
  const query = () => {
    const layers = $$("input[name=layer]:checked", form).map((i) => i.value);
    const all = $$("input[name=layer]", form).length;
    const params = new URLSearchParams();
    params.set("layers", layers.length === all ? "" : layers.join(","));
    params.set("direction", form.direction.value);
    return params;
  };
  const redraw = async () => {
    const params = query();
    $("#export-svg").href = "/api/v1/architecture/diagram.svg?" + params;
    $("#export-drawio").href = "/api/v1/architecture/diagram.drawio?" + params;
    params.set("fragment", "diagram");
    const res = await fetch("/architecture?" + params, { credentials: "same-origin" });
    if (res.ok) $("#diagram").innerHTML = await res.text();
    explore();
  };
  const explore = () => {
    const q = form.q.value.trim().toLowerCase();
    const layers = new Set($$("input[name=layer]:checked", form).map((i) => i.value));
    for (const c of $$(".component")) {
      c.hidden = !layers.has(c.dataset.layer) || (q !== "" && !c.dataset.text.includes(q));
    }
  };
  form.addEventListener("change", (e) => { if (e.target.name !== "q") redraw(); });
  form.q.addEventListener("input", explore);
  form.addEventListener("submit", (e) => e.preventDefault());
  $("#diagram").addEventListener("click", (e) => {
    const node = e.target.closest("[data-id]");
    if (!node) return;
    const target = $(`.component[data-id="${CSS.escape(node.dataset.id)}"]`);
    if (target) { target.open = true; target.scrollIntoView({ block: "center" }); }
  });
}

// ---- request flow ----------------------------------------------------------
function setupTraces() {
  const form = $("#trace-form");
  if (!form) return;
  const show = async (e) => {
    if (e) e.preventDefault();
    const id = form.correlation_id.value.trim();
    if (!id) return;
    history.replaceState(null, "", "/traces?correlation_id=" + encodeURIComponent(id));
    const out = $("#trace");
    out.replaceChildren(text("p", "loading…"));
    const res = await fetch("/api/v1/traces/" + encodeURIComponent(id), { credentials: "same-origin" });
    if (!res.ok) { out.replaceChildren(text("p", await problem(res), "bad")); return; }
    renderTrace(out, await res.json());
  };
  form.addEventListener("submit", show);
  const given = new URLSearchParams(location.search).get("correlation_id");
  if (given) { form.correlation_id.value = given; show(); }
}

function renderTrace(out, trace) {
  out.replaceChildren();
  const hops = trace.hops || [];
  if (!hops.length) { out.append(text("p", "No span recorded for this correlation id (yet).")); return; }
  const start = Math.min(...hops.map((h) => h.start_ms));
  const end = Math.max(...hops.map((h) => h.end_ms));
  const span = Math.max(1, end - start);
  out.append(text("p", `${hops.length} hops over ${span.toFixed(1)} ms; trace ${trace.trace_ids.join(", ")}`));
  const table = document.createElement("table");
  table.className = "flow";
  const head = document.createElement("tr");
  for (const h of ["#", "hop", "service", "topic", "started", "took", "timeline"]) head.append(text("th", h));
  table.append(head);
  hops.forEach((h, i) => {
    const tr = document.createElement("tr");
    tr.dataset.kind = h.kind;
    const bar = document.createElement("div");
    bar.className = "bar " + h.kind;
    bar.style.marginLeft = ((h.start_ms - start) / span * 100).toFixed(2) + "%";
    bar.style.width = Math.max(0.5, (h.end_ms - h.start_ms) / span * 100).toFixed(2) + "%";
    const cell = document.createElement("td");
    cell.className = "timeline";
    cell.append(bar);
    tr.append(
      text("td", i + 1, "num"),
      text("td", h.name),
      text("td", h.service),
      text("td", h.topic || ""),
      text("td", "+" + (h.start_ms - start).toFixed(1) + " ms", "num"),
      text("td", (h.end_ms - h.start_ms).toFixed(1) + " ms", "num"),
      cell,
    );
    table.append(tr);
  });
  out.append(table);
}


// ---- pages read from the platform's APIs ---------------------------------
let csrfToken = null;
async function csrf() {
  if (csrfToken === null) {
    const who = await fetch("/console/session", { credentials: "same-origin" });
    csrfToken = who.ok ? (await who.json()).csrf_token || "" : "";
  }
  return csrfToken;
}

async function getJson(url) {
  const res = await fetch(url, { credentials: "same-origin" });
  if (!res.ok) throw new Error(await problem(res));
  return res.json();
}

async function postJson(url, body) {
  const res = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": await csrf() },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(await problem(res));
  return res.json();
}

function table(headers, rows, id) {
  const t = document.createElement("table");
  if (id) t.id = id;
  const head = document.createElement("tr");
  for (const h of headers) head.append(text("th", h));
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of r) {
      if (c instanceof Node) { const td = document.createElement("td"); td.append(c); tr.append(td); }
      else tr.append(text("td", c ?? "", typeof c === "number" ? "num" : undefined));
    }
    tbody.append(tr);
  }
  t.append(thead, tbody);
  return t;
}

function card(label, value, cls) {
  const d = document.createElement("div");
  d.className = "card" + (cls ? " " + cls : "");
  d.append(text("b", value), document.createTextNode(label));
  return d;
}

function section(title) {
  const s = document.createElement("section");
  s.append(text("h2", title));
  return s;
}

const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(d));
const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, content) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (content !== undefined) el.textContent = content;
  return el;
}

/// A SHAP waterfall: from the expected value, each feature's push (largest
/// first, the rest summed), to the model's margin.
function waterfall(part, title) {
  const entries = Object.entries(part.shap || {}).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const top = entries.slice(0, 12);
  const rest = entries.slice(12).reduce((s, [, v]) => s + v, 0);
  if (entries.length > 12) top.push([`${entries.length - 12} other features`, rest]);
  const rowH = 22, left = 170, width = 420, top0 = 28;
  let x = part.expected_value;
  const steps = top.map(([f, v]) => { const from = x; x += v; return { f, v, from, to: x }; });
  const all = [part.expected_value, ...steps.map((s) => s.to)];
  const lo = Math.min(...all), hi = Math.max(...all), span = Math.max(hi - lo, 1e-9);
  const sx = (v) => left + ((v - lo) / span) * width;
  const h = top0 + rowH * (steps.length + 1) + 20;
  const svg = svgEl("svg", { class: "chart waterfall", viewBox: `0 0 ${left + width + 80} ${h}`, width: left + width + 80, height: h, role: "img", "aria-label": title });
  svg.append(svgEl("text", { x: 0, y: 16, "font-size": 13, "font-weight": 600, fill: "#111827" }, title));
  steps.forEach((s, i) => {
    const y = top0 + i * rowH;
    const a = sx(Math.min(s.from, s.to)), b = sx(Math.max(s.from, s.to));
    const g = svgEl("g", { class: "step", "data-feature": s.f });
    g.append(svgEl("text", { x: left - 6, y: y + 14, "font-size": 11, "text-anchor": "end", fill: "#111827" }, s.f));
    g.append(svgEl("rect", { x: a, y: y + 3, width: Math.max(1, b - a), height: 15, fill: s.v >= 0 ? "#dc2626" : "#2563eb" }));
    g.append(svgEl("text", { x: b + 4, y: y + 14, "font-size": 10, fill: "#4b5563" }, (s.v >= 0 ? "+" : "") + s.v.toFixed(3)));
    svg.append(g);
  });
  const y = top0 + steps.length * rowH;
  svg.append(svgEl("line", { x1: sx(part.expected_value), y1: top0, x2: sx(part.expected_value), y2: y + 4, stroke: "#9ca3af", "stroke-dasharray": "3 2" }));
  svg.append(svgEl("text", { x: sx(part.expected_value), y: y + 18, "font-size": 10, fill: "#6b7280", "text-anchor": "middle" }, `E[f(x)] = ${part.expected_value.toFixed(3)}`));
  svg.append(svgEl("line", { x1: sx(x), y1: top0, x2: sx(x), y2: y + 4, stroke: "#111827" }));
  svg.append(svgEl("text", { x: sx(x), y: y + 32 > h ? y + 18 : y + 32, "font-size": 10, fill: "#111827", "text-anchor": "middle" }, `f(x) = ${x.toFixed(3)}`));
  return svg;
}

function probabilityBars(probs, title) {
  const entries = Object.entries(probs || {}).sort((a, b) => b[1] - a[1]);
  const h = 28 + entries.length * 22;
  const svg = svgEl("svg", { class: "chart regimes", viewBox: `0 0 420 ${h}`, width: 420, height: h, role: "img", "aria-label": title });
  svg.append(svgEl("text", { x: 0, y: 16, "font-size": 13, "font-weight": 600, fill: "#111827" }, title));
  entries.forEach(([k, v], i) => {
    const y = 26 + i * 22;
    svg.append(svgEl("text", { x: 0, y: y + 13, "font-size": 11, fill: "#111827" }, k));
    svg.append(svgEl("rect", { x: 110, y: y + 2, width: Math.max(1, v * 250), height: 14, fill: "#4f46e5" }));
    svg.append(svgEl("text", { x: 116 + v * 250, y: y + 13, "font-size": 10, fill: "#4b5563" }, (v * 100).toFixed(1) + "%"));
  });
  return svg;
}

const views = {
  async decisions(root) {
    const form = document.createElement("form");
    form.id = "decision-filter";
    form.innerHTML = '<label>symbol <input name="symbol"></label><label>action <select name="action"><option value="">any</option><option>BUY</option><option>SELL</option><option>HOLD</option></select></label><label>from <input name="start_time" placeholder="2026-12-01T00:00:00Z"></label><label>to <input name="end_time"></label><label>days (statistics) <input name="days" type="number" min="1" max="365" value="7"></label><button type="submit">Show</button>';
    const list = document.createElement("div");
    const detail = document.createElement("div");
    detail.id = "decision";
    const stats = document.createElement("div");
    stats.className = "charts";
    root.replaceChildren(form, stats, list, detail);
    const show = async (id) => {
      detail.replaceChildren(text("p", "loading…"));
      try {
        const d = await getJson("/api/v1/forensics/" + encodeURIComponent(id));
        const s = section(`${d.action} ${d.symbol} · ${d.decided_at}`);
        s.append(text("p", d.explanation || ""));
        const charts = document.createElement("div");
        charts.className = "charts";
        charts.append(waterfall(d.ensemble, "Why: SHAP values of the ensemble"));
        charts.append(probabilityBars((d.decision || {}).regime_probs, "Regime probabilities"));
        s.append(charts);
        detail.replaceChildren(s);
      } catch (e) { detail.replaceChildren(text("p", String(e.message), "bad")); }
    };
    const load = async (e) => {
      if (e) e.preventDefault();
      const params = new URLSearchParams();
      for (const k of ["symbol", "action", "start_time", "end_time"]) if (form[k].value) params.set(k, form[k].value);
      params.set("limit", "50");
      try {
        const page = await getJson("/api/v1/forensics?" + params);
        const rows = page.records.map((r) => {
          const a = document.createElement("a");
          a.href = "#" + r.decision_id;
          a.textContent = r.decision_id;
          a.addEventListener("click", (ev) => { ev.preventDefault(); show(r.decision_id); });
          const top = (r.top_contributions || []).map((c) => `${c.feature} ${c.shap >= 0 ? "+" : ""}${c.shap.toFixed(2)}`).join(", ");
          return [a, r.symbol, r.action, fmt(r.confidence), r.decided_at, r.latency_ms === null || r.latency_ms === undefined ? "—" : fmt(r.latency_ms, 3), r.dominant_regime ?? "", top];
        });
        list.replaceChildren(text("p", `${page.total} decisions match; the newest ${page.records.length}:`), table(["decision", "symbol", "action", "confidence", "decided", "latency ms", "regime", "strongest reasons"], rows, "decisions"));
        if (page.records.length) show(page.records[0].decision_id);
        const days = form.days.value || "7";
        const regimes = await getJson("/api/v1/forensics/regimes?days=" + days);
        const shares = {};
        for (const r of regimes.regimes || []) shares[r.regime ?? "none"] = r.share;
        const parts = [probabilityBars(shares, `Dominant regime, last ${days} days`)];
        if (form.symbol.value) {
          const st = await getJson(`/api/v1/forensics/symbols/${encodeURIComponent(form.symbol.value)}/stats?days=${days}`);
          const sec = document.createElement("div");
          sec.append(text("h3", `${st.symbol}, last ${days} days`));
          sec.append(table(["action", "decisions"], Object.entries(st.actions || {}).map(([k, v]) => [k, v])));
          const latency = st.latency_ms && st.latency_ms.avg !== null ? `, decision latency ${fmt(st.latency_ms.avg, 3)} ms on average (p95 ${fmt(st.latency_ms.p95, 3)} ms)` : "";
          sec.append(text("p", `${st.decisions} decisions, average confidence ${fmt(st.avg_confidence)}${latency}; explained ${fmt(st.explain_lag_ms?.avg, 0)} ms after the decision on average`));
          parts.push(sec);
        }
        stats.replaceChildren(...parts);
      } catch (err) { list.replaceChildren(text("p", String(err.message), "bad")); }
    };
    form.addEventListener("submit", load);
    load();
  },

  async audit(root) {
    const cp = await getJson("/api/v1/audit/checkpoint");
    const head = section("Signed checkpoint");
    const cards = document.createElement("section");
    cards.className = "cards";
    cards.append(card("records in the tree", cp.tree_size), card("origin", cp.origin));
    head.append(cards, text("p", "root hash " + cp.root_hash), text("pre", cp.note), text("p", "verifier key: " + cp.verifier_key));
    const verify = section("Verify the log against the trail");
    const button = text("button", "Verify now");
    button.type = "button";
    button.id = "verify";
    const out = document.createElement("div");
    button.addEventListener("click", async () => {
      out.replaceChildren(text("p", "verifying every record…"));
      try {
        const v = await postJson("/api/v1/audit/verify", {});
        out.replaceChildren(text("p", `${v.integrity_valid ? "valid" : "NOT valid"}: ${v.verified_events} events verified`, v.integrity_valid ? "ok" : "bad"),
          table(["topic", "partition", "offset", "kind", "detail"], (v.issues || []).map((i) => [i.topic, i.partition, i.offset, i.kind, i.detail])));
      } catch (e) { out.replaceChildren(text("p", String(e.message), "bad")); }
    });
    verify.append(button, out);
    const proof = section("Inclusion proof of a record");
    const form = document.createElement("form");
    form.innerHTML = '<label>topic <input name="topic" required></label><label>partition <input name="partition" type="number" min="0" value="0"></label><label>offset <input name="offset" type="number" min="0" value="0"></label><button type="submit">Prove</button>';
    const pout = document.createElement("div");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const p = await getJson(`/api/v1/audit/proof?topic=${encodeURIComponent(form.topic.value)}&partition=${form.partition.value}&offset=${form.offset.value}`);
        pout.replaceChildren(text("p", `leaf ${p.leaf_index} of ${p.tree_size}, hash ${p.leaf_hash}`), text("pre", (p.audit_path || []).join("\n")));
      } catch (err) { pout.replaceChildren(text("p", String(err.message), "bad")); }
    });
    proof.append(form, pout);
    root.replaceChildren(head, verify, proof);
  },

  async alerts(root) {
    const page = await getJson("/api/v1/alerts?limit=100");
    const seen = (s) => (s ? `${s.topic} ${s.field}${s.agent_id ? " (" + s.agent_id + ")" : ""}` : "");
    const row = (a) => [a.detected_at, a.alert_type, a.severity, a.entity, a.likelihood, seen(a.seen_at), a.action, a.fingerprint];
    const headers = ["when", "type", "severity", "entity", "likelihood", "seen in", "action", "keyed hash"];
    const t = table(headers, (page.alerts || []).map(row), "alerts");
    const count = text("p", `${(page.alerts || []).length} alerts (newest first); new ones appear live.`);
    root.replaceChildren(count, t);
    const source = new EventSource("/api/v1/alerts/stream");
    source.addEventListener("compliance_alert", (e) => {
      const a = JSON.parse(e.data);
      const tr = document.createElement("tr");
      for (const c of row(a)) tr.append(text("td", c));
      tr.className = "new";
      t.tBodies[0].prepend(tr);
    });
  },

  async agents(root) {
    const a = await getJson("/api/v1/analytics/agents");
    const cards = document.createElement("section");
    cards.className = "cards";
    cards.append(card("executions", a.total), card("success rate", a.success_rate === null ? "—" : (a.success_rate * 100).toFixed(1) + "%"),
      card("p95 duration", a.duration_seconds.p95 === null ? "—" : (a.duration_seconds.p95 * 1000).toFixed(1) + " ms"));
    const rows = (a.agents || []).map((g) => [g.agent_id, g.total, g.success_rate === null ? "—" : (g.success_rate * 100).toFixed(1) + "%",
      fmt((g.duration_seconds || {}).p50 * 1000, 1), fmt((g.duration_seconds || {}).p95 * 1000, 1), fmt((g.duration_seconds || {}).p99 * 1000, 1)]);
    root.replaceChildren(cards, table(["agent", "executions", "success", "p50 ms", "p95 ms", "p99 ms"], rows, "agents"));
  },

  async mesh(root) {
    const form = document.createElement("form");
    form.innerHTML = '<label>search <input name="q" type="search" placeholder="prices, esg, customers…" autocomplete="off"></label><button type="submit">Search</button>';
    const list = document.createElement("div");
    const detail = document.createElement("div");
    detail.id = "product";
    root.replaceChildren(form, list, detail);
    const lineage = async (id) => {
      try {
        const l = await getJson(`/api/v1/mesh/products/${encodeURIComponent(id)}/lineage`);
        const s = section("Lineage of " + id);
        s.append(text("pre", JSON.stringify(l, null, 2)));
        detail.replaceChildren(s);
      } catch (e) { detail.replaceChildren(text("p", String(e.message), "bad")); }
    };
    const link = (id) => {
      const a = document.createElement("a");
      a.href = "#" + id;
      a.textContent = id;
      a.addEventListener("click", (e) => { e.preventDefault(); lineage(id); });
      return a;
    };
    const all = async () => {
      const p = await getJson("/api/v1/mesh/products");
      list.replaceChildren(table(["product", "name", "domain", "tier", "rows", "version", "owner"],
        p.products.map((x) => [link(x.id), x.name, x.domain, x.tier ?? "", x.rows, x.data_version, x.owner]), "products"));
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const q = form.q.value.trim();
      if (!q) return all();
      try {
        const r = await getJson("/api/v1/mesh/search?q=" + encodeURIComponent(q));
        list.replaceChildren(text("p", `${r.total} found`), table(["product", "name", "domain", "score"], r.hits.map((h) => [link(h.id), h.name, h.domain, fmt(h.score)]), "products"));
      } catch (err) { list.replaceChildren(text("p", String(err.message), "bad")); }
    });
    await all();
  },
};

async function setupView() {
  const root = $("#view");
  if (!root || !views[root.dataset.view]) return;
  try {
    await views[root.dataset.view](root);
  } catch (e) {
    root.replaceChildren(text("p", String(e.message), "bad"));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupSignIn();
  setupSignOut();
  setupLive();
  setupFilter();
  setupBrowser();
  setupArchitecture();
  setupTraces();
  setupView();
});
