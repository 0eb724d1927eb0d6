//! `ultracore serve` as a child process for the tests: started on a free
//! port with its own data directory, its bootstrap admin key read from its
//! output, stopped when dropped; and a plain HTTP/1.1 client.

#![allow(dead_code)] // each test binary uses part of it

pub mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Error = Box<dyn std::error::Error>;

/// `ultracore` run from the repository root (where the shipped models and
/// sample data are found), with no deployment settings inherited.
pub fn ultracore() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.current_dir(format!("{}/../..", env!("CARGO_MANIFEST_DIR")))
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("ULTRACORE_LOG")
        .env_remove("ULTRACORE_DATA_DIR")
        .env_remove("ULTRACORE_MODELS_DIR")
        .env_remove("ULTRACORE_API_KEY");
    c
}

/// `ultracore` on the data directory `dir`, with no other deployment
/// settings inherited (run from the crate's directory, as cargo runs tests).
pub fn in_data_dir(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.env("ULTRACORE_DATA_DIR", dir)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("EVENT_STORE_RETENTION_DAYS")
        .env_remove("ULTRACORE_LOG")
        .env_remove("DATABASE_URL");
    c
}

/// A running `ultracore serve`.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    /// The admin key `serve` made and printed at its first start.
    pub admin: String,
    pub data: tempfile::TempDir,
    /// Everything it wrote to stderr so far.
    pub output: Arc<Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `ultracore serve` with `extra` arguments and waits until it
    /// listens.
    pub fn start(extra: &[&str]) -> Result<Serve, Error> {
        Serve::start_with_env(extra, &[])
    }

    /// Like [`Serve::start`], with these environment variables set.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Result<Serve, Error> {
        Serve::start_on(free_port()?, extra, env)
    }

    /// Like [`Serve::start_with_env`], on `port` (from [`free_port`]), for
    /// settings that name the server's own address.
    pub fn start_on(port: u16, extra: &[&str], env: &[(&str, &str)]) -> Result<Serve, Error> {
        let data = tempfile::tempdir()?;
        let mut child = ultracore()
            .args(["--data-dir", data.path().to_str().ok_or("path")?])
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        // Drained to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        let mut serve = Serve {
            child,
            port,
            admin: String::new(),
            data,
            output,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let text = serve.output.lock().unwrap().clone();
            if text.contains("API on http://") {
                serve.admin = text
                    .lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("uck_"))
                    .ok_or_else(|| format!("no admin key printed:\n{text}"))?
                    .to_owned();
                return Ok(serve);
            }
            if let Some(status) = serve.child.try_wait()? {
                return Err(format!("serve exited with {status}:\n{text}").into());
            }
            if Instant::now() > deadline {
                return Err(format!("serve did not start:\n{text}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// `ultracore keys create --role ROLE (--portfolio P | --all-portfolios)`:
    /// the new key.
    pub fn key(&self, role: &str, portfolio: Option<&str>) -> Result<String, Error> {
        let mut c = ultracore();
        c.args(["--data-dir", self.data_dir().to_str().ok_or("path")?])
            .args(["keys", "create", "--role", role, "--json"]);
        if role == "customer" {
            c.args(["--customer", "c-matrix"]);
        }
        match portfolio {
            Some(p) => {
                c.args(["--portfolio", p]);
            }
            // Customers and outside systems never cover every portfolio.
            None if matches!(role, "customer" | "integration") => {}
            None => {
                c.arg("--all-portfolios");
            }
        }
        let out = c.output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let key = v["key"].as_str().ok_or("no key in the answer")?.to_owned();
        // The server sees a new key within a moment (it looks at the key
        // file when an unknown id comes, at most every 100 ms).
        let deadline = Instant::now() + Duration::from_secs(5);
        while status(self.port, "GET", "/api/v1/openapi.json", "", Some(&key)) == Some(401) {
            if Instant::now() > deadline {
                return Err("the server never accepted the new key".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(key)
    }

    /// One exchange with the admin key: the status and the whole body.
    pub fn http(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        http(self.port, method, path, body, Some(&self.admin))
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&self) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((200, _)) = http(self.port, "GET", "/readyz", "", None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("serve never became ready".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A port free now on 127.0.0.1.
pub fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn request(method: &str, path: &str, body: &str, key: Option<&str>) -> String {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One HTTP/1.1 exchange; the status and the whole body (not for streams).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    key: Option<&str>,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request(method, path, body, key).as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this client reads whole bodies only"
    );
    Some((status, body.to_owned()))
}

/// The status of an exchange, read from the head alone (streams too).
pub fn status(port: u16, method: &str, path: &str, body: &str, key: Option<&str>) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request(method, path, body, key).as_bytes())
        .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}
