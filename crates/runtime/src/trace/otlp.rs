//! OTLP export: finished spans batched and POSTed as OTLP/HTTP JSON
//! (`ExportTraceServiceRequest`) to a collector.
//!
//! Configured by the standard OpenTelemetry variables ([`ExportConfig::from_env`]):
//!
//! | variable | meaning |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the full URL spans are POSTed to (`http://collector:4318/v1/traces`) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the collector's base URL; spans go to `<it>/v1/traces` |
//! | `OTEL_TRACES_EXPORTER` | `otlp` (default) or `none` (no export whatever the endpoint) |
//! | `OTEL_SDK_DISABLED` | `true`: no export |
//! | `OTEL_SERVICE_NAME` | the resource's `service.name` (default `ultracore`) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | `key=value,…` sent with every request (an API key) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` | `http/json` (what is sent) or `http/protobuf` (collectors take JSON on the same URL); `grpc` is an error |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` | milliseconds per request (default 10000) |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | batching: ms between exports (default 1000), spans queued (2048), spans per request (512) |
//!
//! With no endpoint set nothing is exported (unless `OTEL_TRACES_EXPORTER=otlp`
//! asks for it: then the specification's default, `http://localhost:4318`).
//! Only `http://` is supported: the exporter speaks plain HTTP/1.1 (hyper's
//! client over a tokio `TcpStream`), so an `https://` endpoint is an error
//! at start-up naming the variable — run a collector (or a TLS-terminating
//! sidecar) on the host or in the pod.
//!
//! The exporter never blocks a service: spans wait in a bounded queue, and
//! when it is full, or a batch is refused or times out, they are dropped and
//! counted in `ultracore_trace_spans_dropped_total`. One connection is kept
//! alive between batches and opened again after a failure.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use ultracore_metrics::Counter;

use super::span::{AttrValue, Span};
use super::TraceError;

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// The host to connect to (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
    /// The path spans are POSTed to (`/v1/traces`).
    pub path: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Spans waiting for export at most.
    pub queue: usize,
    /// Spans per request at most.
    pub batch: usize,
    /// How long a span waits for its batch to fill.
    pub delay: Duration,
    /// Connecting and sending one batch.
    pub timeout: Duration,
}

impl ExportConfig {
    /// Export to `url` (`http://host[:port][/path]`, the full URL of the
    /// traces endpoint) with default batching.
    pub fn new(url: &str, service_name: &str) -> Result<ExportConfig, TraceError> {
        let (host, port, path) = parse_url("the endpoint", url)?;
        Ok(ExportConfig {
            host,
            port,
            path,
            service_name: service_name.to_owned(),
            headers: Vec::new(),
            queue: 2048,
            batch: 512,
            delay: Duration::from_millis(1000),
            timeout: Duration::from_millis(10_000),
        })
    }

    /// The traces endpoint's URL.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}{}", self.port, self.path)
    }

    /// The configuration the process environment asks for (see the module
    /// documentation); `None`: no export.
    pub fn from_env() -> Result<Option<ExportConfig>, TraceError> {
        ExportConfig::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`ExportConfig::from_env`] over any lookup of variables.
    pub fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ExportConfig>, TraceError> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let asked = match var("OTEL_TRACES_EXPORTER") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "none" => return Ok(None),
                "otlp" => true,
                other => {
                    return Err(TraceError::config(
                        "OTEL_TRACES_EXPORTER",
                        other,
                        "only otlp and none are supported",
                    ))
                }
            },
        };
        let (variable, url) = if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
        } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            let url = format!("{}/v1/traces", base.trim().trim_end_matches('/'));
            ("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        } else if asked {
            (
                "OTEL_TRACES_EXPORTER",
                "http://localhost:4318/v1/traces".into(),
            )
        } else {
            return Ok(None);
        };
        let (host, port, path) = parse_url(variable, url.trim())?;
        let pick = |signal: &'static str, general: &'static str| {
            var(signal)
                .map(|v| (signal, v))
                .or_else(|| var(general).map(|v| (general, v)))
        };
        if let Some((name, p)) = pick(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ) {
            if !matches!(p.trim(), "http/json" | "http/protobuf") {
                return Err(TraceError::config(
                    name,
                    &p,
                    "UltraCore exports OTLP/HTTP JSON: use http/json",
                ));
            }
        }
        let mut headers = Vec::new();
        if let Some((name, h)) = pick(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ) {
            for pair in h.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| TraceError::config(name, "…", "use key=value,key=value"))?;
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let number = |name: &'static str, default: u64| -> Result<u64, TraceError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| TraceError::config(name, &v, "not a positive number")),
            }
        };
        let timeout = match pick(
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ) {
            Some((name, _)) => number(name, 10_000)?,
            None => 10_000,
        };
        Ok(Some(ExportConfig {
            host,
            port,
            path,
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| "ultracore".into()),
            headers,
            queue: number("OTEL_BSP_MAX_QUEUE_SIZE", 2048)? as usize,
            batch: number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)? as usize,
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 1000)?),
            timeout: Duration::from_millis(timeout),
        }))
    }
}

