//! The two ways to reach an [`McpServer`]: stdio (one client, the process
//! that started us) and streamable HTTP (a tower service to mount in axum).

use std::future::Future;
use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt;
use ultracore_log::EventLog;

use crate::{Error, McpServer, Result};

pub use tokio_util::sync::CancellationToken;

/// Settings of the HTTP transport (rmcp's): allowed `Host` values (only
/// loopback names by default, against DNS rebinding), allowed origins, SSE
/// keep-alive, sessions, body size limit, and the cancellation token that
/// ends every session.
pub type HttpConfig = StreamableHttpServerConfig;

/// The streamable HTTP endpoint as a tower service.
pub type HttpService<L> = StreamableHttpService<McpServer<L>, LocalSessionManager>;

/// Serves one MCP session on stdin/stdout until the client closes stdin or
/// `shutdown` resolves. Nothing else may write to stdout meanwhile: logs
/// go to stderr.
///
/// # Errors
///
/// When the session cannot start (e.g. the client's `initialize` is
/// malformed) or ends abnormally.
pub async fn serve_stdio<L: EventLog>(
    server: McpServer<L>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // Non-blocking pipes when stdin/stdout are FIFOs (how MCP clients start
    // servers), so a pending read never holds the runtime's shutdown.
    let running = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    let cancel = running.cancellation_token();
    tokio::select! {
        quit = running.waiting() => {
            let reason = quit.map_err(|e| Error::Transport(e.to_string()))?;
            tracing::debug!(?reason, "MCP session over stdio ended");
        }
        () = shutdown => {
            tracing::debug!("shutting the MCP session down");
            cancel.cancel();
        }
    }
    Ok(())
}

/// The streamable HTTP endpoint of `server`, for an axum 0.8 router:
///
/// ```no_run
/// use ultracore_mcp::{http_service, HttpConfig, McpServer};
///
/// fn routes<L: ultracore_log::EventLog>(server: McpServer<L>) -> axum::Router {
///     axum::Router::new().nest_service("/mcp", http_service(server, HttpConfig::default()))
/// }
/// ```
///
/// Each MCP session gets a clone of `server`. Cancel
/// `config.cancellation_token` on shutdown to end open sessions (their
/// SSE streams would otherwise keep a graceful shutdown waiting).
pub fn http_service<L: EventLog>(server: McpServer<L>, config: HttpConfig) -> HttpService<L> {
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
