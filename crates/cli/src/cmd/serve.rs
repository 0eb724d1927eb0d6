//! `ultracore serve`: the HTTP API and every service in one process; and
//! `ultracore service reporting|execution|notification`: one service alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use tokio::sync::broadcast;
use ultracore_api::{router, spawn_event_tail, track_requests, AppState, HttpMetrics};
use ultracore_auth::{Authenticator, JwtVerifier, RateLimit, RateLimiter};
use ultracore_decisions::DecisionService;
use ultracore_es::Database;
use ultracore_flow::{flow_services, FlowOptions, Service};
use ultracore_http::{loopback_hosts, EdgeConfig, Guard, ServerLimits};
use ultracore_log_any::{Access, AnyLog, LogConfig};
use ultracore_marketdata::mesh::DataMesh;
use ultracore_metrics::{Exposition, FnCollector, Kind};
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
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
}

const CHECKPOINT_RECORDS: u64 = 10_000;
const CHECKPOINT_MS: u64 = 1_000;

/// The audit trail of every event.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Sign a checkpoint of the audit trail once this many records wait...
    #[arg(
        long,
        env = "ULTRACORE_AUDIT_CHECKPOINT_RECORDS",
        default_value_t = 10_000
    )]
    pub audit_checkpoint_records: u64,
    /// ...or once the oldest of them waited this many milliseconds.
    #[arg(long, env = "ULTRACORE_AUDIT_CHECKPOINT_MS", default_value_t = CHECKPOINT_MS)]
    pub audit_checkpoint_ms: u64,
    /// The origin (name) of a new trail [default: ultracore.audit/<random id>].
    #[arg(long, env = "ULTRACORE_AUDIT_ORIGIN", value_name = "NAME")]
    pub audit_origin: Option<String>,
}

impl AuditArgs {
    /// The defaults of the flags.
    pub fn defaults() -> AuditArgs {
        AuditArgs {
            audit_checkpoint_records: CHECKPOINT_RECORDS,
            audit_checkpoint_ms: CHECKPOINT_MS,
            audit_origin: None,
        }
    }

    /// The audit service's options for the trail in `DATA_DIR/audit`.
    pub fn options(&self, config: &LogConfig) -> ultracore_audit::AuditOptions {
        let mut o = ultracore_audit::AuditOptions::new(config.data_dir().join("audit"));
        o.origin = self.audit_origin.clone();
        o.checkpoint_records = self.audit_checkpoint_records.max(1);
        o.checkpoint_interval = std::time::Duration::from_millis(self.audit_checkpoint_ms.max(10));
        o
    }
}

/// Who may reach the server and how hard: the trust boundary's settings.
#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// A host name clients may address the server by (the `Host` header),
    /// besides the loopback names and the address it listens on; repeat
    /// for several, `*` for any (behind a proxy that checks it).
    #[arg(
        long = "allowed-host",
        env = "ULTRACORE_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub allowed_hosts: Vec<String>,
    /// An origin whose web pages may call the API
    /// (`https://console.example.com`); none by default (CORS off).
    #[arg(
        long = "cors-origin",
        env = "ULTRACORE_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// Serve `/metrics` without credentials (for a Prometheus scraper on a
    /// private network); otherwise it needs a key with read-metrics.
    #[arg(long, env = "ULTRACORE_PUBLIC_METRICS")]
    pub public_metrics: bool,
    /// Accept JWTs from this OIDC issuer (exactly as in their `iss`), besides
    /// API keys. Its signing keys come from --oidc-jwks FILE, or else from
    /// the issuer's discovery document
    /// (`{issuer}/.well-known/openid-configuration`, https; plain http
    /// only to a loopback host).
    #[arg(long, env = "ULTRACORE_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The audience the tokens must name [default: --oidc-client-id].
    #[arg(long, env = "ULTRACORE_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// The issuer's signing keys: a JWKS file, for deployments without
    /// discovery [default: fetched from the issuer's jwks_uri every 15
    /// minutes and when a token names an unknown key].
    #[arg(long, env = "ULTRACORE_OIDC_JWKS", value_name = "FILE")]
    pub oidc_jwks: Option<PathBuf>,
    /// Console sign-in with OpenID Connect: the console's client id at the
    /// issuer (ID tokens must name it in `aud`). The client secret, when
    /// the client has one, is read from ULTRACORE_OIDC_CLIENT_SECRET only.
    /// Needs --oidc-issuer and --oidc-redirect-url. Example:
    /// `--oidc-issuer https://idp.example.com/realms/bank --oidc-client-id
    /// ultracore-console --oidc-redirect-url
    /// https://console.example.com/console/oidc/callback`
    #[arg(long, env = "ULTRACORE_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// Where the issuer sends browsers back after sign-in, as registered
    /// there: this server's `/console/oidc/callback` as browsers reach it
    /// (add its host with --allowed-host).
    #[arg(long, env = "ULTRACORE_OIDC_REDIRECT_URL", value_name = "URL")]
    pub oidc_redirect_url: Option<String>,
    /// Requests per second each key may make, sustained.
    #[arg(long, env = "ULTRACORE_RATE_LIMIT", default_value_t = 50.0)]
    pub rate_limit: f64,
    /// Requests a key may make at once after a quiet spell.
    #[arg(long, env = "ULTRACORE_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
    /// Connections open at once; more are answered 503 and closed.
    #[arg(long, env = "ULTRACORE_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Event streams (SSE, MCP sessions' streams) open at once.
    #[arg(long, env = "ULTRACORE_MAX_STREAMS", default_value_t = 256)]
    pub max_streams: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "ULTRACORE_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a request may take to be answered.
    #[arg(long, env = "ULTRACORE_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Mark the console's session cookie `Secure`: the server is reached
    /// over HTTPS (a proxy in front terminates TLS).
    #[arg(long, env = "ULTRACORE_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

