//! The `lag-monitor` service: a round every interval, each status change
//! an alert on `ops.alerts`.

use std::collections::VecDeque;

use ultracore_log::{now_millis, EventLog};
use ultracore_runtime::{CancellationToken, Registration, ServiceContext, ServiceError};

use crate::alert::{LagAlert, TOPIC};
use crate::{LagMonitor, Result};

/// The name the service registers under.
pub const SERVICE: &str = "lag-monitor";

/// Alerts kept while `ops.alerts` cannot be written, at most; older ones
/// are dropped first (the console and the metrics still show the state).
const MAX_PENDING: usize = 10_000;

/// The `lag-monitor` service over `log`, running `monitor`'s rounds; keep a
/// clone of `monitor` to read its [`LagMonitor::snapshot`]. Appends go
/// through the service's traced log, so the catalogue shows it as the
/// producer of `ops.alerts`.
pub fn service<L: EventLog>(log: L, monitor: LagMonitor) -> Registration {
    Registration::task(SERVICE, move |ctx: ServiceContext| {
        let log = ctx.traced(log.clone());
        let monitor = monitor.clone();
        async move {
            run(&log, &monitor, &ctx.token)
                .await
                .map_err(ServiceError::other)
        }
    })
}

/// Runs a round every [`crate::LagConfig::interval`] until `token` is
/// cancelled, then returns `Ok`. A round that fails (the groups cannot be
/// listed) is logged and tried again at the next tick; alerts that cannot
/// be appended are kept and appended with the next round's. Errors only
/// when `ops.alerts` cannot be created.
pub async fn run<L: EventLog>(
    log: &L,
    monitor: &LagMonitor,
    token: &CancellationToken,
) -> Result<()> {
    ultracore_runtime::catalogue::ensure(log, &[TOPIC]).await?;
    let config = monitor.config();
    let mut tick = tokio::time::interval(config.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: VecDeque<LagAlert> = VecDeque::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        // Cancelling a round half way is safe: `observe` changes nothing,
        // `apply` runs without awaiting.
        let round = tokio::select! {
            _ = token.cancelled() => return Ok(()),
            round = monitor.tick(log, now_millis()) => round,
        };
        match round {
            Ok(changes) => {
                pending.extend(changes.iter().map(|c| c.alert(config.alert_partitions)));
                while pending.len() > MAX_PENDING {
                    pending.pop_front();
                }
            }
            Err(e) => tracing::warn!(error = %e, "a lag evaluation round failed; trying again"),
        }
        if pending.is_empty() {
            continue;
        }
        let records = pending.iter().map(|a| a.envelope().to_record()).collect();
        match log.append(TOPIC, records).await {
            Ok(_) => {
                tracing::debug!(alerts = pending.len(), "lag alerts published");
                pending.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, alerts = pending.len(), "publishing lag alerts failed; keeping them for the next round")
            }
        }
    }
}
