//! [`Flow`]: the flow's services in one process, and the client side
//! ([`submit`], [`await_answer`]).

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use ultracore_es::{Database, EventStore, Projection, ProjectionRunner, StoreOptions};
use ultracore_esg::{request_envelope, EsgPortfolioEvent, OptimizationRequest, TOPIC};
use ultracore_log::{Appended, Consumer, ConsumerOptions, Envelope, EventLog, EventLogExt, Seek};
use ultracore_marketdata::mesh::DataMesh;
use ultracore_runtime::{
    CancellationToken, Failure, Health, Registration, Registry, ServiceError, Supervisor,
    SupervisorOptions, Tracer,
};
use uuid::Uuid;

use crate::group::{self, Flowing};
use crate::{
    Error, ExecutionOptions, Notification, Notifications, Notifier, Orders, OrdersProjection,
    Recorder, ReportingProjection, Reports, Result, Stager, EXECUTION_GROUP, NOTIFICATION_GROUP,
    ORDERS_GROUP, REPORTING_GROUP,
};

/// A service of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Answers requests (needs the data products).
    Optimization,
    /// The Portfolio aggregate and the reporting read model.
    Reporting,
    /// Staged orders and the order status read model.
    Execution,
    /// Stored notifications, pushed to live clients.
    Notification,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Optimization,
        Service::Reporting,
        Service::Execution,
        Service::Notification,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Optimization => "optimization",
            Service::Reporting => "reporting",
            Service::Execution => "execution",
            Service::Notification => "notification",
        }
    }
}

/// What a [`Flow`] runs.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    pub services: Vec<Service>,
    /// The data products; required for [`Service::Optimization`].
    pub mesh: Option<DataMesh>,
    pub execution: ExecutionOptions,
    /// Where the spans of the event store's appends go: the supervisor's
    /// tracer, so the aggregate's records join the traces of the services
    /// around them ([`Flow::start`] sets its own; none: the process's
    /// global tracer).
    pub tracer: Option<Tracer>,
}

impl FlowOptions {
    /// Every service, with the data products at hand.
    pub fn all(mesh: DataMesh) -> Self {
        FlowOptions {
            services: Service::ALL.to_vec(),
            mesh: Some(mesh),
            execution: ExecutionOptions::default(),
            tracer: None,
        }
    }

    /// Just these services.
    pub fn only(services: &[Service], mesh: Option<DataMesh>) -> Self {
        FlowOptions {
            services: services.to_vec(),
            mesh,
            execution: ExecutionOptions::default(),
            tracer: None,
        }
    }
}

/// The event store's appends, traced as [`ultracore_runtime::Traced`]
/// traces its own: a `traceparent` per record and a `send` span of
/// `service`.
#[derive(Debug)]
struct TracedAppends {
    tracer: Tracer,
    service: &'static str,
}

impl ultracore_es::AppendHook for TracedAppends {
    fn before(
        &self,
        topic: &str,
        records: &mut [ultracore_log::NewRecord],
    ) -> Box<dyn std::any::Any + Send> {
        Box::new(ultracore_runtime::trace::start_appends(
            &self.tracer,
            self.service,
            topic,
            records,
        ))
    }

    fn after(
        &self,
        state: Box<dyn std::any::Any + Send>,
        outcome: std::result::Result<&[Appended], &ultracore_log::Error>,
    ) {
        if let Ok(spans) = state.downcast::<ultracore_runtime::trace::SendSpans>() {
            spans.finish(&self.tracer, outcome);
        }
    }
}

/// The flow's services, ready to be added to a [`Supervisor`], with the
/// pieces a server needs beside them (the event store, live notifications).
#[derive(Debug)]
pub struct FlowServices<L: EventLog> {
    pub store: EventStore<L>,
    pub live: broadcast::Sender<Notification>,
    /// Compliance alerts as the notification service stores them.
    pub live_alerts: broadcast::Sender<ultracore_events::compliance::ComplianceAlert>,
    pub registrations: Vec<Registration>,
}