impl EdgeArgs {
    /// The guard's configuration for a server listening on `addr`.
    fn config(&self, addr: SocketAddr) -> EdgeConfig {
        let mut hosts = loopback_hosts();
        if !addr.ip().is_loopback() && !addr.ip().is_unspecified() {
            hosts.push(match addr.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        hosts.extend(
            self.allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase()),
        );
        EdgeConfig {
            allowed_hosts: hosts,
            cors_origins: self.cors_origins.clone(),
            public_metrics: self.public_metrics,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
            max_streams: self.max_streams.max(1),
            secure_cookies: self.secure_cookies,
        }
    }

    /// The guard of a server on `addr`: keys, tokens, rate limits, Host
    /// and Origin rules.
    pub fn guard(&self, args: &LogArgs, addr: SocketAddr) -> Result<Guard> {
        let jwt = self.oidc().file_verifier()?;
        self.guard_with(args, addr, jwt)
    }

    /// [`EdgeArgs::guard`], with the OIDC provider found by discovery when
    /// configured so: its keys (refreshed until `shutdown`) and the
    /// console's sign-in.
    pub async fn serve_guard(
        &self,
        args: &LogArgs,
        addr: SocketAddr,
        shutdown: ultracore_runtime::CancellationToken,
    ) -> Result<Guard> {
        let Some(provider) = self.oidc().provider(shutdown).await? else {
            return self.guard_with(args, addr, None);
        };
        let guard = self.guard_with(args, addr, Some(provider.verifier))?;
        // A fresh guard: neither is set yet.
        if let Some(s) = provider.sign_in {
            let _ = guard.set_oidc_sign_in(s);
        }
        if let Some(j) = provider.jwks {
            let _ = guard.set_jwks_source(j);
        }
        Ok(guard)
    }

    fn guard_with(
        &self,
        args: &LogArgs,
        addr: SocketAddr,
        jwt: Option<Arc<JwtVerifier>>,
    ) -> Result<Guard> {
        let limiter = RateLimiter::new(RateLimit {
            per_second: self.rate_limit,
            burst: self.rate_burst,
            ..RateLimit::default()
        })?;
        let config = self.config(addr);
        if config.allowed_hosts.iter().any(|h| h == "*") {
            eprintln!(
                "any Host is accepted (--allowed-host '*'): the proxy in front must check it"
            );
        }
        Ok(Guard::new(config, self.authenticator(args, jwt)?, limiter))
    }

    fn oidc(&self) -> crate::oidc::OidcOptions<'_> {
        crate::oidc::OidcOptions {
            issuer: self.oidc_issuer.as_deref(),
            audience: self.oidc_audience.as_deref(),
            jwks_file: self.oidc_jwks.as_deref(),
            client_id: self.oidc_client_id.as_deref(),
            redirect_url: self.oidc_redirect_url.as_deref(),
        }
    }

    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
            ..ServerLimits::default()
        }
    }

    /// API keys of the data directory (an admin key made and printed once
    /// when there is none) and, when configured, the OIDC issuer's tokens.
    fn authenticator(
        &self,
        args: &LogArgs,
        jwt: Option<Arc<JwtVerifier>>,
    ) -> Result<Authenticator> {
        let keys = crate::cmd::keys::key_store(args)?;
        if let Some((record, key)) = keys.ensure_bootstrap_admin()? {
            eprintln!(
                "no API key existed: created the admin key {} (stored hashed in {}); it is shown once, keep it:\n\n  {}\n\nclients send it as 'Authorization: Bearer <key>' (the CLI reads ULTRACORE_API_KEY); make narrower keys with `ultracore keys create --role ROLE`",
                record.id,
                keys.path().display(),
                key.expose()
            );
        }
        let mut auth = Authenticator::new(Arc::new(keys));
        if let Some(verifier) = jwt {
            let c = verifier.config();
            eprintln!(
                "accepting tokens of the OIDC issuer {} for the audience {}",
                c.issuer, c.audience
            );
            auth = auth.with_jwt(verifier);
        }
        Ok(auth)
    }
}

