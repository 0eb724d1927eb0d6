//! Users and conversations as the API sees them, and the edge's rules for
//! what may be written: every field is checked before a row is touched, and
//! a rejection names the field and says what would be accepted.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// At most this many messages per conversation: the conversation is one row
/// (its changes are one topic keyed by conversation id), so it is bounded.
pub const MAX_MESSAGES: usize = 500;
/// Characters of one message.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

pub const RISK_PROFILES: &[&str] = &[
    "conservative",
    "moderate",
    "balanced",
    "growth",
    "aggressive",
];
pub const USER_STATUSES: &[&str] = &["active", "suspended", "closed"];
pub const CONVERSATION_STATUSES: &[&str] = &["open", "closed"];
pub const ROLES: &[&str] = &["customer", "agent", "advisor", "system"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub risk_profile: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Chosen by the caller (a customer id) or generated.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub country: String,
    #[serde(default = "default_risk_profile")]
    pub risk_profile: String,
    #[serde(default = "default_user_status")]
    pub status: String,
}

fn default_risk_profile() -> String {
    "balanced".into()
}

fn default_user_status() -> String {
    "active".into()
}

/// `PATCH /api/v1/users/{id}`: the fields to change. `phone: null` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, with = "double_option")]
    pub phone: Option<Option<String>>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub risk_profile: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        self == &UserPatch::default()
    }
}

/// Tells an absent field (`None`) from an explicit null (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(inner) => inner.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub text: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub customer_id: String,
    pub subject: Option<String>,
    pub status: String,
    pub messages: Vec<Message>,
    pub message_count: u32,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /api/v1/conversations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    #[serde(default)]
    pub id: Option<String>,
    pub customer_id: String,
    #[serde(default)]
    pub subject: Option<String>,
}

/// `POST /api/v1/conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub role: String,
    pub text: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Ids follow the platform's rule for customer and portfolio ids
