//! The listing and the statistics: filters, paging, order, numbers checked
//! against hand-computed ones, the routes over real HTTP with their 400s,
//! and stores of older schemas (2, 5 and 6) migrated in place.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{decision, specialists, store_explained, TestResult};
use serde_json::Value;
use ultracore_events::trading::{Action, TradingDecision};
use ultracore_forensics::{
    encode_values, router, since_days, ApiState, Contribution, Error, ForensicsMetrics,
    ForensicsQuery, ForensicsStore, ModelSet, StoreReader,
};
use uuid::Uuid;

const T0: i64 = 1_767_364_200_000; // 2026-01-02T14:30:00Z
const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("a time in range")
}

/// Decision `i` with the fields these tests vary; `regime` gets 0.6 and the
/// other two regimes 0.2 each (`None`: no regime probabilities at all).
fn made(
    i: u64,
    symbol: &str,
    action: Action,
    confidence: f64,
    regime: Option<&str>,
    ms: i64,
) -> TradingDecision {
    let mut d = decision(i, at(ms));
    d.symbol = symbol.to_owned();
    d.action = action;
    d.confidence = confidence;
    d.regime_probs = match regime {
        Some(r) => ["bull", "bear", "sideways"]
            .into_iter()
            .map(|name| (name.to_owned(), if name == r { 0.6 } else { 0.2 }))
            .collect(),
        None => BTreeMap::new(),
    };
    d
}

fn id(d: &TradingDecision) -> Uuid {
    Uuid::parse_str(&d.decision_id).expect("a uuid")
}

fn open(dir: &tempfile::TempDir) -> TestResult<(ForensicsStore, StoreReader)> {
    let path = dir.path().join(ForensicsStore::FILE_NAME);
    let store = ForensicsStore::open(&path, "trading_decisions")?;
    Ok((store, StoreReader::open(&path)?))
}

/// 30 decisions a second apart over three symbols and three actions;
/// decisions 10 and 11 in the same millisecond. Decision `i` took
/// 1,000 + 10 i µs to make, but those with `i % 4 == 1`, published without
/// a latency.
fn listing_set() -> Vec<TradingDecision> {
    let symbols = ["AAPL", "MSFT", "TSLA"];
    let actions = [Action::Buy, Action::Sell, Action::Hold];
    let regimes = ["bull", "bear", "sideways"];
    (0..30u64)
        .map(|i| {
            let ms = T0 + if i == 11 { 10_000 } else { i as i64 * 1000 };
            let mut d = made(
                i,
                symbols[i as usize % 3],
                actions[(i as usize / 3) % 3],
                0.5 + i as f64 / 100.0,
                Some(regimes[(i as usize / 2) % 3]),
                ms,
            );
            d.latency_us = (i % 4 != 1).then_some(1_000 + 10 * i);
            d
        })
        .collect()
}

/// What a query should list: the matches, newest first, ties newest
/// stored first (the set is stored in index order).
fn expected(set: &[TradingDecision], q: &ForensicsQuery) -> Vec<Uuid> {
    let mut hits: Vec<(i64, usize, Uuid)> = set
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            let ms = d.timestamp.timestamp_millis();
            q.symbol.as_ref().is_none_or(|s| *s == d.symbol)
                && q.action.is_none_or(|a| a == d.action)
                && q.start_ms.is_none_or(|t| ms >= t)
                && q.end_ms.is_none_or(|t| ms < t)
        })
        .map(|(i, d)| (d.timestamp.timestamp_millis(), i, id(d)))
        .collect();
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    hits.into_iter().map(|h| h.2).collect()
}