/// The data products in `dir`, built from the shipped sample data first if
/// the directory has none (and saying so).
pub fn open_mesh(dir: &Path) -> Result<DataMesh> {
    let (mesh, built) = ultracore_flow::setup::open_mesh(dir)?;
    if let Some(built) = built {
        eprintln!(
            "built the data products in {} ({} instruments; the ESG data is synthetic)",
            dir.display(),
            built.tickers
        );
    }
    Ok(mesh)
}

/// The data mesh catalogue on the flow's event store: the shipped
/// products on first use, the Parquet products answered from their files.
pub async fn open_catalogue(
    store: &ultracore_es::EventStore<AnyLog>,
    registry: &Registry,
    lineage: ultracore_runtime::lineage::Lineage,
    mesh_dir: &Path,
) -> Result<Arc<ultracore_mesh::Catalogue<AnyLog>>> {
    let c = ultracore_mesh::Catalogue::open(
        store.clone(),
        ultracore_mesh::CacheOptions::default(),
        registry,
    )
    .await
    .context("opening the data mesh catalogue")?
    .with_lineage(lineage);
    ultracore_runtime::catalogue::ensure(
        store.log(),
        &[
            ultracore_runtime::lineage::TOPIC,
            ultracore_mesh::service::OPENLINEAGE_TOPIC,
        ],
    )
    .await
    .context("creating the data mesh's topics")?;
    let mesh = ultracore_marketdata::mesh::DataMesh::open(mesh_dir)
        .with_context(|| format!("opening the data products in {}", mesh_dir.display()))?;
    c.set_source(
        "financial_prices",
        Arc::new(crate::mesh_sources::Prices(mesh.clone())),
    );
    c.set_source("esg_scores", Arc::new(crate::mesh_sources::Esg(mesh)));
    Ok(Arc::new(c))
}

/// The catalogue's services and the lineage publisher.
pub fn catalogue_services(
    config: &ultracore_log_any::LogConfig,
    c: Arc<ultracore_mesh::Catalogue<AnyLog>>,
    log: AnyLog,
) -> Vec<Registration> {
    use ultracore_mesh::service;
    let namespace = match config.backend() {
        Ok(ultracore_log_any::Backend::Kafka { bootstrap_servers }) => {
            ultracore_mesh::openlineage::topic_namespace(&format!("kafka://{bootstrap_servers}"))
        }
        _ => None,
    }
    .unwrap_or_else(|| ultracore_mesh::openlineage::EMBEDDED_LOG_NAMESPACE.to_owned());
    vec![
        ultracore_runtime::lineage::publisher(log.clone()),
        service::lineage_service(c.clone(), log.clone()),
        service::refresh_service(c.clone(), log.clone()),
        service::openlineage_service(c.clone(), log.clone(), namespace.clone()),
        service::openlineage_jobs_service(
            c.clone(),
            log,
            namespace,
            std::time::Duration::from_secs(5),
        ),
        service::quality_service(c, std::time::Duration::from_secs(5)),
    ]
}

