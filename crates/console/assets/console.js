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

function updateTopology(tick) {
  const holder = $("#topology");
  if (!holder) return;
  if (holder.dataset.structure !== tick.structure) {
    refetch();
    return;
  }
  for (const [id, badge, cls] of tick.nodes) {
    for (const el of byId(id)) {
      const b = el.querySelector(".badge");
      if (b && b.textContent !== badge) b.textContent = badge;
      el.setAttribute("class", "node " + cls);
    }
  }
  for (const [from, to, label] of tick.edges) {
    const g = $(`g.edge[data-from="${CSS.escape(from)}"][data-to="${CSS.escape(to)}"] .rate`);
    if (g && g.textContent !== label) g.textContent = label;
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

document.addEventListener("DOMContentLoaded", () => {
  setupSignIn();
  setupSignOut();
  setupLive();
  setupFilter();
  setupBrowser();
  setupArchitecture();
  setupTraces();
});
