// The web console in a real browser: Debian's Chromium, headless, driven
// by playwright-core, against `ultracore serve` on the embedded log.
//
// ULTRACORE_BIN names the binary (default: target/debug/ultracore).
// Screenshots of every page go to tests/console/screenshots/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const bin = process.env.ULTRACORE_BIN || join(root, "target", "debug", "ultracore");
const shots = join(here, "screenshots");
const browserPath = process.env.ULTRACORE_CHROMIUM || "/usr/bin/chromium";

let server;
let dataDir;
let base;
let adminKey;
let viewerKey;
let browser;
let stopping = false;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function cleanEnv() {
  const env = { ...process.env };
  for (const k of ["KAFKA_BOOTSTRAP_SERVERS", "EVENT_STORE_TYPE", "ULTRACORE_LOG", "ULTRACORE_DATA_DIR", "DATABASE_URL", "ULTRACORE_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT"]) delete env[k];
  return env;
}

async function startServer() {
  dataDir = mkdtempSync(join(tmpdir(), "ultracore-console-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ["--data-dir", dataDir, "serve", "--addr", `127.0.0.1:${port}`], {
    cwd: root,
    env: cleanEnv(),
    stdio: ["ignore", "ignore", "pipe"],
  });
  let output = "";
  server.stderr.on("data", (d) => { output += d.toString(); });
  // A server that stops during the tests says why.
  server.on("exit", (code, signal) => {
    if (!stopping) console.error(`ultracore serve exited (${code ?? signal}) during the tests:\n${output.slice(-4000)}`);
  });
  const deadline = Date.now() + 180_000;
  while (!output.includes("API on http://")) {
    if (server.exitCode !== null) throw new Error("serve exited:\n" + output);
    if (Date.now() > deadline) throw new Error("serve did not start:\n" + output);
    await sleep(100);
  }
  adminKey = output.split("\n").map((l) => l.trim()).find((l) => l.startsWith("uck_"));
  assert.ok(adminKey, "no admin key printed:\n" + output);
  viewerKey = JSON.parse(execFileSync(bin, ["--data-dir", dataDir, "keys", "create", "--role", "viewer", "--all-portfolios", "--json"], { cwd: root, env: cleanEnv() })).key;
  // Ready: every consumer joined its group and caught up.
  while ((await fetch(base + "/readyz")).status !== 200) {
    if (Date.now() > deadline) throw new Error("serve never became ready:\n" + output);
    await sleep(200);
  }
}