/// The read-model database: SQLite in the data directory, or `DATABASE_URL`.
pub fn open_database(config: &LogConfig) -> Result<Database> {
    let dir = config.data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let url = std::env::var("DATABASE_URL").ok();
    Ok(Database::open(&dir, url.as_deref())?)
}

/// The operational tables (users, conversations) and their change relay:
/// on PostgreSQL when `DATABASE_URL` names it (logical replication), else
/// SQLite in the data directory (`operational.sqlite`, an outbox).
pub async fn open_operational(
    config: &LogConfig,
    log: AnyLog,
    options: ultracore_cdc::RelayOptions,
) -> Result<(ultracore_cdc::Operational, ultracore_cdc::Relay<AnyLog>)> {
    let url = std::env::var("DATABASE_URL").ok();
    let dir = config.data_dir();
    ultracore_cdc::open(log, &dir, url.as_deref(), options)
        .await
        .with_context(|| {
            if ultracore_cdc::is_postgres(url.as_deref()) {
                "opening the users and conversations tables in PostgreSQL (DATABASE_URL)".to_owned()
            } else {
                format!(
                    "opening the users and conversations tables in {}",
                    dir.display()
                )
            }
        })
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
    http: Option<(SocketAddr, &EdgeArgs)>,
    restart: RestartPolicy,
    audit: Option<&AuditArgs>,
) -> Result<()> {
    let config = args.config();
    let log = AnyLog::open(&config, Access::Write).await?;
    let db = open_database(&config)?;
    let mesh_dir = mesh.unwrap_or_else(|| config.data_dir().join("mesh"));
    let mesh = if services.contains(&Service::Optimization) {
        Some(open_mesh(&mesh_dir)?)
    } else {
        None
    };
    let mcp_mesh = mesh.clone();
    let registry = Registry::new();
    // Spans of every service; exported over OTLP when
    // OTEL_EXPORTER_OTLP_ENDPOINT is set (a setting that cannot be honoured
    // stops the start here, naming it).
    let tracer = ultracore_runtime::Tracer::from_env(&registry)
        .context("configuring trace export (OTEL_* variables)")?;
    let mut supervisor = Supervisor::with_tracer(
        registry.clone(),
        SupervisorOptions {
            restart,
            ..SupervisorOptions::default()
        },
        tracer,
    );
    let token = supervisor.token();
    let health = supervisor.health();
    let watched = log.clone();
    health.add_check(
        "log",
        Arc::new(move || {
            watched
                .stopped()
                .map(|reason| format!("the log stopped accepting writes: {reason}"))
        }),
    );
    let flow = flow_services(
        log.clone(),
        db,
        FlowOptions {
            tracer: Some(supervisor.tracer()),
            ..FlowOptions::only(services, mesh)
        },
    )
    .await?;
    let mut names: Vec<String> = Vec::new();
    for r in flow.registrations {
        names.push(r.name().to_owned());
        supervisor.add(r);
    }
    let mut screen = None;
    let mut analytics = None;
    let mut operational = None;
    let mut catalogue = None;
    if services.len() == Service::ALL.len() {
        // The users and conversations tables, every change captured onto
        // db.changes.* by the relay.
        let (db, relay) =
            open_operational(&config, log.clone(), ultracore_cdc::RelayOptions::default()).await?;
        ultracore_cdc::RelayProgress::register(&registry, relay.progress_handle());
        let relay = Arc::new(relay);
        names.push("cdc-relay".to_owned());
        supervisor.add(Registration::task("cdc-relay", move |ctx| {
            let relay = relay.clone();
            async move {
                ctx.ready();
                relay
                    .run(ctx.token.clone())
                    .await
                    .map_err(ServiceError::other)
            }
        }));
        operational = Some(db);
        // Governance: agent answers screened for personal data, alerts
        // fingerprinted with the deployment's key.
        let key = ultracore_agents::GovernanceKey::load_or_create(&config.data_dir())?;
        let s = ultracore_agents::Screen::new(key);
        let r = ultracore_agents::governance_registration(log.clone(), s.clone());
        names.push(r.name().to_owned());
        supervisor.add(r);
        screen = Some(s);
        // Market data: closes on external.market.data merged into the
        // financial product (opened above with the optimization service,
        // which every-service runs include).
        let r = ultracore_flow::market_data_registration(log.clone(), mesh_dir.clone());
        names.push(r.name().to_owned());
        supervisor.add(r);
        // Agent analytics: every execution counted once, figures served at
        // /api/v1/analytics/agents.
        let store = ultracore_agents::analytics::AnalyticsStore::open(
            config
                .data_dir()
                .join(ultracore_agents::analytics::AnalyticsStore::FILE_NAME),
        )?;
        let r = ultracore_agents::analytics::registration(
            log.clone(),
            store.clone(),
            ultracore_agents::analytics::AnalyticsMetrics::register(&registry),
        );
        names.push(r.name().to_owned());
        supervisor.add(r);
        analytics = Some(Arc::new(store.reader()?));
        let agent_figures = Arc::new(store.reader()?);
        // The data mesh catalogue: products refreshed by their topics,
        // graded, searchable, with lineage from what the services record.
        let c = open_catalogue(&flow.store, &registry, supervisor.lineage(), &mesh_dir).await?;
        c.set_source(
            "agent_performance",
            Arc::new(crate::mesh_sources::AgentPerformance(agent_figures)),
        );
        for r in catalogue_services(&config, c.clone(), log.clone()) {
            names.push(r.name().to_owned());
            supervisor.add(r);
        }
        catalogue = Some(c);
    }
    // The lag monitor: Burrow's rules over every group, status changes on
    // ops.alerts.
    let lag_monitor = if services.len() == Service::ALL.len() {
        ultracore_runtime::catalogue::ensure(&log, &[ultracore_lag::alert::TOPIC])
            .await
            .context("creating ops.alerts")?;
        let m = ultracore_lag::LagMonitor::new(ultracore_lag::LagConfig::default(), &registry);
        let r = ultracore_lag::service(log.clone(), m.clone());
        names.push(r.name().to_owned());
        supervisor.add(r);
        Some(m)
    } else {
        None
    };
    let audit = match audit {
        None => None,
        Some(a) => {
            let options = a.options(&config);
            let dir = options.dir.clone();
            let (service, opened) = ultracore_audit::AuditService::open(options)
                .with_context(|| format!("opening the audit trail in {}", dir.display()))?;
            if let Some(vkey) = opened.new_key {
                eprintln!(
                    "started the audit trail in {}; the verifier key of its signed checkpoints (keep a copy away from this machine; `ultracore audit key` prints it again):\n\n  {vkey}\n",
                    dir.display()
                );
            }
            let r = service.registration(log.clone());
            names.push(r.name().to_owned());
            supervisor.add(r);
            let trail = service.trail();
            let weak = std::sync::Arc::downgrade(&trail);
            registry.register(
                "audit",
                Arc::new(FnCollector(move |out: &mut Exposition| {
                    let Some(trail) = weak.upgrade() else {
                        return;
                    };
                    let (size, signed) = {
                        let t = trail.lock().unwrap_or_else(|p| p.into_inner());
                        (t.size(), t.latest().map_or(0, |c| c.tree_size))
                    };
                    out.family(
                        "ultracore_audit_tree_size",
                        "Records in the audit trail's Merkle tree.",
                        Kind::Gauge,
                    );
                    out.sample("ultracore_audit_tree_size", &[], size as f64);
                    out.family(
                        "ultracore_audit_signed_size",
                        "Tree size of the latest signed checkpoint.",
                        Kind::Gauge,
                    );
                    out.sample("ultracore_audit_signed_size", &[], signed as f64);
                })),
            );
            Some((trail, dir))
        }
    };
    let mut decisions: Option<Arc<DecisionService>> = None;
    let mut server = None;
    if let Some((addr, edge)) = http {
        let guard = edge.serve_guard(args, addr, token.clone()).await?;
        let edge_config = guard.config().clone();
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
            .with_runtime(health.clone(), registry.clone())
            .with_alerts(flow.live_alerts.clone())
            .with_tracing(supervisor.lineage(), supervisor.tracer()),
        );
        let mut app = router(app_state.clone());
        if let Some((trail, dir)) = &audit {
            app = app.merge(ultracore_audit::api_router(ultracore_audit::AuditApi::new(
                trail.clone(),
                dir.clone(),
                log.clone(),
            )));
        }
        if let Some(db) = &operational {
            app = app.merge(ultracore_cdc::http::router(db.clone()));
        }
        if let Some(c) = &catalogue {
            app = app.merge(ultracore_mesh::http::router(c.clone()));
        }
        // The customer assistant (card, loan and wealth agents) and the
        // CRM's webhook, when every service runs here.
        let agent_tools = match (&mcp_mesh, &screen) {
            (Some(mesh), Some(screen)) => {
                ultracore_runtime::catalogue::ensure(&log, &[ultracore_events::agents::TOPIC])
                    .await
                    .context("creating agent.executions")?;
                // The queue is journaled: questions in flight at a stop are
                // answered after the next start, each once.
                let assistant = Arc::new(crate::cmd::assist::with_configured_model(
                    ultracore_agents::assist::Assistant::open(
                        log.clone(),
                        flow.store.clone(),
                        mesh.clone(),
                        screen.clone(),
                        ultracore_agents::runtime::RuntimeConfig {
                            journal: Some(config.data_dir().join("agents.journal")),
                            ..Default::default()
                        },
                    )
                    .await
                    .context("starting the agents")?,
                )?);
                let crm = Arc::new(
                    ultracore_agents::crm::Crm::open(log.clone(), screen.clone())
                        .await
                        .context("opening the CRM topic")?,
                );
                app = app
                    .merge(ultracore_agents::http::router(
                        assistant.clone(),
                        operational.clone().map(|db| {
                            Arc::new(crate::conversations::Conversations(db))
                                as Arc<dyn ultracore_agents::conversation::ConversationSink>
                        }),
                    ))
                    .merge(ultracore_agents::crm::router(crm.clone()));
                if let Some(reader) = analytics.take() {
                    app = app.merge(ultracore_agents::analytics::router(reader));
                }
                eprintln!(
                    "customer assistant: POST /api/v1/assist; CRM webhook: POST /api/v1/external/crm/events"
                );
                Some(ultracore_mcp::AgentTools {
                    assistant,
                    store: flow.store.clone(),
                    crm,
                })
            }
            _ => None,
        };
        if let Some(mesh) = &mcp_mesh {
            let results = Arc::new(ultracore_mcp::TopicResults::start(log.clone()).await?);
            let weak = Arc::downgrade(&results);
            registry.register(
                "mcp",
                Arc::new(FnCollector(move |out: &mut Exposition| {
                    if let Some(results) = weak.upgrade() {
                        out.family(
                            "ultracore_mcp_remembered_results",
                            "Optimization requests whose state the MCP tools keep in memory (bounded at 100,000).",
                            Kind::Gauge,
                        );
                        out.sample("ultracore_mcp_remembered_results", &[], results.len() as f64);
                    }
                })),
            );
            let mut server = ultracore_mcp::McpServer::new(log.clone(), mesh.clone(), results);
            if let Some(tools) = agent_tools {
                server = server.with_agents(tools);
            }
            let mut config = ultracore_mcp::HttpConfig::default();
            config.cancellation_token = token.child_token();
            // The guard checks Host first; the transport's own check agrees.
            config.allowed_hosts = if edge_config.allowed_hosts.iter().any(|h| h == "*") {
                Vec::new()
            } else {
                edge_config.allowed_hosts.clone()
            };
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
                        service.run_in(ctx).await.map(drop).map_err(ServiceError::other)
                    }
                })
                .waits_until_ready());
                decisions = Some(d);
                eprintln!(
                    "trading decisions: POST /api/v1/decisions; forensics: GET /api/v1/forensics/{{decision_id}}"
                );
            }
        }
        // The web console: pages, live topology, architecture, sign-in.
        let console = ultracore_console::Console::new(
            log.clone(),
            supervisor.lineage(),
            health.clone(),
            supervisor.tracer(),
            guard.clone(),
            console_setting(
                &config,
                &log,
                &guard,
                audit.is_some(),
                mcp_mesh.is_some(),
                screen.is_some(),
            ),
        );
        if let Some(m) = &lag_monitor {
            console.with_lag_monitor(m.clone());
        }
        console.with_portfolios(app_state.reports.clone(), app_state.orders.clone());
        console.spawn_sampler(std::time::Duration::from_secs(1), token.clone());
        if lag_monitor.is_some() {
            console.spawn_ops_alerts(token.clone());
        }
        console.register_metrics(&registry);
        app = app.merge(ultracore_console::router(console));
        app = guard.protect(app);
        app = app.layer(axum::middleware::from_fn(ultracore_api::trace_requests));
        let http_metrics = HttpMetrics::register(&registry);
        app = app.layer(axum::middleware::from_fn_with_state(
            http_metrics,
            track_requests,
        ));
        let (weak_state, edge_guard) = (Arc::downgrade(&app_state), guard.clone());
        registry.register(
            "edge",
            Arc::new(FnCollector(move |out: &mut Exposition| {
                out.family(
                    "ultracore_http_open_streams",
                    "Event streams (SSE) open now.",
                    Kind::Gauge,
                );
                out.sample(
                    "ultracore_http_open_streams",
                    &[],
                    edge_guard.open_streams() as f64,
                );
                out.family(
                    "ultracore_http_rate_limited_principals",
                    "Principals whose rate-limit bucket is tracked (bounded).",
                    Kind::Gauge,
                );
                out.sample(
                    "ultracore_http_rate_limited_principals",
                    &[],
                    edge_guard.tracked_principals() as f64,
                );
                if let Some(state) = weak_state.upgrade() {
                    out.family(
                        "ultracore_api_remembered_requests",
                        "Optimization request ids this process remembers (bounded at 100,000).",
                        Kind::Gauge,
                    );
                    out.sample(
                        "ultracore_api_remembered_requests",
                        &[],
                        state.submitted_len() as f64,
                    );
                }
            })),
        );
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}: is another server using it?"))?;
        let shutdown = token.clone().cancelled_owned();
        let limits = edge.limits();
        server = Some(tokio::spawn(async move {
            ultracore_http::serve(listener, app, limits, shutdown).await
        }));
        if guard.oidc_sign_in().is_some() {
            eprintln!("console on http://{addr}/ (sign in with the organisation's OpenID Connect provider or an API key)");
        } else {
            eprintln!("console on http://{addr}/ (sign in with an API key)");
        }
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

