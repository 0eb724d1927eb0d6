//! `ultracore bench console`: the web console's speed, measured in a real
//! browser.
//!
//! Starts `ultracore serve` (this very binary) on a free port with a
//! temporary data directory, creates `--topics` topics of 3 partitions
//! through `POST /api/v1/topics`, waits until `/api/v1/topics` lists them,
//! then runs `tests/console/bench.mjs` (Debian's Chromium driven by
//! playwright-core) against it: first paint, first contentful paint and
//! DOMContentLoaded of every page, the script each page loads, and the
//! time from an event to the live update of the topology. The goals: first
//! contentful paint under 1 s with 1,000 topics, live updates under 2 s,
//! no page shipping more than 300 KB of script.
//!
//! The server always runs on the embedded log in its own directory (the
//! bench's `--log` settings are not used): the figures are the console's,
//! not a broker's. It is stopped and its directory removed when the bench
//! ends, failed or not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use ultracore_term::table;

/// Where the browser script lives, relative to the repository.
const SCRIPT: &str = "tests/console/bench.mjs";
/// The goals the figures are held against.
const GOAL_PAINT_MS: f64 = 1000.0;
const GOAL_LIVE_MS: f64 = 2000.0;
const GOAL_SCRIPT_BYTES: f64 = 300.0 * 1024.0;
/// Environment of a deployment that must not reach the bench's server.
const DEPLOYMENT_ENV: &[&str] = &[
    "KAFKA_BOOTSTRAP_SERVERS",
    "EVENT_STORE_TYPE",
    "ULTRACORE_LOG",
    "ULTRACORE_DATA_DIR",
    "DATABASE_URL",
    "ULTRACORE_API_KEY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "ULTRACORE_RATE_LIMIT",
    "ULTRACORE_RATE_BURST",
];

#[derive(Debug, Args)]
pub struct ConsoleBench {
    /// Topics created before measuring (3 partitions each, named
    /// `bench.topic.0001` …).
    #[arg(long, default_value_t = 1000)]
    topics: usize,
    /// Fresh navigations per page.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Live-update rounds on /topology (pause, publish, badge rises).
    #[arg(long, default_value_t = 10)]
    live: usize,
    /// The browser (default: Debian's Chromium).
    #[arg(long, env = "ULTRACORE_CHROMIUM", default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    #[arg(long)]
    json: bool,
}

pub async fn run(b: ConsoleBench) -> Result<()> {
    if b.runs == 0 {
        bail!("--runs must be at least 1");
    }
    // Everything below waits on processes and sockets: a blocking thread.
    tokio::task::spawn_blocking(move || measure(&b)).await?
}

fn measure(b: &ConsoleBench) -> Result<()> {
    let say = |s: &str| {
        if !b.json {
            eprintln!("{s}");
        }
    };
    let script = preflight(&b.chromium)?;
    // The repository root: `serve` finds the shipped models and sample data
    // from there, as `ultracore serve` run from a checkout does.
    let root = script
        .ancestors()
        .nth(3)
        .context("the script's repository")?
        .to_path_buf();
    say("starting ultracore serve on the embedded log …");
    let server = Server::start(&root)?;
    server.wait_ready()?;
    say(&format!(
        "{}: creating {} topics …",
        server.base(),
        b.topics
    ));
    let started = Instant::now();
    for i in 1..=b.topics {
        let body = json!({ "name": topic_name(i), "partitions": 3 }).to_string();
        let (status, text) = server.http("POST", "/api/v1/topics", &body)?;
        if status != 201 {
            bail!("creating {}: {status} {text}", topic_name(i));
        }
    }
    let create_s = started.elapsed().as_secs_f64();
    let listed = server.wait_topics_listed(b.topics)?;
    let listed_s = started.elapsed().as_secs_f64();
    say(&format!(
        "{} topics created in {create_s:.1} s, listed by /api/v1/topics after {listed_s:.1} s ({listed} in all); measuring in Chromium …",
        b.topics
    ));
    let browser = run_script(&script, &server, b)?;
    drop(server);
    let report = json!({
        "topics_created": b.topics,
        "partitions_per_topic": 3,
        "create_topics_s": create_s,
        "topics_listed_s": listed_s,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "console": browser,
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_table(b, &report);
    Ok(())
}

fn topic_name(i: usize) -> String {
    format!("bench.topic.{i:04}")
}

/// Node, the script, its `node_modules` and the browser are there; the
/// script's path. Each missing piece names the command that provides it.
fn preflight(chromium: &Path) -> Result<PathBuf> {
    let here = std::env::current_dir()?;
    let script = here
        .ancestors()
        .map(|d| d.join(SCRIPT))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{SCRIPT} was not found in {} or a directory above it: run the bench from the UltraCore repository",
                here.display()
            )
        })?;
    let dir = script.parent().context("the script's directory")?;
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        bail!("node was not found on PATH: install Node.js 20 or later (apt-get install nodejs)");
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        bail!(
            "{} has no node_modules/playwright-core: run `cd {} && npm ci`",
            dir.display(),
            dir.display()
        );
    }
    if !chromium.is_file() {
        bail!(
            "no browser at {}: run `apt-get install chromium` (or name one with --chromium / ULTRACORE_CHROMIUM)",
            chromium.display()
        );
    }
    Ok(script)
}

