//! The governance service: group `governance` on `agent.executions`. Every
//! agent answer (`output`) is screened; each finding becomes a
//! `compliance_alert` on `compliance.alerts` with a keyed fingerprint of the
//! value, never the value. Alert ids are derived from the execution event,
//! the field and the offsets, so an execution handled twice (a crash
//! before the commit) yields the same alerts again, which consumers
//! deduplicate by `event_id`. A record that is not an agent execution goes
//! to `agent.executions.dlq` with the reason.

use ultracore_events::agents::{AgentEvent, TOPIC as EXECUTIONS};
use ultracore_events::compliance::{ComplianceEvent, AGGREGATE_TYPE, TOPIC as ALERTS};
use ultracore_log::{Envelope, EnvelopeBuilder, EventLog, Record};
use ultracore_runtime::{ConsumerSpec, Handler, HandlerError, Registration, Subscription};
use uuid::Uuid;

use crate::screen::{Mode, Screen};

/// The service's consumer group (and name).
pub const SERVICE_GROUP: &str = "governance";

/// The consumer spec: group `governance` on `agent.executions`.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(SERVICE_GROUP, Subscription::topics([EXECUTIONS]))
}

/// The service as the supervisor runs it.
pub fn registration<L: EventLog>(log: L, screen: Screen) -> Registration {
    let handler_log = log.clone();
    Registration::consumer(SERVICE_GROUP, log, spec(), move |ctx| {
        Ok(GovernanceService::new(
            ctx.traced(handler_log.clone()),
            screen.clone(),
        ))
    })
}

/// The handler.
#[derive(Debug)]
pub struct GovernanceService<L: EventLog> {
    log: L,
    screen: Screen,
    /// Alerts raised by this instance (tests and metrics).
    pub alerts: u64,
    /// Whether `compliance.alerts` is known to exist.
    ready: bool,
}

impl<L: EventLog> GovernanceService<L> {
    pub fn new(log: L, screen: Screen) -> Self {
        GovernanceService {
            log,
            screen,
            alerts: 0,
            ready: false,
        }
    }
}

impl<L: EventLog> Handler for GovernanceService<L> {
    async fn handle(&mut self, records: &[Record]) -> Result<(), HandlerError> {
        let mut alerts = Vec::new();
        for record in records {
            let env = Envelope::<AgentEvent>::from_record(record)
                .map_err(|e| HandlerError::reject(e.to_string()))?;
            let AgentEvent::Execution(mut e) = env.payload;
            let found = self.screen.screen(&mut e.output, Mode::Report);
            for s in &found {
                let alert = self.screen.alert(
                    s,
                    EXECUTIONS,
                    env.event_id,
                    "/output",
                    Mode::Report,
                    (
                        Some(e.agent_id.clone()),
                        Some(e.execution_id.clone()),
                        e.customer_id.clone(),
                    ),
                );
                let key = e.customer_id.clone().unwrap_or_else(|| e.agent_id.clone());
                let id: Uuid = alert
                    .alert_id
                    .parse()
                    .map_err(|_| HandlerError::retry("a derived alert id did not parse"))?;
                let mut out = EnvelopeBuilder::new(AGGREGATE_TYPE, key)
                    .causation_id(env.event_id)
                    .build(ComplianceEvent::Alert(alert));
                if let Some(c) = &env.correlation_id {
                    out.correlation_id = Some(c.clone());
                }
                out.event_id = id;
                tracing::info!(
                    entity = s.finding.entity.name(),
                    agent = %e.agent_id,
                    execution = %e.execution_id,
                    "personal data in an agent's answer"
                );
                alerts.push(out.to_record());
            }
        }
        if !alerts.is_empty() {
            if !self.ready {
                ultracore_runtime::catalogue::ensure(&self.log, &[ALERTS])
                    .await
                    .map_err(|e| HandlerError::infra(e.to_string()))?;
                self.ready = true;
            }
            let n = alerts.len() as u64;
            self.log.append(ALERTS, alerts).await?;
            self.alerts += n;
        }
        Ok(())
    }
}