#[test]
fn the_listing_filters_pages_and_lists_newest_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, reader) = open(&dir)?;
    let set = listing_set();
    // Two batches, as the writer commits them.
    let rows: Vec<(TradingDecision, i64)> = set.iter().map(|d| (d.clone(), T0 + DAY)).collect();
    store_explained(&mut store, &rows[..17])?;
    store_explained(&mut store, &rows[17..])?;

    let queries = [
        ForensicsQuery::default(),
        ForensicsQuery {
            symbol: Some("AAPL".into()),
            ..Default::default()
        },
        ForensicsQuery {
            action: Some(Action::Sell),
            ..Default::default()
        },
        ForensicsQuery {
            symbol: Some("MSFT".into()),
            action: Some(Action::Hold),
            ..Default::default()
        },
        // Half-open: 5 s inclusive, 15 s exclusive; decision 11 sits at 10 s.
        ForensicsQuery {
            start_ms: Some(T0 + 5_000),
            end_ms: Some(T0 + 15_000),
            ..Default::default()
        },
        ForensicsQuery {
            symbol: Some("TSLA".into()),
            action: Some(Action::Buy),
            start_ms: Some(T0 + 3_000),
            end_ms: Some(T0 + 29_000),
            ..Default::default()
        },
        ForensicsQuery {
            start_ms: Some(T0 + 10_000),
            end_ms: Some(T0 + 10_000),
            ..Default::default()
        },
        // Exact: symbols are case-sensitive.
        ForensicsQuery {
            symbol: Some("aapl".into()),
            ..Default::default()
        },
    ];
    let mut sizes = Vec::new();
    for q in &queries {
        let page = reader.query(q)?;
        let want = expected(&set, q);
        assert_eq!(page.total, want.len() as u64, "{q:?}");
        let got: Vec<Uuid> = page.records.iter().map(|r| r.decision_id).collect();
        assert_eq!(got, want, "{q:?}");
        sizes.push(want.len());
    }
    assert_eq!(sizes, [30, 10, 9, 3, 10, 2, 0, 0]);
    let timed = all_latencies(&reader)?;
    assert_eq!((timed.len(), timed.iter().flatten().count()), (30, 22));
    // The tie: decision 11 (stored after 10, same millisecond) lists first.
    let all = reader.query(&ForensicsQuery::default())?;
    let pos = |i: usize| {
        all.records
            .iter()
            .position(|r| r.decision_id == id(&set[i]))
    };
    assert_eq!(pos(11).map(|p| p + 1), pos(10));
    assert_eq!(all.records[0].decision_id, id(&set[29]));

    // Paging: the pages put together are the whole listing; `total` stays.
    let mut paged = Vec::new();
    for offset in (0..35).step_by(7) {
        let page = reader.query(&ForensicsQuery {
            limit: 7,
            offset,
            ..Default::default()
        })?;
        assert_eq!((page.total, page.limit, page.offset), (30, 7, offset));
        assert_eq!(page.records.len(), 7.min(30 - offset as usize));
        paged.extend(page.records.into_iter().map(|r| r.decision_id));
    }
    assert_eq!(paged, expected(&set, &ForensicsQuery::default()));
    for offset in [30, 1_000, i64::MAX as u64] {
        let page = reader.query(&ForensicsQuery {
            offset,
            ..Default::default()
        })?;
        assert_eq!((page.total, page.records.len()), (30, 0));
    }
    let page = reader.query(&ForensicsQuery {
        symbol: Some("AAPL".into()),
        limit: 4,
        offset: 8,
        ..Default::default()
    })?;
    assert_eq!((page.total, page.records.len()), (10, 2));

    // Each record says what the full explanation says.
    for r in &all.records {
        let full = reader.get(r.decision_id)?.ok_or("stored")?;
        assert_eq!(r.symbol, full.symbol);
        assert_eq!(r.action.as_str(), full.action);
        assert_eq!(r.confidence, full.decision.confidence);
        assert_eq!(r.decided_at, full.decision.timestamp);
        let d = set
            .iter()
            .find(|d| id(d) == r.decision_id)
            .ok_or("listed")?;
        // The latency as published, in milliseconds; none when it had none.
        assert_eq!(full.decision.latency_us, d.latency_us);
        assert_eq!(r.latency_ms, d.latency_us.map(|us| us as f64 / 1000.0));
        let regime = d
            .regime_probs
            .iter()
            .find(|(_, p)| **p == 0.6)
            .map(|(k, _)| k.clone());
        assert_eq!(r.dominant_regime, regime);
        assert_eq!(
            r.explanation_url,
            format!("/api/v1/forensics/{}", r.decision_id)
        );
        // The top three by magnitude, by hand.
        let ensemble = full.explanation.ensemble();
        let mut by_size: Vec<(usize, f64)> = ensemble.shap.iter().copied().enumerate().collect();
        by_size.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let want: Vec<Contribution> = by_size[..3]
            .iter()
            .map(|&(i, shap)| {
                let x = full.explanation.row()[i];
                Contribution {
                    feature: full.model_set.features[i].clone(),
                    value: (!x.is_nan()).then_some(f64::from(x)),
                    shap,
                }
            })
            .collect();
        assert_eq!(r.top_contributions, want);
        assert!(
            want[0].shap.abs() >= want[1].shap.abs() && want[1].shap.abs() >= want[2].shap.abs()
        );
    }
    Ok(())
}

/// The listed latencies of every stored decision, newest first.
fn all_latencies(reader: &StoreReader) -> TestResult<Vec<Option<f64>>> {
    let page = reader.query(&ForensicsQuery {
        limit: 1000,
        ..Default::default()
    })?;
    Ok(page.records.iter().map(|r| r.latency_ms).collect())
}

