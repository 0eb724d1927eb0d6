//! The architecture visualizer's model: the platform's components in
//! layers, built from what is registered and running in this process (its
//! services, the log's topics, its stores and endpoints) plus each kind of
//! component's description — technical and in plain words —, protocols and
//! functions, and the connections between them (the services' recorded
//! produce/consume edges, and the fixed wiring of the edge).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::diagram::{DEdge, DNode, Diagram};
use crate::topology::{EdgeKind, NodeKind, Topology};

/// The layers, top (where requests enter) to bottom.
pub const LAYERS: [&str; 10] = [
    "entry",
    "security",
    "orchestration",
    "agents",
    "support",
    "messaging",
    "data",
    "external",
    "governance",
    "monitoring",
];

/// One component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub layer: &'static str,
    /// `service`, `topic`, `store`, `endpoint`, `platform`, `external`.
    pub kind: &'static str,
    /// What it is, for engineers.
    pub technical: String,
    /// What it does, in plain words.
    pub plain: String,
    pub protocols: Vec<String>,
    pub functions: Vec<String>,
    /// Running (services), present (topics, stores), configured (external).
    pub live: bool,
}

/// A connection between components.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Connection {
    pub from: String,
    pub to: String,
    /// `produces`, `consumes`, `calls`, `stores`, `authenticates`…
    pub kind: String,
}

/// `GET /api/v1/architecture`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Architecture {
    pub layers: Vec<&'static str>,
    pub components: Vec<Component>,
    pub connections: Vec<Connection>,
}

/// A store of this process (a file or a database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub id: String,
    pub name: String,
    pub technical: String,
    pub plain: String,
    /// Services that write it.
    pub written_by: Vec<String>,
}

/// What the process is made of beyond the topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setting {
    /// `embedded` or `kafka`.
    pub log_kind: String,
    /// `sqlite` or `postgresql`.
    pub database: String,
    pub stores: Vec<Store>,
    /// HTTP routes served (method, path).
    pub routes: Vec<(String, String)>,
    /// An identity provider is configured (OIDC JWTs accepted).
    pub identity_provider: bool,
    /// OTLP export is configured.
    pub otlp: bool,
    pub mcp: bool,
    /// The customer assistant and its agents run here.
    pub agents: bool,
}

/// What is known about a service by its name (prefix).
struct Known {
    prefix: &'static str,
    layer: &'static str,
    technical: &'static str,
    plain: &'static str,
    functions: &'static [&'static str],
}

