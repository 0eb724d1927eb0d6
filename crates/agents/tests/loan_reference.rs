//! The loan tools against numpy-financial: repayments, the interest and
//! principal of months 1, 12 and the last, and the present value of a
//! repayment at the buffered rate. `tests/fixtures/loans.json` is the
//! output of `tools/reference_loans.py` (numpy-financial 1.0.0).

use serde_json::Value;
use ultracore_agents::loan::{monthly_repayment, present_value, schedule, BUFFER};

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-9 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs numpy-financial {want}"
    );
}

#[test]
fn repayments_and_schedules_equal_numpy_financial() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/loans.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let p = c["principal"].as_f64().unwrap();
        let rate = c["rate"].as_f64().unwrap();
        let years = c["years"].as_u64().unwrap() as u32;
        let what = format!("{p} at {rate} over {years}");
        close(
            monthly_repayment(p, rate, years),
            c["repayment"].as_f64().unwrap(),
            &what,
        );
        let s = schedule(p, rate, years);
        for (key, month) in [
            ("month_1", 1usize),
            ("month_12", 12),
            ("month_last", s.len()),
        ] {
            let m = &s[month - 1];
            close(
                m.interest,
                c[key]["interest"].as_f64().unwrap(),
                &format!("{what} {key} interest"),
            );
            // The last month clears what rounding left: 1e-6 of a dollar.
            let principal = c[key]["principal"].as_f64().unwrap();
            assert!(
                (m.principal - principal).abs() < 1e-6,
                "{what} {key} principal"
            );
        }
        close(
            present_value(3000.0, rate + BUFFER, years),
            c["present_value_of_3000"].as_f64().unwrap(),
            &format!("{what} present value"),
        );
    }
}
