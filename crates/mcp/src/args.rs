//! Tool arguments that the tools check themselves.
//!
//! rmcp answers arguments that do not deserialize with a JSON-RPC "invalid
//! params" error, which clients tend to show as an opaque failure. A tool
//! error (`isError: true`) reaches the model with its text, so a model can
//! fix its call: [`Checked`] takes any JSON object, advertises the schema of
//! the type it stands for, and leaves the parsing to the tool, which names
//! the field at fault (`portfolio.holdings[0].units`).

use std::borrow::Cow;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use ultracore_esg::{Failure, OptimizationRequest};

/// The arguments of a tool call, unparsed, described by `T`'s schema.
#[derive(Debug, Clone)]
pub(crate) struct Checked<T> {
    raw: Map<String, Value>,
    _type: PhantomData<fn() -> T>,
}

impl<'de, T> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Checked {
            raw: Map::deserialize(d)?,
            _type: PhantomData,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Checked<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

impl<T> Checked<T> {
    /// The arguments as sent.
    pub(crate) fn into_raw(self) -> Map<String, Value> {
        self.raw
    }
}

impl<T: DeserializeOwned> Checked<T> {
    /// Parses the arguments, naming the field at fault on error.
    pub(crate) fn parse(self) -> Result<T, Failure> {
        parse(Value::Object(self.raw))
    }
}

/// Deserializes `value`; an error names the path of the field at fault.
pub(crate) fn parse<T: DeserializeOwned>(value: Value) -> Result<T, Failure> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            // At the top level serde's message already names the field
            // ("missing field `portfolio_id`").
            Failure::general(reason)
        } else {
            Failure::field(&path, reason)
        }
    })
}

/// The schema of `optimize_portfolio_esg`'s arguments: an
/// [`OptimizationRequest`] without `request_id`, which the server assigns.
#[derive(Debug)]
pub(crate) struct RequestWithoutId;

impl JsonSchema for RequestWithoutId {
    fn schema_name() -> Cow<'static, str> {
        "OptimizationRequestWithoutId".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = OptimizationRequest::json_schema(generator);
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.remove("request_id");
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|f| f != "request_id");
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        units: f64,
    }

    #[test]
    fn errors_name_the_path_of_the_field() {
        let e = parse::<Outer>(json!({"inner": [{"units": 1}, {"units": "x"}]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner[1].units"));
        assert!(e.reason.contains("invalid type"), "{e}");
        // An unknown field's path is the field itself.
        let e = parse::<Outer>(json!({"inner": [], "other": 1})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("other"));
        assert!(e.reason.contains("unknown field `other`"), "{e}");
        // A missing one is named by serde's message at the top level.
        let e = parse::<Outer>(json!({})).unwrap_err();
        assert_eq!(e.field, None);
        assert!(e.reason.contains("missing field `inner`"), "{e}");
    }

    #[test]
    fn the_request_schema_has_no_request_id() {
        let schema = schemars::schema_for!(RequestWithoutId);
        let props = schema.get("properties").unwrap().as_object().unwrap();
        assert!(!props.contains_key("request_id"));
        for field in [
            "portfolio_id",
            "portfolio",
            "objective",
            "constraints",
            "universe",
            "lookback_years",
            "risk_free_rate",
        ] {
            assert!(props.contains_key(field), "{field} missing from {schema:?}");
        }
        let required = schema.get("required").unwrap().as_array().unwrap();
        assert!(required.iter().all(|f| f != "request_id"));
        assert!(required.iter().any(|f| f == "portfolio_id"));
    }
}
