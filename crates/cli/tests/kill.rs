//! The flow survives SIGKILL on Kafka: the optimization service is killed
//! after consuming a request (before publishing), then again after
//! publishing the answer (before committing), and restarted; a request
//! written by a plain Kafka client (Python confluent-kafka, not our code)
//! is served too. Downstream, the reporting and notification services —
//! separate processes — see exactly one result per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

struct Env {
    broker: String,
    prefix: String,
}

impl Env {
    fn command(&self, data_dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
        c.args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", &self.broker)
            .env("KAFKA_TOPIC_PREFIX", &self.prefix)
            .env("ULTRACORE_DATA_DIR", data_dir)
            .env_remove("EVENT_STORE_TYPE")
            .env_remove("ULTRACORE_LOG")
            .env_remove("ULTRACORE_FAILPOINT");
        c
    }
}

/// Kills the children when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The API key the services' HTTP APIs are called with.
static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A plain HTTP/1.1 GET with the key; the status and the JSON body.
fn get(port: u16, path: &str) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let key = KEY.get().map(String::as_str).unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn until(port: u16, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some((200, v)) = get(port, path) {
            if ok(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {path}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the optimization service; its stderr lines arrive on the receiver.
fn optimizer(
    env: &Env,
    dir: &Path,
    mesh: &Path,
    failpoint: Option<&str>,
) -> (Child, mpsc::Receiver<String>) {
    let mut c = env.command(
        dir,
        &["service", "optimization", "--mesh", mesh.to_str().unwrap()],
    );
    if let Some(f) = failpoint {
        c.env("ULTRACORE_FAILPOINT", f);
    }
    let mut child = c.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains(needle) {
                return;
            }
            seen.push(line);
        }
    }
    panic!("the service never printed '{needle}':\n{}", seen.join("\n"));
}

fn submit(env: &Env, dir: &Path, body: &str) -> String {
    let file = dir.join(format!("req-{}.json", uuid_like()));
    std::fs::write(&file, body).unwrap();
    let out = env
        .command(dir, &["esg", "submit", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["request_id"].as_str().unwrap().to_owned()
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

const REQUEST: &str = r#"{"portfolio_id": "pf-kill",
    "portfolio": {"holdings": [{"ticker": "XOM", "units": 200}, {"ticker": "KO", "units": 300}], "cash": 5000},
    "objective": {"kind": "max_sharpe"},
    "constraints": {"min_esg_score": 55, "weight_bounds": [0, 0.4]},
    "universe": ["MSFT", "JNJ", "PG", "WMT"]}"#;

/// Writes a request envelope with Python's confluent-kafka client.
fn produce_with_python(env: &Env, request_id: &str) {
    let python = std::env::var("ULTRACORE_TEST_PYTHON").expect(
        "ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares the Python client",
    );
    let script = r#"
import datetime, json, sys, uuid
from confluent_kafka import Producer
broker, topic, request_id = sys.argv[1:4]
request = json.loads(sys.argv[4])
request["request_id"] = request_id
envelope = {
    "event_id": str(uuid.uuid4()), "event_type": "portfolio_optimization_requested",
    "schema_version": 1,
    "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
    "aggregate_type": "Portfolio", "aggregate_id": request["portfolio_id"], "version": 1,
    "correlation_id": request_id, "causation_id": None, "payload": request,
}
p = Producer({"bootstrap.servers": broker})
p.produce(topic, key=request["portfolio_id"].encode(), value=json.dumps(envelope).encode())
assert p.flush(30) == 0, "not delivered"
"#;
    let out = Command::new(python)
        .args([
            "-c",
            script,
            &env.broker,
            &format!("{}esg-portfolio-events", env.prefix),
            request_id,
            REQUEST,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn killed_optimization_service_yields_one_result_per_request_downstream() {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").expect(
        "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local broker",
    );
    let env = Env {
        broker,
        prefix: format!("kill{:08x}.", (uuid_like() as u32) ^ std::process::id()),
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mesh = d.join("mesh");
    let built = env
        .command(
            d,
            &[
                "mesh",
                "build",
                "--prices",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../sample-data/sp500_prices.csv"
                ),
                "--out",
                mesh.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert!(built.status.success());

    // One viewer key for both services' APIs: made in one data directory,
    // its key file copied to the other.
    let made = env
        .command(
            &d.join("reporting"),
            &[
                "keys",
                "create",
                "--role",
                "viewer",
                "--all-portfolios",
                "--json",
            ],
        )
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: Value = serde_json::from_slice(&made.stdout).unwrap();
    let _ = KEY.set(made["key"].as_str().unwrap().to_owned());
    std::fs::create_dir_all(d.join("notification")).unwrap();
    std::fs::copy(
        d.join("reporting").join("keys.json"),
        d.join("notification").join("keys.json"),
    )
    .unwrap();

    let mut children = Children(Vec::new());
    let (reporting, notification) = (free_port(), free_port());
    for (name, port) in [("reporting", reporting), ("notification", notification)] {
        let data = d.join(name);
        let addr = format!("127.0.0.1:{port}");
        children.0.push(
            env.command(&data, &["service", name, "--addr", &addr])
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        until(port, "/healthz", |v| v["status"] == "ok");
    }

    // 1. Killed after consuming, before publishing.
    let (mut a, rx) = optimizer(&env, d, &mesh, Some("optimization.after_consume=120000"));
    let first = submit(&env, d, REQUEST);
    wait_for_line(&rx, "failpoint optimization.after_consume");
    a.kill().unwrap();
    a.wait().unwrap();

    // 2. Killed after publishing the answer, before committing.
    let (mut a, rx) = optimizer(&env, d, &mesh, Some("optimization.after_publish=120000"));
    wait_for_line(&rx, "failpoint optimization.after_publish");
    a.kill().unwrap();
    a.wait().unwrap();

    // 3. Restarted for good; it answers the first request again.
    let (a, _rx) = optimizer(&env, d, &mesh, None);
    children.0.push(a);
    let second = "0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b".to_owned();
    produce_with_python(&env, &second);

    for rid in [&first, &second] {
        until(reporting, &format!("/api/v1/optimizations/{rid}"), |v| {
            v["status"] == "completed"
        });
    }
    // The log holds the first answer twice (published, not committed, redone) …
    let tail = env
        .command(
            d,
            &[
                "events",
                "tail",
                "esg-portfolio-events",
                "--from-beginning",
                "--no-follow",
                "--json",
            ],
        )
        .output()
        .unwrap();
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&tail.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            if v.get("value").is_some() {
                v["value"].clone()
            } else {
                v
            }
        })
        .filter(|e| {
            e["event_type"] == "portfolio_optimization_completed"
                && e["payload"]["request_id"] == first.as_str()
        })
        .collect();
    assert!(
        answers.len() >= 2,
        "expected the redone answer on the log: {answers:?}"
    );
    assert!(answers
        .iter()
        .all(|e| e["event_id"] == answers[0]["event_id"]));

    // … and downstream sees one result per request.
    let summary = until(reporting, "/api/v1/portfolios/pf-kill", |v| {
        v["report"]["completed"] == 2
    });
    assert_eq!(summary["state"]["completed"], 2, "{summary}");
    let notes = until(
        notification,
        "/api/v1/notifications?portfolio_id=pf-kill",
        |v| v["notifications"].as_array().is_some_and(|n| n.len() >= 2),
    );
    std::thread::sleep(Duration::from_secs(1));
    let notes = get(notification, "/api/v1/notifications?portfolio_id=pf-kill")
        .map(|(_, v)| v)
        .unwrap_or(notes);
    let ids: Vec<&str> = notes["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{notes}");
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));
}
