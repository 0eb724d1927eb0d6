//! The UltraCore web console, served by `ultracore serve` at `/`.
//!
//! Server-rendered pages (no build step; one small script and one style
//! sheet, embedded), live over server-sent events, each page and each
//! piece of data behind the platform's guard and access table: a viewer
//! sees the portfolio pages, operators (`read-metrics`) the topics,
//! groups, topology and architecture, `read-events` the message browser
//! and traces, admins the access page.
//!
//! | path | what |
//! |---|---|
//! | `/login` | sign-in with an API key or an identity provider's token, or (when configured) with the organisation's OpenID Connect provider |
//! | `/console/oidc/login`, `/console/oidc/callback` | the OpenID Connect sign-in (routed by `ultracore-http`) |
//! | `/` | overview: services and their health, events/s per topic, errors, alerts |
//! | `/portfolios`, `/portfolios/{id}` | optimizations, results with charts (weights, ESG and carbon before and after, the efficient frontier), staged orders |
//! | `/topics`, `/topics/{name}` | topics with partitions, watermarks, retention, rates, producers and consumers; the message browser |
//! | `/groups` | consumer groups: lag in records and seconds per partition, trend, status |
//! | `/topology` | the live graph service → topic → group → service |
//! | `/architecture` | the architecture visualizer: layers, component explorer, diagram, exports |
//! | `/traces` | a request's path through services and topics (by correlation id) |
//! | `/access` | keys and sessions (admin) |
//! | `/decisions`, `/audit`, `/alerts`, `/agents`, `/mesh` | forensics (SHAP waterfall, regimes), the audit trail (checkpoint, verify, proofs), compliance alerts (live), agents' analytics, the data mesh catalogue (search, lineage): read by the page's script from their APIs |
//! | `GET /api/v1/topology` | the graph as JSON |
//! | `GET /api/v1/architecture[/diagram.svg|.drawio]` | components and connections; the diagram |
//! | `GET /api/v1/topics[/{name}/messages]` | topics; their records, decoded |
//! | `GET /api/v1/groups` | groups with lag per partition |
//! | `POST /api/v1/services/{name}/pause`, `/resume` | stop and start a consumer's reading (admin) |
//! | `POST /api/v1/topics` | create a topic (admin) |
//! | `GET /api/v1/traces/{correlation_id}` | a request's spans, hop by hop |
//!
//! # Layout
//!
//! - `topology`: the live graph and edge rates.
//! - `architecture`: components in layers.
//! - `diagram`: layered layout, SVG and draw.io.
//! - `browse`: the message browser.
//! - `pages`: the HTML pages; `stream`: the live updates.

mod api;
pub mod architecture;
mod browse;
pub mod charts;
pub mod diagram;
mod pages;
mod portfolios;
mod stream;
pub mod topology;
mod traces;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use ultracore_flow::{Orders, Reports};
use ultracore_http::Guard;
use ultracore_log::{now_millis, EventLog, GroupLag, TopicInfo};
use ultracore_metrics::{Exposition, FnCollector, Kind, Registry};
use ultracore_runtime::{Health, Lineage, ServiceState, Tracer};

pub use architecture::{Architecture, Setting, Store};
pub use topology::{Rates, Topology};

/// Operational alerts the overview keeps.
pub const OPS_ALERTS: usize = 50;

/// Lag samples kept per group for its trend.
const TREND: usize = 60;

/// A group's lag over time: (time ms, records) samples.
pub type Trend = VecDeque<(i64, u64)>;

