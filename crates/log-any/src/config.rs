use std::path::PathBuf;

use ultracore_log::Retention;

/// Where the events live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded log in this directory (the default: `./data`).
    Embedded { dir: PathBuf },
    /// Apache Kafka (or any Kafka-protocol broker).
    Kafka { bootstrap_servers: String },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Embedded { dir } => write!(f, "embedded log at {}", dir.display()),
            Backend::Kafka { bootstrap_servers } => write!(f, "Kafka at {bootstrap_servers}"),
        }
    }
}

/// How a process uses the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The single writer of an embedded data directory.
    Write,
    /// Reading beside a running writer (inspection commands).
    ReadOnly,
}

/// The log settings every UltraCore command shares. Each field maps to the
/// environment variable operators already use (see the CLI's `--help`).
#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    /// `--log` / `ULTRACORE_LOG`: `file:///var/lib/ultracore`, a plain path,
    /// or `kafka://host:9092[,host2:9092]`. Wins over everything else.
    pub url: Option<String>,
    /// `EVENT_STORE_TYPE`: `embedded` or `kafka`.
    pub store_type: Option<String>,
    /// `KAFKA_BOOTSTRAP_SERVERS`: selects Kafka when set (unless
    /// `EVENT_STORE_TYPE=embedded`).
    pub bootstrap_servers: Option<String>,
    /// `KAFKA_TOPIC_PREFIX`: prepended to every Kafka topic name.
    pub topic_prefix: Option<String>,
    /// `EVENT_STORE_RETENTION_DAYS`: retention of topics created without one.
    pub retention_days: Option<u64>,
    /// `ULTRACORE_DATA_DIR`: the embedded log's directory (default `./data`).
    pub data_dir: Option<PathBuf>,
}

/// A configuration that cannot work, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("log URL '{0}' is not understood: use file:///path/to/dir, a directory path, or kafka://host:port")]
    BadUrl(String),
    #[error("EVENT_STORE_TYPE is '{0}': use 'embedded' or 'kafka'")]
    BadStoreType(String),
    #[error("EVENT_STORE_TYPE=kafka but no broker is configured: set KAFKA_BOOTSTRAP_SERVERS=host:port or pass --log kafka://host:port")]
    KafkaWithoutServers,
}

impl LogConfig {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"))
    }

    /// Resolves the backend. Precedence: the URL; then `EVENT_STORE_TYPE`;
    /// then Kafka if `KAFKA_BOOTSTRAP_SERVERS` is set; else embedded.
    pub fn backend(&self) -> Result<Backend, ConfigError> {
        let non_empty = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if let Some(url) = non_empty(&self.url) {
            if let Some(servers) = url.strip_prefix("kafka://") {
                let servers = servers.trim_end_matches('/');
                if servers.is_empty() || servers.split(',').any(|s| !s.contains(':')) {
                    return Err(ConfigError::BadUrl(url));
                }
                return Ok(Backend::Kafka {
                    bootstrap_servers: servers.to_owned(),
                });
            }
            if let Some(path) = url.strip_prefix("file://") {
                if path.is_empty() {
                    return Err(ConfigError::BadUrl(url));
                }
                return Ok(Backend::Embedded {
                    dir: PathBuf::from(path),
                });
            }
            if url.contains("://") {
                return Err(ConfigError::BadUrl(url));
            }
            return Ok(Backend::Embedded {
                dir: PathBuf::from(url),
            });
        }
        let servers = non_empty(&self.bootstrap_servers);
        match non_empty(&self.store_type)
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("embedded") => Ok(Backend::Embedded {
                dir: self.data_dir(),
            }),
            Some("kafka") => servers
                .map(|s| Backend::Kafka {
                    bootstrap_servers: s,
                })
                .ok_or(ConfigError::KafkaWithoutServers),
            Some(other) => Err(ConfigError::BadStoreType(other.to_owned())),
            None => Ok(match servers {
                Some(s) => Backend::Kafka {
                    bootstrap_servers: s,
                },
                None => Backend::Embedded {
                    dir: self.data_dir(),
                },
            }),
        }
    }

    /// Retention of topics created without one: `retention_days`, else forever.
    pub fn default_retention(&self) -> Retention {
        self.retention_days
            .map_or(Retention::Forever, Retention::days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LogConfig {
        LogConfig::default()
    }

    #[test]
    fn embedded_by_default_in_data() {
        assert_eq!(
            cfg().backend().unwrap(),
            Backend::Embedded { dir: "data".into() }
        );
        let c = LogConfig {
            data_dir: Some("/var/lib/uc".into()),
            ..cfg()
        };
        assert_eq!(
            c.backend().unwrap(),
            Backend::Embedded {
                dir: "/var/lib/uc".into()
            }
        );
    }

    #[test]
    fn kafka_when_bootstrap_servers_set() {
        let c = LogConfig {
            bootstrap_servers: Some("127.0.0.1:9092".into()),
            ..cfg()
        };
        assert_eq!(
            c.backend().unwrap(),
            Backend::Kafka {
                bootstrap_servers: "127.0.0.1:9092".into()
            }
        );
        let c = LogConfig {
            store_type: Some("embedded".into()),
            ..c
        };
        assert_eq!(
            c.backend().unwrap(),
            Backend::Embedded { dir: "data".into() }
        );
    }

    #[test]
    fn url_wins() {
        let c = LogConfig {
            url: Some("kafka://a:1,b:2".into()),
            store_type: Some("embedded".into()),
            ..cfg()
        };
        assert_eq!(
            c.backend().unwrap(),
            Backend::Kafka {
                bootstrap_servers: "a:1,b:2".into()
            }
        );
        let c = LogConfig {
            url: Some("file:///srv/x".into()),
            bootstrap_servers: Some("k:9".into()),
            ..cfg()
        };
        assert_eq!(
            c.backend().unwrap(),
            Backend::Embedded {
                dir: "/srv/x".into()
            }
        );
    }

    #[test]
    fn bad_settings_say_what_to_do() {
        let c = LogConfig {
            store_type: Some("kafka".into()),
            ..cfg()
        };
        assert_eq!(c.backend().unwrap_err(), ConfigError::KafkaWithoutServers);
        let c = LogConfig {
            store_type: Some("postgres".into()),
            ..cfg()
        };
        assert!(c
            .backend()
            .unwrap_err()
            .to_string()
            .contains("'embedded' or 'kafka'"));
        for bad in ["kafka://", "kafka://nohost", "s3://bucket", "file://"] {
            let c = LogConfig {
                url: Some(bad.into()),
                ..cfg()
            };
            assert!(matches!(c.backend(), Err(ConfigError::BadUrl(_))), "{bad}");
        }
    }
}
