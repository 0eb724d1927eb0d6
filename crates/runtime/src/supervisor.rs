//! The supervisor: every service of a process in one task set, one
//! cancellation token for shutdown, a restart policy for failures.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use ultracore_log::EventLog;
use ultracore_metrics::Registry;

use crate::config::ConsumerSpec;
use crate::consumer::run_consumer;
use crate::handler::Handler;
use crate::health::{Health, ServiceState};
use crate::lineage::{Lineage, Traced};
use crate::metrics::RuntimeMetrics;
use crate::trace::Tracer;
use crate::Dedup;

/// Why a service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Log(#[from] ultracore_log::Error),
    #[error(transparent)]
    Catalogue(#[from] crate::catalogue::CatalogueError),
    #[error("the handler kept failing on the platform: {0}")]
    Handler(crate::HandlerError),
    #[error("{0}")]
    Other(String),
}

impl ServiceError {
    /// Any error of a service's own, with its message.
    pub fn other(e: impl std::fmt::Display) -> Self {
        ServiceError::Other(e.to_string())
    }
}

/// What a service is given when it starts.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// The service's name (labels its metrics and health).
    pub name: String,
    /// Cancelled when the process shuts down: finish the work at hand,
    /// make it durable, return `Ok`.
    pub token: CancellationToken,
    pub health: Health,
    pub registry: Registry,
    pub metrics: Arc<RuntimeMetrics>,
    /// Where the topics the service produces and consumes are recorded
    /// (shared by every service of a supervisor); see [`ServiceContext::traced`].
    pub lineage: Lineage,
    /// Where the spans of what the service sends and processes go (shared
    /// by every service of a supervisor); see [`ServiceContext::traced`].
    pub tracer: Tracer,
}

impl ServiceContext {
    /// The context of a service run on its own, without a supervisor (tests,
    /// a single embedded service): metrics, health, lineage and tracer (in
    /// memory, not exported) of its own.
    pub fn standalone(name: &str) -> ServiceContext {
        let registry = Registry::new();
        let ctx = ServiceContext {
            name: name.to_owned(),
            token: CancellationToken::new(),
            health: Health::new(),
            metrics: RuntimeMetrics::register(&registry),
            tracer: Tracer::new(Default::default(), &registry),
            registry,
            lineage: Lineage::new(),
        };
        ctx.health.register(name, true);
        ctx
    }

    /// A bounded deduplication whose size is exported as
    /// `ultracore_service_dedup_entries{service}`.
    pub fn dedup<K: std::hash::Hash + Eq + Clone, V>(&self, capacity: usize) -> Dedup<K, V> {
        Dedup::new(capacity).with_gauge(self.metrics.dedup_entries.with(&[&self.name]))
    }

    /// `log`, recording in [`ServiceContext::lineage`] under the service's
    /// name every append (the topics it produces) and every consumer it
    /// creates (the topics it consumes, with the group), and carrying
    /// traces: a `traceparent` on every record it appends, a span per
    /// record sent and processed in [`ServiceContext::tracer`] (see
    /// [`crate::trace`]). The runtime's consumer loop traces its own log; a
    /// service wraps every other log handle it writes or reads through: a
    /// consumer's handler in its `make` closure, a task service when it
    /// starts. Wrapping an already traced log again counts nothing twice.
    pub fn traced<L: EventLog>(&self, log: L) -> Traced<L> {
        Traced::new(log, self.lineage.clone(), &self.name).with_tracer(self.tracer.clone())
    }

    /// Marks a service that is not a consumer as ready (consumers are
    /// marked by the runtime once caught up).
    pub fn ready(&self) {
        self.health.set_ready(&self.name);
    }
}

type Start = dyn Fn(ServiceContext) -> BoxFuture<'static, Result<(), ServiceError>> + Send + Sync;

