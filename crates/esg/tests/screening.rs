//! Profiles, screenings and reports over data products built from the
//! shipped sample data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ultracore_esg::screening::{
    esg_profile, esg_report, screen_portfolio, ScreeningCriteria, Severity, ViolationKind,
};
use ultracore_marketdata::mesh::{build_products, placeholder_isin, synthetic_esg, DataMesh};
use ultracore_marketdata::read_prices_file;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mesh() -> Result<(tempfile::TempDir, DataMesh), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
    let mut series = read_prices_file(&root.join("sp500_prices.csv"), None)?;
    series.extend(read_prices_file(&root.join("factor_etf_prices.csv"), None)?);
    let dir = tempfile::tempdir()?;
    build_products(&series, dir.path())?;
    let mesh = DataMesh::open(dir.path())?;
    Ok((dir, mesh))
}

fn weights(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|&(t, w)| (t.to_owned(), w)).collect()
}

#[test]
fn a_known_issuer_has_its_profile() -> TestResult {
    let (_dir, mesh) = mesh()?;
    let p = esg_profile(&mesh, "XOM")?;
    assert_eq!(p.name, "Exxon Mobil Corporation");
    assert_eq!(p.sector, "Energy");
    assert_eq!(p.isin, placeholder_isin("XOM"));
    assert!(p.esg_data_synthetic);
    // The figures are the ones the mesh generated for XOM.
    let expected = synthetic_esg("XOM", p.as_of);
    assert_eq!(p.esg_score, expected.esg_score);
    assert_eq!(p.carbon_intensity, expected.carbon_intensity);
    assert_eq!(p.controversy_flag, expected.controversy_flag);
    // Energy is CVX, RRC and XOM; the universe the 20 stocks and 5 ETFs.
    let sector = p.sector_standing.clone().ok_or("no sector standing")?;
    let universe = p.universe_standing.clone().ok_or("no universe standing")?;
    assert_eq!((sector.peers, universe.peers), (3, 25));
    let better = |tickers: &[&str]| {
        tickers
            .iter()
            .filter(|t| synthetic_esg(t, p.as_of).esg_score > p.esg_score)
            .count()
    };
    assert_eq!(sector.esg_score.rank, 1 + better(&["CVX", "RRC", "XOM"]));
    // The same issuer by ISIN and by name.
    assert_eq!(esg_profile(&mesh, &p.isin.to_lowercase())?, p);
    assert_eq!(esg_profile(&mesh, "exxon mobil corporation")?, p);

    let unknown = esg_profile(&mesh, "Exxon").unwrap_err();
    assert_eq!(unknown.field.as_deref(), Some("issuer"));
    assert!(
        unknown
            .reason
            .contains("did you mean XOM (Exxon Mobil Corporation)"),
        "{unknown}"
    );
    Ok(())
}

#[test]
fn a_portfolio_holding_an_excluded_sector_is_not_compliant() -> TestResult {
    let (_dir, mesh) = mesh()?;
    let w = weights(&[("XOM", 0.3), ("AAPL", 0.4), ("MSFT", 0.3)]);
    let criteria = ScreeningCriteria {
        exclude_sectors: vec!["Energy".into()],
        ..Default::default()
    };
    let r = screen_portfolio(&mesh, &w, &criteria)?;
    assert!(!r.compliant);
    let v = r
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::ExcludedSector)
        .ok_or("no excluded_sector violation")?;
    assert_eq!(v.ticker.as_deref(), Some("XOM"));
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.weight, 0.3);
    assert!(r.recommendations[0].starts_with("Sell XOM (sector Energy excluded; weight 30.00 %)"));
    assert!((r.figures.coverage - 1.0).abs() < 1e-12);

    // Without the energy stock it passes.
    let clean = weights(&[("AAPL", 0.5), ("MSFT", 0.5)]);
    assert!(screen_portfolio(&mesh, &clean, &criteria)?.compliant);

    // The report carries the same screening and renders it.
    let report = esg_report(&mesh, &w, Some(&criteria))?;
    assert_eq!(report.screening.as_ref(), Some(&r));
    let md = report.to_markdown();
    assert!(
        md.contains("| critical | excluded_sector | XOM | 30.00 % |"),
        "{md}"
    );
    assert!(md.contains("**synthetic ESG data**"), "{md}");

    let bad = screen_portfolio(&mesh, &weights(&[("NOPE", 1.0)]), &criteria).unwrap_err();
    assert_eq!(bad.field.as_deref(), Some("weights.NOPE"));
    Ok(())
}
