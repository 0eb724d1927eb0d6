// The web console's speed in a real browser (Debian's Chromium, headless,
// driven by playwright-core), against an `ultracore serve` that is already
// running: `ultracore bench console` starts one with 1,000 topics and runs
// this script; it can also be pointed at any server.
//
//   node tests/console/bench.mjs --base http://127.0.0.1:8080 [--runs 5] [--live 10]
//
// The admin key comes from ULTRACORE_BENCH_KEY (or --key, which other users
// of the machine can read in the process list). ULTRACORE_CHROMIUM names
// the browser (default /usr/bin/chromium).
//
// Measured, and printed as one JSON object on stdout:
// - per page, over --runs fresh navigations (a new tab each, signed in, the
//   HTTP cache warm after the first): first paint, first contentful paint
//   (`performance.getEntriesByType('paint')`), DOMContentLoaded, and the
//   server's part (time to the first byte and to the last byte of the
//   HTML), p50 and max;
// - per page, the script it loads: every `script` resource's uncompressed
//   body (`response.body()`, on a cold cache) plus inline scripts;
// - live updates, --live times on /topology: the `notification` service
//   paused, an optimization request posted, and the time from the POST's
//   answer until the `group:notification-service` badge shows a lag above
//   0 without a reload (seen by a MutationObserver in the page). Beside it,
//   where that time goes: when the console's sampler took the reading that
//   first held the lag (`/api/v1/groups`), when the server stamped the tick
//   carrying it, when the page received it and how long its handler ran;
//   and when the optimization's result was ready.
//
// Progress goes to stderr.

import { chromium } from "playwright-core";

const args = parseArgs(process.argv.slice(2));
const base = (args.base || process.env.ULTRACORE_BENCH_BASE || "").replace(/\/$/, "");
const key = args.key || process.env.ULTRACORE_BENCH_KEY || "";
const runs = Number(args.runs || 5);
const liveRuns = Number(args.live || 10);
const topic = args.topic || "esg-portfolio-events";
const browserPath = process.env.ULTRACORE_CHROMIUM || "/usr/bin/chromium";

if (!base || !key || !(runs >= 1) || !(liveRuns >= 0)) {
  console.error("usage: ULTRACORE_BENCH_KEY=uck_… node bench.mjs --base http://127.0.0.1:PORT [--runs 5] [--live 10] [--topic NAME]");
  process.exit(2);
}

const pages = ["/", "/topics", `/topics/${encodeURIComponent(topic)}`, "/groups", "/topology", "/architecture", "/traces", "/access"];