#[test]
fn symbol_statistics_are_the_hand_computed_numbers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, reader) = open(&dir)?;
    let now = Utc::now().timestamp_millis();
    // 20 decisions on NVDA in the last 20 minutes: 8 BUY, 7 SELL, 5 HOLD,
    // confidence 0.50 + i/100, explained 10..200 ms after (out of order),
    // decided in (i + 1) × 100 µs but for i = 3, 7, 11, 15, 19 (published
    // without a latency), stored out of latency order.
    let mut rows = Vec::new();
    for i in 0..20u64 {
        let action = match i {
            0..8 => Action::Buy,
            8..15 => Action::Sell,
            _ => Action::Hold,
        };
        let decided = now - (i as i64 + 1) * MINUTE;
        let lag = ((i * 7) % 20 + 1) as i64 * 10;
        let mut d = made(
            i,
            "NVDA",
            action,
            0.5 + i as f64 / 100.0,
            Some("bull"),
            decided,
        );
        d.latency_us = (i % 4 != 3).then_some((i + 1) * 100);
        rows.push((d, decided + lag));
    }
    rows.reverse();
    // Outside 7 days but inside 30; and another symbol.
    let old = now - 10 * DAY;
    let mut slow = made(20, "NVDA", Action::Sell, 0.9, Some("bear"), old);
    slow.latency_us = Some(50_000);
    rows.push((slow, old + 1_000));
    let mut other = made(21, "AMD", Action::Buy, 0.1, Some("bull"), now - MINUTE);
    other.latency_us = Some(999_999);
    rows.push((other, now));
    store_explained(&mut store, &rows)?;

    let week = reader.symbol_stats("NVDA", since_days(7, now))?;
    assert_eq!(week.symbol, "NVDA");
    assert_eq!(week.since, at(now - 7 * DAY));
    assert_eq!(week.decisions, 20);
    assert_eq!(
        (week.actions.buy, week.actions.sell, week.actions.hold),
        (8, 7, 5)
    );
    // Σ (0.50 + i/100), i = 0..19, over 20 = 0.50 + 0.095.
    let avg = week.avg_confidence.ok_or("an average")?;
    assert!((avg - 0.595).abs() < 1e-12, "{avg}");
    // Lags 10, 20, …, 200: mean 105; nearest-rank p95 of 20 is the 19th, 190.
    assert_eq!(week.explain_lag_ms.avg, Some(105.0));
    assert_eq!(week.explain_lag_ms.p95, Some(190.0));
    // 15 latencies: (1 + … + 20 − (4 + 8 + 12 + 16 + 20)) × 100 µs =
    // 15,000 µs, a mean of 1,000 µs; nearest-rank p95 of 15 is the 15th,
    // the largest: 1,900 µs. The five without a latency count in neither.
    assert_eq!(week.latency_ms.avg, Some(1.0));
    assert_eq!(week.latency_ms.p95, Some(1.9));
    assert_eq!(week.first_decision_at, Some(at(now - 20 * MINUTE)));
    assert_eq!(week.last_decision_at, Some(at(now - MINUTE)));

    let month = reader.symbol_stats("NVDA", since_days(30, now))?;
    assert_eq!(month.decisions, 21);
    assert_eq!(month.actions.sell, 8);
    let avg = month.avg_confidence.ok_or("an average")?;
    assert!((avg - (0.595 * 20.0 + 0.9) / 21.0).abs() < 1e-12, "{avg}");
    // With 1,000 ms added: mean (2,100 + 1,000) / 21; p95 of 21 is the 20th, 200.
    let lag = month.explain_lag_ms.avg.ok_or("a mean")?;
    assert!((lag - 3_100.0 / 21.0).abs() < 1e-9, "{lag}");
    assert_eq!(month.explain_lag_ms.p95, Some(200.0));
    // With 50,000 µs added: (15,000 + 50,000) / 16 = 4,062.5 µs; p95 of
    // 16 is the 16th, 50,000 µs.
    assert_eq!(month.latency_ms.avg, Some(4.0625));
    assert_eq!(month.latency_ms.p95, Some(50.0));
    assert_eq!(month.first_decision_at, Some(at(old)));

    let none = reader.symbol_stats("nvda", since_days(7, now))?;
    assert_eq!(none.decisions, 0);
    assert_eq!(
        (
            none.avg_confidence,
            none.explain_lag_ms.p95,
            none.first_decision_at
        ),
        (None, None, None)
    );
    assert_eq!((none.latency_ms.avg, none.latency_ms.p95), (None, None));

    // A window where no decision carries a latency: null, not zero.
    let mut untimed = Vec::new();
    for i in 0..3u64 {
        let decided = now - (i as i64 + 1) * MINUTE;
        untimed.push((
            made(30 + i, "AMZN", Action::Hold, 0.5, Some("bull"), decided),
            decided + 10,
        ));
    }
    store_explained(&mut store, &untimed)?;
    let stats = reader.symbol_stats("AMZN", since_days(7, now))?;
    assert_eq!(stats.decisions, 3);
    assert_eq!((stats.latency_ms.avg, stats.latency_ms.p95), (None, None));
    Ok(())
}

