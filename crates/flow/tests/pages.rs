//! Orders and notifications a page at a time from their time-ordered
//! views, and a read model from before those views getting them once; on
//! SQLite and on PostgreSQL.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::{Backend, TestResult};
use ultracore_es::{Batch, Database};
use ultracore_flow::{
    backfill_notification_times, backfill_order_times, Notification, Notifications, OrderView,
    Orders, NOTIFICATIONS, ORDERS_PROJECTION,
};

fn order(pid: &str, i: i64) -> OrderView {
    OrderView {
        order_id: format!("0190f7a2-0000-5000-8000-{i:012}"),
        request_id: "r".into(),
        portfolio_id: pid.into(),
        ticker: format!("T{i}"),
        isin: String::new(),
        side: "buy".into(),
        units: 1,
        reference_price: 1.0,
        notional: 1.0,
        status: "staged".into(),
        staged_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap() + Duration::seconds(i),
    }
}

#[test]
fn a_read_model_from_before_pages_newest_first_after_its_backfill() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Backend::Sqlite.open(dir.path())?;
    backfilled_pages(db.db.clone())
}

#[test]
fn a_read_model_from_before_pages_newest_first_after_its_backfill_with_postgresql() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Backend::Postgres.open(dir.path())?;
    backfilled_pages(db.db.clone())
}

fn backfilled_pages(db: Database) -> TestResult {
    // What an earlier version stored: the "orders" view only.
    let mut batch = Batch::default();
    for (pid, i) in [("pf-a", 1), ("pf-a", 3), ("pf-a", 2), ("pf-b", 4)] {
        let o = order(pid, i);
        batch.documents.insert(
            ("orders".into(), format!("{pid}/{}", o.order_id)),
            Some(serde_json::to_value(&o)?),
        );
    }
    let mut notes = Batch::default();
    for (pid, i) in [("pf-a", 1), ("pf-b", 2), ("pf-a", 3)] {
        let n = Notification {
            request_id: format!("req-{i}"),
            portfolio_id: pid.into(),
            kind: "optimization_completed".into(),
            message: String::new(),
            created_at: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap() + Duration::seconds(i),
            event_id: String::new(),
        };
        notes.documents.insert(
            ("all".into(), n.request_id.clone()),
            Some(serde_json::to_value(&n)?),
        );
    }
    db.with(|s| {
        s.commit(ORDERS_PROJECTION, &batch)?;
        s.commit(NOTIFICATIONS, &notes)
    })?;
    assert_eq!(backfill_order_times(&db)?, 4);
    assert_eq!(backfill_order_times(&db)?, 0, "once");
    assert_eq!(backfill_notification_times(&db)?, 3);
    assert_eq!(backfill_notification_times(&db)?, 0, "once");

    let orders = Orders::new(db.clone());
    let first = orders.page("pf-a", None, 2)?;
    let tickers = |p: &[OrderView]| p.iter().map(|o| o.ticker.clone()).collect::<Vec<_>>();
    assert_eq!(tickers(&first.items), ["T3", "T2"], "newest first");
    let cursor = first.next_cursor.ok_or("a second page")?;
    let second = orders.page("pf-a", Some(&cursor), 2)?;
    assert_eq!(tickers(&second.items), ["T1"]);
    assert_eq!(second.next_cursor, None);
    assert_eq!(tickers(&orders.of("pf-b")?), ["T4"]);

    let notifications = Notifications::new(db);
    let ids = |p: &[Notification]| p.iter().map(|n| n.request_id.clone()).collect::<Vec<_>>();
    let all = notifications.page(None, None, 10)?;
    assert_eq!(ids(&all.items), ["req-3", "req-2", "req-1"]);
    let mine = notifications.page(Some(&["pf-a".to_owned()]), None, 1)?;
    assert_eq!(ids(&mine.items), ["req-3"]);
    let rest = notifications.page(Some(&["pf-a".to_owned()]), mine.next_cursor.as_deref(), 1)?;
    assert_eq!(ids(&rest.items), ["req-1"]);
    // Several portfolios merge newest first.
    let both = ["pf-a".to_owned(), "pf-b".to_owned()];
    assert_eq!(
        ids(&notifications.page(Some(&both), None, 2)?.items),
        ["req-3", "req-2"]
    );
    assert!(notifications.page(Some(&[]), None, 5)?.items.is_empty());
    Ok(())
}