/// Creates the flow's topics and returns its services' registrations:
/// `optimization`; `reporting`, `reporting.orders`, `reporting.projection`;
/// `execution`, `execution.projection`; `notification`.
pub async fn flow_services<L: EventLog>(
    log: L,
    db: Database,
    options: FlowOptions,
) -> Result<FlowServices<L>> {
    crate::ensure_flow_topics(&log).await?;
    // Read models from before the time-ordered views get them once.
    crate::backfill_order_times(&db)?;
    crate::backfill_notification_times(&db)?;
    // The reporting services record facts on the Portfolio aggregate: its
    // records carry the trace of the event each one records, as if appended
    // through the runtime's traced log.
    let traced = TracedAppends {
        tracer: options.tracer.clone().unwrap_or_else(Tracer::global),
        service: "reporting",
    };
    let store = EventStore::new(
        log.clone(),
        db.clone(),
        StoreOptions::default().append_hook(std::sync::Arc::new(traced)),
    )?;
    store
        .ensure_topic(<crate::Portfolio as ultracore_es::Aggregate>::TYPE)
        .await?;
    let (live, _) = broadcast::channel(1024);
    let (live_alerts, _) = broadcast::channel(1024);
    let mut registrations = Vec::new();
    for service in &options.services {
        match service {
            Service::Optimization => {
                let mesh = options.mesh.clone().ok_or_else(|| Error::Service {
                    service: "optimization".into(),
                    reason: "no data products: build them with `ultracore mesh build`".into(),
                })?;
                registrations.push(ultracore_esg::registration(log.clone(), mesh));
            }
            Service::Reporting => {
                let s = store.clone();
                registrations.push(Registration::consumer(
                    "reporting",
                    log.clone(),
                    group::spec(REPORTING_GROUP, &[TOPIC]),
                    move |_| Ok(Flowing(Recorder::new(s.clone()))),
                ));
                let s = store.clone();
                registrations.push(Registration::consumer(
                    "reporting.orders",
                    log.clone(),
                    group::spec(ORDERS_GROUP, &[ultracore_events::portfolio::TOPIC]),
                    move |ctx| Ok(Flowing(Recorder::new(s.clone()).stop_on(ctx.token.clone()))),
                ));
                registrations.push(projection(
                    "reporting.projection",
                    log.clone(),
                    db.clone(),
                    ReportingProjection,
                ));
            }
            Service::Execution => {
                let (l, execution) = (log.clone(), options.execution);
                registrations.push(Registration::consumer(
                    "execution",
                    log.clone(),
                    group::spec(EXECUTION_GROUP, &[TOPIC]),
                    move |ctx| Ok(Flowing(Stager::new(ctx.traced(l.clone()), execution))),
                ));
                registrations.push(projection(
                    "execution.projection",
                    log.clone(),
                    db.clone(),
                    OrdersProjection,
                ));
            }
            Service::Notification => {
                let (l, d, tx, alerts) =
                    (log.clone(), db.clone(), live.clone(), live_alerts.clone());
                registrations.push(Registration::consumer(
                    "notification",
                    log.clone(),
                    group::spec(NOTIFICATION_GROUP, &crate::NOTIFICATION_TOPICS),
                    move |ctx| {
                        Ok(Flowing(
                            Notifier::new(ctx.traced(l.clone()), d.clone(), tx.clone())
                                .with_alerts(alerts.clone()),
                        ))
                    },
                ));
            }
        }
    }
    Ok(FlowServices {
        store,
        live,
        live_alerts,
        registrations,
    })
}

/// A projection as a supervised task (its runner keeps its own
/// exactly-once checkpoints; the runtime supervises and stops it).
fn projection<L: EventLog, P: Projection + Clone + Sync>(
    name: &str,
    log: L,
    db: Database,
    projection: P,
) -> Registration {
    Registration::task(name, move |ctx| {
        let runner = ProjectionRunner::new(log.clone(), db.clone(), projection.clone());
        async move {
            let mut runner = runner.map_err(ServiceError::other)?;
            runner
                .run(ctx.token.cancelled_owned())
                .await
                .map_err(ServiceError::other)
        }
    })
}

/// What services started beside the flow ([`Flow::start_with`]) share
/// with it.
#[derive(Debug, Clone)]
pub struct Beside<L: EventLog> {
    pub store: EventStore<L>,
    pub lineage: ultracore_runtime::lineage::Lineage,
    pub registry: Registry,
}

/// The flow's services running in this process under a supervisor of their own.
#[derive(Debug)]
pub struct Flow<L: EventLog> {
    log: L,
    db: Database,
    store: EventStore<L>,
    live: broadcast::Sender<Notification>,
    token: CancellationToken,
    health: Health,
    registry: Registry,
    task: Option<JoinHandle<std::result::Result<(), Failure>>>,
}

impl<L: EventLog> Flow<L> {
    /// Starts the services; they run until [`Flow::stop`].
    pub async fn start(log: L, db: Database, options: FlowOptions) -> Result<Flow<L>> {
        Flow::start_with(log, db, options, |_| async { Ok(Vec::new()) }).await
    }

