//! A decision request and its checks at the edge: every problem names the
//! field and says what to send instead.
//!
//! ```json
//! { "symbol": "AAPL",
//!   "features": { "rsi_14": 61.5, "macd": 0.42, "vix_level": null, ... },
//!   "price": 190.25,
//!   "portfolio": { "position_units": 200, "value": 1000000, "correlation_with_holdings": 0.35 },
//!   "correlation_id": "order-flow-42" }
//! ```
//!
//! A feature that is absent (or `null`) is missing: each tree sends it down
//! its default direction, as XGBoost does. Feature names the models do not
//! know are refused, so a misspelt feature is not silently missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One request for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The instrument, e.g. `AAPL` (1 to 32 of `A-Z a-z 0-9 . - _ / :`).
    pub symbol: String,
    /// Model inputs by name; absent = missing.
    pub features: BTreeMap<String, f64>,
    /// The current price; sizes orders by value and lets concentration be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default)]
    pub portfolio: PortfolioContext,
    /// Carried into every event of this decision (the envelopes' `correlation_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// What the desk holds, for sizing and risk checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioContext {
    /// Units of the symbol held now (negative: short). Default 0.
    #[serde(default)]
    pub position_units: f64,
    /// The portfolio's total value, in the price's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Correlation of the symbol's returns with the current holdings, −1 … 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_with_holdings: Option<f64>,
}

impl PortfolioContext {
    /// `Caller` when the request said anything about the portfolio,
    /// `Absent` when it said nothing (the default context).
    pub fn source(&self) -> ultracore_events::trading::ContextSource {
        if *self == PortfolioContext::default() {
            ultracore_events::trading::ContextSource::Absent
        } else {
            ultracore_events::trading::ContextSource::Caller
        }
    }
}

/// A request that cannot be decided, naming the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {reason}")]
pub struct InvalidRequest {
    /// The JSON path of the field, e.g. `features.rsi_14` or `portfolio.value`.
    pub field: String,
    /// What is wrong and what to send instead.
    pub reason: String,
}

impl InvalidRequest {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 40 => {
            format!("a string \"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Null => "null".into(),
        Value::Number(n) => n.to_string(),
    }
}

fn number(v: &Value, field: &str, what: &str) -> Result<f64, InvalidRequest> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(InvalidRequest::new(
            field,
            format!("expected {what}, got {}", describe(v)),
        )),
    }
}

fn optional_number(
    v: Option<&Value>,
    field: &str,
    what: &str,
) -> Result<Option<f64>, InvalidRequest> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => number(v, field, what).map(Some),
    }
}

