//! `ultracore serve`: the HTTP API and every service in one process; and
//! `ultracore service reporting|execution|notification`: one service alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::sync::broadcast;
use ultracore_api::{router, spawn_event_tail, track_requests, AppState, HttpMetrics};
use ultracore_decisions::DecisionService;
use ultracore_es::Database;
use ultracore_flow::{flow_services, FlowOptions, Service};
use ultracore_log_any::{Access, AnyLog, LogConfig};
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::read_prices_file;
use ultracore_metrics::{Exposition, FnCollector};
use ultracore_runtime::{
    Registration, Registry, RestartPolicy, ServiceError, Supervisor, SupervisorOptions,
};

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
    /// What to do when a service fails: `never` (stop the server and exit
    /// non-zero, for systemd or Kubernetes to restart) or `on-failure[:N]`
    /// (start it again, at most N times in 5 minutes; default 3).
    #[arg(long, env = "ULTRACORE_RESTART", default_value = "never")]
    pub restart: RestartPolicy,
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

/// Runs `services` (and the API on `addr` when given) under one supervisor
/// until Ctrl-C / SIGTERM or a service fails beyond the restart policy.
///
/// Shutdown order: the supervisor cancels its token; the HTTP server stops
/// accepting and finishes the requests in flight while the consumers finish
/// and commit their batches; then the decision emitter delivers or spools
/// everything queued, so every decision answered 200 is on the log or in
/// the spool when the process exits.
pub async fn run_services(
    args: &LogArgs,
    services: &[Service],
    mesh: Option<PathBuf>,
    addr: Option<SocketAddr>,
    restart: RestartPolicy,
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
    let registry = Registry::new();
    let mut supervisor = Supervisor::new(
        registry.clone(),
        SupervisorOptions {
            restart,
            ..SupervisorOptions::default()
        },
    );
    let token = supervisor.token();
    let health = supervisor.health();
    let flow = flow_services(log.clone(), db, FlowOptions::only(services, mesh)).await?;
    let mut names: Vec<String> = Vec::new();
    for r in flow.registrations {
        names.push(r.name().to_owned());
        supervisor.add(r);
    }
    let mut decisions: Option<Arc<DecisionService>> = None;
    let mut server = None;
    if let Some(addr) = addr {
        let (events, _) = broadcast::channel(4096);
        spawn_event_tail(log.clone(), events.clone(), token.clone().cancelled_owned()).await?;
        let app_state = Arc::new(
            AppState::new(
                log.clone(),
                flow.store.clone(),
                flow.live.clone(),
                events,
                names.clone(),
            )
            .with_runtime(health.clone(), registry.clone()),
        );
        let mut app = router(app_state);
        if let Some(mesh) = &mcp_mesh {
            let results = ultracore_mcp::TopicResults::start(log.clone()).await?;
            let server =
                ultracore_mcp::McpServer::new(log.clone(), mesh.clone(), Arc::new(results));
            let mut config = ultracore_mcp::HttpConfig::default();
            config.cancellation_token = token.child_token();
            app = app.nest_service("/mcp", ultracore_mcp::http_service(server, config));
            eprintln!("MCP (streamable HTTP) on http://{addr}/mcp");
        }
        if services.len() == Service::ALL.len() {
            if let Some((models, d)) = decision_service(&config, log.clone()).await? {
                app = app.merge(ultracore_decisions::router(d.clone()));
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
                if let Some(first) = d.emitter_stats() {
                    // Weak: the metrics must not keep the decision service
                    // alive past its shutdown.
                    let weak = Arc::downgrade(&d);
                    api_state = api_state.with_emitter(Arc::new(move || {
                        weak.upgrade()
                            .and_then(|d| d.emitter_stats())
                            .unwrap_or_else(|| first.clone())
                    }));
                }
                registry.register("forensics", Arc::new(FnCollector(api_state.collector())));
                let weak = Arc::downgrade(&d);
                registry.register(
                    "decisions",
                    Arc::new(FnCollector(move |out: &mut Exposition| {
                        if let Some(d) = weak.upgrade() {
                            out.raw(&d.render_metrics());
                        }
                    })),
                );
                app = app.merge(ultracore_forensics::api_router(api_state));
                // The service holds its store and the metrics the routes
                // read, so it starts once per process: under `on-failure` a
                // restart reports that the server must be restarted.
                let slot = std::sync::Mutex::new(Some(forensics));
                supervisor.add(Registration::task("forensics", move |ctx| {
                    let service = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    async move {
                        let Some(service) = service else {
                            return Err(ServiceError::other(
                                "the forensics service cannot be restarted inside this process; restart the server",
                            ));
                        };
                        service
                            .run(ctx.token.cancelled_owned())
                            .await
                            .map(drop)
                            .map_err(ServiceError::other)
                    }
                }));
                decisions = Some(d);
                eprintln!(
                    "trading decisions: POST /api/v1/decisions; forensics: GET /api/v1/forensics/{{decision_id}}"
                );
            }
        }
        let http = HttpMetrics::register(&registry);
        app = app.layer(axum::middleware::from_fn_with_state(http, track_requests));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}: is another server using it?"))?;
        let shutdown = token.clone().cancelled_owned();
        server = Some(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }));
        eprintln!(
            "API on http://{addr}/api/v1 (OpenAPI: /api/v1/openapi.json, health: /healthz, readiness: /readyz, metrics: /metrics)"
        );
    }
    eprintln!(
        "{} on the {} log; Ctrl-C stops",
        names.join(", "),
        log.kind()
    );
    let outcome = supervisor.run(stop_signal()).await;
    if let Some(server) = server {
        server.await??;
    }
    if let Some(d) = decisions {
        match Arc::try_unwrap(d) {
            Ok(d) => {
                if let Some(stats) = d.shutdown().await {
                    tracing::info!(?stats, "decision events delivered or spooled");
                }
            }
            Err(_) => tracing::error!(
                "the decision service is still in use at shutdown; its queued events stay in the spool's hands"
            ),
        }
    }
    match outcome {
        Err(failure) => Err(failure.into()),
        Ok(()) => {
            eprintln!("stopped");
            Ok(())
        }
    }
}

/// Ctrl-C, or SIGTERM (what service managers send).
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
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
    run_services(
        args,
        &Service::ALL,
        serve.mesh,
        Some(serve.addr),
        serve.restart,
    )
    .await
}