    /// [`Flow::start`] with more services under the same supervisor:
    /// `more` gets the flow's event store, the supervisor's lineage and
    /// metrics registry (so services beside the flow, the data mesh
    /// catalogue among them, see what the flow's services record).
    pub async fn start_with<F, Fut>(
        log: L,
        db: Database,
        options: FlowOptions,
        more: F,
    ) -> Result<Flow<L>>
    where
        F: FnOnce(Beside<L>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Vec<Registration>, String>>,
    {
        let registry = Registry::new();
        let mut supervisor = Supervisor::new(registry.clone(), SupervisorOptions::default());
        let options = FlowOptions {
            tracer: options.tracer.or_else(|| Some(supervisor.tracer())),
            ..options
        };
        let services = flow_services(log.clone(), db.clone(), options).await?;
        for r in services.registrations {
            supervisor.add(r);
        }
        let extra = more(Beside {
            store: services.store.clone(),
            lineage: supervisor.lineage(),
            registry: registry.clone(),
        })
        .await
        .map_err(|reason| Error::Service {
            service: "a service beside the flow".into(),
            reason,
        })?;
        for r in extra {
            supervisor.add(r);
        }
        let token = supervisor.token();
        let health = supervisor.health();
        let stopped = token.clone().cancelled_owned();
        let task = tokio::spawn(supervisor.run(stopped));
        Ok(Flow {
            log,
            db,
            store: services.store,
            live: services.live,
            token,
            health,
            registry,
            task: Some(task),
        })
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn store(&self) -> &EventStore<L> {
        &self.store
    }

    pub fn reports(&self) -> Reports {
        Reports::new(self.db.clone())
    }

    pub fn orders(&self) -> Orders {
        Orders::new(self.db.clone())
    }

    pub fn notifications(&self) -> Notifications {
        Notifications::new(self.db.clone())
    }

    /// Notifications as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.live.subscribe()
    }

    /// The sender behind [`Flow::subscribe`] (for servers that outlive a borrow).
    pub fn live(&self) -> broadcast::Sender<Notification> {
        self.live.clone()
    }

    /// The services' health and readiness.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The services' metrics.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// The service that failed, once the supervisor gave up on it
    /// (services only stop when asked, or when the log or database fails).
    pub async fn failed(&mut self) -> Option<Error> {
        if !self.task.as_ref()?.is_finished() {
            return None;
        }
        let outcome = self.task.take()?.await;
        Some(match outcome {
            Ok(Ok(())) => Error::Service {
                service: "flow".into(),
                reason: "stopped".into(),
            },
            Ok(Err(f)) => Error::Service {
                service: f.service,
                reason: f.error,
            },
            Err(e) => Error::Service {
                service: "flow".into(),
                reason: e.to_string(),
            },
        })
    }

    /// Asks every service to stop and waits for them; the first error wins.
    pub async fn stop(mut self) -> Result<()> {
        self.token.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(f)) => Err(Error::Service {
                service: f.service,
                reason: f.error,
            }),
            Err(e) => Err(Error::Service {
                service: "flow".into(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Publishes a request of the command line's user (creating the topic if
/// needed). Returns where it landed.
pub async fn submit<L: EventLog>(log: &L, request: OptimizationRequest) -> Result<Appended> {
    submit_as(log, request, "local").await
}

/// [`submit`] on behalf of `principal` (an API key id, `jwt:<subject>`, or
/// `local` for the command line), recorded in the request's envelope.
pub async fn submit_as<L: EventLog>(
    log: &L,
    request: OptimizationRequest,
    principal: &str,
) -> Result<Appended> {
    ultracore_esg::ensure_topic(log).await?;
    let mut envelope = request_envelope(request);
    envelope.principal = Some(principal.to_owned());
    Ok(log.append_one(TOPIC, envelope.to_record()).await?)
}

/// Waits for the completion or failure of `request_id`, reading the topic
/// from `since_millis` (the request's timestamp) in a private group.
pub async fn await_answer<L: EventLog>(
    log: &L,
    request_id: Uuid,
    since_millis: i64,
    timeout: Duration,
) -> Result<Option<Envelope<EsgPortfolioEvent>>> {
    let mut consumer = log
        .consumer(ConsumerOptions::new(
            format!("answer-{request_id}-{}", Uuid::now_v7()),
            [TOPIC],
        ))
        .await?;
    consumer.seek(Seek::Timestamp(since_millis)).await?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for record in consumer.poll(256, Duration::from_millis(50)).await? {
            let Ok(env) = Envelope::<EsgPortfolioEvent>::from_record(&record) else {
                continue;
            };
            let answered = match &env.payload {
                EsgPortfolioEvent::Completed(c) => c.request_id == request_id,
                EsgPortfolioEvent::Failed(f) => f.request_id == request_id,
                EsgPortfolioEvent::Requested(_) => false,
            };
            if answered {
                return Ok(Some(env));
            }
        }
    }
    Ok(None)
}
