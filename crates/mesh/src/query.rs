//! A query of a product's data: filters, columns, a limit. Validated at the
//! edge against the product's schema, put in canonical form (the cache's
//! key), and evaluated over rows by sources that cannot push it down.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::product::ProductDef;

/// Rows a query returns at most.
pub const MAX_LIMIT: usize = 10_000;
pub const DEFAULT_LIMIT: usize = 100;
/// Filters a query takes at most, and values of all its `in` lists: a
/// query scans rows under a read lock, so its cost is bounded here.
pub const MAX_FILTERS: usize = 32;
pub const MAX_IN_VALUES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductQuery {
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Columns to return (empty: all of the schema's).
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default = "default_limit")]
    pub limit: usize,
}

impl Default for ProductQuery {
    fn default() -> Self {
        ProductQuery {
            filters: Vec::new(),
            columns: Vec::new(),
            limit: DEFAULT_LIMIT,
        }
    }
}

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    /// A scalar, or an array for `in`.
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// A query that cannot run, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidQuery {
    pub field: String,
    pub reason: String,
}

/// What a query returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryAnswer {
    pub product_id: String,
    /// The product version the rows belong to.
    pub version: u64,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// Whether more rows matched than `limit`.
    pub truncated: bool,
    /// What the source read to answer (row groups or rows scanned, …).
    pub scanned: Value,
}

impl QueryAnswer {
    /// Rough size in bytes, for the cache's bound.
    pub fn approx_bytes(&self) -> usize {
        let cell = |v: &Value| match v {
            Value::String(s) => 24 + s.len(),
            _ => 16,
        };
        128 + self
            .rows
            .iter()
            .map(|r| 24 + r.iter().map(cell).sum::<usize>())
            .sum::<usize>()
    }
}

impl ProductQuery {
    /// Checks the query against the product's schema and puts it in
    /// canonical form: columns in schema order (all of them when none were
    /// named), filters sorted. Two queries asking the same thing are then
    /// equal, and share a cache entry.
    pub fn canonical(mut self, def: &ProductDef) -> Result<ProductQuery, InvalidQuery> {
        let bad = |field: &str, reason: String| InvalidQuery {
            field: field.to_owned(),
            reason,
        };
        let known = |c: &str| def.schema.iter().any(|s| s.name == c);
        let names = || {
            def.schema
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(bad("limit", format!("must be 1–{MAX_LIMIT}")));
        }
        if let Some(c) = self.columns.iter().find(|c| !known(c)) {
            return Err(bad(
                "columns",
                format!(
                    "'{c}' is not a column of '{}' (columns: {})",
                    def.id,
                    names()
                ),
            ));
        }
        self.columns = def
            .schema
            .iter()
            .filter(|s| self.columns.is_empty() || self.columns.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        if self.filters.len() > MAX_FILTERS {
            return Err(bad(
                "filters",
                format!("{} filters: at most {MAX_FILTERS}", self.filters.len()),
            ));
        }
        let in_values: usize = self
            .filters
            .iter()
            .filter_map(|f| f.value.as_array().map(Vec::len))
            .sum();
        if in_values > MAX_IN_VALUES {
            return Err(bad(
                "filters",
                format!("{in_values} values in 'in' lists: at most {MAX_IN_VALUES} in all"),
            ));
        }
        for f in &self.filters {
            let Some(col) = def.schema.iter().find(|s| s.name == f.column) else {
                return Err(bad(
                    "filters",
                    format!(
                        "'{}' is not a column of '{}' (columns: {})",
                        f.column,
                        def.id,
                        names()
                    ),
                ));
            };
            let scalars: Vec<&Value> = match (&f.op, &f.value) {
                (Op::In, Value::Array(items)) if !items.is_empty() && items.len() <= 1000 => {
                    items.iter().collect()
                }
                (Op::In, _) => {
                    return Err(bad(
                        "filters",
                        format!("'in' on '{}' takes an array of 1–1000 values", f.column),
                    ))
                }
                (_, v) => vec![v],
            };
            if let Some(v) = scalars
                .iter()
                .find(|v| v.is_null() || v.is_array() || v.is_object() || !col.kind.admits(v))
            {
                return Err(bad(
                    "filters",
                    format!("{v} is not a value of '{}' ({:?})", f.column, col.kind),
                ));
            }
        }
        self.filters.sort_by(|a, b| {
            (a.column.as_str(), a.op)
                .cmp(&(b.column.as_str(), b.op))
                .then_with(|| a.value.to_string().cmp(&b.value.to_string()))
        });
        Ok(self)
    }

    /// The cache key of a canonical query.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether a row (column name → value) passes every filter.
    pub fn matches(&self, row: &Map<String, Value>) -> bool {
        self.filters.iter().all(|f| {
            let v = row.get(&f.column).unwrap_or(&Value::Null);
            f.matches(v)
        })
    }

    /// Applies the query to rows: filter, project, limit.
    pub fn run<'a>(
        &self,
        rows: impl IntoIterator<Item = &'a Map<String, Value>>,
    ) -> (Vec<Vec<Value>>, bool, u64) {
        let mut out = Vec::new();
        let mut truncated = false;
        let mut scanned = 0;
        for row in rows {
            scanned += 1;
            if !self.matches(row) {
                continue;
            }
            if out.len() == self.limit {
                truncated = true;
                break;
            }
            out.push(
                self.columns
                    .iter()
                    .map(|c| row.get(c).cloned().unwrap_or(Value::Null))
                    .collect(),
            );
        }
        (out, truncated, scanned)
    }
}