const KNOWN: &[Known] = &[
    Known {
        prefix: "http-api",
        layer: "entry",
        technical: "The HTTP API's publishes (optimization requests, market data), recorded and traced like a service's: each request's events carry a traceparent.",
        plain: "Where requests from apps and other systems enter the event log.",
        functions: &["optimization requests", "market data ingestion"],
    },
    Known {
        prefix: "optimization",
        layer: "orchestration",
        technical: "Consumer group optimization-service on esg-portfolio-events: reads the data products, runs the ESG-constrained mean-variance optimizer (Clarabel), publishes the completed or failed result once per request.",
        plain: "Works out the best mix of investments for a portfolio, within the client's ESG and risk limits.",
        functions: &["mean-variance and ESG optimization", "trade lists", "explanations"],
    },
    Known {
        prefix: "reporting",
        layer: "support",
        technical: "Projection of optimization results and staged orders into the read-model database (SQLite or PostgreSQL).",
        plain: "Keeps the answers to 'what happened to my request' ready to read.",
        functions: &["optimization status read model", "order status read model"],
    },
    Known {
        prefix: "execution",
        layer: "support",
        technical: "Stages trade orders from completed optimizations (portfolio-events: trade_orders_staged), idempotent per request.",
        plain: "Turns an approved optimization into the orders a desk would place.",
        functions: &["order staging"],
    },
    Known {
        prefix: "notification",
        layer: "support",
        technical: "Stores notifications of results and compliance alerts and pushes them over SSE.",
        plain: "Tells people when something they care about happened.",
        functions: &["notifications", "alert fan-out"],
    },
    Known {
        prefix: "market-data",
        layer: "support",
        technical: "Merges closing prices from external.market.data into the financial-prices data product (Parquet).",
        plain: "Keeps prices up to date from the market feed.",
        functions: &["price ingestion"],
    },
    Known {
        prefix: "governance",
        layer: "governance",
        technical: "Screens agent executions for personal data (Luhn, mod-97, TFN/ABN/Medicare checksums, context words) and publishes compliance_alert with a keyed hash of the value.",
        plain: "Catches personal data in what the assistants say, and raises an alert without copying it.",
        functions: &["PII recognition", "compliance alerts"],
    },
    Known {
        prefix: "audit",
        layer: "governance",
        technical: "RFC 9162 Merkle tree over every record of every topic, Ed25519-signed checkpoints (C2SP notes) on audit.checkpoints.",
        plain: "A tamper-evident record of everything that happened, checkable by anyone offline.",
        functions: &["inclusion proofs", "consistency proofs", "signed checkpoints"],
    },
    Known {
        prefix: "agent-analytics",
        layer: "monitoring",
        technical: "Counts agent executions per agent: success rate, p50/p95/p99 duration, trends per minute and hour; user changes from db.changes.users.",
        plain: "Shows how well each assistant is doing.",
        functions: &["agent analytics"],
    },
    Known {
        prefix: "cdc-relay",
        layer: "data",
        technical: "Change data capture: users and conversations tables to db.changes.* in Debezium's envelope (outbox triggers on SQLite, logical replication on PostgreSQL).",
        plain: "Turns every change to customer records into an event others can follow.",
        functions: &["snapshot", "streaming changes", "tombstones"],
    },
    Known {
        prefix: "mesh",
        layer: "data",
        technical: "Data mesh catalogue: event-sourced data products refreshed from their topics, graded, searchable (tantivy), with lineage and OpenLineage events.",
        plain: "A shop window of the platform's data sets, with who made them and how fresh they are.",
        functions: &["product refresh", "quality grading", "lineage", "OpenLineage"],
    },
    Known {
        prefix: "lineage",
        layer: "monitoring",
        technical: "Publishes the produce/consume edges the runtime records on mesh.lineage and folds every process's edges back in.",
        plain: "Remembers which service talks to which topic.",
        functions: &["lineage publishing"],
    },
    Known {
        prefix: "forensics",
        layer: "governance",
        technical: "Consumer of trading_decisions: TreeSHAP values per decision off the trading path, stored and served at /api/v1/forensics.",
        plain: "Explains why each trading decision was made.",
        functions: &["SHAP explanations", "forensic reports"],
    },
    Known {
        prefix: "lag-monitor",
        layer: "monitoring",
        technical: "Burrow's evaluation rules (OK, WARN, STALL, STOP, REWIND) over every consumer group's committed offsets, exact time lag from record timestamps; status changes on ops.alerts.",
        plain: "Notices when a part of the system falls behind or stops.",
        functions: &["lag evaluation", "ops alerts"],
    },
];

/// The layer of a service by its name.
pub fn service_layer(name: &str) -> &'static str {
    known(name).map_or("support", |k| k.layer)
}

fn known(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| name.starts_with(k.prefix))
}

/// A fixed part of the platform (one argument per field of [`Component`]).
#[allow(clippy::too_many_arguments)]
fn platform(
    id: &str,
    name: &str,
    layer: &'static str,
    kind: &'static str,
    technical: &str,
    plain: &str,
    protocols: &[&str],
    functions: Vec<String>,
    live: bool,
) -> Component {
    Component {
        id: id.to_owned(),
        name: name.to_owned(),
        layer,
        kind,
        technical: technical.to_owned(),
        plain: plain.to_owned(),
        protocols: protocols.iter().map(|p| (*p).to_owned()).collect(),
        functions,
        live,
    }
}

