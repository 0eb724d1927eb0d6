//! The governance check of an agent's answer.

use std::path::{Path, PathBuf};

use chrono::Utc;
use rand::TryRngCore;
use serde_json::Value;
use ultracore_events::compliance::{ComplianceAlert, SeenAt, Severity};
use ultracore_governance::{fingerprint, mask, Entity, Finding, Scanner};
use uuid::Uuid;

use crate::{Error, Result};

/// The key fingerprints are made with: 32 random bytes in
/// `<data dir>/governance.key`, created owner-only on first use. Alerts
/// from one deployment can be correlated; without the key a fingerprint
/// says nothing about the value, even for values as guessable as a TFN.
#[derive(Clone)]
pub struct GovernanceKey(Vec<u8>);

impl std::fmt::Debug for GovernanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GovernanceKey(…)")
    }
}

impl GovernanceKey {
    pub const FILE_NAME: &'static str = "governance.key";

    /// The key of `data_dir`, created when missing.
    pub fn load_or_create(data_dir: &Path) -> Result<GovernanceKey> {
        let path: PathBuf = data_dir.join(Self::FILE_NAME);
        let err = |reason: String| Error::Key {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => return Ok(GovernanceKey(bytes)),
            Ok(bytes) => {
                return Err(err(format!(
                    "{} bytes, expected 32; restore it from a backup (alerts made with another key cannot be correlated with new ones)",
                    bytes.len()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string())),
        }
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| err(format!("the OS random source failed: {e}")))?;
        ultracore_log::files::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
        ultracore_log::files::write(&path, &key).map_err(|e| err(e.to_string()))?;
        tracing::info!(path = %path.display(), "created the governance key");
        Ok(GovernanceKey(key))
    }

    /// A key given as bytes (tests, a key from a secret store).
    pub fn from_bytes(bytes: &[u8]) -> GovernanceKey {
        GovernanceKey(bytes.to_vec())
    }
}

/// What a screen does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The text goes out as it is; findings are reported.
    Report,
    /// Values are replaced by `<ENTITY>` before the text goes out; findings
    /// are reported as masked.
    Block,
}

/// One finding in a JSON value: where (a JSON pointer to the string) and what.
#[derive(Debug, Clone)]
pub struct Screened {
    pub field: String,
    pub finding: Finding,
    pub fingerprint: String,
}

/// Screens JSON values for personal data.
#[derive(Debug, Clone)]
pub struct Screen {
    scanner: Scanner,
    key: GovernanceKey,
}

/// How serious a finding of each entity is: data that lets someone take
/// money or an identity is high; contact details medium; an ABN (a public
/// register entry) low.
pub fn severity(entity: Entity) -> Severity {
    match entity {
        Entity::CreditCard
        | Entity::IbanCode
        | Entity::AuTfn
        | Entity::AuMedicare
        | Entity::UsSsn => Severity::High,
        Entity::EmailAddress | Entity::PhoneNumber => Severity::Medium,
        Entity::AuAbn => Severity::Low,
    }
}

impl Screen {
    pub fn new(key: GovernanceKey) -> Screen {
        Screen {
            scanner: Scanner::new(),
            key,
        }
    }

    /// Every finding in the strings of `value`; with [`Mode::Block`] the
    /// values are masked in place.
    pub fn screen(&self, value: &mut Value, mode: Mode) -> Vec<Screened> {
        let mut out = Vec::new();
        self.walk(value, &mut String::new(), mode, &mut out);
        out
    }