/// A service as the supervisor knows it: a name and how to start it (again).
pub struct Registration {
    name: String,
    consumer: bool,
    start: Arc<Start>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl Registration {
    /// A consumer service: `make` builds its handler (again after a
    /// restart, so in-memory state starts fresh), the runtime runs the
    /// group loop.
    ///
    /// The runtime records in the lineage what the group consumes and the
    /// dead letters it writes. The handler's own appends are recorded when
    /// it writes through a log `make` wraps with [`ServiceContext::traced`]:
    /// `move |ctx| Ok(Forward { out: ctx.traced(log.clone()) })`.
    pub fn consumer<L, H, F>(name: impl Into<String>, log: L, spec: ConsumerSpec, make: F) -> Self
    where
        L: EventLog,
        H: Handler,
        F: Fn(&ServiceContext) -> Result<H, ServiceError> + Send + Sync + 'static,
    {
        let spec = Arc::new(spec);
        let make = Arc::new(make);
        Registration {
            name: name.into(),
            consumer: true,
            start: Arc::new(move |ctx: ServiceContext| {
                let (log, spec, make) = (log.clone(), spec.clone(), make.clone());
                async move {
                    let mut handler = make(&ctx)?;
                    run_consumer(&log, &spec, &mut handler, &ctx).await
                }
                .boxed()
            }),
        }
    }

    /// Any other long-running task (a projection, a server): it must
    /// return `Ok` soon after `ctx.token` is cancelled. What it appends and
    /// consumes is recorded in the lineage when it goes through
    /// `ctx.traced(log)` (and, for a consumer loop it runs itself, through
    /// [`crate::run_consumer`], which traces its log).
    pub fn task<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: Fn(ServiceContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ServiceError>> + Send + 'static,
    {
        Registration {
            name: name.into(),
            consumer: false,
            start: Arc::new(move |ctx| start(ctx).boxed()),
        }
    }

    /// Like [`Registration::task`], but readiness waits for the task to
    /// call [`ServiceContext::ready`] (a projection that caught up).
    pub fn waits_until_ready(mut self) -> Self {
        self.consumer = true;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What the supervisor does when a service fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Stop everything and return the failure (the process exits non-zero
    /// and its own supervisor, systemd or Kubernetes, decides).
    Never,
    /// Start it again after `backoff`, up to `max_restarts` times within
    /// `window`; beyond that, as `Never`.
    OnFailure {
        max_restarts: u32,
        window: Duration,
        backoff: Duration,
    },
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    /// `never`, or `on-failure[:N]` (N restarts per 5 minutes, default 3).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, n) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "never" if n.is_empty() => Ok(RestartPolicy::Never),
            "on-failure" => {
                let max_restarts = if n.is_empty() {
                    3
                } else {
                    n.parse()
                        .map_err(|_| format!("'{n}' is not a number of restarts (on-failure:N)"))?
                };
                Ok(RestartPolicy::OnFailure {
                    max_restarts,
                    window: Duration::from_secs(300),
                    backoff: Duration::from_secs(1),
                })
            }
            _ => Err(format!(
                "unknown restart policy '{s}': use never or on-failure[:N]"
            )),
        }
    }
}

/// Options of a [`Supervisor`].
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    pub restart: RestartPolicy,
    /// After a failure the supervisor keeps the process up this long before
    /// stopping everything, so `/healthz` answers 503 to the load balancer
    /// and monitors that poll it.
    pub failure_linger: Duration,
    /// How long a shutdown waits for the services to finish their work.
    pub drain_timeout: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            restart: RestartPolicy::Never,
            failure_linger: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// A service that failed for good.
#[derive(Debug, Clone, thiserror::Error)]
#[error("service {service} failed: {error}")]
pub struct Failure {
    pub service: String,
    pub error: String,
}

/// Every service of the process.
#[derive(Debug)]
pub struct Supervisor {
    token: CancellationToken,
    health: Health,
    registry: Registry,
    metrics: Arc<RuntimeMetrics>,
    lineage: Lineage,
    tracer: Tracer,
    /// Tracing configured from the environment that cannot be honoured:
    /// [`Supervisor::run`] fails with it at once.
    tracer_error: Option<String>,
    options: SupervisorOptions,
    services: HashMap<String, Registration>,
    restarts: HashMap<String, Vec<Instant>>,
    tasks: JoinSet<(String, Result<(), ServiceError>)>,
    /// Services whose task has not ended.
    running: std::collections::BTreeSet<String>,
}

impl Supervisor {
    /// A supervisor whose metrics go to `registry` (the process's one), with
    /// a tracer configured by the OpenTelemetry variables
    /// ([`Tracer::from_env`]: spans kept in memory, and exported when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Variables it cannot honour (an
    /// `https://` endpoint) make [`Supervisor::run`] fail at once, naming
    /// the variable; check them earlier with [`Tracer::from_env`] and
    /// [`Supervisor::with_tracer`].
    pub fn new(registry: Registry, options: SupervisorOptions) -> Self {
        let (tracer, tracer_error) = match Tracer::from_env(&registry) {
            Ok(t) => (t, None),
            Err(e) => {
                tracing::error!(error = %e, "tracing is misconfigured; the services will not run");
                (
                    Tracer::new(Default::default(), &registry),
                    Some(e.to_string()),
                )
            }
        };
        let mut supervisor = Supervisor::with_tracer(registry, options, tracer);
        supervisor.tracer_error = tracer_error;
        supervisor
    }

    /// A supervisor whose services record their spans in `tracer`.
    pub fn with_tracer(registry: Registry, options: SupervisorOptions, tracer: Tracer) -> Self {
        let metrics = RuntimeMetrics::register(&registry);
        Supervisor {
            token: CancellationToken::new(),
            health: Health::new(),
            registry,
            metrics,
            lineage: Lineage::new(),
            tracer,
            tracer_error: None,
            options,
            services: HashMap::new(),
            restarts: HashMap::new(),
            tasks: JoinSet::new(),
            running: std::collections::BTreeSet::new(),
        }
    }

    /// The token that stops every service; cancel it to shut down.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn health(&self) -> Health {
        self.health.clone()
    }

    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    pub fn metrics(&self) -> Arc<RuntimeMetrics> {
        self.metrics.clone()
    }

    /// The lineage every service of the supervisor records in (put it on
    /// the log with [`crate::lineage::publisher`]).
    pub fn lineage(&self) -> Lineage {
        self.lineage.clone()
    }

    /// The tracer every service of the supervisor records its spans in
    /// (query it with [`Tracer::spans_for_correlation`]).
    pub fn tracer(&self) -> Tracer {
        self.tracer.clone()
    }

    /// Starts a service. Names are unique: a second registration under a
    /// name already taken is refused (false).
    pub fn add(&mut self, registration: Registration) -> bool {
        if self.services.contains_key(&registration.name) {
            tracing::error!(service = %registration.name, "a service of this name is already registered");
            return false;
        }
        let name = registration.name.clone();
        self.health.register(&name, registration.consumer);
        self.services.insert(name.clone(), registration);
        self.start(&name);
        true
    }

    fn start(&mut self, name: &str) {
        let Some(reg) = self.services.get(name) else {
            return;
        };
        if self.tracer_error.is_some() {
            // `run` fails at once with the error: nothing may run before.
            return;
        }
        let ctx = ServiceContext {
            name: name.to_owned(),
            token: self.token.child_token(),
            health: self.health.clone(),
            registry: self.registry.clone(),
            metrics: self.metrics.clone(),
            lineage: self.lineage.clone(),
            tracer: self.tracer.clone(),
        };
        let fut = (reg.start)(ctx);
        self.health.set_state(name, ServiceState::Running);
        self.metrics.up.with(&[name]).set(1.0);
        let name = name.to_owned();
        self.running.insert(name.clone());
        // A panic outside a handler (in the service's own code) is caught
        // here and becomes the service's failure.
        self.tasks.spawn(async move {
            let outcome = std::panic::AssertUnwindSafe(fut)
                .catch_unwind()
                .await
                .unwrap_or_else(|p| {
                    let what = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    Err(ServiceError::Other(format!("panicked: {what}")))
                });
            (name, outcome)
        });
    }

    /// Runs until `shutdown` resolves (then stops every service and waits
    /// for them to finish their work) or a service fails beyond the
    /// restart policy (then the same, after `failure_linger`, and returns
    /// the failure). Fails at once, as service `tracing`, when the tracing
    /// environment could not be honoured (see [`Supervisor::new`]). Before
    /// returning it flushes the spans to the collector (up to 5 s).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Failure> {
        tokio::pin!(shutdown);
        // Misconfigured tracing: no service was started (see `start`).
        let startup = self.tracer_error.take().map(|error| Failure {
            service: "tracing".into(),
            error,
        });
        let mut failure = None;
        while startup.is_none() {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.token.cancelled() => break,
                Some(joined) = self.tasks.join_next() => {
                    let (name, outcome) = match joined {
                        Ok(x) => x,
                        Err(e) => ("unknown".to_owned(), Err(ServiceError::Other(e.to_string()))),
                    };
                    self.running.remove(&name);
                    if self.token.is_cancelled() {
                        self.finished(&name, outcome);
                        continue;
                    }
                    let error = match outcome {
                        Ok(()) => "stopped on its own".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    if self.may_restart(&name) {
                        self.metrics.restarts.with(&[&name]).inc();
                        let restarts = self.restarts.get(&name).map_or(0, Vec::len) as u32;
                        tracing::error!(service = %name, %error, restarts, "service failed; restarting");
                        self.health.set_state(&name, ServiceState::Restarting { restarts, error });
                        self.metrics.up.with(&[&name]).set(0.0);
                        if let RestartPolicy::OnFailure { backoff, .. } = self.options.restart {
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = self.token.cancelled() => break,
                            }
                        }
                        self.start(&name);
                    } else {
                        tracing::error!(service = %name, %error, "service failed; stopping");
                        self.health.set_state(&name, ServiceState::Failed { error: error.clone() });
                        self.metrics.up.with(&[&name]).set(0.0);
                        failure = Some(Failure { service: name, error });
                        break;
                    }
                }
            }
        }
        if failure.is_some() {
            tokio::select! {
                _ = tokio::time::sleep(self.options.failure_linger) => {}
                _ = &mut shutdown => {}
            }
        }
        self.token.cancel();
        let drain = tokio::time::timeout(self.options.drain_timeout, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Ok((name, outcome)) = joined {
                    self.running.remove(&name);
                    if let Err(e) = &outcome {
                        failure.get_or_insert(Failure {
                            service: name.clone(),
                            error: e.to_string(),
                        });
                    }
                    self.finished(&name, outcome);
                }
            }
        })
        .await;
        if drain.is_err() {
            let left: Vec<&str> = self.running.iter().map(String::as_str).collect();
            tracing::error!(services = ?left, "services did not stop in time; aborting them");
            let service = left.join(", ");
            self.tasks.abort_all();
            failure.get_or_insert(Failure {
                service,
                error: format!(
                    "did not stop within {} s",
                    self.options.drain_timeout.as_secs()
                ),
            });
        }
        // The spans of the last batches reach the collector before the
        // process exits.
        self.tracer.flush(Duration::from_secs(5)).await;
        startup.or(failure).map_or(Ok(()), Err)
    }

    fn finished(&self, name: &str, outcome: Result<(), ServiceError>) {
        self.metrics.up.with(&[name]).set(0.0);
        match outcome {
            Ok(()) => self.health.set_state(name, ServiceState::Stopped),
            Err(e) => {
                tracing::error!(service = %name, error = %e, "service failed while stopping");
                self.health.set_state(
                    name,
                    ServiceState::Failed {
                        error: e.to_string(),
                    },
                );
            }
        }
    }

    fn may_restart(&mut self, name: &str) -> bool {
        let RestartPolicy::OnFailure {
            max_restarts,
            window,
            ..
        } = self.options.restart
        else {
            return false;
        };
        let now = Instant::now();
        let times = self.restarts.entry(name.to_owned()).or_default();
        times.retain(|t| now.duration_since(*t) < window);
        if times.len() as u32 >= max_restarts {
            return false;
        }
        times.push(now);
        true
    }
}
