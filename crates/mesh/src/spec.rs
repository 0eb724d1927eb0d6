//! Products defined as code: a YAML file with a `products:` list, the
//! shape of [`ProductDef`]. The shipped products are one such file.

use serde::Deserialize;

use crate::product::{InvalidProduct, ProductDef};

/// The products UltraCore ships (`crates/mesh/products/shipped.yaml`).
pub const SHIPPED_YAML: &str = include_str!("../products/shipped.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    products: Vec<ProductDef>,
}

/// Why a products file cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0} (the file holds `products:`, a list of products; see crates/mesh/products/shipped.yaml)")]
    Yaml(String),
    #[error(transparent)]
    Invalid(#[from] InvalidProduct),
    #[error("product '{0}' is defined twice")]
    Duplicate(String),
}

/// Parses and validates a products file.
pub fn parse(yaml: &str, known_topic: impl Fn(&str) -> bool) -> Result<Vec<ProductDef>, SpecError> {
    let file: File = serde_yaml_ng::from_str(yaml).map_err(|e| SpecError::Yaml(e.to_string()))?;
    let mut seen = std::collections::BTreeSet::new();
    for p in &file.products {
        p.validate(&known_topic)?;
        if !seen.insert(p.id.as_str()) {
            return Err(SpecError::Duplicate(p.id.clone()));
        }
    }
    Ok(file.products)
}

/// The shipped products.
pub fn shipped() -> Vec<ProductDef> {
    parse(SHIPPED_YAML, ultracore_runtime::catalogue::is_known)
        .expect("the shipped products file is valid (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_products_are_valid() {
        let products = parse(SHIPPED_YAML, ultracore_runtime::catalogue::is_known).unwrap();
        let ids: Vec<_> = products.iter().map(|p| p.id.as_str()).collect();
        for want in [
            "financial_prices",
            "esg_scores",
            "customer_360",
            "agent_performance",
            "trading_decisions_audit",
            "optimizations",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("products:\n  - id: x\n    nme: y\n", |_| true).unwrap_err();
        assert!(e.to_string().contains("unknown field `nme`"), "{e}");
        let one = SHIPPED_YAML.split("\n\n  - id: esg_scores").next().unwrap();
        let twice = format!("{one}\n{}", &one[one.find("  - id:").unwrap()..]);
        let e = parse(&twice, ultracore_runtime::catalogue::is_known).unwrap_err();
        assert!(
            matches!(e, SpecError::Duplicate(ref id) if id == "financial_prices"),
            "{e}"
        );
        let bad = SHIPPED_YAML.replace("address: external.market.data", "address: made.up");
        let e = parse(&bad, ultracore_runtime::catalogue::is_known).unwrap_err();
        assert!(e.to_string().contains("'made.up' is not a topic"), "{e}");
    }
}
