//! `external.market.data` into the data mesh, on a real embedded log:
//! prices published for a ticker the financial product has and for a new
//! one are answered by the mesh once the market-data service caught up; a
//! malformed record and one with a negative close go to the dead-letter
//! topic with the reason, and the service goes on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use ultracore_events::external::{
    Close, MarketDataEvent, MarketPrices, MARKET_AGGREGATE_TYPE, MARKET_DATA_TOPIC,
};
use ultracore_flow::{
    market_data_registration, market_prices, prices_event_id, publish_prices, Error,
    MARKET_DATA_GROUP,
};
use ultracore_log::{
    Consumer, ConsumerOptions, EnvelopeBuilder, EventLog, EventLogExt, NewRecord, Record,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_marketdata::mesh::{build_products, placeholder_isin, DataMesh, PriceFilter};
use ultracore_marketdata::{PriceBar, PriceSeries};
use ultracore_runtime::{Supervisor, SupervisorOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn series(ticker: &str, bars: &[(&str, f64)]) -> PriceSeries {
    PriceSeries::new(
        ticker,
        bars.iter()
            .map(|(d, c)| PriceBar::close_only(day(d), *c))
            .collect(),
    )
    .unwrap()
}

fn prices(ticker: &str, closes: &[(&str, f64)]) -> Vec<MarketPrices> {
    market_prices(ticker, "feed", closes.iter().map(|(d, c)| (day(d), *c)))
}

/// Every ticker's ISIN and (date, close) pairs, by ticker.
type Closes = BTreeMap<String, (String, Vec<(NaiveDate, f64)>)>;

/// Every ticker's (date, close) as the mesh answers.
fn closes(mesh: &DataMesh) -> Closes {
    let Ok(answer) = mesh.prices_cached(&PriceFilter::default()) else {
        return BTreeMap::new();
    };
    answer
        .0
        .iter()
        .map(|(isin, s)| {
            let bars = s.bars.iter().map(|b| (b.date, b.close)).collect();
            (s.ticker.clone(), (isin.clone(), bars))
        })
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn read_all(
    log: &EmbeddedLog,
    topic: &str,
) -> Result<Vec<Record>, Box<dyn std::error::Error>> {
    let mut c = log
        .consumer(ConsumerOptions::new(
            format!("reader-{}", uuid::Uuid::now_v7()),
            [topic],
        ))
        .await?;
    let mut out = Vec::new();
    loop {
        let got = c.poll(100, Duration::from_millis(300)).await?;
        if got.is_empty() {
            return Ok(out);
        }
        out.extend(got);
    }
}

fn mesh_in(dir: &Path) -> Result<DataMesh, Box<dyn std::error::Error>> {
    build_products(
        &[
            series("QUAL", &[("2026-01-05", 180.0), ("2026-01-06", 181.0)]),
            series("USMV", &[("2026-01-05", 90.0)]),
        ],
        dir,
    )?;
    Ok(DataMesh::open(dir)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_prices_reach_the_mesh_and_bad_records_the_dlq() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let mesh_dir = dir.path().join("mesh");
    let mesh = mesh_in(&mesh_dir)?;

    // A correction and a new day of a ticker the product has, and a new ticker.
    let mut first = prices("QUAL", &[("2026-01-06", 181.5), ("2026-01-07", 182.0)]);
    first.extend(prices(
        "MTUM",
        &[("2026-01-06", 200.0), ("2026-01-07", 201.0)],
    ));
    let published = publish_prices(&log, first.clone()).await?;
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].event_id, prices_event_id(&first[0]));
    assert_eq!(
        (
            published[0].first_date,
            published[0].last_date,
            published[0].prices
        ),
        (day("2026-01-06"), day("2026-01-07"), 2)
    );

    // Then, keyed by the same ticker (so in order on one partition), a
    // record that is not an event, one whose close is negative (published
    // past the edge's check, as any Kafka client could), and a good one.
    log.append_one(MARKET_DATA_TOPIC, NewRecord::new("QUAL", "not an event"))
        .await?;
    let negative = MarketPrices {
        ticker: "QUAL".into(),
        source: "feed".into(),
        prices: vec![Close {
            date: day("2026-01-08"),
            close: -3.0,
        }],
    };
    let env = EnvelopeBuilder::new(MARKET_AGGREGATE_TYPE, "QUAL")
        .build(MarketDataEvent::PricesPublished(negative));
    log.append_one(MARKET_DATA_TOPIC, env.to_record()).await?;
    publish_prices(&log, prices("QUAL", &[("2026-01-09", 184.0)])).await?;

    let mut supervisor = Supervisor::new(Default::default(), SupervisorOptions::default());
    supervisor.add(market_data_registration(log.clone(), &mesh_dir));
    let token = supervisor.token();
    let run = tokio::spawn(supervisor.run(std::future::pending()));

    wait_for("the last QUAL close", || {
        closes(&mesh)
            .get("QUAL")
            .is_some_and(|(_, bars)| bars.last() == Some(&(day("2026-01-09"), 184.0)))
    })
    .await?;
    let after = closes(&mesh);
    assert_eq!(
        after["QUAL"],
        (
            placeholder_isin("QUAL"),
            vec![
                (day("2026-01-05"), 180.0),
                (day("2026-01-06"), 181.5),
                (day("2026-01-07"), 182.0),
                (day("2026-01-09"), 184.0),
            ]
        ),
        "the negative close is not applied"
    );
    assert_eq!(
        after["MTUM"],
        (
            placeholder_isin("MTUM"),
            vec![(day("2026-01-06"), 200.0), (day("2026-01-07"), 201.0)]
        )
    );
    assert_eq!(after["USMV"].1, [(day("2026-01-05"), 90.0)]);

    let dead = read_all(&log, &format!("{MARKET_DATA_TOPIC}.dlq")).await?;
    let reasons: Vec<String> = dead
        .iter()
        .map(|r| String::from_utf8_lossy(r.header("dlq.reason").unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("market-data: value is not valid JSON"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("prices[0].close: -3 is not a price"),
        "{reasons:?}"
    );

    // Publishing the same prices again: the same event ids, the same product.
    let again = publish_prices(&log, first).await?;
    assert_eq!(
        again.iter().map(|p| p.event_id).collect::<Vec<_>>(),
        published.iter().map(|p| p.event_id).collect::<Vec<_>>()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lag: u64 = log
            .group_lag(MARKET_DATA_GROUP)
            .await?
            .iter()
            .map(|l| l.lag())
            .sum();
        if lag == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the group still lags by {lag}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(closes(&mesh), after);

    token.cancel();
    run.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_prices_are_refused_before_anything_is_published() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let mut batch = prices("QUAL", &[("2026-01-06", 181.5)]);
    batch.extend(market_prices("USMV", "feed", [(tomorrow, 91.0)]));
    let e = publish_prices(&log, batch).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidPrices { index: 1, ticker, invalid } if ticker == "USMV" && invalid.field == "prices[0].date"),
        "{e}"
    );
    assert!(read_all(&log, MARKET_DATA_TOPIC)
        .await
        .unwrap_or_default()
        .is_empty());
    assert!(publish_prices(&log, Vec::new()).await?.is_empty());
    Ok(())
}
