//! `ultracore serve`: the HTTP API and every service in one process; and
//! `ultracore service reporting|execution|notification`: one service alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;
use tokio::sync::broadcast;
use ultracore_api::{router, spawn_event_tail, AppState};
use ultracore_decisions::DecisionService;
use ultracore_es::Database;
use ultracore_flow::{Flow, FlowOptions, Service};
use ultracore_log_any::{Access, AnyLog, LogConfig};
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::read_prices_file;

use crate::LogArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory of the data products [default: DATA_DIR/mesh, built from the
    /// shipped sample data when missing].
    #[arg(long)]
    pub mesh: Option<PathBuf>,
}

/// The shipped price files the data products are built from.
fn sample_prices() -> Option<Vec<PathBuf>> {
    let candidates = [
        PathBuf::from("sample-data"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data"),
    ];
    candidates.iter().find_map(|dir| {
        let files = vec![
            dir.join("sp500_prices.csv"),
            dir.join("factor_etf_prices.csv"),
        ];
        files.iter().all(|f| f.is_file()).then_some(files)
    })
}

/// The data products in `dir`, built from the shipped sample data first if
/// the directory has none.
pub fn open_mesh(dir: &Path) -> Result<DataMesh> {
    let ready = dir.join("financial_data_product.parquet").is_file()
        && dir.join("esg_data_product.parquet").is_file();
    if !ready {
        let Some(files) = sample_prices() else {
            bail!(
                "no data products in {} and no shipped sample data here: build them with \
                 `ultracore mesh build --prices FILE.csv --out {}`",
                dir.display(),
                dir.display()
            );
        };
        let mut series = Vec::new();
        for f in &files {
            series.extend(
                read_prices_file(f, None).with_context(|| format!("reading {}", f.display()))?,
            );
        }
        let built = build_products(&series, dir)?;
        eprintln!(
            "built the data products in {} ({} instruments; the ESG data is synthetic)",
            dir.display(),
            built.tickers
        );
    }
    Ok(DataMesh::open(dir)?)
}

/// The read-model database: SQLite in the data directory, or `DATABASE_URL`.
pub fn open_database(config: &LogConfig) -> Result<Database> {
    let dir = config.data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let url = std::env::var("DATABASE_URL").ok();
    Ok(Database::open(&dir, url.as_deref())?)
}

/// Runs `services` (and the API on `addr` when given) until Ctrl-C or a service fails.
pub async fn run_services(
    args: &LogArgs,
    services: &[Service],
    mesh: Option<PathBuf>,
    addr: Option<SocketAddr>,
) -> Result<()> {
    let config = args.config();
    let log = AnyLog::open(&config, Access::Write).await?;
    let db = open_database(&config)?;
    let mesh = if services.contains(&Service::Optimization) {
        let dir = mesh.unwrap_or_else(|| config.data_dir().join("mesh"));
        Some(open_mesh(&dir)?)
    } else {
        None
    };
    let mcp_mesh = mesh.clone();
    let mut flow = Flow::start(log.clone(), db, FlowOptions::only(services, mesh)).await?;
    let names: Vec<String> = services.iter().map(|s| s.name().to_owned()).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut server = None;
    let mut state = None;
    if let Some(addr) = addr {
        let (events, _) = broadcast::channel(4096);
        spawn_event_tail(log.clone(), events.clone(), stopped()).await?;
        let app_state = Arc::new(AppState::new(
            log.clone(),
            flow.store().clone(),
            flow.live(),
            events,
            names.clone(),
        ));
        let mut app = router(app_state.clone());
        let mcp_cancel = ultracore_mcp::CancellationToken::new();
        if let Some(mesh) = &mcp_mesh {
            let results = ultracore_mcp::TopicResults::start(log.clone()).await?;
            let server =
                ultracore_mcp::McpServer::new(log.clone(), mesh.clone(), Arc::new(results));
            let mut config = ultracore_mcp::HttpConfig::default();
            config.cancellation_token = mcp_cancel.clone();
            app = app.nest_service("/mcp", ultracore_mcp::http_service(server, config));
            eprintln!("MCP (streamable HTTP) on http://{addr}/mcp");
        }
        let cancel_on_stop = stopped();
        tokio::spawn(async move {
            cancel_on_stop.await;
            mcp_cancel.cancel();
        });
        if services.len() == Service::ALL.len() {
            if let Some((models, decisions)) = decision_service(&config, log.clone()).await? {
                app = app.merge(ultracore_decisions::router(decisions.clone()));
                let forensics = ultracore_forensics::ForensicsService::new(
                    log.clone(),
                    ultracore_forensics::ForensicsConfig {
                        db: config.data_dir().join("forensics.sqlite"),
                        models_dir: models,
                        ..Default::default()
                    },
                )?;
                let mut api_state =
                    ultracore_forensics::ApiState::new(forensics.reader()?, forensics.metrics());
                if let Some(first) = decisions.emitter_stats() {
                    let decisions = decisions.clone();
                    api_state = api_state.with_emitter(Arc::new(move || {
                        decisions.emitter_stats().unwrap_or_else(|| first.clone())
                    }));
                }
                app = app.merge(ultracore_forensics::router(api_state).layer(
                    axum::middleware::from_fn_with_state(decisions, append_decision_metrics),
                ));
                let stopped_forensics = stopped();
                tokio::spawn(async move {
                    if let Err(e) = forensics.run(stopped_forensics).await {
                        tracing::error!(error = %e, "the forensics service stopped");
                    }
                });
                eprintln!(
                    "trading decisions: POST /api/v1/decisions; forensics: GET /api/v1/forensics/{{decision_id}}; metrics of both: /metrics"
                );
            }
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}: is another server using it?"))?;
        let shutdown = stopped();
        server = Some(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }));
        state = Some(app_state);
        eprintln!("API on http://{addr}/api/v1 (OpenAPI: /api/v1/openapi.json, health: /healthz)");
    }
    eprintln!(
        "{} on the {} log; Ctrl-C stops",
        names.join(", "),
        log.kind()
    );
    let mut failure = None;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(e) = flow.failed().await {
                    tracing::error!(error = %e, "a service stopped");
                    if let Some(state) = &state {
                        state.set_unhealthy(e.to_string());
                    }
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(server) = server {
        server.await??;
    }
    flow.stop().await?;
    match failure {
        Some(e) => Err(e.into()),
        None => {
            eprintln!("stopped");
            Ok(())
        }
    }
}