/// The architecture of this process from its topology and setting.
pub fn build(topology: &Topology, setting: &Setting) -> Architecture {
    let mut components: BTreeMap<String, Component> = BTreeMap::new();
    let mut connections: BTreeSet<Connection> = BTreeSet::new();
    let mut connect = |from: &str, to: &str, kind: &str| {
        connections.insert(Connection {
            from: from.to_owned(),
            to: to.to_owned(),
            kind: kind.to_owned(),
        });
    };
    let api_routes: Vec<String> = setting
        .routes
        .iter()
        .filter(|(_, p)| p.starts_with("/api/"))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let pages: Vec<String> = setting
        .routes
        .iter()
        .filter(|(m, p)| {
            m == "GET"
                && !p.starts_with("/api/")
                && !p.starts_with("/console/")
                && !p.starts_with("/mcp")
        })
        .map(|(_, p)| p.clone())
        .collect();
    for c in [
        platform("http-api", "HTTP API", "entry", "endpoint",
            "axum on HTTP/1.1 under /api/v1: REST, RFC 9457 problem+json errors, the OpenAPI 3.1 document, SSE streams.",
            "The front door other systems and apps use.",
            &["HTTP/1.1", "JSON", "SSE"], api_routes, true),
        platform("console", "Web console", "entry", "endpoint",
            "Server-rendered pages with small scripts, live over SSE, sign-in with a session cookie (HttpOnly, SameSite=Strict, CSRF token).",
            "The screens operators, compliance staff and portfolio managers look at.",
            &["HTTP", "HTML", "SSE"], pages, true),
        platform("mcp", "MCP server", "entry", "endpoint",
            "Model Context Protocol over streamable HTTP (/mcp) and stdio: the platform's tools for AI agents.",
            "Lets AI assistants use the platform's tools safely.",
            &["MCP", "JSON-RPC 2.0"], ["optimization tools", "risk tools", "assistant tools"].map(String::from).to_vec(), setting.mcp),
        platform("cli", "ultracore CLI", "entry", "endpoint",
            "clap command line: serve, demo, optimize, risk, events, keys, audit, mesh, bench…",
            "The command line for operators and quants.",
            &["process"], vec![], true),
        platform("guard", "Edge guard", "security", "platform",
            "Middleware before every route: Host allowlist, Origin check, JSON-only bodies, authentication, the access table, portfolio scope, rate limits, stream slots, timeouts.",
            "Checks who is asking and whether they may, before anything else happens.",
            &["HTTP"], vec!["authorization table".into(), "rate limits".into(), "CORS".into()], true),
        platform("authenticator", "Authentication", "security", "platform",
            "API keys (stored as SHA-256, constant-time checks, revocation) and OIDC JWTs of one issuer (JWKS, alg allowlist, exp/nbf/iss/aud).",
            "Knows who each caller is.",
            &["Bearer", "OIDC JWT"], vec!["API keys".into(), "JWT".into(), "console sessions".into()], true),
        platform("supervisor", "Service runtime", "orchestration", "platform",
            "One supervisor per process: every service's consumer-group loop (batches, commit after effects, retries, dead letters), health, restarts, metrics, lineage, tracing.",
            "Keeps every service running and restarts what fails.",
            &["in-process"], vec!["supervision".into(), "dead-letter topics".into(), "health".into()], true),
        platform("log", if setting.log_kind == "kafka" { "Kafka log" } else { "Embedded log" }, "messaging", "platform",
            if setting.log_kind == "kafka" {
                "Apache Kafka through librdkafka: acks=all, idempotent producer, consumer groups."
            } else {
                "Segmented log files in the data dir: CRC per record, group-commit fsync before ack, torn tail truncated on recovery."
            },
            "The durable record of every event, in order.",
            &[if setting.log_kind == "kafka" { "Kafka protocol" } else { "files" }], vec!["topics".into(), "consumer groups".into(), "retention".into()], true),
        platform("read-models", "Read-model database", "data", "store",
            if setting.database == "postgresql" { "PostgreSQL: projections, the event store's index, users and conversations, with migrations and a pool." } else { "SQLite in the data dir: projections, the event store's index, users and conversations." },
            "Where the answers to everyday questions are kept ready.",
            &[if setting.database == "postgresql" { "PostgreSQL wire" } else { "SQLite" }], vec![], true),
        platform("metrics", "Metrics", "monitoring", "platform",
            "Prometheus text at /metrics: runtime, HTTP, lag, audit, agents, mesh families.",
            "Numbers that show how the system is doing.",
            &["Prometheus"], vec![], true),
        platform("tracing", "Tracing", "monitoring", "platform",
            "W3C traceparent in every event's headers, publish/process spans (messaging conventions), OTLP/HTTP export.",
            "Follows one request through every service it touches.",
            &["W3C Trace Context", "OTLP"], vec![], true),
    ] {
        components.insert(c.id.clone(), c);
    }
    if setting.log_kind == "kafka" {
        components.insert(
            "kafka".into(),
            platform(
                "kafka",
                "Kafka cluster",
                "external",
                "external",
                "The brokers of KAFKA_BOOTSTRAP_SERVERS.",
                "The shared message system of a larger deployment.",
                &["Kafka protocol"],
                vec![],
                true,
            ),
        );
        connect("log", "kafka", "stores");
    }
    if setting.identity_provider {
        components.insert(
            "idp".into(),
            platform(
                "idp",
                "Identity provider",
                "external",
                "external",
                "The OIDC issuer whose JWTs are accepted (JWKS).",
                "The company's sign-in system.",
                &["OIDC", "JWKS"],
                vec![],
                true,
            ),
        );
        connect("authenticator", "idp", "trusts");
    }
    if setting.otlp {
        components.insert(
            "otlp".into(),
            platform(
                "otlp",
                "OTLP collector",
                "external",
                "external",
                "OTEL_EXPORTER_OTLP_ENDPOINT: spans exported as OTLP/HTTP JSON.",
                "Where traces are sent for tracing tools.",
                &["OTLP/HTTP"],
                vec![],
                true,
            ),
        );
        connect("tracing", "otlp", "exports");
    }
    for s in &setting.stores {
        components.insert(
            s.id.clone(),
            Component {
                id: s.id.clone(),
                name: s.name.clone(),
                layer: "data",
                kind: "store",
                technical: s.technical.clone(),
                plain: s.plain.clone(),
                protocols: vec!["files".into()],
                functions: vec![],
                live: true,
            },
        );
        for w in &s.written_by {
            connect(&format!("service:{w}"), &s.id, "stores");
        }
    }
    for n in &topology.nodes {
        match n.kind {
            NodeKind::Service => {
                let k = known(&n.name);
                components.insert(
                    n.id.clone(),
                    Component {
                        id: n.id.clone(),
                        name: n.name.clone(),
                        layer: n.layer,
                        kind: "service",
                        technical: k.map_or_else(
                            || {
                                format!(
                                    "Service {} of this process (no description registered).",
                                    n.name
                                )
                            },
                            |k| k.technical.to_owned(),
                        ),
                        plain: k.map_or_else(String::new, |k| k.plain.to_owned()),
                        protocols: vec!["event log".into()],
                        functions: k.map_or_else(Vec::new, |k| {
                            k.functions.iter().map(|f| (*f).to_owned()).collect()
                        }),
                        live: n.state.as_deref().is_none_or(|s| s == "running"),
                    },
                );
                connect("supervisor", &n.id, "supervises");
            }
            NodeKind::Topic => {
                let def = ultracore_runtime::catalogue::topic(
                    n.name.trim_end_matches(ultracore_log::DLQ_SUFFIX),
                );
                components.insert(
                    n.id.clone(),
                    Component {
                        id: n.id.clone(),
                        name: n.name.clone(),
                        layer: "messaging",
                        kind: "topic",
                        technical: match def {
                            Some(d) => format!(
                                "{} partitions; events {}; producers: {}; consumers: {}",
                                n.partitions.unwrap_or(d.partitions),
                                d.events.join(", "),
                                d.producers,
                                d.consumers
                            ),
                            None => format!(
                                "Topic of the log with {} partitions.",
                                n.partitions.unwrap_or(0)
                            ),
                        },
                        plain: if n.name.ends_with(ultracore_log::DLQ_SUFFIX) {
                            "Events that could not be handled, kept with the reason.".into()
                        } else {
                            "A stream of events of one kind.".into()
                        },
                        protocols: vec![if setting.log_kind == "kafka" {
                            "Kafka protocol".into()
                        } else {
                            "embedded log".into()
                        }],
                        functions: vec![],
                        live: true,
                    },
                );
                connect("log", &n.id, "stores");
            }
            NodeKind::Group => {}
        }
    }
    // Services' edges, with the groups folded into their members.
    let member_of: BTreeMap<&str, Vec<&str>> = topology
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::MemberOf)
        .fold(BTreeMap::new(), |mut m, e| {
            m.entry(e.from.as_str()).or_default().push(e.to.as_str());
            m
        });
    for e in &topology.edges {
        match e.kind {
            EdgeKind::Produces => connect(&e.from, &e.to, "produces"),
            EdgeKind::ConsumedBy => {
                for s in member_of.get(e.to.as_str()).into_iter().flatten() {
                    connect(&e.from, s, "consumed by");
                }
            }
            EdgeKind::MemberOf => {}
        }
    }
    for (a, b, k) in [
        ("http-api", "guard", "calls"),
        ("console", "guard", "calls"),
        ("mcp", "guard", "calls"),
        ("guard", "authenticator", "authenticates"),
        ("supervisor", "log", "reads and appends"),
        ("supervisor", "metrics", "exports"),
        ("supervisor", "tracing", "records"),
        ("http-api", "read-models", "reads"),
        ("console", "metrics", "reads"),
    ] {
        connect(a, b, k);
    }
    let connections: Vec<Connection> = connections
        .into_iter()
        .filter(|c| components.contains_key(&c.from) && components.contains_key(&c.to))
        .collect();
    let mut components: Vec<Component> = components.into_values().collect();
    components.sort_by_key(|c| {
        (
            LAYERS.iter().position(|l| *l == c.layer).unwrap_or(99),
            c.id.clone(),
        )
    });
    Architecture {
        layers: LAYERS.to_vec(),
        components,
        connections,
    }
}