/// `http://host[:port][/path]` → (host, port, path); the error names `variable`.
fn parse_url(variable: &'static str, url: &str) -> Result<(String, u16, String), TraceError> {
    let bad = |reason: &str| TraceError::config(variable, url, reason);
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            return Err(bad(
                "https is not supported: the exporter speaks plain HTTP; point it at an http:// collector (a local one or a TLS-terminating sidecar)",
            ));
        }
        return Err(bad("not an http:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(bad(
            "credentials in the URL are not supported: use OTEL_EXPORTER_OTLP_HEADERS",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
    };
    // A query string stays in the path; a fragment means nothing to a POST.
    let path = path.split('#').next().unwrap_or("/");
    Ok((host.to_owned(), port, path.to_owned()))
}

/// What the tracer sends its exporter.
pub(crate) enum Msg {
    Span(Box<Span>),
    /// Export what is queued, then answer.
    Flush(oneshot::Sender<()>),
}

/// Starts the exporter: on the current tokio runtime, or a thread of its
/// own outside one. It ends, after a last export, when every sender is gone.
pub(crate) fn start(
    config: ExportConfig,
    dropped: Counter,
    exported: Counter,
) -> mpsc::Sender<Msg> {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let run = run(rx, config, dropped, exported);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(run);
        }
        Err(_) => {
            let spawned = std::thread::Builder::new()
                .name("otlp-export".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(run),
                        Err(e) => tracing::error!(error = %e, "span export could not start"),
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "span export could not start");
            }
        }
    }
    tx
}

async fn run(
    mut rx: mpsc::Receiver<Msg>,
    config: ExportConfig,
    dropped: Counter,
    exported: Counter,
) {
    let mut client = Client {
        sender: None,
        failing: false,
    };
    let mut batch: Vec<Span> = Vec::with_capacity(config.batch);
    let mut deadline = tokio::time::Instant::now();
    loop {
        let msg = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(msg) => msg,
                Err(_) => {
                    export(&mut client, &config, &mut batch, &dropped, &exported).await;
                    continue;
                }
            }
        };
        match msg {
            Some(Msg::Span(span)) => {
                if batch.is_empty() {
                    deadline = tokio::time::Instant::now() + config.delay;
                }
                batch.push(*span);
                if batch.len() >= config.batch {
                    export(&mut client, &config, &mut batch, &dropped, &exported).await;
                }
            }
            Some(Msg::Flush(done)) => {
                export(&mut client, &config, &mut batch, &dropped, &exported).await;
                let _ = done.send(());
            }
            None => {
                export(&mut client, &config, &mut batch, &dropped, &exported).await;
                return;
            }
        }
    }
}

async fn export(
    client: &mut Client,
    config: &ExportConfig,
    batch: &mut Vec<Span>,
    dropped: &Counter,
    exported: &Counter,
) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    let body = otlp_json(batch, &config.service_name).to_string();
    batch.clear();
    match tokio::time::timeout(config.timeout, client.post(config, Bytes::from(body))).await {
        Ok(Ok(())) => {
            exported.add(n);
            if client.failing {
                tracing::info!(endpoint = %config.url(), "span export works again");
            }
            client.failing = false;
        }
        outcome => {
            let error = match outcome {
                Ok(Err(e)) => e,
                _ => "timed out".to_owned(),
            };
            dropped.add(n);
            client.sender = None;
            // Once per outage at WARN; every batch of it at DEBUG.
            if client.failing {
                tracing::debug!(endpoint = %config.url(), %error, spans = n, "span export failed; spans dropped");
            } else {
                tracing::warn!(endpoint = %config.url(), %error, spans = n, "span export failed; spans dropped until the collector answers");
            }
            client.failing = true;
        }
    }
}

