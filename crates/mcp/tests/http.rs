//! The streamable HTTP endpoint mounted in an axum router at `/mcp` behind
//! the platform's guard, on 127.0.0.1:0, exercised by the official Python
//! MCP SDK (`tests/mcp_client.py`, from `ULTRACORE_TEST_PYTHON`) with an
//! API key; a request without one is refused.

mod common;

use common::{client_script, fixture, python, risk_checks, TestResult};
use ultracore_mcp::{http_service, CancellationToken, HttpConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_uses_the_tools_over_streamable_http() -> TestResult {
    let f = fixture().await?;
    let sessions = CancellationToken::new();
    let mcp = http_service(
        f.server.clone(),
        HttpConfig::default().with_cancellation_token(sessions.clone()),
    );
    let keys_dir = tempfile::tempdir()?;
    let keys = ultracore_auth::KeyStore::open(keys_dir.path())?;
    let (_, key) = keys.create(
        ultracore_auth::Role::PortfolioManager,
        ultracore_auth::Scope::All,
        Some("mcp tests"),
    )?;
    let guard = ultracore_http::Guard::new(
        ultracore_http::EdgeConfig::default(),
        ultracore_auth::Authenticator::new(std::sync::Arc::new(keys)),
        ultracore_auth::RateLimiter::new(ultracore_auth::RateLimit::default())?,
    );
    let app = guard.protect(axum::Router::new().nest_service("/mcp", mcp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let server = tokio::spawn({
        let sessions = sessions.clone();
        async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(sessions.cancelled_owned())
                .await
        }
    });

    // Without a key: 401 before the MCP layer sees anything.
    let refused = reqwest_free_post(&url)?;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    let dir = tempfile::tempdir()?;
    let checks = dir.path().join("checks.json");
    std::fs::write(&checks, serde_json::to_vec(&risk_checks()?)?)?;
    // The newest protocol (stateless requests), then the initialize
    // handshake of the older versions (sessions), which most clients speak.
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let (checks, url, key) = (checks.clone(), url.clone(), key.expose().to_owned());
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python())
                .arg(client_script())
                .arg("http")
                .arg(&checks)
                .arg(&url)
                .env("MCP_CLIENT_MODE", mode)
                .env("ULTRACORE_API_KEY", key)
                .output()
        })
        .await??;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the MCP client ({mode}) failed:\n{stderr}"
        );
        eprintln!("{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        assert_eq!(summary["protocol_version"], version, "{summary}");
        assert_eq!(
            summary["tools"].as_array().map(Vec::len),
            Some(ultracore_mcp::TOOLS.len()),
            "{summary}"
        );
        assert!(
            summary["trades"].as_u64().is_some_and(|n| n > 0),
            "{summary}"
        );
    }

    sessions.cancel();
    server.await??;
    f.stop.cancel();
    Ok(())
}

/// A JSON-RPC post without credentials; the raw answer.
fn reqwest_free_post(url: &str) -> TestResult<String> {
    use std::io::{Read, Write};
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .ok_or("no authority")?;
    let mut s = std::net::TcpStream::connect(authority)?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}