/// The README's example optimization request (as in console.test.mjs).
const request = () => ({
  portfolio: { holdings: [{ ticker: "XOM", units: 300 }, { ticker: "KO", units: 400 }], cash: 20000.0 },
  objective: { kind: "max_sharpe" },
  constraints: { weight_bounds: [0.0, 0.4] },
  universe: ["MSFT", "JNJ", "PG", "WMT", "AAPL"],
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...m) => console.error("[bench console]", ...m);

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = argv[i].match(/^--([a-z-]+)(?:=(.*))?$/);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    out[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return out;
}

async function api(path, { method = "GET", body } = {}) {
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

async function until(what, fn, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

function stats(xs) {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { p50: null, max: null, n: 0 };
  const round = (x) => Math.round(x * 10) / 10;
  // The lower median for an even count: a value that was measured.
  return { p50: round(v[Math.floor((v.length - 1) / 2)]), max: round(v[v.length - 1]), n: v.length };
}

/// Signs in through the login form, as a person does; the session cookie.
async function signIn(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + "/login?next=/");
  await page.fill("input[name=api_key]", key);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/");
  const cookies = await context.cookies();
  await context.close();
  if (!cookies.some((c) => c.name === "uc_session")) throw new Error("signing in set no session cookie");
  return cookies;
}

/// Timings of the page just loaded, from the browser's own entries.
async function timings(page) {
  return page.evaluate(async () => {
    // First contentful paint can be reported a moment after `load`.
    const deadline = performance.now() + 5000;
    let paint = performance.getEntriesByType("paint");
    while (!paint.some((p) => p.name === "first-contentful-paint") && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      paint = performance.getEntriesByType("paint");
    }
    const at = (name) => paint.find((p) => p.name === name)?.startTime ?? null;
    const nav = performance.getEntriesByType("navigation")[0];
    return {
      first_paint_ms: at("first-paint"),
      first_contentful_paint_ms: at("first-contentful-paint"),
      dom_content_loaded_ms: nav.domContentLoadedEventEnd,
      ttfb_ms: nav.responseStart,
      html_done_ms: nav.responseEnd,
      html_bytes: nav.decodedBodySize,
      elements: document.getElementsByTagName("*").length,
      inline_script_bytes: Array.from(document.querySelectorAll("script:not([src])")).reduce((n, s) => n + new TextEncoder().encode(s.textContent).length, 0),
    };
  });
}

async function measurePage(browser, cookies, path) {
  // A context of its own: a cold HTTP cache for the first run, so every
  // script the page needs is fetched (and counted) once.
  const context = await browser.newContext();
  await context.addCookies(cookies);
  const samples = [];
  const scripts = [];
  let html = null;
  for (let run = 0; run < runs; run++) {
    const page = await context.newPage();
    const bodies = [];
    if (run === 0) {
      page.on("response", (res) => {
        if (res.request().resourceType() !== "script") return;
        bodies.push(res.body().then((b) => ({ url: res.url().replace(base, ""), bytes: b.length })).catch(() => ({ url: res.url(), bytes: null })));
      });
    }
    const res = await page.goto(base + path, { waitUntil: "load" });
    if (!res || res.status() !== 200 || !page.url().startsWith(base + path.split("?")[0])) {
      throw new Error(`${path}: status ${res?.status()} at ${page.url()}`);
    }
    const t = await timings(page);
    samples.push(t);
    if (run === 0) scripts.push(...(await Promise.all(bodies)));
    html = { bytes: t.html_bytes, elements: t.elements, inline_script_bytes: t.inline_script_bytes };
    await page.close();
  }
  await context.close();
  const external = scripts.reduce((n, s) => n + (s.bytes || 0), 0);
  const pick = (k) => stats(samples.map((s) => s[k]));
  return {
    path,
    runs,
    first_paint_ms: pick("first_paint_ms"),
    first_contentful_paint_ms: pick("first_contentful_paint_ms"),
    dom_content_loaded_ms: pick("dom_content_loaded_ms"),
    ttfb_ms: pick("ttfb_ms"),
    html_done_ms: pick("html_done_ms"),
    html_bytes: html.bytes,
    elements: html.elements,
    scripts,
    script_bytes: external + html.inline_script_bytes,
  };
}

/// The notification group as `/api/v1/groups` reports it: its lag, and
/// when the console's sampler took the reading (its trend's last sample).
async function apiLag() {
  const { json } = await api("/api/v1/groups");
  const row = (json?.groups || []).find((g) => g.group === "notification-service");
  return { lag: row?.lag ?? 0, readAt: row?.trend?.at(-1)?.[0] ?? null };
}

/// Wraps EventSource before the page's script runs, so every `tick` is
/// noted: the server's stamp (`t`), when the page received it, when its
/// handler (the topology's update) was done, and its size.
function instrumentTicks() {
  const Original = window.EventSource;
  window.__ticks = [];
  window.EventSource = class extends Original {
    addEventListener(type, fn, options) {
      if (type !== "tick") return super.addEventListener(type, fn, options);
      return super.addEventListener(type, (e) => {
        const got = Date.now();
        fn(e);
        const done = Date.now();
        let t = null;
        try { t = JSON.parse(e.data).t; } catch (_) { /* not JSON */ }
        window.__ticks.push({ t, got, done, bytes: e.data.length });
        if (window.__ticks.length > 300) window.__ticks.shift();
      }, options);
    }
  };
}

async function measureLive(browser, cookies) {
  const context = await browser.newContext();
  await context.addCookies(cookies);
  await context.addInitScript(instrumentTicks);
  const page = await context.newPage();
  await page.goto(base + "/topology");
  const badge = 'g.node[data-id="group:notification-service"] .badge';
  await page.waitForSelector(badge);
  // Watches #main (the graph may be replaced whole when its shape changes)
  // and notes when the badge first shows a lag above 0.
  await page.evaluate((sel) => {
    const lagOf = () => Number(((document.querySelector(sel)?.textContent || "").match(/lag ([\d,]+)/) || [0, "0"])[1].replace(/,/g, ""));
    window.__bench = { lagOf, risenAt: null };
    new MutationObserver(() => {
      if (window.__bench.risenAt === null && lagOf() > 0) window.__bench.risenAt = Date.now();
    }).observe(document.querySelector("#main"), { subtree: true, childList: true, characterData: true, attributes: true });
  }, badge);
  const lag = () => page.evaluate(() => window.__bench.lagOf());
  const rounds = [];
  const misses = [];
  for (let i = 0; i < liveRuns; i++) {
    const resumed = await api("/api/v1/services/notification/resume", { method: "POST", body: {} });
    if (resumed.status !== 200) throw new Error(`resume: ${resumed.status} ${resumed.text}`);
    await until("the lag drains", async () => (await lag()) === 0 && (await apiLag()).lag === 0, 60_000);
    // The drain was seen right after a sampler's reading: without a pause
    // of random length every round would post at the same phase of the
    // once-a-second sampler and tick, and measure one point of their range.
    await sleep(Math.random() * 1000);
    const paused = await api("/api/v1/services/notification/pause", { method: "POST", body: {} });
    if (paused.status !== 200) throw new Error(`pause: ${paused.status} ${paused.text}`);
    await page.evaluate(() => { window.__bench.risenAt = null; });
    const r = await api("/api/v1/portfolios/pf-bench/optimizations", { method: "POST", body: request() });
    const answered = Date.now();
    if (r.status !== 202) throw new Error(`optimization request: ${r.status} ${r.text}`);
    const id = r.json?.request_id;
    let seen = null;
    let result = null;
    try {
      const risen = await until("the lag badge rises", async () => {
        if (seen === null) {
          const g = await apiLag();
          if (g.lag > 0) seen = { at: Date.now(), readAt: g.readAt };
        }
        if (result === null && id) {
          const o = await api(`/api/v1/optimizations/${id}`);
          if (o.status === 200 && o.json?.status && o.json.status !== "pending") result = Date.now();
        }
        return page.evaluate(() => window.__bench.risenAt);
      }, 30_000);
      // The tick whose handler raised the badge: the last one received
      // before the badge changed (the observer runs right after it).
      const tick = await page.evaluate((at) => window.__ticks.filter((k) => k.got <= at).at(-1), risen);
      const round = {
        badge_ms: risen - answered,
        // The sampler's reading that first held the lag, when it was taken.
        sampled_ms: seen?.readAt != null ? seen.readAt - answered : null,
        // The tick carrying it: stamped by the server, received, applied.
        tick_stamped_ms: tick?.t != null ? tick.t - answered : null,
        tick_received_ms: tick ? tick.got - answered : null,
        tick_handler_ms: tick ? tick.done - tick.got : null,
        tick_bytes: tick?.bytes ?? null,
        result_ms: result !== null ? result - answered : null,
      };
      rounds.push(round);
      log(`live ${i + 1}/${liveRuns}: ${JSON.stringify(round)}`);
    } catch (e) {
      misses.push(String(e.message || e));
      log(`live ${i + 1}/${liveRuns}: ${e.message || e}`);
    }
  }
  await api("/api/v1/services/notification/resume", { method: "POST", body: {} });
  // The ticks' rhythm over the whole run: their spacing by the server's
  // stamps, how late each arrived, how long its handler took.
  const ticks = await page.evaluate(() => window.__ticks);
  const gaps = ticks.slice(1).map((k, j) => k.t - ticks[j].t);
  await context.close();
  const col = (k) => stats(rounds.map((r) => r[k]));
  return {
    runs: liveRuns,
    badge_ms: col("badge_ms"),
    sampled_ms: col("sampled_ms"),
    tick_stamped_ms: col("tick_stamped_ms"),
    tick_received_ms: col("tick_received_ms"),
    tick_handler_ms: col("tick_handler_ms"),
    result_ms: col("result_ms"),
    tick_bytes: col("tick_bytes"),
    tick_interval_ms: stats(gaps),
    tick_transit_ms: stats(ticks.map((k) => k.got - k.t)),
    tick_handler_all_ms: stats(ticks.map((k) => k.done - k.got)),
    misses,
    rounds,
  };
}

const browser = await chromium.launch({
  executablePath: browserPath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const cookies = await signIn(browser);
  const topics = await api("/api/v1/topics");
  const results = [];
  for (const path of pages) {
    log(`${path}: ${runs} runs`);
    results.push(await measurePage(browser, cookies, path));
  }
  const live = liveRuns > 0 ? await measureLive(browser, cookies) : null;
  const version = browser.version();
  console.log(JSON.stringify({
    base,
    browser: `chromium ${version}`,
    topics: topics.json?.total ?? null,
    runs,
    pages: results,
    live,
    goals: { first_contentful_paint_ms: 1000, live_update_ms: 2000, script_bytes: 300 * 1024 },
  }));
} finally {
  await browser.close();
}
