//! Tracing against the real embedded log: a chain of services (A reads X
//! and publishes to Y, B reads Y and publishes to Z, each setting
//! `causation_id`) carries one trace from X's record to Z's, each hop the
//! child of the previous hop's `process` span; the spans are kept by
//! correlation id and trace; they reach an OTLP collector as OTLP/HTTP
//! JSON; a collector that is down costs spans, counted, never a service.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use ultracore_log::{EventLog, EventLogExt, NewRecord, RawEnvelope, Record, Seek, TopicSpec};
use ultracore_log_embedded::EmbeddedLog;
use ultracore_runtime::trace::{
    attr, traceparent_of, ExportConfig, Span, SpanKind, TraceContext, Tracer, TracerOptions,
    TRACE_SPANS_DROPPED_TOTAL,
};
use ultracore_runtime::{
    ConsumerSpec, Handler, HandlerError, Lineage, Registration, Registry, Subscription, Supervisor,
    SupervisorOptions, Traced,
};
use uuid::Uuid;

mod common;

use common::{fast, open, TestResult};

/// Aggregate topics: outside the catalogue, created by the test.
const X: &str = "es.TraceX";
const Y: &str = "es.TraceY";
const Z: &str = "es.TraceZ";

/// An envelope as every service writes it.
fn envelope(event_type: &str, correlation: &str, causation: Option<Uuid>) -> Value {
    json!({
        "event_id": Uuid::now_v7(), "event_type": event_type, "schema_version": 1,
        "timestamp": "2026-01-02T03:04:05.678Z", "aggregate_type": "Trace",
        "aggregate_id": "t-1", "version": 1, "correlation_id": correlation,
        "causation_id": causation, "payload": {"hop": event_type}
    })
}

/// Publishes to `to`, for each record, an event it caused (same
/// correlation, `causation_id` = its `event_id`), as a real service does.
struct Forward<L: EventLog> {
    out: L,
    to: &'static str,
}

impl<L: EventLog> Handler for Forward<L> {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        let mut out = Vec::new();
        for r in batch {
            let env = RawEnvelope::from_bytes(&r.value)
                .map_err(|e| HandlerError::reject(e.to_string()))?;
            let correlation = env.correlation_id.unwrap_or_default();
            let next = envelope(self.to, &correlation, Some(env.event_id));
            out.push(NewRecord::new("t-1", next.to_string()));
        }
        // Handling takes a while: the `process` span lasts until the commit.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.out.append(self.to, out).await?;
        Ok(())
    }
}

async fn records(log: &EmbeddedLog, topic: &str) -> Result<Vec<Record>, ultracore_log::Error> {
    let mut out = Vec::new();
    ultracore_log::read_to_end(
        log,
        "trace-test",
        topic,
        Seek::Beginning,
        tokio::time::Instant::now() + Duration::from_secs(10),
        Duration::from_millis(100),
        |r| out.push(r.clone()),
    )
    .await?;
    Ok(out)
}

