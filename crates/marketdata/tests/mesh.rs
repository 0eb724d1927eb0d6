//! The data products built from the shipped sample data, read back through
//! the mesh client with and without filters.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::NaiveDate;
use ultracore_marketdata::mesh::{
    build_products, isin_is_valid, placeholder_isin, DataMesh, PriceFilter,
};
use ultracore_marketdata::{read_prices_file, PriceSeries};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sample-data")
        .join(name)
}

fn shipped() -> Vec<PriceSeries> {
    let mut all = read_prices_file(&sample("sp500_prices.csv"), None).unwrap();
    all.extend(read_prices_file(&sample("factor_etf_prices.csv"), None).unwrap());
    all
}

#[test]
fn products_round_trip_with_pushdown() {
    let dir = tempfile::tempdir().unwrap();
    let series = shipped();
    let summary = build_products(&series, dir.path()).unwrap();
    assert_eq!(summary.tickers, 25);
    assert!(summary.row_groups > 20, "{summary:?}");
    let mesh = DataMesh::open(dir.path()).unwrap();
    assert!(mesh.esg_is_synthetic().unwrap());

    // Everything, unfiltered, equals the source data.
    let (all, stats) = mesh.prices(&PriceFilter::default()).unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(stats.row_groups_read, stats.row_groups);
    for (isin, s) in &all {
        assert!(isin_is_valid(isin), "{isin}");
        let source = series.iter().find(|x| x.ticker == s.ticker).unwrap();
        assert_eq!(&s.bars, &source.bars, "{}", s.ticker);
    }

    // Two ISINs: only their row groups are read, and only their rows returned.
    let wanted: BTreeSet<String> = ["MSFT", "USMV"]
        .iter()
        .map(|t| placeholder_isin(t))
        .collect();
    let filter = PriceFilter {
        isins: Some(wanted.clone()),
        from: None,
    };
    let (two, stats) = mesh.prices(&filter).unwrap();
    let tickers: Vec<&str> = two.iter().map(|(_, s)| s.ticker.as_str()).collect();
    assert_eq!(tickers, ["MSFT", "USMV"]);
    assert!(
        stats.row_groups_read * 4 < stats.row_groups,
        "pushdown skipped too little: {stats:?}"
    );
    let msft = series.iter().find(|s| s.ticker == "MSFT").unwrap();
    assert_eq!(two[0].1.bars, msft.bars);

    // A date cut-off skips the old row groups of every ISIN.
    let from = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
    let (recent, stats) = mesh
        .prices(&PriceFilter {
            isins: Some(wanted),
            from: Some(from),
        })
        .unwrap();
    assert!(recent.iter().all(|(_, s)| s.first_date() >= Some(from)));
    let expected = msft.bars.iter().filter(|b| b.date >= from).count();
    assert_eq!(recent[0].1.bars.len(), expected);
    assert!(stats.row_groups_read <= 4, "{stats:?}");

    // An ISIN nobody has: nothing read, nothing returned.
    let (none, stats) = mesh
        .prices(&PriceFilter {
            isins: Some(["ZZNOPE00000X".to_owned()].into()),
            from: None,
        })
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(stats.rows_returned, 0);

    // ESG: one record per asset, with the placeholder ISINs.
    let esg = mesh.esg(None).unwrap();
    assert_eq!(esg.len(), 25);
    let xom = esg.iter().find(|r| r.ticker == "XOM").unwrap();
    assert_eq!(xom.sector, "Energy");
    assert_eq!(xom.isin, placeholder_isin("XOM"));
    let some: BTreeSet<String> = [xom.isin.clone()].into();
    assert_eq!(mesh.esg(Some(&some)).unwrap(), vec![xom.clone()]);
}

#[test]
fn a_missing_product_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = DataMesh::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("ultracore mesh build"), "{e}");
}

#[test]
fn cached_price_answers_are_shared_until_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let series = shipped();
    build_products(&series, dir.path()).unwrap();
    let mesh = DataMesh::open(dir.path()).unwrap();
    let filter = PriceFilter {
        isins: None,
        from: Some(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()),
    };
    let first = mesh.prices_cached(&filter).unwrap();
    assert_eq!(first.0, mesh.prices(&filter).unwrap().0);
    let again = mesh.clone().prices_cached(&filter).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "a repeated query re-read the file"
    );
    // A replaced product (fewer instruments) is read afresh.
    build_products(&series[..3], dir.path()).unwrap();
    let fresh = mesh.prices_cached(&filter).unwrap();
    assert_eq!(fresh.0.len(), 3);
    assert!(first.0.len() > 3);
}