#[test]
fn regime_shares_sum_to_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, reader) = open(&dir)?;
    let now = Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    let mut i = 0u64;
    let mut add = |regime: Option<&str>, confidences: &[f64], ms: i64| {
        for c in confidences {
            rows.push((made(i, "SPY", Action::Hold, *c, regime, ms - i as i64), ms));
            i += 1;
        }
    };
    add(Some("bull"), &[0.9, 0.8, 0.7, 0.6, 0.5], now - DAY);
    add(Some("bear"), &[0.4, 0.5, 0.6], now - 2 * DAY);
    add(Some("sideways"), &[0.3, 0.5], now - 3 * DAY);
    add(None, &[0.2], now - 4 * DAY);
    // Eight days ago: in the 30-day window only.
    add(Some("bear"), &[0.1, 0.1, 0.1, 0.1], now - 8 * DAY);
    store_explained(&mut store, &rows)?;

    let week = reader.regime_stats(since_days(7, now))?;
    assert_eq!(week.decisions, 11);
    let got: Vec<(Option<&str>, u64)> = week
        .regimes
        .iter()
        .map(|r| (r.regime.as_deref(), r.count))
        .collect();
    assert_eq!(
        got,
        [
            (Some("bull"), 5),
            (Some("bear"), 3),
            (Some("sideways"), 2),
            (None, 1)
        ]
    );
    for (r, (share, confidence)) in
        week.regimes
            .iter()
            .zip([(5.0, 0.7), (3.0, 0.5), (2.0, 0.4), (1.0, 0.2)])
    {
        assert!((r.share - share / 11.0).abs() < 1e-15, "{r:?}");
        let avg = r.avg_confidence.ok_or("an average")?;
        assert!((avg - confidence).abs() < 1e-12, "{r:?}");
    }
    let sum: f64 = week.regimes.iter().map(|r| r.share).sum();
    assert!((sum - 1.0).abs() < 1e-12, "{sum}");

    let month = reader.regime_stats(since_days(30, now))?;
    assert_eq!(month.decisions, 15);
    assert_eq!(month.regimes[0].regime.as_deref(), Some("bear"));
    assert_eq!(month.regimes[0].count, 7);
    let avg = month.regimes[0].avg_confidence.ok_or("an average")?;
    assert!((avg - 1.9 / 7.0).abs() < 1e-12, "{avg}");
    let sum: f64 = month.regimes.iter().map(|r| r.share).sum();
    assert!((sum - 1.0).abs() < 1e-12, "{sum}");

    let empty = reader.regime_stats(now + DAY)?;
    assert_eq!((empty.decisions, empty.regimes.len()), (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_answer_json_and_name_bad_parameters() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut store, reader) = open(&dir)?;
    let now = Utc::now().timestamp_millis();
    let base_ms = now - 2 * DAY;
    let rows: Vec<(TradingDecision, i64)> = listing_set()
        .into_iter()
        .map(|mut d| {
            let ms = d.timestamp.timestamp_millis() - T0 + base_ms;
            d.timestamp = at(ms);
            (d, ms + 40)
        })
        .collect();
    store_explained(&mut store, &rows)?;
    let state = ApiState::new(reader, Arc::new(ForensicsMetrics::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let res = http.get(url).send().await?;
            let status = res.status().as_u16();
            let kind = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = res.json().await?;
            TestResult::Ok((status, kind, body))
        }
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };

    // The listing.
    let (status, kind, body) = get("/api/v1/forensics?symbol=AAPL&limit=2".into()).await?;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert_eq!(keys(&body), ["limit", "offset", "records", "total"]);
    assert_eq!(
        (&body["total"], &body["limit"], &body["offset"]),
        (&10.into(), &2.into(), &0.into())
    );
    let records = body["records"].as_array().ok_or("records")?;
    assert_eq!(records.len(), 2);
    assert_eq!(
        keys(&records[0]),
        [
            "action",
            "confidence",
            "decided_at",
            "decision_id",
            "dominant_regime",
            "explanation_url",
            "latency_ms",
            "symbol",
            "top_contributions"
        ]
    );
    let first = &records[0];
    assert_eq!(first["symbol"], "AAPL");
    // i = 27 is the newest AAPL decision, 27 s after the base, decided in
    // 1,270 µs; then i = 24, in 1,240 µs.
    assert_eq!(first["latency_ms"], 1.27);
    assert_eq!(records[1]["latency_ms"], 1.24);
    assert_eq!(
        first["decided_at"],
        at(base_ms + 27_000)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .as_str()
    );
    let top = first["top_contributions"].as_array().ok_or("top")?;
    assert_eq!(top.len(), 3);
    assert_eq!(keys(&top[0]), ["feature", "shap", "value"]);
    // The link leads to the full explanation.
    let link = first["explanation_url"].as_str().ok_or("a link")?;
    let (status, _, full) = get(link.to_owned()).await?;
    assert_eq!(status, 200);
    assert_eq!(full["decision_id"], first["decision_id"]);

    // Times as RFC 3339 (a '+' sent as %2B) and as epoch milliseconds.
    let start =
        at(base_ms + 5_000).with_timezone(&chrono::FixedOffset::east_opt(3600).ok_or("tz")?);
    let path = format!(
        "/api/v1/forensics?start_time={}&end_time={}&action=&limit=1000",
        start.to_rfc3339().replace('+', "%2B"),
        base_ms + 15_000
    );
    let (status, _, body) = get(path).await?;
    assert_eq!((status, &body["total"]), (200, &10.into()));

    // The statistics.
    let (status, _, body) = get("/api/v1/forensics/symbols/AAPL/stats?days=30".into()).await?;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&body),
        [
            "actions",
            "avg_confidence",
            "decisions",
            "explain_lag_ms",
            "first_decision_at",
            "last_decision_at",
            "latency_ms",
            "since",
            "symbol"
        ]
    );
    assert_eq!(body["decisions"], 10);
    assert_eq!(keys(&body["actions"]), ["BUY", "HOLD", "SELL"]);
    assert_eq!(
        body["explain_lag_ms"],
        serde_json::json!({"avg": 40.0, "p95": 40.0})
    );
    // AAPL is i = 0, 3, …, 27; i = 9 and 21 have no latency. The other
    // eight: 1,000 + 10 × (0 + 3 + 6 + 12 + 15 + 18 + 24 + 27) = 9,050 µs,
    // a mean of 1,131.25 µs; p95 of 8 is the 8th, 1,270 µs.
    assert_eq!(
        body["latency_ms"],
        serde_json::json!({"avg": 1.13125, "p95": 1.27})
    );
    let (status, _, body) = get("/api/v1/forensics/symbols/AAPL/stats".into()).await?;
    assert_eq!((status, &body["decisions"]), (200, &10.into()));
    let (status, _, body) = get("/api/v1/forensics/symbols/AAPL/stats?days=1".into()).await?;
    assert_eq!((status, &body["decisions"]), (200, &0.into()));
    assert_eq!(
        body["latency_ms"],
        serde_json::json!({"avg": null, "p95": null})
    );
    let (status, _, body) = get("/api/v1/forensics/regimes?days=7".into()).await?;
    assert_eq!(status, 200);
    assert_eq!(keys(&body), ["decisions", "regimes", "since"]);
    assert_eq!(body["decisions"], 30);
    let regimes = body["regimes"].as_array().ok_or("regimes")?;
    assert_eq!(
        keys(&regimes[0]),
        ["avg_confidence", "count", "regime", "share"]
    );
    let sum: f64 = regimes.iter().filter_map(|r| r["share"].as_f64()).sum();
    assert!((sum - 1.0).abs() < 1e-12);

    // 400s, naming the parameter and saying what to send.
    for (path, field, says) in [
        ("/api/v1/forensics?limit=0", "limit", "1 to 1000"),
        ("/api/v1/forensics?limit=1001", "limit", "1 to 1000"),
        ("/api/v1/forensics?limit=many", "limit", "1 to 1000"),
        ("/api/v1/forensics?offset=-5", "offset", "≥ 0"),
        (
            "/api/v1/forensics?action=buy",
            "action",
            "BUY, SELL or HOLD",
        ),
        (
            "/api/v1/forensics?start_time=last%20week",
            "start_time",
            "RFC 3339",
        ),
        (
            "/api/v1/forensics?end_time=2026-01-02T14:30:00+01:00",
            "end_time",
            "%2B",
        ),
        (
            "/api/v1/forensics?start_time=2000&end_time=1000",
            "end_time",
            "at or after start_time",
        ),
        (
            "/api/v1/forensics?symbols=AAPL",
            "symbols",
            "this route takes symbol",
        ),
        (
            "/api/v1/forensics?symbol=A&symbol=B",
            "symbol",
            "more than once",
        ),
        (
            "/api/v1/forensics/symbols/AAPL/stats?days=0",
            "days",
            "1 to 365",
        ),
        (
            "/api/v1/forensics/symbols/AAPL/stats?days=366",
            "days",
            "1 to 365",
        ),
        ("/api/v1/forensics/regimes?days=week", "days", "1 to 365"),
        (
            "/api/v1/forensics/regimes?limit=5",
            "limit",
            "this route takes days",
        ),
    ] {
        let (status, kind, body) = get(path.into()).await?;
        assert_eq!(status, 400, "{path}");
        assert_eq!(kind, "application/problem+json", "{path}");
        assert_eq!(body["field"], field, "{path}: {body}");
        assert_eq!(body["code"], "invalid_query", "{path}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{path}: {detail}");
    }
    server.abort();
    Ok(())
}