async fn wait_for_records(
    log: &EmbeddedLog,
    topic: &str,
    n: usize,
) -> Result<Vec<Record>, Box<dyn std::error::Error>> {
    let start = Instant::now();
    loop {
        let got = records(log, topic).await?;
        if got.len() >= n {
            return Ok(got);
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!("timed out waiting for {n} records on {topic}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one run of the chain left.
struct Chain {
    x: Vec<Record>,
    y: Vec<Record>,
    z: Vec<Record>,
    correlation: String,
}

/// Runs A (X → Y) and B (Y → Z) under a supervisor tracing into `tracer`,
/// sends one event on X through a traced client log, waits for Z and stops.
async fn run_chain(
    log: &EmbeddedLog,
    tracer: &Tracer,
) -> Result<Chain, Box<dyn std::error::Error>> {
    for t in [X, Y, Z] {
        log.ensure_topic(&TopicSpec::new(t, 2)).await?;
    }
    let registry = Registry::new();
    let mut sup = Supervisor::with_tracer(registry, SupervisorOptions::default(), tracer.clone());
    for (name, from, to) in [("a", X, Y), ("b", Y, Z)] {
        let l = log.clone();
        let spec =
            ConsumerSpec::new(format!("{name}-group"), Subscription::topics([from])).config(fast());
        assert!(sup.add(Registration::consumer(
            name,
            log.clone(),
            spec,
            move |ctx| {
                Ok(Forward {
                    out: ctx.traced(l.clone()),
                    to,
                })
            }
        )));
    }
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));

    let correlation = format!("req-{}", Uuid::now_v7().simple());
    let client = Traced::new(log.clone(), Lineage::new(), "client").with_tracer(tracer.clone());
    client
        .append_one(
            X,
            NewRecord::new(
                "t-1",
                envelope("x_happened", &correlation, None).to_string(),
            ),
        )
        .await?;
    let z = wait_for_records(log, Z, 1).await?;
    token.cancel();
    running.await??;
    Ok(Chain {
        x: records(log, X).await?,
        y: records(log, Y).await?,
        z,
        correlation,
    })
}

fn parent_of(record: &Record) -> Result<TraceContext, String> {
    traceparent_of(record).ok_or_else(|| format!("no valid traceparent on {}", record.topic))
}

fn event_id(record: &Record) -> Uuid {
    RawEnvelope::from_bytes(&record.value).unwrap().event_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_services_carries_one_trace_hop_by_hop() -> TestResult {
    let (_dir, log) = open()?;
    let tracer = Tracer::default();
    let chain = run_chain(&log, &tracer).await?;
    assert_eq!((chain.x.len(), chain.y.len(), chain.z.len()), (1, 1, 1));
    let (x, y, z) = (&chain.x[0], &chain.y[0], &chain.z[0]);
    let (tx, ty, tz) = (parent_of(x)?, parent_of(y)?, parent_of(z)?);
    assert_eq!(ty.trace_id, tx.trace_id, "Y continues X's trace");
    assert_eq!(tz.trace_id, tx.trace_id, "Z continues X's trace");
    assert!(tx.is_sampled() && ty.is_sampled() && tz.is_sampled());

    let spans = tracer.spans_for_correlation(&chain.correlation);
    let shape: Vec<(String, SpanKind, &str)> = spans
        .iter()
        .map(|s| (s.name(), s.kind, &*s.service))
        .collect();
    assert_eq!(
        shape,
        vec![
            (format!("send {X}"), SpanKind::Producer, "client"),
            (format!("process {X}"), SpanKind::Consumer, "a"),
            (format!("send {Y}"), SpanKind::Producer, "a"),
            (format!("process {Y}"), SpanKind::Consumer, "b"),
            (format!("send {Z}"), SpanKind::Producer, "b"),
        ],
        "every hop, in order"
    );
    let [send_x, process_x, send_y, process_y, send_z] = &spans[..] else {
        unreachable!("five spans, checked above");
    };
    // Each header names its send span; each process span is the child of
    // the send span of its record; each send span the child of the process
    // span of its cause.
    assert_eq!(send_x.context(), tx);
    assert_eq!(send_x.parent_span_id, None, "the client started the trace");
    assert_eq!(process_x.parent_span_id, Some(tx.span_id));
    assert_eq!(send_y.parent_span_id, Some(process_x.span_id));
    assert_eq!(send_y.context(), ty);
    assert_eq!(process_y.parent_span_id, Some(ty.span_id));
    assert_eq!(send_z.parent_span_id, Some(process_y.span_id));
    assert_eq!(send_z.context(), tz);
    assert!(spans.iter().all(|s| s.trace_id == tx.trace_id));
    assert_eq!(tracer.spans_for_trace(tx.trace_id), spans);

    // The attributes of the conventions.
    let str_attr = |s: &Span, k: &str| s.attribute(k).and_then(|v| v.as_str().map(str::to_owned));
    assert_eq!(
        str_attr(process_x, attr::CONSUMER_GROUP_NAME).as_deref(),
        Some("a-group")
    );
    assert_eq!(
        str_attr(process_x, attr::OPERATION_TYPE).as_deref(),
        Some("process")
    );
    assert_eq!(
        str_attr(send_y, attr::OPERATION_TYPE).as_deref(),
        Some("send")
    );
    assert_eq!(
        str_attr(process_x, attr::MESSAGING_SYSTEM).as_deref(),
        Some("kafka")
    );
    assert_eq!(
        str_attr(process_x, attr::DESTINATION_NAME).as_deref(),
        Some(X)
    );
    assert_eq!(
        str_attr(process_x, attr::PARTITION_ID),
        Some(x.partition.to_string())
    );
    assert_eq!(
        process_x
            .attribute(attr::KAFKA_OFFSET)
            .and_then(|v| v.as_int()),
        Some(x.offset as i64)
    );
    assert_eq!(
        (send_y.partition, send_y.offset),
        (Some(y.partition), Some(y.offset))
    );
    assert_eq!(
        str_attr(send_y, attr::MESSAGE_ID),
        Some(event_id(y).to_string())
    );
    assert_eq!(process_x.event_id, Some(event_id(x)));
    assert_eq!(str_attr(send_z, attr::EVENT_TYPE).as_deref(), Some(Z));
    assert_eq!(str_attr(process_y, attr::SERVICE).as_deref(), Some("b"));
    assert!(spans
        .iter()
        .all(|s| s.correlation_id.as_deref() == Some(chain.correlation.as_str())));
    // A process span lasts its batch's handling: past the send of what
    // the handling published, up to the commit.
    assert!(process_x.end_unix_nanos >= send_y.end_unix_nanos);
    assert!(process_x.duration_nanos() >= 20_000_000, "{process_x:?}");
    assert!(spans.iter().all(|s| s.end_unix_nanos >= s.start_unix_nanos));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_a_trace_starts_one_at_what_its_handling_sends() -> TestResult {
    let (_dir, log) = open()?;
    for t in [X, Y, Z] {
        log.ensure_topic(&TopicSpec::new(t, 1)).await?;
    }
    let tracer = Tracer::default();
    let mut sup = Supervisor::with_tracer(
        Registry::new(),
        SupervisorOptions::default(),
        tracer.clone(),
    );
    let l = log.clone();
    let spec = ConsumerSpec::new("a-group", Subscription::topics([X])).config(fast());
    sup.add(Registration::consumer("a", log.clone(), spec, move |ctx| {
        Ok(Forward {
            out: ctx.traced(l.clone()),
            to: Y,
        })
    }));
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    // Untraced: a foreign producer.
    log.append_one(
        X,
        NewRecord::new("t-1", envelope("x", "req-raw", None).to_string()),
    )
    .await?;
    let y = wait_for_records(&log, Y, 1).await?;
    token.cancel();
    running.await??;
    assert!(traceparent_of(&records(&log, X).await?[0]).is_none());
    let ty = parent_of(&y[0])?;
    let spans = tracer.spans_for_correlation("req-raw");
    // No process span for a record with no trace to continue: the send of
    // what its handling published is the trace's root.
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind, SpanKind::Producer);
    assert_eq!(spans[0].parent_span_id, None, "the send is the root");
    assert_eq!(spans[0].context(), ty);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_traced_logs_trace_once_and_a_task_scope_is_the_parent() -> TestResult {
    let (_dir, log) = open()?;
    log.ensure_topic(&TopicSpec::new(X, 1)).await?;
    let tracer = Tracer::default();
    let inner = Traced::new(log.clone(), Lineage::new(), "inner").with_tracer(tracer.clone());
    let outer = Traced::new(inner, Lineage::new(), "outer").with_tracer(tracer.clone());
    let request = TraceContext::new_root();
    ultracore_runtime::trace::scope(request, async {
        outer
            .append(
                X,
                vec![NewRecord::new(
                    "k",
                    envelope("x", "req-n", None).to_string(),
                )],
            )
            .await
    })
    .await?;
    let got = records(&log, X).await?;
    let tp: Vec<_> = got[0]
        .headers
        .iter()
        .filter(|h| h.key == "traceparent")
        .collect();
    assert_eq!(tp.len(), 1, "one header, from the outermost wrapper");
    let spans = tracer.spans_for_correlation("req-n");
    assert_eq!(spans.len(), 1, "one span, from the outermost wrapper");
    assert_eq!(&*spans[0].service, "outer");
    assert_eq!(spans[0].trace_id, request.trace_id);
    assert_eq!(spans[0].parent_span_id, Some(request.span_id));
    Ok(())
}

/// A collector: keeps every request's content type and JSON body.
async fn collector() -> Result<(String, Arc<Mutex<Vec<(String, Value)>>>), std::io::Error> {
    use axum::http::HeaderMap;
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push((ct, body.0));
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/v1/traces"), got))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_as_otlp_json() -> TestResult {
    let (url, got) = collector().await?;
    let mut export = ExportConfig::new(&url, "ultracore-test")?;
    export.delay = Duration::from_millis(20);
    let registry = Registry::new();
    let tracer = Tracer::new(
        TracerOptions {
            export: Some(export),
            ..TracerOptions::default()
        },
        &registry,
    );
    let (_dir, log) = open()?;
    // The supervisor flushes the tracer when it stops.
    let chain = run_chain(&log, &tracer).await?;
    let bodies = got.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "the collector got requests");
    let mut spans: Vec<Value> = Vec::new();
    for (content_type, body) in &bodies {
        assert_eq!(content_type, "application/json");
        let rs = &body["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "ultracore-test"}})
        );
        assert_eq!(rs["scopeSpans"][0]["scope"]["name"], "ultracore-runtime");
        spans.extend(
            rs["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    let attr_of = |span: &Value, key: &str| -> Option<Value> {
        span["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    let mine: Vec<&Value> = spans
        .iter()
        .filter(|s| {
            attr_of(s, attr::CORRELATION_ID) == Some(json!({"stringValue": chain.correlation}))
        })
        .collect();
    assert_eq!(mine.len(), 5, "{mine:#?}");
    let trace_id = parent_of(&chain.x[0])?.trace_id.to_hex();
    for s in &mine {
        assert_eq!(s["traceId"], trace_id.as_str());
        assert!(is_hex(s["traceId"].as_str().unwrap(), 32));
        assert!(is_hex(s["spanId"].as_str().unwrap(), 16));
        assert!(s["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
        assert!(s["endTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
        assert_eq!(s["status"]["code"], 0);
        for key in [
            attr::MESSAGING_SYSTEM,
            attr::DESTINATION_NAME,
            attr::OPERATION_TYPE,
            attr::OPERATION_NAME,
            attr::PARTITION_ID,
            attr::KAFKA_OFFSET,
            attr::MESSAGE_ID,
            attr::SERVICE,
            attr::EVENT_TYPE,
        ] {
            assert!(attr_of(s, key).is_some(), "{key} missing from {s}");
        }
        let offset = attr_of(s, attr::KAFKA_OFFSET).unwrap();
        assert!(
            offset["intValue"].as_str().unwrap().parse::<i64>().is_ok(),
            "{offset}"
        );
    }
    let by_name = |name: String| -> Result<&Value, String> {
        mine.iter()
            .copied()
            .find(|s| s["name"] == name.as_str())
            .ok_or(format!("no span {name}"))
    };
    let (send_x, process_x) = (
        by_name(format!("send {X}"))?,
        by_name(format!("process {X}"))?,
    );
    let (send_y, process_y) = (
        by_name(format!("send {Y}"))?,
        by_name(format!("process {Y}"))?,
    );
    let send_z = by_name(format!("send {Z}"))?;
    for (s, kind) in [
        (send_x, 4),
        (send_y, 4),
        (send_z, 4),
        (process_x, 5),
        (process_y, 5),
    ] {
        assert_eq!(s["kind"], kind, "{s}");
    }
    assert!(send_x.get("parentSpanId").is_none(), "a root has no parent");
    assert_eq!(process_x["parentSpanId"], send_x["spanId"]);
    assert_eq!(send_y["parentSpanId"], process_x["spanId"]);
    assert_eq!(process_y["parentSpanId"], send_y["spanId"]);
    assert_eq!(send_z["parentSpanId"], process_y["spanId"]);
    assert_eq!(
        attr_of(process_y, attr::CONSUMER_GROUP_NAME),
        Some(json!({"stringValue": "b-group"}))
    );
    assert!(registry
        .render()
        .contains("ultracore_trace_spans_exported_total"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_spans_counted_never_a_service() -> TestResult {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut export = ExportConfig::new(&format!("http://127.0.0.1:{port}/v1/traces"), "t")?;
    export.queue = 8;
    export.timeout = Duration::from_millis(500);
    let registry = Registry::new();
    let tracer = Tracer::new(
        TracerOptions {
            export: Some(export),
            ..TracerOptions::default()
        },
        &registry,
    );
    let (_dir, log) = open()?;
    log.ensure_topic(&TopicSpec::new(X, 1)).await?;
    let traced = Traced::new(log.clone(), Lineage::new(), "svc").with_tracer(tracer.clone());
    let started = Instant::now();
    let batch: Vec<NewRecord> = (0..500)
        .map(|_| NewRecord::new("k", envelope("x", "req-down", None).to_string()))
        .collect();
    traced.append(X, batch).await?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "appends never wait for export"
    );
    tracer.flush(Duration::from_secs(5)).await;
    let dropped = registry
        .render()
        .lines()
        .find(|l| l.starts_with(TRACE_SPANS_DROPPED_TOTAL))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert_eq!(
        dropped, 500.0,
        "every span dropped: most at the full queue, the rest refused"
    );
    assert_eq!(
        tracer.spans_for_correlation("req-down").len(),
        500,
        "still kept in memory"
    );
    Ok(())
}
