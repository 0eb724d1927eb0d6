#!/usr/bin/env python3
"""Reference values for the loan agent's tools (crates/agents/src/loan.rs):
numpy-financial's pmt, pv, ipmt and ppmt on the cases the Rust test
crates/agents/tests/loan_reference.rs pins.

    PY="$(scripts/bench-env.sh)"      # has numpy-financial
    "$PY" tools/reference_loans.py

It prints one JSON object. Rates are annual, compounded monthly, repaid
monthly in arrears; amounts in dollars. Per case:

  * repayment: -npf.pmt(rate/12, years*12, principal)
  * month_1, month_12, month_last: interest and principal of those months
    (-npf.ipmt, -npf.ppmt)
  * present_value_of_3000: the loan a $3,000 monthly repayment services at
    rate + 3 percentage points (the serviceability buffer) over the term,
    npf.pv(...)
"""

import json

import numpy_financial as npf

CASES = [
    # principal, annual rate, years
    (500_000.0, 0.062, 30),
    (640_000.0, 0.0589, 25),
    (35_000.0, 0.0899, 5),
    (1_200_000.0, 0.0745, 30),
]


def main():
    out = []
    for principal, rate, years in CASES:
        r, n = rate / 12, years * 12
        month = lambda m: {
            "interest": float(-npf.ipmt(r, m, n, principal)),
            "principal": float(-npf.ppmt(r, m, n, principal)),
        }
        out.append({
            "principal": principal,
            "rate": rate,
            "years": years,
            "repayment": float(-npf.pmt(r, n, principal)),
            "month_1": month(1),
            "month_12": month(12),
            "month_last": month(n),
            "present_value_of_3000": float(npf.pv((rate + 0.03) / 12, n, -3000.0)),
        })
    print(json.dumps({"numpy_financial": npf.__version__, "cases": out}, indent=1))


if __name__ == "__main__":
    main()
