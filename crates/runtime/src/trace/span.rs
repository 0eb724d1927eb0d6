//! [`Span`]: one finished operation on a message, described with the
//! OpenTelemetry messaging semantic conventions.
//!
//! The runtime records two kinds of span (names as the conventions have
//! them since v1.26, `{messaging.operation.name} {destination}`; `send`
//! replaced the older `publish`):
//!
//! | span | kind | `messaging.operation.type` / `.name` | lasts |
//! |---|---|---|---|
//! | `send <topic>` | PRODUCER | `send` / `send` | the append call |
//! | `process <topic>` | CONSUMER | `process` / `process` | from the poll that returned the record to the commit past it |
//!
//! Fields are typed (a span is kept in memory, up to 100,000 of them, so a
//! topic or a service name is shared rather than copied per span);
//! [`Span::attributes`] gives them as the conventions name them.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::{SpanId, TraceContext, TraceId};

/// `messaging.system`: the log speaks Kafka's model (and is Kafka, on the
/// Kafka backend).
pub const MESSAGING_SYSTEM: &str = "kafka";

/// The attribute names the runtime writes.
pub mod attr {
    pub const MESSAGING_SYSTEM: &str = "messaging.system";
    pub const DESTINATION_NAME: &str = "messaging.destination.name";
    pub const OPERATION_TYPE: &str = "messaging.operation.type";
    pub const OPERATION_NAME: &str = "messaging.operation.name";
    pub const CONSUMER_GROUP_NAME: &str = "messaging.consumer.group.name";
    pub const PARTITION_ID: &str = "messaging.destination.partition.id";
    pub const KAFKA_OFFSET: &str = "messaging.kafka.offset";
    pub const MESSAGE_ID: &str = "messaging.message.id";
    pub const SERVICE: &str = "ultracore.service";
    pub const CORRELATION_ID: &str = "ultracore.correlation_id";
    pub const EVENT_TYPE: &str = "ultracore.event_type";
    pub const ERROR_TYPE: &str = "error.type";
}

/// What a span did, as OpenTelemetry's `SpanKind` (the OTLP enum values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    /// Sent a message (`send <topic>`).
    Producer = 4,
    /// Processed a message (`process <topic>`).
    Consumer = 5,
}

impl SpanKind {
    /// The `messaging.operation.type` (and `.name`) of a messaging span.
    pub fn operation(self) -> &'static str {
        match self {
            SpanKind::Producer => "send",
            SpanKind::Consumer => "process",
            SpanKind::Internal | SpanKind::Server | SpanKind::Client => "internal",
        }
    }
}

/// How a span ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpanStatus {
    /// Nothing known to have failed (OpenTelemetry's default).
    #[default]
    Unset,
    Ok,
    /// Failed, with the error's message.
    Error(String),
}

impl SpanStatus {
    /// The OTLP `Status.code`.
    pub fn code(&self) -> u8 {
        match self {
            SpanStatus::Unset => 0,
            SpanStatus::Ok => 1,
            SpanStatus::Error(_) => 2,
        }
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            AttrValue::Int(_) => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            AttrValue::Str(_) => None,
        }
    }
}

/// One finished messaging span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for the root of a trace.
    pub parent_span_id: Option<SpanId>,
    /// The trace flags it ran under (bit 0: sampled; only sampled spans
    /// are exported).
    pub flags: u8,
    pub kind: SpanKind,
    /// The service that sent or processed the message.
    pub service: Arc<str>,
    /// The topic (as UltraCore names it, without a Kafka topic prefix).
    pub topic: Arc<str>,
    /// The consumer group of a `process` span.
    pub group: Option<Arc<str>>,
    /// Where the record is: known for a `process` span, and for a `send`
    /// span once its append succeeded.
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    /// The envelope's `event_id`, when the value is an envelope.
    pub event_id: Option<Uuid>,
    pub correlation_id: Option<Arc<str>>,
    pub event_type: Option<Arc<str>>,
    /// Nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub status: SpanStatus,
}

impl Span {
    /// `{messaging.operation.name} {destination}`: `send orders`,
    /// `process orders`.
    pub fn name(&self) -> String {
        format!("{} {}", self.kind.operation(), self.topic)
    }

    /// The context it passes on: its trace, its id, its flags.
    pub fn context(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            flags: self.flags,
        }
    }

    /// Nanoseconds it lasted.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// Its attributes under their semantic-convention names, in a fixed order.
    pub fn attributes(&self) -> Vec<(&'static str, AttrValue)> {
        let s = |v: &str| AttrValue::Str(v.to_owned());
        let op = self.kind.operation();
        let mut out = vec![
            (attr::MESSAGING_SYSTEM, s(MESSAGING_SYSTEM)),
            (attr::DESTINATION_NAME, s(&self.topic)),
            (attr::OPERATION_TYPE, s(op)),
            (attr::OPERATION_NAME, s(op)),
        ];
        if let Some(g) = &self.group {
            out.push((attr::CONSUMER_GROUP_NAME, s(g)));
        }
        if let Some(p) = self.partition {
            out.push((attr::PARTITION_ID, AttrValue::Str(p.to_string())));
        }
        if let Some(o) = self.offset {
            out.push((attr::KAFKA_OFFSET, AttrValue::Int(o as i64)));
        }
        if let Some(id) = self.event_id {
            out.push((attr::MESSAGE_ID, AttrValue::Str(id.to_string())));
        }
        out.push((attr::SERVICE, s(&self.service)));
        if let Some(c) = &self.correlation_id {
            out.push((attr::CORRELATION_ID, s(c)));
        }
        if let Some(t) = &self.event_type {
            out.push((attr::EVENT_TYPE, s(t)));
        }
        if let SpanStatus::Error(_) = self.status {
            out.push((attr::ERROR_TYPE, s("log")));
        }
        out
    }

    /// One attribute by its name.
    pub fn attribute(&self, key: &str) -> Option<AttrValue> {
        self.attributes()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_attributes_follow_the_messaging_conventions() {
        let ctx = TraceContext::new_root();
        let span = Span {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            parent_span_id: None,
            flags: ctx.flags,
            kind: SpanKind::Consumer,
            service: Arc::from("svc"),
            topic: Arc::from("orders"),
            group: Some(Arc::from("g")),
            partition: Some(3),
            offset: Some(1 << 40),
            event_id: Some(Uuid::nil()),
            correlation_id: Some(Arc::from("req-1")),
            event_type: Some(Arc::from("order_placed")),
            start_unix_nanos: 10,
            end_unix_nanos: 25,
            status: SpanStatus::Unset,
        };
        assert_eq!(span.name(), "process orders");
        assert_eq!(span.duration_nanos(), 15);
        assert_eq!(
            span.attribute(attr::OPERATION_TYPE),
            Some(AttrValue::Str("process".into()))
        );
        assert_eq!(
            span.attribute(attr::PARTITION_ID).unwrap().as_str(),
            Some("3")
        );
        assert_eq!(
            span.attribute(attr::KAFKA_OFFSET).unwrap().as_int(),
            Some(1 << 40)
        );
        assert_eq!(
            span.attribute(attr::CONSUMER_GROUP_NAME).unwrap().as_str(),
            Some("g")
        );
        assert_eq!(
            span.attribute(attr::MESSAGING_SYSTEM).unwrap().as_str(),
            Some("kafka")
        );
        let send = Span {
            kind: SpanKind::Producer,
            group: None,
            ..span
        };
        assert_eq!(send.name(), "send orders");
        assert_eq!(send.attribute(attr::CONSUMER_GROUP_NAME), None);
    }
}