/// An optimization request (the README's example portfolio).
const request = () => ({
  portfolio: { holdings: [{ ticker: "XOM", units: 300 }, { ticker: "KO", units: 400 }], cash: 20000.0 },
  objective: { kind: "max_sharpe" },
  constraints: { weight_bounds: [0.0, 0.4] },
  universe: ["MSFT", "JNJ", "PG", "WMT", "AAPL"],
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(path, { method = "GET", body, key = adminKey } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: "Bearer " + key, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, json, text };
}

/// The value of one sample of /metrics.
async function metric(series) {
  const { text } = await api("/metrics");
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : null;
}

async function until(what, fn, ms = 5000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

/// A signed-in page that records console errors.
async function signedIn(key, start = "/topology") {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + start);
  assert.match(page.url(), /\/login\?next=/, "a browser without a session is sent to sign in");
  await page.fill("input[name=api_key]", key);
  await page.click("button[type=submit]");
  await page.waitForURL(base + start);
  return { context, page, errors };
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startServer();
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  stopping = true;
  await browser?.close();
  server?.kill("SIGTERM");
  await sleep(300);
  if (server && server.exitCode === null) server.kill("SIGKILL");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("every page renders without console errors, and is photographed", async () => {
  const { context, page, errors } = await signedIn(adminKey);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "uc_session");
  assert.ok(session, "a session cookie");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  for (const [path, name] of [["/", "overview"], ["/portfolios", "portfolios"], ["/topics", "topics"], ["/topics/esg-portfolio-events", "topic"], ["/groups", "groups"], ["/topology", "topology"], ["/architecture", "architecture"], ["/traces", "traces"], ["/audit", "audit"], ["/alerts", "alerts"], ["/agents", "agents"], ["/mesh", "mesh"], ["/access", "access"]]) {
    const res = await page.goto(base + path);
    assert.equal(res.status(), 200, path);
    await page.waitForSelector("#live-status");
    await until(`${path} goes live`, async () => (await page.textContent("#live-status")).startsWith("live"));
    if (await page.$("#view")) {
      await until(`${path} shows its data`, async () => !(await page.$("#view .loading")));
      assert.equal(await page.$("#view .bad"), null, `${path}: ${await page.textContent("#view")}`);
    }
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }
  assert.deepEqual(errors, [], "no console errors");
  await context.close();
});

test("the topology shows services, topics and groups, equal to /api/v1/topology", async () => {
  const { context, page, errors } = await signedIn(adminKey);
  await page.goto(base + "/topology");
  const drawn = new Set(await page.$$eval("#topology svg g.node", (els) => els.map((e) => e.dataset.id)));
  const idle = new Set(await page.$$eval("#idle-topics li", (els) => els.map((e) => e.dataset.id)));
  const { json } = await api("/api/v1/topology");
  const linked = new Set(json.edges.flatMap((e) => [e.from, e.to]));
  const apiNodes = new Set(json.nodes.map((n) => n.id));
  assert.ok([...drawn].some((id) => id.startsWith("service:")), "a service is drawn");
  assert.ok([...drawn].some((id) => id.startsWith("topic:")), "a topic is drawn");
  assert.ok([...drawn].some((id) => id.startsWith("group:")), "a group is drawn");
  assert.deepEqual([...drawn].sort(), [...apiNodes].filter((id) => linked.has(id)).sort(), "drawn nodes are the API's linked nodes");
  assert.deepEqual([...idle].sort(), [...apiNodes].filter((id) => !linked.has(id)).sort(), "the others are listed as idle");
  const edges = await page.$$eval("#topology svg g.edge", (els) => els.map((e) => e.dataset.from + ">" + e.dataset.to));
  assert.deepEqual(edges.sort(), json.edges.map((e) => e.from + ">" + e.to).sort());
  assert.deepEqual(errors, []);
  await context.close();
});

test("an edge's rate equals the rate from two /metrics scrapes within 10 %", async () => {
  // Steady traffic: 20 price updates a second onto external.market.data.
  let sent = 0;
  let stop = false;
  const load = (async () => {
    const start = Date.now();
    while (!stop) {
      const due = Math.floor((Date.now() - start) / 50);
      while (sent < due && !stop) {
        sent += 1;
        await api("/api/v1/external/market-data", { method: "POST", body: { updates: [{ ticker: "QUAL", source: "console-test", prices: [{ date: "2026-12-03", close: 100 + (sent % 50) / 10 }] }] } });
      }
      await sleep(10);
    }
  })();
  const series = 'ultracore_topology_edge_records_total{service="market-data",topic="external.market.data",role="consumes",group="market-data"}';
  await sleep(12_000); // the window fills with steady traffic
  const c1 = await metric(series);
  const t1 = Date.now();
  await sleep(10_000);
  const c2 = await metric(series);
  const t2 = Date.now();
  const { json } = await api("/api/v1/topology");
  stop = true;
  await load;
  assert.ok(c1 !== null && c2 !== null, "the series exists");
  const scraped = ((c2 - c1) * 1000) / (t2 - t1);
  const edge = json.edges.find((e) => e.from === "topic:external.market.data" && e.to === "group:market-data");
  assert.ok(edge, "the edge exists");
  assert.ok(scraped > 5, `traffic flowed (${scraped}/s)`);
  assert.ok(Math.abs(edge.rate - scraped) <= 0.1 * scraped, `edge ${edge.rate}/s vs scraped ${scraped}/s`);
});

test("pausing a consumer raises its lag badge live, resuming drains it", async () => {
  const { context, page, errors } = await signedIn(adminKey);
  await page.goto(base + "/topology");
  const badge = 'g.node[data-id="group:notification-service"] .badge';
  await page.waitForSelector(badge);
  const lagOf = async () => Number(((await page.textContent(badge)).match(/lag ([\d,]+)/) || [0, "0"])[1].replace(/,/g, ""));
  assert.equal((await api("/api/v1/services/notification/pause", { method: "POST", body: {} })).status, 200);
  // Something for notification to read: an optimization request's result.
  const r = await api("/api/v1/portfolios/pf-console/optimizations", { method: "POST", body: request() });
  assert.equal(r.status, 202, r.text);
  await until("the lag badge rises without a reload", async () => (await lagOf()) > 0, 15_000);
  assert.equal((await api("/api/v1/services/notification/resume", { method: "POST", body: {} })).status, 200);
  await until("the lag drains", async () => (await lagOf()) === 0, 10_000);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a topic created while the page is open appears within 5 s", async () => {
  const { context, page, errors } = await signedIn(adminKey);
  await page.goto(base + "/topology");
  const name = "console-test-" + Date.now();
  const created = await api("/api/v1/topics", { method: "POST", body: { name, partitions: 2 } });
  assert.equal(created.status, 201, created.text);
  await page.waitForSelector(`[data-id="topic:${name}"]`, { timeout: 5000 });
  assert.deepEqual(errors, []);
  await context.close();
});

test("the request-flow view shows every hop of a request", async () => {
  const r = await api("/api/v1/portfolios/pf-flow/optimizations", { method: "POST", body: request() });
  assert.equal(r.status, 202, r.text);
  const id = r.json.request_id;
  await until("the result", async () => (await api(`/api/v1/optimizations/${id}`)).json?.status !== "pending", 30_000);
  await until("the spans", async () => {
    const t = await api(`/api/v1/traces/${id}`);
    return t.status === 200 && t.json.hops.some((h) => h.topic === "portfolio-events");
  }, 10_000);
  // The services after it (notification, audit, the event store, the data
  // mesh) add their hops a moment later: compare once none has come for a second.
  const trace = await until("the hops settle", async () => {
    const before = (await api(`/api/v1/traces/${id}`)).json;
    await sleep(1000);
    const after = (await api(`/api/v1/traces/${id}`)).json;
    return before.hops.length === after.hops.length && after;
  }, 20_000);
  assert.equal(trace.trace_ids.length, 1, "one trace id across the request");
  const { context, page, errors } = await signedIn(adminKey);
  await page.goto(`${base}/traces?correlation_id=${id}`);
  await page.waitForSelector("table.flow");
  const rows = await page.$$eval("table.flow tr[data-kind]", (els) => els.length);
  assert.equal(rows, trace.hops.length, "every hop is shown");
  const topics = await page.$$eval("table.flow tr[data-kind] td:nth-child(4)", (els) => els.map((e) => e.textContent));
  for (const t of ["esg-portfolio-events", "portfolio-events"]) assert.ok(topics.includes(t), `${t} is a hop`);
  await page.screenshot({ path: join(shots, "request-flow.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a portfolio's page charts its latest result", async () => {
  const r = await api("/api/v1/portfolios/pf-charts/optimizations", { method: "POST", body: request() });
  assert.equal(r.status, 202, r.text);
  await until("the result", async () => (await api(`/api/v1/optimizations/${r.json.request_id}`)).json?.status === "completed", 60_000);
  const { context, page, errors } = await signedIn(viewerKey, "/portfolios");
  await page.waitForSelector('#portfolios a[href="/portfolios/pf-charts"]');
  await page.goto(base + "/portfolios/pf-charts");
  const charts = await page.$$eval("svg.chart", (els) => els.map((e) => e.getAttribute("aria-label")));
  assert.ok(charts.includes("Weights before and after"), JSON.stringify(charts));
  assert.ok(charts.some((c) => c.startsWith("Efficient frontier")), JSON.stringify(charts));
  assert.ok(charts.some((c) => c.startsWith("ESG score")) && charts.some((c) => c.startsWith("Carbon")));
  assert.ok((await page.$$("svg.frontier polyline")).length === 1, "the frontier is drawn");
  const marks = await page.$$eval("svg.frontier .mark", (els) => els.map((e) => e.dataset.label));
  assert.ok(marks.includes("before") && marks.includes("after"), JSON.stringify(marks));
  assert.ok((await page.$$("#orders tbody tr")).length > 0, "staged orders are listed");
  await page.screenshot({ path: join(shots, "portfolio.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a decision's page shows its SHAP waterfall and regime probabilities", async () => {
  const body = {
    symbol: "AAPL",
    features: { return_20d: 8, sma_50_200_ratio: 1.05, vix_level: 12, volatility_20d: 11, macd: 1.5, sentiment_score: 0.9 },
    price: 100,
    portfolio: { position_units: 100, value: 10000000, correlation_with_holdings: 0.2 },
  };
  const d = await api("/api/v1/decisions", { method: "POST", body });
  assert.equal(d.status, 200, d.text);
  const page = await until("the explanation is stored", async () => {
    const q = await api("/api/v1/forensics?symbol=AAPL&limit=5");
    return q.status === 200 && q.json.total > 0 && q.json;
  }, 30_000);
  assert.equal(page.records[0].symbol, "AAPL");
  const { context, page: tab, errors } = await signedIn(adminKey, "/decisions");
  await tab.waitForSelector("svg.waterfall .step");
  const steps = await tab.$$eval("svg.waterfall .step", (els) => els.length);
  assert.ok(steps >= 3, `${steps} waterfall steps`);
  await tab.waitForSelector("svg.regimes");
  await tab.fill("#decision-filter input[name=symbol]", "AAPL");
  await tab.click("#decision-filter button[type=submit]");
  await until("the symbol's statistics", async () => (await tab.textContent("#view")).includes("average confidence"));
  await tab.screenshot({ path: join(shots, "decisions.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a viewer does not see the operations or admin pages", async () => {
  const { context, page, errors } = await signedIn(viewerKey);
  // Sent to /topology after sign-in, which a viewer may not read.
  await page.goto(base + "/");
  const menu = await page.$$eval("header nav a", (els) => els.map((a) => a.getAttribute("href")));
  assert.deepEqual(menu, ["/", "/portfolios"]);
  for (const path of ["/access", "/topology", "/topics"]) {
    const res = await page.goto(base + path);
    assert.equal(res.status(), 403, path);
  }
  await page.goto(base + "/");
  await page.screenshot({ path: join(shots, "viewer-overview.png"), fullPage: true });
  // Signing out ends the session: the next page asks to sign in again.
  await page.click("#sign-out");
  await page.waitForURL(/\/login/);
  await page.goto(base + "/");
  assert.match(page.url(), /\/login/);
  assert.deepEqual(errors.filter((e) => !e.includes("403")), []);
  await context.close();
});