impl Architecture {
    /// The components and connections in these layers (all when empty),
    /// as a diagram with one band per layer present.
    pub fn diagram(&self, layers: &[String]) -> Diagram {
        let keep = |l: &str| layers.is_empty() || layers.iter().any(|x| x == l);
        let present: Vec<&'static str> = LAYERS
            .iter()
            .copied()
            .filter(|l| keep(l) && self.components.iter().any(|c| c.layer == *l))
            .collect();
        let nodes: Vec<DNode> = self
            .components
            .iter()
            .filter(|c| keep(c.layer))
            .map(|c| DNode {
                id: c.id.clone(),
                label: c.name.clone(),
                badge: c.kind.to_owned(),
                class: format!(
                    "{} {}",
                    match c.kind {
                        "service" => "service",
                        "topic" => "topic",
                        _ => c.kind,
                    },
                    c.layer
                ),
                rank: present.iter().position(|l| *l == c.layer),
            })
            .collect();
        let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let edges = self
            .connections
            .iter()
            .filter(|c| ids.contains(c.from.as_str()) && ids.contains(c.to.as_str()))
            .map(|c| DEdge {
                from: c.from.clone(),
                to: c.to.clone(),
                label: String::new(),
                class: c.kind.replace(' ', "-"),
            })
            .collect();
        Diagram {
            nodes,
            edges,
            bands: present.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    /// Inbound and outbound connections of a component.
    pub fn connections_of(&self, id: &str) -> (Vec<&Connection>, Vec<&Connection>) {
        (
            self.connections.iter().filter(|c| c.to == id).collect(),
            self.connections.iter().filter(|c| c.from == id).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Edge, Node};

    fn node(id: &str, kind: NodeKind, layer: &'static str) -> Node {
        Node {
            id: id.into(),
            kind,
            name: id.split_once(':').unwrap().1.into(),
            layer,
            partitions: Some(3),
            records: None,
            lag: None,
            status: None,
            state: Some("running".into()),
        }
    }

    #[test]
    fn components_come_from_what_runs_in_layers_with_connections() {
        let topology = Topology {
            generated_at_ms: 0,
            window_seconds: 10.0,
            nodes: vec![
                node("service:optimization", NodeKind::Service, "orchestration"),
                node("topic:esg-portfolio-events", NodeKind::Topic, "messaging"),
                node("group:optimization-service", NodeKind::Group, "messaging"),
            ],
            edges: vec![
                Edge {
                    from: "service:optimization".into(),
                    to: "topic:esg-portfolio-events".into(),
                    kind: EdgeKind::Produces,
                    rate: 0.0,
                    records: 1,
                },
                Edge {
                    from: "topic:esg-portfolio-events".into(),
                    to: "group:optimization-service".into(),
                    kind: EdgeKind::ConsumedBy,
                    rate: 0.0,
                    records: 1,
                },
                Edge {
                    from: "group:optimization-service".into(),
                    to: "service:optimization".into(),
                    kind: EdgeKind::MemberOf,
                    rate: 0.0,
                    records: 1,
                },
            ],
        };
        let a = build(
            &topology,
            &Setting {
                log_kind: "embedded".into(),
                database: "sqlite".into(),
                routes: vec![
                    ("GET".into(), "/api/v1/topology".into()),
                    ("GET".into(), "/topology".into()),
                ],
                ..Setting::default()
            },
        );
        let opt = a
            .components
            .iter()
            .find(|c| c.id == "service:optimization")
            .unwrap();
        assert_eq!(opt.layer, "orchestration");
        assert!(opt.technical.contains("Clarabel") && !opt.plain.is_empty());
        let topic = a
            .components
            .iter()
            .find(|c| c.id == "topic:esg-portfolio-events")
            .unwrap();
        assert!(
            topic.technical.contains("portfolio_optimization_requested"),
            "{}",
            topic.technical
        );
        let (inbound, outbound) = a.connections_of("service:optimization");
        assert!(inbound
            .iter()
            .any(|c| c.from == "topic:esg-portfolio-events" && c.kind == "consumed by"));
        assert!(inbound.iter().any(|c| c.from == "supervisor"));
        assert!(outbound
            .iter()
            .any(|c| c.to == "topic:esg-portfolio-events" && c.kind == "produces"));
        // No groups among components: folded into their services.
        assert!(a.components.iter().all(|c| !c.id.starts_with("group:")));
        assert!(a
            .components
            .iter()
            .find(|c| c.id == "http-api")
            .unwrap()
            .functions
            .contains(&"GET /api/v1/topology".to_owned()));
        // Every layer with a component is a band of the diagram, in order.
        let d = a.diagram(&[]);
        assert_eq!(d.bands.first().map(String::as_str), Some("entry"));
        let only = a.diagram(&["messaging".into()]);
        assert_eq!(only.bands, ["messaging"]);
        assert!(only.nodes.iter().all(|n| n.class.ends_with("messaging")));
    }
}
