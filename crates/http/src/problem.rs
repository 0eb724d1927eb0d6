//! [`Problem`]: the one error body of every route, RFC 9457
//! `application/problem+json`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// The media type of a [`Problem`] body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer (RFC 9457):
///
/// ```json
/// { "type": "urn:ultracore:problem:invalid-field", "title": "Invalid field",
///   "status": 422, "detail": "must be at least 0", "field": "portfolio.cash",
///   "code": "invalid_field" }
/// ```
///
/// `type` is a stable URN per kind of problem and `code` the same as a short
/// word; `detail` says what was wrong with this request and what to do;
/// `field` names the request field at fault when one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// `invalid_field`, `not_found`, `unauthorized`, … (snake_case).
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    /// Seconds, for a 429's or a 503's `Retry-After`.
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            challenge: None,
        }
    }

    /// 400: the request cannot be read (not JSON, a malformed id or query).
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422: `field` has a value that is not allowed.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            field: Some(field.into()),
            ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail)
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 401 with the `WWW-Authenticate` challenge.
    pub fn unauthorized(detail: impl Into<String>, challenge: &'static str) -> Self {
        Problem {
            challenge: Some(challenge),
            ..Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        }
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Problem {
            retry_after: Some(retry_after_secs),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this key sent more requests than its rate limit allows: retry after {retry_after_secs} s"
                ),
            )
        }
    }

    /// A failure of ours (the log, a database, a full queue): 503, logged.
    pub fn unavailable(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what}: {e}; retry later"),
        )
    }

    /// A bug of ours: 500, logged; the caller sees no internals.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what}; the error is in the server's log"),
        )
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The `type` URI: `urn:ultracore:problem:` and the code in kebab-case.
    pub fn type_uri(&self) -> String {
        format!("urn:ultracore:problem:{}", self.code.replace('_', "-"))
    }

    /// The `title`: the code as words (`invalid_field` → `Invalid field`),
    /// the same for every problem of the kind.
    pub fn title(&self) -> String {
        let words = self.code.replace('_', " ");
        let mut chars = words.chars();
        match chars.next() {
            Some(c) => c.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.type_uri())?;
        m.serialize_entry("title", &self.title())?;
        m.serialize_entry("status", &self.status.as_u16())?;
        m.serialize_entry("detail", &self.detail)?;
        if let Some(field) = &self.field {
            m.serialize_entry("field", field)?;
        }
        m.serialize_entry("code", self.code)?;
        if let Some(secs) = self.retry_after {
            m.serialize_entry("retry_after", &secs)?;
        }
        m.end()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_rfc_9457() {
        let p = Problem::invalid_field("portfolio.cash", "must be at least 0");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "urn:ultracore:problem:invalid-field",
                "title": "Invalid field",
                "status": 422,
                "detail": "must be at least 0",
                "field": "portfolio.cash",
                "code": "invalid_field",
            })
        );
    }

    #[test]
    fn response_carries_the_media_type_and_headers() {
        let r = Problem::too_many_requests(3).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        let r = Problem::unauthorized("no key", r#"Bearer realm="ultracore""#).into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="ultracore""#
        );
    }
}