/// The schema-2 tables, as migrations 1 and 2 left them.
const SCHEMA_2: &str = r#"
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
INSERT INTO schema_migrations VALUES (1, '2025-06-01T00:00:00+00:00'), (2, '2025-09-01T00:00:00+00:00');
CREATE TABLE model_sets (
    version       TEXT PRIMARY KEY,
    specialists   TEXT NOT NULL,
    features      TEXT NOT NULL,
    registered_at INTEGER NOT NULL
);
CREATE TABLE explanations (
    id               INTEGER PRIMARY KEY,
    decision_id      BLOB NOT NULL UNIQUE,
    event_id         BLOB NOT NULL,
    decided_at       INTEGER NOT NULL,
    symbol           TEXT NOT NULL,
    action           TEXT NOT NULL,
    model_version    TEXT NOT NULL,
    explained_with   TEXT NOT NULL,
    explained_at     INTEGER NOT NULL,
    source_topic     TEXT NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset    INTEGER NOT NULL,
    decision         BLOB NOT NULL,
    shap             BLOB NOT NULL,
    narrative        TEXT
);
CREATE INDEX explanations_by_time ON explanations (decided_at);
"#;

const V2_COLUMNS: &str = "id, decision_id, event_id, decided_at, symbol, action, model_version, \
     explained_with, explained_at, source_topic, source_partition, source_offset, decision, shap, narrative";

/// `rows` in their stored forms, written by today's store and copied
/// into a database at `path` made with `schema` (an older one), columns
/// `columns`: a store as an older build left it. The connection is open
/// on it.
fn stored_at_old_schema(
    path: &std::path::Path,
    rows: &[(TradingDecision, i64)],
    schema: &str,
    columns: &str,
) -> Result<rusqlite::Connection, Box<dyn std::error::Error + Send + Sync>> {
    let scratch = tempfile::tempdir()?;
    let current = scratch.path().join("current.sqlite");
    store_explained(
        &mut ForensicsStore::open(&current, "trading_decisions")?,
        rows,
    )?;
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(schema)?;
    conn.execute(
        "ATTACH DATABASE ?1 AS current",
        [current.to_str().ok_or("a path")?],
    )?;
    conn.execute_batch(&format!(
        "INSERT INTO model_sets SELECT * FROM current.model_sets;
         INSERT INTO explanations ({columns}) SELECT {columns} FROM current.explanations;
         DETACH DATABASE current;"
    ))?;
    Ok(conn)
}