/// `node tests/console/bench.mjs` against the server; its JSON.
fn run_script(script: &Path, server: &Server, b: &ConsoleBench) -> Result<Value> {
    let dir = script.parent().context("the script's directory")?;
    // The key goes by environment, not argv, which others can read.
    let output = Command::new("node")
        .arg(script)
        .args(["--base", &server.base()])
        .args(["--runs", &b.runs.to_string()])
        .args(["--live", &b.live.to_string()])
        .env("ULTRACORE_BENCH_KEY", &server.admin)
        .env("ULTRACORE_CHROMIUM", &b.chromium)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Its progress is shown as it comes, except under --json.
        .stderr(if b.json {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .output()
        .context("running node")?;
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    serde_json::from_str(last.unwrap_or_default())
        .with_context(|| format!("{} printed no JSON: {stdout}", script.display()))
}

fn print_table(b: &ConsoleBench, report: &Value) {
    let c = &report["console"];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let ms = |v: &Value| format!("{:.0} / {:.0}", num(&v["p50"]), num(&v["max"]));
    let mut worst_paint = 0.0f64;
    let mut worst_script = 0.0f64;
    let pages = c["pages"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = pages
        .iter()
        .map(|p| {
            worst_paint = worst_paint.max(num(&p["first_contentful_paint_ms"]["max"]));
            worst_script = worst_script.max(num(&p["script_bytes"]));
            vec![
                p["path"].as_str().unwrap_or("?").to_owned(),
                ms(&p["first_contentful_paint_ms"]),
                ms(&p["dom_content_loaded_ms"]),
                ms(&p["html_done_ms"]),
                format!("{:.0}", num(&p["html_bytes"]) / 1024.0),
                format!("{:.1}", num(&p["script_bytes"]) / 1024.0),
            ]
        })
        .collect();
    println!(
        "web console in {} ({} build), {} topics ({} created × 3 partitions), {} navigations per page\n{}",
        c["browser"].as_str().unwrap_or("chromium"),
        report["profile"].as_str().unwrap_or(""),
        c["topics"],
        b.topics,
        b.runs,
        table(
            &[
                "page",
                ">first contentful paint p50 / max ms",
                ">DOMContentLoaded p50 / max ms",
                ">HTML received p50 / max ms",
                ">HTML KB",
                ">script KB",
            ],
            &rows
        )
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let live = &c["live"];
    let mut goals = vec![
        vec![
            "first contentful paint, slowest page (max)".into(),
            format!("{worst_paint:.0} ms"),
            "< 1 s".into(),
            verdict(worst_paint < GOAL_PAINT_MS).into(),
        ],
        vec![
            "script per page, largest".into(),
            format!("{:.1} KB", worst_script / 1024.0),
            "≤ 300 KB".into(),
            verdict(worst_script <= GOAL_SCRIPT_BYTES).into(),
        ],
    ];
    if !live.is_null() {
        let badge = &live["badge_ms"];
        let misses = live["misses"].as_array().map_or(0, Vec::len);
        goals.push(vec![
            format!(
                "live update: POST answered → lag badge, p50 / max ({} rounds{})",
                live["runs"],
                if misses > 0 {
                    format!(", {misses} never rose")
                } else {
                    String::new()
                }
            ),
            format!("{} ms", ms(badge)),
            "< 2 s".into(),
            verdict(misses == 0 && num(&badge["max"]) < GOAL_LIVE_MS).into(),
        ]);
        // Where the time goes, each from the POST's answer (p50 / max).
        for (what, key) in [
            ("  the console's sampler read the lag", "sampled_ms"),
            (
                "  the server stamped the tick carrying it",
                "tick_stamped_ms",
            ),
            ("  the page received that tick", "tick_received_ms"),
        ] {
            goals.push(vec![
                what.into(),
                format!("{} ms", ms(&live[key])),
                String::new(),
                String::new(),
            ]);
        }
        goals.push(vec![
            "  the page's tick handler ran (all ticks)".into(),
            format!("{} ms", ms(&live["tick_handler_all_ms"])),
            String::new(),
            String::new(),
        ]);
        goals.push(vec![
            "  ticks apart, by the server's stamps".into(),
            format!("{} ms", ms(&live["tick_interval_ms"])),
            "1,000 ms".into(),
            String::new(),
        ]);
    }
    println!(
        "{}",
        table(&["figure", ">measured", "goal", "verdict"], &goals)
    );
}

/// `ultracore serve` as a child process, killed and its data directory
/// removed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// The admin key `serve` made and printed at its first start.
    admin: String,
    /// Everything it wrote to stderr so far.
    output: Arc<Mutex<String>>,
    /// Dropped after the child is killed (fields drop after `Drop::drop`).
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(root: &Path) -> Result<Server> {
        let data = tempfile::Builder::new()
            .prefix("ultracore-bench-console-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--data-dir")
            .arg(data.path())
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            // The bench's own calls (1,000 topics in a row, the live loop's
            // polling) are not what is measured: no per-key limit in the way.
            .args(["--rate-limit", "1000000", "--rate-burst", "1000000"])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for k in DEPLOYMENT_ENV {
            command.env_remove(k);
        }
        let mut child = command.spawn().context("starting ultracore serve")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        // Drained to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut out = sink.lock().unwrap_or_else(PoisonError::into_inner);
                out.push_str(&line);
                out.push('\n');
            }
        });
        let mut server = Server {
            child,
            port,
            admin: String::new(),
            output,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let text = server.output();
            if text.contains("API on http://") {
                server.admin = text
                    .lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("uck_"))
                    .with_context(|| format!("serve printed no admin key:\n{text}"))?
                    .to_owned();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("serve exited with {status}:\n{text}");
            }
            if Instant::now() > deadline {
                bail!("serve did not start within 180 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/readyz` answers 200: every consumer joined its group
    /// and caught up.
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok((200, _)) = http(self.port, "GET", "/readyz", "", None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("serve never became ready:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `/api/v1/topics` (the console's last reading of the
    /// log, once a second) lists the `n` bench topics; the topics listed.
    fn wait_topics_listed(&self, n: usize) -> Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, text) = self.http("GET", "/api/v1/topics", "")?;
            if status != 200 {
                bail!("GET /api/v1/topics: {status} {text}");
            }
            let v: Value = serde_json::from_str(&text).context("/api/v1/topics")?;
            let topics = v["topics"].as_array().map_or(&[][..], Vec::as_slice);
            let ours = topics
                .iter()
                .filter(|t| {
                    t["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("bench.topic."))
                })
                .count();
            if ours >= n {
                return Ok(topics.len());
            }
            if Instant::now() > deadline {
                bail!("/api/v1/topics lists {ours} of the {n} topics after 120 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One exchange with the admin key.
    fn http(&self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        http(self.port, method, path, body, Some(&self.admin))
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the whole
/// body (a plain client: no crate needed for a few thousand local calls).
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    key: Option<&str>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{method} {path}: no HTTP answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let rest = &raw[split + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: no status in {head:?}"))?;
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest).with_context(|| format!("{method} {path}: a broken chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The body of a `Transfer-Encoding: chunked` answer (sizes count bytes).
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        let after = &rest[line + 2..];
        out.extend_from_slice(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n").as_deref(),
            Some(&b"hello, world"[..])
        );
        assert_eq!(dechunk(b"0\r\n\r\n").as_deref(), Some(&b""[..]));
        // A character split across chunks is joined whole.
        assert_eq!(
            dechunk(b"1\r\n\xc3\r\n1\r\n\xa9\r\n0\r\n\r\n").as_deref(),
            Some("\u{e9}".as_bytes())
        );
        assert_eq!(dechunk(b"5\r\nhel"), None);
    }

    #[test]
    fn topic_names_sort_as_numbers() {
        assert_eq!(topic_name(1), "bench.topic.0001");
        assert_eq!(topic_name(1000), "bench.topic.1000");
    }
}