/// What the console reads, shared by its routes and its sampler.
#[derive(Debug)]
pub struct Console<L: EventLog> {
    pub(crate) log: L,
    pub(crate) lineage: Lineage,
    pub(crate) health: Health,
    pub(crate) tracer: Tracer,
    pub(crate) guard: Guard,
    pub(crate) setting: Setting,
    pub(crate) rates: Rates,
    /// The last reading of the log: topics and every group's lag.
    pub(crate) snapshot: Mutex<Snapshot>,
    /// Group → its lag trend.
    pub(crate) trends: Mutex<BTreeMap<String, Trend>>,
    /// Group → the lag monitor's status, when one runs.
    pub(crate) statuses: Mutex<BTreeMap<String, String>>,
    /// The lag monitor of this process, when it runs: its statuses and
    /// time lags are shown with the groups.
    pub(crate) lag: Mutex<Option<ultracore_lag::LagMonitor>>,
    /// The portfolio read models (reporting, orders), when the portfolio
    /// services run here.
    pub(crate) portfolios: Mutex<Option<(Reports, Orders)>>,
    /// Bumped after each reading of the log: the live streams send their
    /// tick right after it.
    pub(crate) readings: tokio::sync::watch::Sender<u64>,
    /// The graph of the latest reading, built once by the first live
    /// stream that ticks on it and shared with the others (see
    /// [`Console::reading_topology`]).
    pub(crate) reading_topology: Mutex<(u64, Arc<tokio::sync::OnceCell<Arc<Topology>>>)>,
    /// The latest operational alerts (lag status changes) read from
    /// `ops.alerts`, newest last.
    pub(crate) ops_alerts: Mutex<VecDeque<ultracore_lag::LagAlert>>,
}

/// The log as last read by the sampler.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at_ms: i64,
    pub topics: Vec<TopicInfo>,
    pub lags: Vec<GroupLag>,
}

impl<L: EventLog> Console<L> {
    pub fn new(
        log: L,
        lineage: Lineage,
        health: Health,
        tracer: Tracer,
        guard: Guard,
        setting: Setting,
    ) -> Arc<Self> {
        Arc::new(Console {
            log,
            lineage,
            health,
            tracer,
            guard,
            setting,
            rates: Rates::default(),
            snapshot: Mutex::default(),
            trends: Mutex::default(),
            statuses: Mutex::default(),
            lag: Mutex::default(),
            portfolios: Mutex::default(),
            readings: tokio::sync::watch::channel(0).0,
            reading_topology: Mutex::default(),
            ops_alerts: Mutex::default(),
        })
    }

    /// Shows `monitor`'s evaluation (Burrow's statuses, exact time lag)
    /// with the groups and as badges of the topology.
    pub fn with_lag_monitor(&self, monitor: ultracore_lag::LagMonitor) {
        *self.lag.lock().unwrap_or_else(PoisonError::into_inner) = Some(monitor);
    }

    /// Serves the portfolio pages from these read models.
    pub fn with_portfolios(&self, reports: Reports, orders: Orders) {
        *self
            .portfolios
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((reports, orders));
    }