    fn walk(&self, value: &mut Value, pointer: &mut String, mode: Mode, out: &mut Vec<Screened>) {
        match value {
            Value::String(text) => {
                let findings = self.scanner.scan(text);
                if findings.is_empty() {
                    return;
                }
                for f in &findings {
                    out.push(Screened {
                        field: pointer.clone(),
                        finding: *f,
                        fingerprint: fingerprint(&self.key.0, f.entity, &text[f.start..f.end]),
                    });
                }
                if mode == Mode::Block {
                    *text = mask(text, &findings);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    self.walk(item, pointer, mode, out);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    let len = pointer.len();
                    pointer.push('/');
                    // RFC 6901 escaping.
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    self.walk(item, pointer, mode, out);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }

    /// The alert of one finding seen in event `event_id` of `topic`, under
    /// the payload field `prefix` + the finding's pointer. Its id is derived
    /// from where it was seen, so reporting it again yields the same alert.
    pub fn alert(
        &self,
        s: &Screened,
        topic: &str,
        event_id: Uuid,
        prefix: &str,
        mode: Mode,
        who: (Option<String>, Option<String>, Option<String>),
    ) -> ComplianceAlert {
        let field = format!("{prefix}{}", s.field);
        let f = &s.finding;
        let id = Uuid::new_v5(
            &event_id,
            format!(
                "{field}\u{0}{}\u{0}{}\u{0}{}",
                f.entity.name(),
                f.start,
                f.end
            )
            .as_bytes(),
        );
        let (agent_id, execution_id, customer_id) = who;
        ComplianceAlert {
            alert_id: id.to_string(),
            alert_type: "pii_detected".into(),
            severity: severity(f.entity),
            entity: f.entity.name().into(),
            likelihood: f.likelihood.name().into(),
            recognizer: f.recognizer.into(),
            fingerprint: s.fingerprint.clone(),
            seen_at: SeenAt {
                topic: topic.into(),
                event_id: event_id.to_string(),
                field,
                start: f.start,
                end: f.end,
                agent_id,
                execution_id,
                customer_id,
            },
            action: match mode {
                Mode::Report => "reported",
                Mode::Block => "masked",
            }
            .into(),
            detected_at: Utc::now(),
        }
    }
}

/// Publishes one alert on `compliance.alerts` (created if missing), keyed
/// by its customer (or agent), with the alert id as the event id so a
/// repeat is recognised.
pub(crate) async fn publish_alert<L: ultracore_log::EventLog>(
    log: &L,
    alert: ComplianceAlert,
) -> Result<(), String> {
    use ultracore_events::compliance::{ComplianceEvent, AGGREGATE_TYPE, TOPIC};
    let key = alert
        .seen_at
        .customer_id
        .clone()
        .or_else(|| alert.seen_at.agent_id.clone())
        .unwrap_or_else(|| "unknown".into());
    let id = alert.alert_id.parse::<Uuid>().ok();
    let mut env = ultracore_log::EnvelopeBuilder::new(AGGREGATE_TYPE, &key)
        .build(ComplianceEvent::Alert(alert));
    if let Some(id) = id {
        env.event_id = id;
    }
    ultracore_runtime::catalogue::ensure(log, &[TOPIC])
        .await
        .map_err(|e| format!("compliance.alerts could not be created: {e}"))?;
    ultracore_log::EventLogExt::append_one(log, TOPIC, env.to_record())
        .await
        .map_err(|e| format!("a compliance alert could not be published: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_masks_every_string_and_reports_where() {
        let screen = Screen::new(GovernanceKey::from_bytes(b"k"));
        let mut v = serde_json::json!({
            "text": "Your TFN 123 456 782 is on file.",
            "items": [{"note": "call 0412 345 678"}, 3],
            "a/b": "jo@example.com",
        });
        let found = screen.screen(&mut v, Mode::Block);
        let fields: Vec<&str> = found.iter().map(|s| s.field.as_str()).collect();
        assert_eq!(fields, ["/a~1b", "/items/0/note", "/text"]);
        assert_eq!(v["text"], "Your TFN <AU_TFN> is on file.");
        assert_eq!(v["items"][0]["note"], "call <PHONE_NUMBER>");
        let text = v.to_string();
        assert!(!text.contains("782") && !text.contains("345 678") && !text.contains("jo@"));
    }

    #[test]
    fn the_key_is_created_owner_only_and_kept(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let a = GovernanceKey::load_or_create(dir.path())?;
        let b = GovernanceKey::load_or_create(dir.path())?;
        assert_eq!(a.0, b.0);
        assert_eq!(a.0.len(), 32);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(GovernanceKey::FILE_NAME))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(GovernanceKey::FILE_NAME), b"short")?;
        let e = GovernanceKey::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected 32"), "{e}");
        Ok(())
    }
}