/// What the architecture visualizer shows of this process beyond its
/// services and topics: the log and database kinds, the stores in the
/// data dir, the routes, what outside systems are configured.
fn console_setting(
    config: &LogConfig,
    log: &AnyLog,
    guard: &Guard,
    audit: bool,
    mcp: bool,
    agents: bool,
) -> ultracore_console::Setting {
    use ultracore_console::Store;
    let dir = config.data_dir();
    let store =
        |id: &str, name: &str, file: &str, technical: &str, plain: &str, by: &[&str]| Store {
            id: id.to_owned(),
            name: name.to_owned(),
            technical: format!("{technical} ({})", dir.join(file).display()),
            plain: plain.to_owned(),
            written_by: by.iter().map(|s| (*s).to_owned()).collect(),
        };
    let mut stores = vec![
        store(
            "store:mesh",
            "Data products",
            "mesh",
            "Parquet files of the data products (prices, ESG scores), read with arrow/parquet",
            "The market and ESG data the optimizer uses.",
            &["market-data"],
        ),
        store(
            "store:operational",
            "Users and conversations",
            "operational.sqlite",
            "Operational tables with change capture triggers (outbox)",
            "Customer records and conversations.",
            &["cdc-relay"],
        ),
        store(
            "store:analytics",
            "Agent analytics",
            ultracore_agents::analytics::AnalyticsStore::FILE_NAME,
            "SQLite: per-agent execution figures",
            "How the assistants performed.",
            &["agent-analytics"],
        ),
        store(
            "store:forensics",
            "Forensics store",
            "forensics.sqlite",
            "SQLite: SHAP values and reports per trading decision",
            "Why each trading decision was made.",
            &["forensics"],
        ),
    ];
    if audit {
        stores.push(store(
            "store:audit",
            "Audit trail",
            "audit",
            "Merkle tree tiles and signed checkpoints",
            "The tamper-evident record.",
            &["audit"],
        ));
    }
    let database = match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => "postgresql",
        _ => "sqlite",
    };
    ultracore_console::Setting {
        log_kind: log.kind().to_owned(),
        database: database.to_owned(),
        stores,
        routes: ultracore_http::ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect(),
        identity_provider: guard.authenticator().jwt().is_some(),
        otlp: std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some(),
        mcp,
        agents,
    }
}

/// Ctrl-C, or SIGTERM (what service managers send).
pub async fn stop_signal() {
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
        Some((serve.addr, &serve.edge)),
        serve.restart,
        Some(&serve.audit),
    )
    .await
}