/// One HTTP/1.1 connection to the collector, kept between batches.
struct Client {
    sender: Option<SendRequest<Full<Bytes>>>,
    failing: bool,
}

impl Client {
    async fn post(&mut self, config: &ExportConfig, body: Bytes) -> Result<(), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect((config.host.as_str(), config.port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            // The connection is driven by a task of its own; it ends when
            // the sender is dropped or the peer closes.
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "collector connection closed");
                }
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| e.to_string())?;
        let host = if config.port == 80 {
            config.host.clone()
        } else if config.host.contains(':') {
            format!("[{}]:{}", config.host, config.port)
        } else {
            format!("{}:{}", config.host, config.port)
        };
        let mut request = hyper::Request::post(config.path.as_str())
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (k, v) in &config.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the body to its end so the connection can be used again.
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Err(format!("the collector answered {status}: {text}"))
        }
    }
}

/// The OTLP/HTTP JSON body (`ExportTraceServiceRequest`) of `spans`, under
/// one resource named `service_name`: ids as lowercase hex, kinds and status
/// codes as their enum numbers, times and integers as decimal strings (the
/// protobuf JSON mapping of 64-bit integers).
pub fn otlp_json(spans: &[Span], service_name: &str) -> Value {
    let spans: Vec<Value> = spans.iter().map(span_json).collect();
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": service_name}}
                ]
            },
            "scopeSpans": [{
                "scope": {"name": "ultracore-runtime", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans
            }]
        }]
    })
}

fn span_json(span: &Span) -> Value {
    let attributes: Vec<Value> = span
        .attributes()
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                AttrValue::Str(s) => json!({"stringValue": s}),
                AttrValue::Int(i) => json!({"intValue": i.to_string()}),
            };
            json!({"key": key, "value": value})
        })
        .collect();
    let mut status = json!({"code": span.status.code()});
    if let super::SpanStatus::Error(message) = &span.status {
        status["message"] = json!(message);
    }
    let mut out = json!({
        "traceId": span.trace_id.to_hex(),
        "spanId": span.span_id.to_hex(),
        "flags": span.flags as u32,
        "name": span.name(),
        "kind": span.kind as u8,
        "startTimeUnixNano": span.start_unix_nanos.to_string(),
        "endTimeUnixNano": span.end_unix_nanos.to_string(),
        "attributes": attributes,
        "status": status,
    });
    if let Some(parent) = span.parent_span_id {
        out["parentSpanId"] = json!(parent.to_hex());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn the_environment_chooses_the_endpoint() {
        assert_eq!(ExportConfig::from_lookup(lookup(&[])).unwrap(), None);
        let c = ExportConfig::from_lookup(lookup(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4318/",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.path.as_str()),
            ("collector", 4318, "/v1/traces")
        );
        assert_eq!(c.service_name, "ultracore");
        let c = ExportConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://[::1]:9999/custom/traces",
            ),
            ("OTEL_SERVICE_NAME", "wealth"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=abc, x-tenant=t1"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.url(), "http://[::1]:9999/custom/traces", "used as is");
        assert_eq!(c.service_name, "wealth");
        assert_eq!(c.headers[1], ("x-tenant".into(), "t1".into()));
        assert_eq!(c.delay, Duration::from_millis(50));
        let c = ExportConfig::from_lookup(lookup(&[("OTEL_TRACES_EXPORTER", "otlp")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            c.url(),
            "http://localhost:4318/v1/traces",
            "the specification's default"
        );
        for off in [
            [
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ],
            [
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ],
        ] {
            assert_eq!(ExportConfig::from_lookup(lookup(&off)).unwrap(), None);
        }
    }

    #[test]
    fn what_cannot_be_honoured_is_an_error_naming_the_variable() {
        for (vars, variable) in [
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c/v1/traces")],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                vec![("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:port")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                vec![
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                    ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
                ],
                "OTEL_BSP_MAX_QUEUE_SIZE",
            ),
        ] {
            let e = ExportConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(e.to_string().starts_with(variable), "{e}");
        }
        let e = ExportConfig::from_lookup(lookup(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector:4318",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("https is not supported"), "{e}");
    }
}