impl Filter {
    pub fn matches(&self, v: &Value) -> bool {
        let cmp = |want: &Value| compare(v, want);
        match self.op {
            Op::Eq => cmp(&self.value) == Some(Ordering::Equal),
            Op::Ne => cmp(&self.value).is_some_and(|o| o != Ordering::Equal),
            Op::Lt => cmp(&self.value) == Some(Ordering::Less),
            Op::Le => cmp(&self.value).is_some_and(|o| o != Ordering::Greater),
            Op::Gt => cmp(&self.value) == Some(Ordering::Greater),
            Op::Ge => cmp(&self.value).is_some_and(|o| o != Ordering::Less),
            Op::In => self
                .value
                .as_array()
                .is_some_and(|a| a.iter().any(|w| cmp(w) == Some(Ordering::Equal))),
        }
    }
}

/// Orders two JSON scalars of the same kind (numbers numerically, strings
/// — dates and timestamps included — lexically); `None` across kinds or
/// for a missing value, which no filter matches.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::{Column, ColumnType, Contract, OutputPort, PortKind};
    use serde_json::json;

    fn def() -> ProductDef {
        let col = |n: &str, kind| Column {
            name: n.into(),
            kind,
            required: true,
            description: String::new(),
            source: vec![],
            mask: false,
        };
        ProductDef {
            id: "prices".into(),
            name: "Prices".into(),
            domain: "markets".into(),
            owner: "o".into(),
            description: "d".into(),
            tags: vec![],
            schema: vec![
                col("isin", ColumnType::String),
                col("date", ColumnType::Date),
                col("close", ColumnType::Float),
            ],
            output_ports: vec![OutputPort {
                kind: PortKind::Query,
                address: "/api/v1/mesh/products/prices/query".into(),
            }],
            contract: Contract {
                freshness_secs: 60,
                completeness: 1.0,
                schema_conformance: 1.0,
            },
            version: "1.0.0".into(),
            requires: vec![],
        }
    }

    fn q(v: Value) -> Result<ProductQuery, String> {
        serde_json::from_value::<ProductQuery>(v)
            .map_err(|e| e.to_string())?
            .canonical(&def())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn equal_questions_share_a_key() {
        let a = q(json!({"filters": [
            {"column": "isin", "op": "eq", "value": "X"},
            {"column": "date", "op": "ge", "value": "2021-01-01"}],
            "columns": ["close", "isin"]}))
        .unwrap();
        let b = q(json!({"columns": ["isin", "close"], "filters": [
            {"column": "date", "op": "ge", "value": "2021-01-01"},
            {"column": "isin", "op": "eq", "value": "X"}]}))
        .unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.columns, ["isin", "close"]);
        assert_eq!(q(json!({})).unwrap().columns, ["isin", "date", "close"]);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let e = q(json!({"columns": ["price"]})).unwrap_err();
        assert!(
            e.contains("'price' is not a column") && e.contains("isin, date, close"),
            "{e}"
        );
        let e =
            q(json!({"filters": [{"column": "close", "op": "gt", "value": "high"}]})).unwrap_err();
        assert!(e.contains("not a value of 'close'"), "{e}");
        let e = q(json!({"filters": [{"column": "date", "op": "eq", "value": "yesterday"}]}))
            .unwrap_err();
        assert!(e.contains("not a value of 'date'"), "{e}");
        assert!(q(json!({"limit": 0})).unwrap_err().contains("limit"));
        assert!(
            q(json!({"filters": [{"column": "isin", "op": "in", "value": "X"}]}))
                .unwrap_err()
                .contains("array")
        );
        assert!(q(json!({"sort": "x"}))
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn run_filters_projects_and_limits() {
        let query = q(json!({"filters": [
            {"column": "close", "op": "ge", "value": 2},
            {"column": "isin", "op": "in", "value": ["A", "B"]}],
            "columns": ["close"], "limit": 1}))
        .unwrap();
        let rows: Vec<Map<String, Value>> = [
            json!({"isin": "A", "date": "2021-01-01", "close": 1.0}),
            json!({"isin": "B", "date": "2021-01-01", "close": 2.5}),
            json!({"isin": "C", "date": "2021-01-01", "close": 9.0}),
            json!({"isin": "A", "date": "2021-01-02", "close": 3.0}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let (out, truncated, _) = query.run(&rows);
        assert_eq!(out, vec![vec![json!(2.5)]]);
        assert!(truncated);
    }
}