impl DecisionRequest {
    /// Reads a request from parsed JSON, naming the first field that has the
    /// wrong type or an unknown name. Ranges are checked by
    /// [`DecisionRequest::validate`].
    pub fn from_json(v: &Value) -> Result<DecisionRequest, InvalidRequest> {
        let Value::Object(obj) = v else {
            return Err(InvalidRequest::new(
                "(body)",
                format!(
                    "expected a JSON object {{\"symbol\": …, \"features\": {{…}}}}, got {}",
                    describe(v)
                ),
            ));
        };
        const FIELDS: [&str; 5] = ["symbol", "features", "price", "portfolio", "correlation_id"];
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(InvalidRequest::new(
                k.clone(),
                format!("unknown field; a request has {}", FIELDS.join(", ")),
            ));
        }
        let symbol = match obj.get("symbol") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                return Err(InvalidRequest::new(
                    "symbol",
                    "missing; name the instrument, e.g. \"symbol\": \"AAPL\"",
                ))
            }
            Some(other) => {
                return Err(InvalidRequest::new(
                    "symbol",
                    format!(
                        "expected a string such as \"AAPL\", got {}",
                        describe(other)
                    ),
                ))
            }
        };
        let features = match obj.get("features") {
            Some(Value::Object(map)) => {
                let mut features = BTreeMap::new();
                for (name, value) in map {
                    let field = format!("features.{name}");
                    if let Some(x) =
                        optional_number(Some(value), &field, "a number (or null when missing)")?
                    {
                        features.insert(name.clone(), x);
                    }
                }
                features
            }
            None | Some(Value::Null) => {
                return Err(InvalidRequest::new(
                    "features",
                    "missing; send the model inputs as {\"rsi_14\": 61.5, …}",
                ))
            }
            Some(other) => {
                return Err(InvalidRequest::new(
                    "features",
                    format!(
                        "expected an object of feature name to number, got {}",
                        describe(other)
                    ),
                ))
            }
        };
        let price = optional_number(obj.get("price"), "price", "a price > 0")?;
        let portfolio = match obj.get("portfolio") {
            None | Some(Value::Null) => PortfolioContext::default(),
            Some(Value::Object(p)) => {
                const PFIELDS: [&str; 3] =
                    ["position_units", "value", "correlation_with_holdings"];
                if let Some(k) = p.keys().find(|k| !PFIELDS.contains(&k.as_str())) {
                    return Err(InvalidRequest::new(
                        format!("portfolio.{k}"),
                        format!("unknown field; portfolio has {}", PFIELDS.join(", ")),
                    ));
                }
                PortfolioContext {
                    position_units: optional_number(
                        p.get("position_units"),
                        "portfolio.position_units",
                        "a number of units (negative when short)",
                    )?
                    .unwrap_or(0.0),
                    value: optional_number(
                        p.get("value"),
                        "portfolio.value",
                        "the portfolio's value > 0",
                    )?,
                    correlation_with_holdings: optional_number(
                        p.get("correlation_with_holdings"),
                        "portfolio.correlation_with_holdings",
                        "a correlation between -1 and 1",
                    )?,
                }
            }
            Some(other) => {
                return Err(InvalidRequest::new(
                    "portfolio",
                    format!(
                        "expected an object {{\"position_units\": …, \"value\": …, \"correlation_with_holdings\": …}}, got {}",
                        describe(other)
                    ),
                ))
            }
        };
        let correlation_id = match obj.get("correlation_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(InvalidRequest::new(
                    "correlation_id",
                    format!("expected a string, got {}", describe(other)),
                ))
            }
        };
        Ok(DecisionRequest {
            symbol,
            features,
            price,
            portfolio,
            correlation_id,
        })
    }

    /// Checks names and ranges against the models' feature list.
    pub fn validate(&self, feature_names: &[String]) -> Result<(), InvalidRequest> {
        self.validate_with(
            |name| feature_names.iter().any(|f| f == name),
            feature_names,
        )
    }

    /// [`DecisionRequest::validate`] with a faster test of feature names
    /// (`known`); `feature_names` is only read to word an error.
    pub fn validate_with(
        &self,
        known: impl Fn(&str) -> bool,
        feature_names: &[String],
    ) -> Result<(), InvalidRequest> {
        let s = &self.symbol;
        if s.is_empty() || s.len() > 32 {
            return Err(InvalidRequest::new(
                "symbol",
                format!("must be 1 to 32 characters, got {} characters", s.len()),
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':')))
        {
            return Err(InvalidRequest::new(
                "symbol",
                format!("contains {c:?}; use letters, digits and . - _ / : only"),
            ));
        }
        if self.features.is_empty() {
            return Err(InvalidRequest::new(
                "features",
                format!(
                    "no feature given; send at least one of {}",
                    feature_names.join(", ")
                ),
            ));
        }
        for (name, value) in &self.features {
            if !known(name) {
                return Err(InvalidRequest::new(
                    format!("features.{name}"),
                    format!(
                        "not a model feature; the models take {}",
                        feature_names.join(", ")
                    ),
                ));
            }
            // f32 is what the models compare with; beyond it the value is not a number to them.
            if !(value.is_finite() && value.abs() <= f64::from(f32::MAX)) {
                return Err(InvalidRequest::new(
                    format!("features.{name}"),
                    format!(
                        "{value} is not a finite number; leave the feature out when it is missing"
                    ),
                ));
            }
        }
        if let Some(p) = self.price {
            if !(p.is_finite() && p > 0.0) {
                return Err(InvalidRequest::new("price", format!("{p} must be > 0")));
            }
        }
        let pf = &self.portfolio;
        if !pf.position_units.is_finite() {
            return Err(InvalidRequest::new(
                "portfolio.position_units",
                format!("{} must be a finite number", pf.position_units),
            ));
        }
        if let Some(v) = pf.value {
            if !(v.is_finite() && v > 0.0) {
                return Err(InvalidRequest::new(
                    "portfolio.value",
                    format!("{v} must be > 0"),
                ));
            }
        }
        if let Some(c) = pf.correlation_with_holdings {
            if !(c.is_finite() && (-1.0..=1.0).contains(&c)) {
                return Err(InvalidRequest::new(
                    "portfolio.correlation_with_holdings",
                    format!("{c} must be between -1 and 1"),
                ));
            }
        }
        if let Some(id) = &self.correlation_id {
            if id.is_empty() || id.len() > 128 {
                return Err(InvalidRequest::new(
                    "correlation_id",
                    "must be 1 to 128 characters (or left out)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Vec<String> {
        ["rsi_14", "macd"].map(String::from).to_vec()
    }

    fn field(v: Value) -> String {
        match DecisionRequest::from_json(&v).and_then(|r| r.validate(&names()).map(|_| r)) {
            Ok(r) => panic!("accepted {r:?}"),
            Err(e) => {
                assert!(!e.reason.is_empty());
                e.field
            }
        }
    }

    #[test]
    fn reads_a_full_request_with_null_as_missing() {
        let r = DecisionRequest::from_json(&json!({
            "symbol": "AAPL", "features": {"rsi_14": 61.5, "macd": null}, "price": 190.0,
            "portfolio": {"position_units": -5, "value": 1e6, "correlation_with_holdings": 0.3},
            "correlation_id": "c-1"
        }))
        .unwrap();
        r.validate(&names()).unwrap();
        assert_eq!(r.features.len(), 1);
        assert_eq!(r.portfolio.position_units, -5.0);
        assert_eq!(r.correlation_id.as_deref(), Some("c-1"));
    }

    #[test]
    fn every_error_names_its_field() {
        let ok = || json!({"symbol": "AAPL", "features": {"rsi_14": 50}});
        assert_eq!(field(json!([1])), "(body)");
        assert_eq!(field(json!({"features": {"rsi_14": 1}})), "symbol");
        assert_eq!(
            field(json!({"symbol": 5, "features": {"rsi_14": 1}})),
            "symbol"
        );
        assert_eq!(
            field(json!({"symbol": "A B", "features": {"rsi_14": 1}})),
            "symbol"
        );
        assert_eq!(field(json!({"symbol": "AAPL"})), "features");
        assert_eq!(field(json!({"symbol": "AAPL", "features": {}})), "features");
        assert_eq!(
            field(json!({"symbol": "AAPL", "features": {"rsi14": 1}})),
            "features.rsi14"
        );
        assert_eq!(
            field(json!({"symbol": "AAPL", "features": {"rsi_14": "high"}})),
            "features.rsi_14"
        );
        assert_eq!(
            field(json!({"symbol": "AAPL", "features": {"rsi_14": 1e300}})),
            "features.rsi_14"
        );
        let mut v = ok();
        v["price"] = json!(-1);
        assert_eq!(field(v), "price");
        let mut v = ok();
        v["prices"] = json!(1);
        assert_eq!(field(v), "prices");
        let mut v = ok();
        v["portfolio"] = json!({"value": 0});
        assert_eq!(field(v), "portfolio.value");
        let mut v = ok();
        v["portfolio"] = json!({"correlation_with_holdings": 1.5});
        assert_eq!(field(v), "portfolio.correlation_with_holdings");
        let mut v = ok();
        v["portfolio"] = json!({"units": 1});
        assert_eq!(field(v), "portfolio.units");
    }
}