/// A schema-2 store at `path` holding `rows` as the writer of that
/// version stored them, plus `json_row` as schema 1 stored it (the decision
/// as JSON text, every number in format 1, the words written then).
fn schema_2_store(
    path: &std::path::Path,
    rows: &[(TradingDecision, i64)],
    json_row: &TradingDecision,
) -> TestResult {
    // The rows in their stored forms, from today's writer, copied column
    // by column into the old tables.
    let conn = stored_at_old_schema(path, rows, SCHEMA_2, V2_COLUMNS)?;
    let s = specialists();
    let explanation = s.explain(json_row, &mut s.workspace())?;
    let set = ModelSet::of(&s);
    conn.execute(
        &format!("INSERT INTO explanations ({V2_COLUMNS}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'trading_decisions', 0, 99, ?9, ?10, ?11)"),
        rusqlite::params![
            id(json_row).as_bytes().as_slice(),
            Uuid::now_v7().as_bytes().as_slice(),
            json_row.timestamp.timestamp_millis(),
            json_row.symbol,
            json_row.action.as_str(),
            json_row.model_version,
            set.version,
            json_row.timestamp.timestamp_millis() + 5,
            serde_json::to_string(json_row)?,
            encode_values(&explanation),
            "words written under schema 1",
        ],
    )?;
    Ok(())
}

fn columns_filled(path: &std::path::Path) -> TestResult<Vec<(Option<f64>, Option<String>)>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut s = conn.prepare("SELECT confidence, dominant_regime FROM explanations ORDER BY id")?;
    let rows = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[test]
fn a_schema_2_store_is_migrated_in_place() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now().timestamp_millis();
    let regimes = [Some("bull"), Some("bear"), Some("sideways"), None];
    let rows: Vec<(TradingDecision, i64)> = (0..12u64)
        .map(|i| {
            let ms = now - (i as i64 + 1) * MINUTE;
            let action = [Action::Buy, Action::Sell, Action::Hold][i as usize % 3];
            let regime = regimes[i as usize % 4];
            (made(i, "QQQ", action, i as f64 / 10.0, regime, ms), ms + 10)
        })
        .collect();
    let json_row = made(
        12,
        "QQQ",
        Action::Buy,
        0.85,
        Some("bear"),
        now - 30 * MINUTE,
    );
    schema_2_store(&path, &rows, &json_row)?;

    // A reader of the old file still shows one explanation, but the
    // listing needs the migration, and says how to get it.
    let old = StoreReader::open(&path)?;
    assert!(old.get(id(&json_row))?.is_some());
    match old.query(&ForensicsQuery::default()) {
        Err(Error::SchemaTooOld { found, needed, .. }) => assert_eq!((found, needed), (2, 7)),
        other => panic!("expected SchemaTooOld, got {other:?}"),
    }
    drop(old);

    let store = ForensicsStore::open(&path, "trading_decisions")?;
    assert_eq!(store.schema_version()?, 7);
    assert_eq!(store.count()?, 13);
    drop(store);
    let mut want: Vec<(Option<f64>, Option<String>)> = rows
        .iter()
        .enumerate()
        .map(|(i, (d, _))| (Some(d.confidence), regimes[i % 4].map(str::to_owned)))
        .collect();
    want.push((Some(0.85), Some("bear".to_owned())));
    assert_eq!(columns_filled(&path)?, want);
    let conn = rusqlite::Connection::open(&path)?;
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'explanations' AND sql IS NOT NULL ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(indexes, ["explanations_by_symbol", "explanations_by_time"]);

    // Everything reads through the new queries, the schema-1 row included.
    let reader = StoreReader::open(&path)?;
    let page = reader.query(&ForensicsQuery::default())?;
    assert_eq!((page.total, page.records.len()), (13, 13));
    let json = page
        .records
        .iter()
        .find(|r| r.decision_id == id(&json_row))
        .ok_or("the schema-1 row")?;
    assert_eq!(json.dominant_regime.as_deref(), Some("bear"));
    assert_eq!(json.top_contributions.len(), 3);
    let stats = reader.symbol_stats("QQQ", since_days(1, now))?;
    assert_eq!(stats.decisions, 13);
    assert_eq!(
        (stats.actions.buy, stats.actions.sell, stats.actions.hold),
        (5, 4, 4)
    );
    let avg = stats.avg_confidence.ok_or("an average")?;
    assert!((avg - (6.6 + 0.85) / 13.0).abs() < 1e-12, "{avg}");
    let by_regime = reader.regime_stats(since_days(1, now))?;
    let counts: Vec<(Option<&str>, u64)> = by_regime
        .regimes
        .iter()
        .map(|r| (r.regime.as_deref(), r.count))
        .collect();
    assert_eq!(
        counts,
        [
            (Some("bear"), 4),
            (Some("bull"), 3),
            (Some("sideways"), 3),
            (None, 3)
        ]
    );

    // Opening again changes nothing.
    assert_eq!(
        ForensicsStore::open(&path, "trading_decisions")?.schema_version()?,
        7
    );
    Ok(())
}

