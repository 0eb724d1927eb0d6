//! [`Flow`]: the flow's services in one process, and the client side
//! ([`submit`], [`await_answer`]).

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use ultracore_es::{Database, EventStore, ProjectionRunner, StoreOptions};
use ultracore_esg::{
    request_envelope, EsgPortfolioEvent, OptimizationRequest, OptimizationService, TOPIC,
};
use ultracore_log::{Appended, Consumer, ConsumerOptions, Envelope, EventLog, EventLogExt, Seek};
use ultracore_marketdata::mesh::DataMesh;
use uuid::Uuid;

use crate::{
    Error, ExecutionOptions, Notification, Notifications, Notifier, Orders, OrdersProjection,
    Recorder, ReportingProjection, Reports, Result, Stager,
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
}

impl FlowOptions {
    /// Every service, with the data products at hand.
    pub fn all(mesh: DataMesh) -> Self {
        FlowOptions {
            services: Service::ALL.to_vec(),
            mesh: Some(mesh),
            execution: ExecutionOptions::default(),
        }
    }

    /// Just these services.
    pub fn only(services: &[Service], mesh: Option<DataMesh>) -> Self {
        FlowOptions {
            services: services.to_vec(),
            mesh,
            execution: ExecutionOptions::default(),
        }
    }
}

/// The flow's services running in this process.
#[derive(Debug)]
pub struct Flow<L: EventLog> {
    log: L,
    db: Database,
    store: EventStore<L>,
    live: broadcast::Sender<Notification>,
    stop: watch::Sender<bool>,
    tasks: Vec<(Service, &'static str, JoinHandle<Result<()>>)>,
}

impl<L: EventLog> Flow<L> {
    /// Starts the services; they run until [`Flow::stop`].
    pub async fn start(log: L, db: Database, options: FlowOptions) -> Result<Flow<L>> {
        crate::ensure_flow_topics(&log).await?;
        let store = EventStore::new(log.clone(), db.clone(), StoreOptions::default())?;
        store
            .ensure_topic(<crate::Portfolio as ultracore_es::Aggregate>::TYPE)
            .await?;
        let (live, _) = broadcast::channel(1024);
        let (stop, _) = watch::channel(false);
        let mut flow = Flow {
            log,
            db,
            store,
            live,
            stop,
            tasks: Vec::new(),
        };
        for service in &options.services {
            match service {
                Service::Optimization => {
                    let mesh = options.mesh.clone().ok_or_else(|| Error::Service {
                        service: "optimization".into(),
                        reason: "no data products: build them with `ultracore mesh build`".into(),
                    })?;
                    let svc = OptimizationService::new(flow.log.clone(), mesh);
                    let stopped = flow.stopped();
                    flow.spawn(*service, "optimizer", async move {
                        svc.run(stopped).await.map(drop).map_err(Error::from)
                    });
                }
                Service::Reporting => {
                    let recorder = Recorder::new(flow.store.clone());
                    let stopped = flow.stopped();
                    flow.spawn(*service, "recorder", recorder.run(stopped));
                    let mut runner = ProjectionRunner::new(
                        flow.log.clone(),
                        flow.db.clone(),
                        ReportingProjection,
                    )?;
                    let stopped = flow.stopped();
                    flow.spawn(*service, "reporting projection", async move {
                        runner.run(stopped).await.map_err(Error::from)
                    });
                }
                Service::Execution => {
                    let stager = Stager::new(flow.log.clone(), options.execution);
                    let stopped = flow.stopped();
                    flow.spawn(*service, "stager", stager.run(stopped));
                    let mut runner =
                        ProjectionRunner::new(flow.log.clone(), flow.db.clone(), OrdersProjection)?;
                    let stopped = flow.stopped();
                    flow.spawn(*service, "orders projection", async move {
                        runner.run(stopped).await.map_err(Error::from)
                    });
                }
                Service::Notification => {
                    let notifier =
                        Notifier::new(flow.log.clone(), flow.db.clone(), flow.live.clone());
                    let stopped = flow.stopped();
                    flow.spawn(*service, "notifier", notifier.run(stopped));
                }
            }
        }
        Ok(flow)
    }

    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    fn spawn(
        &mut self,
        service: Service,
        part: &'static str,
        task: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) {
        self.tasks.push((service, part, tokio::spawn(task)));
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

    /// The first service part that stopped on its own, with its error
    /// (services only stop when asked, or when the log or database fails).
    pub async fn failed(&mut self) -> Option<Error> {
        let at = self.tasks.iter().position(|(_, _, t)| t.is_finished())?;
        let (service, part, task) = self.tasks.remove(at);
        let reason = match task.await {
            Ok(Ok(())) => "stopped".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        Some(Error::Service {
            service: format!("{} ({part})", service.name()),
            reason,
        })
    }

    /// Asks every service to stop and waits for them; the first error wins.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut first = None;
        for (service, part, task) in self.tasks {
            let outcome = match task.await {
                Ok(r) => r,
                Err(e) => Err(Error::Service {
                    service: format!("{} ({part})", service.name()),
                    reason: e.to_string(),
                }),
            };
            if let Err(e) = outcome {
                tracing::warn!(service = service.name(), part, error = %e, "service stopped with an error");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Publishes a request (creating the topic if needed). Returns where it landed.
pub async fn submit<L: EventLog>(log: &L, request: OptimizationRequest) -> Result<Appended> {
    ultracore_esg::ensure_topic(log).await?;
    let envelope = request_envelope(request);
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
