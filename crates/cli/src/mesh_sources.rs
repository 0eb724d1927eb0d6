//! The Parquet-backed data products (`financial_prices`, `esg_scores`):
//! queries pushed down to the files' row groups (ISINs and the first date),
//! the other filters applied to the rows read.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use ultracore_marketdata::mesh::{DataMesh, PriceFilter};
use ultracore_mesh::{Op, ProductDef, ProductQuery, Source};

/// Prices from `mesh/financial_data_product.parquet`.
#[derive(Debug)]
pub struct Prices(pub DataMesh);

/// ESG records from `mesh/esg_data_product.parquet`.
#[derive(Debug)]
pub struct Esg(pub DataMesh);

/// Agent figures from the analytics service's store.
pub struct AgentPerformance(pub std::sync::Arc<ultracore_agents::analytics::AgentAnalytics>);

impl std::fmt::Debug for AgentPerformance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentPerformance")
    }
}

/// The ISINs a query names (`isin = …` or `isin in […]`): pushed down.
fn isins(q: &ProductQuery) -> Option<BTreeSet<String>> {
    let mut out: Option<BTreeSet<String>> = None;
    for f in q.filters.iter().filter(|f| f.column == "isin") {
        let these: BTreeSet<String> = match (f.op, &f.value) {
            (Op::Eq, Value::String(s)) => [s.clone()].into(),
            (Op::In, Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => continue,
        };
        out = Some(match out {
            None => these,
            Some(prev) => prev.intersection(&these).cloned().collect(),
        });
    }
    out
}

/// The first date a query can return (`date >= …`, `date > …`): pushed down.
fn from_date(q: &ProductQuery) -> Option<chrono::NaiveDate> {
    q.filters
        .iter()
        .filter(|f| f.column == "date" && matches!(f.op, Op::Ge | Op::Gt | Op::Eq))
        .filter_map(|f| f.value.as_str())
        .filter_map(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .max()
}

fn collect(
    q: &ProductQuery,
    rows: impl Iterator<Item = Map<String, Value>>,
) -> (Vec<Vec<Value>>, bool) {
    let mut out = Vec::new();
    for row in rows {
        if !q.matches(&row) {
            continue;
        }
        if out.len() == q.limit {
            return (out, true);
        }
        out.push(
            q.columns
                .iter()
                .map(|c| row.get(c).cloned().unwrap_or(Value::Null))
                .collect(),
        );
    }
    (out, false)
}

/// The modification time of a product file in the mesh directory.
fn modified_ms(mesh: &DataMesh, file: &str) -> Option<i64> {
    let modified = std::fs::metadata(mesh.dir().join(file))
        .ok()?
        .modified()
        .ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

impl Source for Prices {
    fn refreshed_at_ms(&self) -> Option<i64> {
        modified_ms(&self.0, ultracore_marketdata::mesh::FINANCIAL_PRODUCT)
    }

    fn query(
        &self,
        _def: &ProductDef,
        q: &ProductQuery,
    ) -> Result<(Vec<Vec<Value>>, bool, Value), String> {
        let filter = PriceFilter {
            isins: isins(q),
            from: from_date(q),
        };
        let (series, stats) = self.0.prices(&filter).map_err(|e| e.to_string())?;
        let rows = series.iter().flat_map(|(isin, s)| {
            s.bars.iter().map(move |b| {
                let mut row = Map::new();
                row.insert("isin".into(), json!(isin));
                row.insert("ticker".into(), json!(s.ticker));
                row.insert("date".into(), json!(b.date.format("%Y-%m-%d").to_string()));
                row.insert(
                    "close".into(),
                    if b.close.is_finite() {
                        json!(b.close)
                    } else {
                        Value::Null
                    },
                );
                row
            })
        });
        let (rows, truncated) = collect(q, rows);
        Ok((
            rows,
            truncated,
            serde_json::to_value(stats).unwrap_or_default(),
        ))
    }
}

impl Source for Esg {
    fn refreshed_at_ms(&self) -> Option<i64> {
        modified_ms(&self.0, ultracore_marketdata::mesh::ESG_PRODUCT)
    }

    fn query(
        &self,
        _def: &ProductDef,
        q: &ProductQuery,
    ) -> Result<(Vec<Vec<Value>>, bool, Value), String> {
        let records = self.0.esg(isins(q).as_ref()).map_err(|e| e.to_string())?;
        let read = records.len();
        // Dates serialize as YYYY-MM-DD, the schema's `date`.
        let rows = records
            .into_iter()
            .filter_map(|r| match serde_json::to_value(r) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            });
        let (rows, truncated) = collect(q, rows);
        Ok((rows, truncated, json!({ "rows_read": read })))
    }
}

impl Source for AgentPerformance {
    fn query(
        &self,
        _def: &ProductDef,
        q: &ProductQuery,
    ) -> Result<(Vec<Vec<Value>>, bool, Value), String> {
        let summary = self.0.summary().map_err(|e| e.to_string())?;
        let read = summary.agents.len();
        let rows = summary.agents.into_iter().map(|a| {
            let f = serde_json::to_value(&a).unwrap_or_default();
            let at = |p: &str| f.pointer(p).cloned().unwrap_or(Value::Null);
            let mut row = Map::new();
            row.insert("agent_id".into(), json!(a.agent_id));
            row.insert("executions".into(), at("/total"));
            row.insert("succeeded".into(), at("/by_status/succeeded"));
            row.insert("failed".into(), at("/by_status/failed"));
            row.insert("success_rate".into(), at("/success_rate"));
            row.insert("p50_seconds".into(), at("/duration_seconds/p50"));
            row.insert("p95_seconds".into(), at("/duration_seconds/p95"));
            row.insert("last_finished_at".into(), at("/last_finished_at"));
            row
        });
        let (rows, truncated) = collect(q, rows);
        Ok((rows, truncated, json!({ "agents_read": read })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_mesh::Filter;

    #[test]
    fn isin_and_date_filters_are_pushed_down() {
        let q = ProductQuery {
            filters: vec![
                Filter {
                    column: "isin".into(),
                    op: Op::In,
                    value: json!(["A", "B"]),
                },
                Filter {
                    column: "isin".into(),
                    op: Op::Eq,
                    value: json!("B"),
                },
                Filter {
                    column: "date".into(),
                    op: Op::Ge,
                    value: json!("2021-01-04"),
                },
                Filter {
                    column: "close".into(),
                    op: Op::Gt,
                    value: json!(10),
                },
            ],
            ..ProductQuery::default()
        };
        assert_eq!(isins(&q), Some(["B".to_owned()].into()));
        assert_eq!(from_date(&q), chrono::NaiveDate::from_ymd_opt(2021, 1, 4));
        assert_eq!(isins(&ProductQuery::default()), None);
    }
}