/// Appends the decision service's `ultracore_decisions_*` families to the
/// forensics router's `GET /metrics`, so one scrape of `ultracore serve` has
/// both. The emitter's `ultracore_spool_*` families are already there (the
/// forensics router has the emitter's statistics), so they are not added.
async fn append_decision_metrics(
    State(decisions): State<Arc<DecisionService>>,
    request: Request,
    next: Next,
) -> Response {
    let metrics = request.uri().path() == "/metrics";
    let response = next.run(request).await;
    if !metrics || !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut text = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the forensics metrics");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the forensics metrics could not be read: {e}"),
            )
                .into_response();
        }
    };
    text.extend_from_slice(decisions.render_metrics().as_bytes());
    // The body grew: let the server compute the length again.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// The shipped regime specialists: `ULTRACORE_MODELS_DIR`, `./models`, or
/// the repository's `models/`.
fn models_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ULTRACORE_MODELS_DIR").map(PathBuf::from),
        Some(PathBuf::from("models")),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("bull.json").is_file())
}

/// The decision service publishing to the configured log (with its spool
/// in `<data dir>/spool/decisions`), if the models are at hand.
async fn decision_service(
    config: &LogConfig,
    target: AnyLog,
) -> Result<Option<(PathBuf, Arc<DecisionService>)>> {
    let Some(models) = models_dir() else {
        eprintln!(
            "no models directory (set ULTRACORE_MODELS_DIR): decisions and forensics are off"
        );
        return Ok(None);
    };
    let engine = crate::cmd::decide::engine(&models, None)?;
    let spool = config.data_dir().join("spool").join("decisions");
    let service = DecisionService::start(
        engine,
        target,
        &spool,
        ultracore_decisions::ServiceOptions::default(),
    )
    .await?;
    if let Some(h) = service.regime_history() {
        match &h.dropped {
            None => eprintln!(
                "regime history: the last regime of {} symbols, read from the log in {} ms",
                h.symbols,
                h.elapsed.as_millis()
            ),
            Some(reason) => eprintln!("regime history not rebuilt: {reason}"),
        }
    }
    Ok(Some((models, Arc::new(service))))
}

pub async fn serve(args: &LogArgs, serve: ServeArgs) -> Result<()> {
    run_services(args, &Service::ALL, serve.mesh, Some(serve.addr)).await
}