#[test]
fn a_backfill_cut_short_resumes_on_the_next_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now().timestamp_millis();
    let rows: Vec<(TradingDecision, i64)> = (0..6u64)
        .map(|i| {
            let ms = now - (i as i64 + 1) * MINUTE;
            (made(i, "DIA", Action::Hold, 0.25, Some("sideways"), ms), ms)
        })
        .collect();
    let json_row = made(
        6,
        "DIA",
        Action::Sell,
        0.75,
        Some("bull"),
        now - 10 * MINUTE,
    );
    schema_2_store(&path, &rows, &json_row)?;
    // As a crash during migration 4 leaves it: the columns added and
    // recorded (3), two rows filled, 4 not recorded.
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch(
        "ALTER TABLE explanations ADD COLUMN confidence REAL;
         ALTER TABLE explanations ADD COLUMN dominant_regime TEXT;
         INSERT INTO schema_migrations VALUES (3, '2026-01-01T00:00:00+00:00');
         UPDATE explanations SET confidence = 0.25, dominant_regime = 'sideways' WHERE id IN (1, 2);",
    )?;
    drop(conn);
    assert_eq!(
        ForensicsStore::open(&path, "trading_decisions")?.schema_version()?,
        7
    );
    let mut want = vec![(Some(0.25), Some("sideways".to_owned())); 6];
    want.push((Some(0.75), Some("bull".to_owned())));
    assert_eq!(columns_filled(&path)?, want);
    Ok(())
}

/// What migrations 3 to 5 added to the schema-2 tables: the version-5
/// store the previous release left.
const SCHEMA_5_ADDED: &str = r#"
INSERT INTO schema_migrations VALUES (3, '2025-11-01T00:00:00+00:00'), (4, '2025-11-01T00:00:01+00:00'), (5, '2025-11-01T00:00:02+00:00');
ALTER TABLE explanations ADD COLUMN confidence REAL;
ALTER TABLE explanations ADD COLUMN dominant_regime TEXT;
CREATE INDEX explanations_by_symbol ON explanations (symbol, decided_at, action, confidence, explained_at);
CREATE INDEX explanations_by_action ON explanations (action, decided_at);
CREATE INDEX explanations_by_regime ON explanations (dominant_regime, decided_at, confidence);
"#;

/// `(decision blob, latency_us)` of every row, in row order.
fn decisions_and_latencies(path: &std::path::Path) -> TestResult<Vec<(Vec<u8>, Option<i64>)>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut s = conn.prepare("SELECT decision, latency_us FROM explanations ORDER BY id")?;
    let rows = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[test]
fn a_schema_5_store_gains_latencies_and_keeps_its_rows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now().timestamp_millis();
    // Six decisions as the previous release stored them: published without
    // a latency, so their blobs are format 1 (byte for byte what that
    // writer wrote: a codec test pins it).
    let old: Vec<(TradingDecision, i64)> = (0..6u64)
        .map(|i| {
            let ms = now - (i as i64 + 10) * MINUTE;
            (made(i, "IWM", Action::Buy, 0.5, Some("bull"), ms), ms + 20)
        })
        .collect();
    stored_at_old_schema(
        &path,
        &old,
        &format!("{SCHEMA_2}{SCHEMA_5_ADDED}"),
        &format!("{V2_COLUMNS}, confidence, dominant_regime"),
    )?;
    let conn = rusqlite::Connection::open(&path)?;
    let before: Vec<Vec<u8>> = conn
        .prepare("SELECT decision FROM explanations ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    drop(conn);
    assert!(before.iter().all(|b| b.first() == Some(&1)), "format 1");
    match StoreReader::open(&path)?.symbol_stats("IWM", since_days(1, now)) {
        Err(Error::SchemaTooOld { found, needed, .. }) => assert_eq!((found, needed), (5, 7)),
        other => panic!("expected SchemaTooOld, got {other:?}"),
    }

    // Migrated: the column is there and NULL in every old row, whose
    // decisions are untouched; migration 7 leaves the plain symbol index.
    let mut store = ForensicsStore::open(&path, "trading_decisions")?;
    assert_eq!(store.schema_version()?, 7);
    let after = decisions_and_latencies(&path)?;
    assert_eq!(
        after,
        before.into_iter().map(|b| (b, None)).collect::<Vec<_>>()
    );
    let conn = rusqlite::Connection::open(&path)?;
    let index: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'explanations_by_symbol'",
        [],
        |r| r.get(0),
    )?;
    assert!(index.ends_with("(symbol, decided_at)"), "{index}");
    drop(conn);

    // New decisions with latencies beside them: 400, 800, 1,200 and
    // 1,600 µs; the statistics count those four only (mean 1,000 µs,
    // nearest-rank p95 of 4 the 4th, 1,600 µs).
    let new: Vec<(TradingDecision, i64)> = (0..4u64)
        .map(|i| {
            let ms = now - (i as i64 + 1) * MINUTE;
            let mut d = made(10 + i, "IWM", Action::Sell, 0.5, Some("bear"), ms);
            d.latency_us = Some((i + 1) * 400);
            (d, ms + 20)
        })
        .collect();
    store_explained(&mut store, &new)?;
    drop(store);
    let latencies: Vec<Option<i64>> = decisions_and_latencies(&path)?
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        latencies,
        [
            None,
            None,
            None,
            None,
            None,
            None,
            Some(400),
            Some(800),
            Some(1200),
            Some(1600)
        ]
    );
    let reader = StoreReader::open(&path)?;
    let stats = reader.symbol_stats("IWM", since_days(1, now))?;
    assert_eq!(stats.decisions, 10);
    assert_eq!(
        (stats.latency_ms.avg, stats.latency_ms.p95),
        (Some(1.0), Some(1.6))
    );
    // Newest first: the four new ones (1, 2, 3, 4 minutes ago), then the old.
    let mut want = vec![Some(0.4), Some(0.8), Some(1.2), Some(1.6)];
    want.extend([None; 6]);
    assert_eq!(all_latencies(&reader)?, want);
    Ok(())
}

