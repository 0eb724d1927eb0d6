//! Stopping the flow while the reporting service waits for a request's
//! answer before recording its orders (it waits up to `ORDERS_WAIT` so a
//! portfolio's history reads in order): the wait ends at once, the orders
//! fact is left uncommitted for the next start, and the flow stops cleanly
//! instead of outliving the supervisor's drain timeout.

mod common;

use ultracore_events::portfolio::{PortfolioEvent, TradeOrdersStaged, TOPIC};
use ultracore_flow::{FlowOptions, Service, ORDERS_GROUP};
use ultracore_log::{EnvelopeBuilder, EventLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_the_wait_for_an_answer() {
    let (_dir, log, flow) = common::start(|_| FlowOptions::only(&[Service::Reporting], None)).await;
    // Orders of a request whose answer never comes.
    let staged = PortfolioEvent::TradeOrdersStaged(TradeOrdersStaged {
        request_id: uuid::Uuid::now_v7().to_string(),
        portfolio_id: "pf-waiting".into(),
        orders: Vec::new(),
        skipped: Vec::new(),
        total_notional: 0.0,
    });
    let env = EnvelopeBuilder::new("Portfolio", "pf-waiting").build(staged);
    log.append(TOPIC, vec![env.to_record()]).await.unwrap();
    // Time for the service to join, poll the fact and start waiting.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    flow.stop()
        .await
        .expect("the flow stops within the drain timeout");

    // Not committed: the next start sees the fact again.
    let lag = log.group_lag(ORDERS_GROUP).await.unwrap();
    assert!(
        lag.iter().all(|p| p.committed.unwrap_or(0) == 0),
        "the waiting fact was committed: {lag:?}"
    );
}
