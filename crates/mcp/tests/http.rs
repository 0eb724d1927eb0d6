//! The streamable HTTP endpoint mounted in an axum router at `/mcp`, on
//! 127.0.0.1:0, exercised by the official Python MCP SDK
//! (`tests/mcp_client.py`, from `ULTRACORE_TEST_PYTHON`).

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
    let app = axum::Router::new().nest_service("/mcp", mcp);
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

    let dir = tempfile::tempdir()?;
    let checks = dir.path().join("checks.json");
    std::fs::write(&checks, serde_json::to_vec(&risk_checks()?)?)?;
    // The newest protocol (stateless requests), then the initialize
    // handshake of the older versions (sessions), which most clients speak.
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let (checks, url) = (checks.clone(), url.clone());
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python())
                .arg(client_script())
                .arg("http")
                .arg(&checks)
                .arg(&url)
                .env("MCP_CLIENT_MODE", mode)
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
            Some(3),
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