    pub(crate) fn portfolio_models(&self) -> Option<(Reports, Orders)> {
        self.portfolios
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn lag_monitor(&self) -> Option<ultracore_lag::LagMonitor> {
        self.lag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets the lag monitor's status of each group (shown on the groups
    /// page and as badges of the topology).
    pub fn set_statuses(&self, statuses: BTreeMap<String, String>) {
        *self.statuses.lock().unwrap_or_else(PoisonError::into_inner) = statuses;
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Services of this process and their state.
    pub(crate) fn services(&self) -> BTreeMap<String, String> {
        self.health
            .report()
            .services
            .into_iter()
            .map(|s| {
                let state = match s.state {
                    ServiceState::Starting => "starting",
                    ServiceState::Running => "running",
                    ServiceState::Restarting { .. } => "restarting",
                    ServiceState::Failed { .. } => "failed",
                    ServiceState::Stopped => "stopped",
                };
                (s.name, state.to_owned())
            })
            .collect()
    }

    /// The graph now, from the last reading of the log.
    pub fn topology(&self) -> Topology {
        let snapshot = self.snapshot();
        let inputs = topology::Inputs {
            edges: self.lineage.edges(),
            topics: snapshot.topics,
            lags: snapshot.lags,
            services: self.services(),
            statuses: self
                .statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        };
        topology::build(
            &inputs,
            &self.rates,
            architecture::service_layer,
            now_millis(),
        )
    }

    /// [`Console::topology`] as of the latest reading of the log, built
    /// once however many live streams tick on that reading: each open
    /// stream building its own would cost N builds a second.
    ///
    /// The first caller of a reading builds it; the others wait for that
    /// build without holding a thread (an async once-cell; the lock around
    /// it is held only to swap cells). A stream that wakes late, after
    /// the next reading, gets the newer graph: what it would have built.
    pub(crate) async fn reading_topology(&self) -> Arc<Topology> {
        let reading = *self.readings.borrow();
        let cell = {
            let mut shared = self
                .reading_topology
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if shared.0 != reading {
                *shared = (reading, Arc::default());
            }
            shared.1.clone()
        };
        cell.get_or_init(|| async { Arc::new(self.topology()) })
            .await
            .clone()
    }

    pub fn architecture(&self) -> Architecture {
        architecture::build(&self.topology(), &self.setting)
    }

    /// Reads the log and samples the edges once.
    pub async fn sample(&self) {
        if let Some(m) = self.lag_monitor() {
            // Statuses only: the full snapshot copies every partition's
            // window, milliseconds at thousands of partitions, every second.
            let statuses = m
                .statuses()
                .into_iter()
                // Not judged yet (its window is filling): no badge.
                .filter(|(_, status)| *status != ultracore_lag::Status::NotFound)
                .map(|(group, status)| (group, status.as_str().to_owned()))
                .collect();
            self.set_statuses(statuses);
        }
        let edges = self.lineage.edges();
        self.rates.sample(&edges, now_millis());
        match topology::read_log(&self.log, &edges).await {
            Ok((topics, lags)) => {
                let at_ms = now_millis();
                let mut per_group: BTreeMap<&str, u64> = BTreeMap::new();
                for l in &lags {
                    *per_group.entry(l.group.as_str()).or_default() += l.lag();
                }
                {
                    let mut trends = self.trends.lock().unwrap_or_else(PoisonError::into_inner);
                    for (g, lag) in per_group {
                        let t = trends.entry(g.to_owned()).or_default();
                        t.push_back((at_ms, lag));
                        while t.len() > TREND {
                            t.pop_front();
                        }
                    }
                }
                *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = Snapshot {
                    at_ms,
                    topics,
                    lags,
                };
                self.readings.send_modify(|n| *n += 1);
            }
            Err(e) => tracing::warn!(error = %e, "the console could not read the log"),
        }
    }

    /// Samples every `every` until `token` is cancelled.
    pub fn spawn_sampler(self: &Arc<Self>, every: Duration, token: CancellationToken) {
        let console = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = ticker.tick() => console.sample().await,
                }
            }
        });
    }

    /// Follows `ops.alerts` from its beginning (a group of its own that
    /// never commits) and keeps the latest [`OPS_ALERTS`] lag alerts for the
    /// overview, until `token` is cancelled.
    pub fn spawn_ops_alerts(self: &Arc<Self>, token: CancellationToken) {
        use ultracore_log::{Consumer, ConsumerOptions};
        let console = self.clone();
        tokio::spawn(async move {
            let options = ConsumerOptions::new(
                format!("console-ops-alerts-{}", std::process::id()),
                [ultracore_lag::alert::TOPIC],
            );
            let mut consumer = loop {
                match console.log.consumer(options.clone()).await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::debug!(error = %e, "the console waits for ops.alerts");
                        tokio::select! {
                            _ = token.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        }
                    }
                }
            };
            loop {
                let records = tokio::select! {
                    _ = token.cancelled() => return,
                    r = consumer.poll(256, Duration::from_millis(500)) => r,
                };
                match records {
                    Ok(records) => {
                        let mut alerts = console
                            .ops_alerts
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        for r in &records {
                            if let Ok(Some(a)) = ultracore_lag::LagAlert::from_record(r) {
                                alerts.push_back(a);
                                while alerts.len() > OPS_ALERTS {
                                    alerts.pop_front();
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading ops.alerts failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    pub(crate) fn recent_ops_alerts(&self) -> Vec<ultracore_lag::LagAlert> {
        self.ops_alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    /// `ultracore_topology_edge_records_total{service,topic,role,group}`:
    /// the records through each edge, from which the console's rates come
    /// (two scrapes give the same rate).
    pub fn register_metrics(self: &Arc<Self>, registry: &Registry) {
        let weak = Arc::downgrade(self);
        registry.register(
            "console",
            Arc::new(FnCollector(move |out: &mut Exposition| {
                let Some(c) = weak.upgrade() else {
                    return;
                };
                out.family(
                    EDGE_RECORDS_TOTAL,
                    "Records through each edge of the topology (a service producing to a topic, a group consuming one).",
                    Kind::Counter,
                );
                for e in c.lineage.edges() {
                    out.sample(
                        EDGE_RECORDS_TOTAL,
                        &[
                            ("service", e.service.as_str()),
                            ("topic", e.topic.as_str()),
                            ("role", e.role.as_str()),
                            ("group", e.group.as_deref().unwrap_or("")),
                        ],
                        e.records as f64,
                    );
                }
                out.family(
                    "ultracore_console_sessions",
                    "Console sign-in sessions held.",
                    Kind::Gauge,
                );
                out.sample("ultracore_console_sessions", &[], c.guard.sessions().len() as f64);
            })),
        );
    }
}

/// The metric the topology's rates come from.
pub const EDGE_RECORDS_TOTAL: &str = "ultracore_topology_edge_records_total";

/// The console's routes (pages, assets, stream, the operations API) with
/// the sign-in routes; merge into the app before the guard protects it.
pub fn router<L: EventLog>(console: Arc<Console<L>>) -> Router {
    let guard = console.guard.clone();
    Router::new()
        .route("/login", get(pages::login::<L>))
        .route("/favicon.ico", get(pages::favicon))
        .route("/console/assets/{file}", get(pages::asset))
        .route("/console/stream", get(stream::stream::<L>))
        .route("/", get(pages::overview::<L>))
        .route("/portfolios", get(portfolios::list::<L>))
        .route("/portfolios/{id}", get(portfolios::portfolio::<L>))
        .route("/topics", get(pages::topics::<L>))
        .route("/topics/{name}", get(pages::topic::<L>))
        .route("/groups", get(pages::groups::<L>))
        .route("/topology", get(pages::topology::<L>))
        .route("/architecture", get(pages::architecture::<L>))
        .route("/traces", get(pages::traces::<L>))
        .route("/access", get(pages::access::<L>))
        .route("/decisions", get(pages::decisions))
        .route("/audit", get(pages::audit))
        .route("/alerts", get(pages::alerts))
        .route("/agents", get(pages::agents))
        .route("/mesh", get(pages::mesh))
        .route("/api/v1/topology", get(api::topology::<L>))
        .route("/api/v1/architecture", get(api::architecture::<L>))
        .route(
            "/api/v1/architecture/diagram.svg",
            get(api::diagram_svg::<L>),
        )
        .route(
            "/api/v1/architecture/diagram.drawio",
            get(api::diagram_drawio::<L>),
        )
        .route(
            "/api/v1/topics",
            get(api::topics::<L>).post(api::create_topic::<L>),
        )
        .route("/api/v1/topics/{name}/messages", get(browse::messages::<L>))
        .route("/api/v1/groups", get(api::groups::<L>))
        .route(
            "/api/v1/services/{name}/pause",
            axum::routing::post(api::pause::<L>),
        )
        .route(
            "/api/v1/services/{name}/resume",
            axum::routing::post(api::resume::<L>),
        )
        .route(
            "/api/v1/traces/{correlation_id}",
            get(traces::by_correlation::<L>),
        )
        .with_state(console)
        .merge(ultracore_http::session_router(guard.clone()))
        .merge(ultracore_http::oidc_router(guard))
}