/// ([`ultracore_http::is_valid_customer_id`]): 1-64 characters of letters,
/// digits, `-`, `_` and `.`.
pub fn check_id(field: &str, id: &str) -> Result<()> {
    if ultracore_http::is_valid_customer_id(id) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be 1-64 characters of letters, digits, '-', '_' and '.'",
        ))
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    let chars = value.chars().count();
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if chars > max {
        return Err(invalid(
            field,
            format!("is {chars} characters; at most {max} are accepted"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_one_of(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

/// An address with one `@`, a local part and a dotted domain, at most 254
/// characters (RFC 5321's limit); stored lowercased.
pub fn check_email(email: &str) -> Result<()> {
    let bad = || invalid("email", "must be an address like name@example.com");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
        return Err(bad());
    }
    Ok(())
}

/// E.164 after removing spaces, dashes and brackets: `+`, then 8–15 digits.
pub fn normalize_phone(phone: &str) -> Result<String> {
    let digits: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let ok = digits.starts_with('+')
        && (9..=16).contains(&digits.len())
        && digits[1..].bytes().all(|b| b.is_ascii_digit())
        && !digits[1..].starts_with('0');
    if ok {
        Ok(digits)
    } else {
        Err(invalid(
            "phone",
            "must be an international number like +61 2 9374 4000 (E.164: '+', country code, 8-15 digits)",
        ))
    }
}

/// Two upper-case letters (ISO 3166-1 alpha-2); lower case is accepted and
/// stored upper-cased.
pub fn normalize_country(country: &str) -> Result<String> {
    let upper = country.trim().to_ascii_uppercase();
    if upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(upper)
    } else {
        Err(invalid(
            "country",
            "must be an ISO 3166-1 alpha-2 code like AU or US",
        ))
    }
}

impl NewUser {
    /// Checks every field and returns the user as it will be stored.
    pub fn validate(&self) -> Result<NewUser> {
        if let Some(id) = &self.id {
            check_id("id", id)?;
        }
        check_text("name", &self.name, 200)?;
        check_email(&self.email)?;
        let phone = self.phone.as_deref().map(normalize_phone).transpose()?;
        let country = normalize_country(&self.country)?;
        check_one_of("risk_profile", &self.risk_profile, RISK_PROFILES)?;
        check_one_of("status", &self.status, USER_STATUSES)?;
        Ok(NewUser {
            id: self.id.clone(),
            name: self.name.trim().to_owned(),
            email: self.email.to_ascii_lowercase(),
            phone,
            country,
            risk_profile: self.risk_profile.clone(),
            status: self.status.clone(),
        })
    }
}

impl UserPatch {
    /// Checks every given field and returns the patch as it will be applied.
    pub fn validate(&self) -> Result<UserPatch> {
        if self.is_empty() {
            return Err(invalid(
                "body",
                "names no field to change: give at least one of name, email, phone, country, risk_profile, status",
            ));
        }
        if let Some(name) = &self.name {
            check_text("name", name, 200)?;
        }
        if let Some(email) = &self.email {
            check_email(email)?;
        }
        let phone = match &self.phone {
            Some(Some(p)) => Some(Some(normalize_phone(p)?)),
            other => other.clone(),
        };
        let country = self.country.as_deref().map(normalize_country).transpose()?;
        if let Some(r) = &self.risk_profile {
            check_one_of("risk_profile", r, RISK_PROFILES)?;
        }
        if let Some(s) = &self.status {
            check_one_of("status", s, USER_STATUSES)?;
        }
        Ok(UserPatch {
            name: self.name.as_ref().map(|n| n.trim().to_owned()),
            email: self.email.as_ref().map(|e| e.to_ascii_lowercase()),
            phone,
            country,
            risk_profile: self.risk_profile.clone(),
            status: self.status.clone(),
        })
    }

    /// `user` with the patch applied.
    pub fn apply(&self, user: &User) -> User {
        let mut out = user.clone();
        if let Some(v) = &self.name {
            out.name = v.clone();
        }
        if let Some(v) = &self.email {
            out.email = v.clone();
        }
        if let Some(v) = &self.phone {
            out.phone = v.clone();
        }
        if let Some(v) = &self.country {
            out.country = v.clone();
        }
        if let Some(v) = &self.risk_profile {
            out.risk_profile = v.clone();
        }
        if let Some(v) = &self.status {
            out.status = v.clone();
        }
        out
    }
}

impl NewConversation {
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.id {
            check_id("id", id)?;
        }
        check_id("customer_id", &self.customer_id)?;
        if let Some(s) = &self.subject {
            check_text("subject", s, 200)?;
        }
        Ok(())
    }
}

impl NewMessage {
    pub fn validate(&self) -> Result<()> {
        check_one_of("role", &self.role, ROLES)?;
        check_text("text", &self.text, MAX_MESSAGE_CHARS)
    }
}

/// Now, as every timestamp of these tables is written: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A generated id: the prefix and a UUIDv7 (time-ordered, so pages of ids
/// list the newest last).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> NewUser {
        NewUser {
            id: None,
            name: "Ada Lovelace".into(),
            email: "Ada@Example.com".into(),
            phone: Some("+61 2 9374-4000".into()),
            country: "au".into(),
            risk_profile: "growth".into(),
            status: "active".into(),
        }
    }

    #[test]
    fn a_valid_user_is_normalized() {
        let u = user().validate().unwrap();
        assert_eq!(u.email, "ada@example.com");
        assert_eq!(u.phone.as_deref(), Some("+61293744000"));
        assert_eq!(u.country, "AU");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(NewUser, &str)> = vec![
            (
                NewUser {
                    name: " ".into(),
                    ..user()
                },
                "name",
            ),
            (
                NewUser {
                    email: "ada".into(),
                    ..user()
                },
                "email",
            ),
            (
                NewUser {
                    email: "ada@localhost".into(),
                    ..user()
                },
                "email",
            ),
            (
                NewUser {
                    email: "a b@x.com".into(),
                    ..user()
                },
                "email",
            ),
            (
                NewUser {
                    phone: Some("12345".into()),
                    ..user()
                },
                "phone",
            ),
            (
                NewUser {
                    phone: Some("+0123456789".into()),
                    ..user()
                },
                "phone",
            ),
            (
                NewUser {
                    country: "AUS".into(),
                    ..user()
                },
                "country",
            ),
            (
                NewUser {
                    risk_profile: "yolo".into(),
                    ..user()
                },
                "risk_profile",
            ),
            (
                NewUser {
                    status: "gone".into(),
                    ..user()
                },
                "status",
            ),
            (
                NewUser {
                    id: Some("a/b".into()),
                    ..user()
                },
                "id",
            ),
            (
                NewUser {
                    name: "x\u{0}y".into(),
                    ..user()
                },
                "name",
            ),
        ];
        for (u, field) in cases {
            match u.validate() {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{u:?}"),
                other => panic!("{u:?}: expected a rejection of {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_patch_tells_null_from_absent() {
        let p: UserPatch = serde_json::from_str(r#"{"phone": null}"#).unwrap();
        assert_eq!(p.phone, Some(None));
        let p: UserPatch = serde_json::from_str(r#"{"name": "B"}"#).unwrap();
        assert_eq!(p.phone, None);
        assert!(UserPatch::default().validate().is_err());
        assert!(serde_json::from_str::<UserPatch>(r#"{"nme": "B"}"#).is_err());
    }

    #[test]
    fn messages_are_checked() {
        let ok = NewMessage {
            role: "customer".into(),
            text: "hello".into(),
        };
        assert!(ok.validate().is_ok());
        let long = NewMessage {
            text: "x".repeat(MAX_MESSAGE_CHARS + 1),
            ..ok.clone()
        };
        assert!(long.validate().is_err());
        let role = NewMessage {
            role: "bot".into(),
            ..ok
        };
        assert!(role.validate().is_err());
    }
}