/// What migration 6 added to the version-5 store: the version-6 store the
/// previous release left, with its three indexes beside the time's.
const SCHEMA_6_ADDED: &str = r#"
INSERT INTO schema_migrations VALUES (6, '2025-12-01T00:00:00+00:00');
ALTER TABLE explanations ADD COLUMN latency_us INTEGER;
DROP INDEX explanations_by_symbol;
CREATE INDEX explanations_by_symbol ON explanations (symbol, decided_at, action, confidence, explained_at, latency_us);
"#;

#[test]
fn a_schema_6_store_keeps_two_indexes_and_the_same_answers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(ForensicsStore::FILE_NAME);
    let now = Utc::now().timestamp_millis();
    let regimes = [Some("bull"), Some("bear"), None];
    let rows: Vec<(TradingDecision, i64)> = (0..9u64)
        .map(|i| {
            let ms = now - (i as i64 + 1) * MINUTE;
            let action = [Action::Buy, Action::Sell, Action::Hold][i as usize % 3];
            let mut d = made(
                i,
                "EEM",
                action,
                0.1 * (i + 1) as f64,
                regimes[i as usize % 3],
                ms,
            );
            d.latency_us = Some(100 * (i + 1));
            (d, ms + 30)
        })
        .collect();
    stored_at_old_schema(
        &path,
        &rows,
        &format!("{SCHEMA_2}{SCHEMA_5_ADDED}{SCHEMA_6_ADDED}"),
        &format!("{V2_COLUMNS}, confidence, dominant_regime, latency_us"),
    )?;
    let before = decisions_and_latencies(&path)?;
    match StoreReader::open(&path)?.regime_stats(since_days(1, now)) {
        Err(Error::SchemaTooOld { found, needed, .. }) => assert_eq!((found, needed), (6, 7)),
        other => panic!("expected SchemaTooOld, got {other:?}"),
    }

    let store = ForensicsStore::open(&path, "trading_decisions")?;
    assert_eq!(store.schema_version()?, 7);
    drop(store);
    assert_eq!(decisions_and_latencies(&path)?, before);
    let conn = rusqlite::Connection::open(&path)?;
    let indexes: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'explanations' AND sql IS NOT NULL ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["explanations_by_symbol", "explanations_by_time"]);
    assert!(
        indexes[0].1.ends_with("(symbol, decided_at)"),
        "{}",
        indexes[0].1
    );
    drop(conn);

    // The answers, through the indexes left.
    let reader = StoreReader::open(&path)?;
    let sells = reader.query(&ForensicsQuery {
        action: Some(Action::Sell),
        ..ForensicsQuery::default()
    })?;
    let want: Vec<Uuid> = [1, 4, 7].iter().map(|&i| id(&rows[i].0)).collect();
    let got: Vec<Uuid> = sells.records.iter().map(|r| r.decision_id).collect();
    assert_eq!((sells.total, got), (3, want));
    let stats = reader.symbol_stats("EEM", since_days(1, now))?;
    assert_eq!(stats.decisions, 9);
    assert_eq!(
        (stats.actions.buy, stats.actions.sell, stats.actions.hold),
        (3, 3, 3)
    );
    let avg = stats.avg_confidence.ok_or("an average")?;
    assert!((avg - 0.5).abs() < 1e-12, "{avg}");
    // 100 … 900 µs: mean 500, nearest-rank p95 of 9 the 9th.
    let mean = stats.latency_ms.avg.ok_or("a mean")?;
    assert!((mean - 0.5).abs() < 1e-12, "{mean}");
    assert_eq!(stats.latency_ms.p95, Some(0.9));
    assert_eq!(stats.explain_lag_ms.p95, Some(30.0));
    let by_regime = reader.regime_stats(since_days(1, now))?;
    let counts: Vec<(Option<&str>, u64)> = by_regime
        .regimes
        .iter()
        .map(|r| (r.regime.as_deref(), r.count))
        .collect();
    assert_eq!(counts, [(Some("bear"), 3), (Some("bull"), 3), (None, 3)]);
    // bull: decisions 0, 3, 6 (0.1, 0.4, 0.7).
    let bull = by_regime.regimes[1].avg_confidence.ok_or("an average")?;
    assert!((bull - 0.4).abs() < 1e-12, "{bull}");
    Ok(())
}
