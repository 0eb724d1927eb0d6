//! The loan agent's tools: amounts as customers write them, repayments
//! and schedules, loan-to-value, and borrowing power by serviceability.
//!
//! Serviceability follows the practice APRA sets for Australian lenders:
//! the loan is assessed at the product rate plus a buffer of 3 percentage
//! points (or a floor rate, whichever is higher); income is taken after
//! tax; living expenses are the larger of what the customer declares and a
//! benchmark; other commitments include 3.8 % a month of every credit
//! card limit, used or not; and the loan is capped at six times gross
//! income less other debt (APRA's high debt-to-income flag). The expense
//! benchmark here is this module's own, stated below, not the licensed
//! Household Expenditure Measure.

use std::ops::Range;

use serde::Serialize;

/// Percentage points added to the product rate when assessing a loan.
pub const BUFFER: f64 = 0.03;
/// The lowest assessment rate.
pub const FLOOR_RATE: f64 = 0.0;
/// Monthly commitment assumed per dollar of credit card limit.
pub const CARD_LIMIT_LOAD: f64 = 0.038;
/// Largest loan as a multiple of gross income (debt included).
pub const MAX_DTI: f64 = 6.0;
/// Loan-to-value above which lenders mortgage insurance applies.
pub const LMI_LVR: f64 = 0.80;

/// Monthly living expenses below which a declaration is not believed:
/// one adult, two adults, each dependant (this module's benchmark).
pub const EXPENSE_FLOOR_SINGLE: f64 = 2_400.0;
pub const EXPENSE_FLOOR_COUPLE: f64 = 3_500.0;
pub const EXPENSE_FLOOR_DEPENDANT: f64 = 600.0;

/// Australian resident income tax for 2024-25 (the rates from 1 July
/// 2024) plus the 2 % Medicare levy, on a gross annual income.
pub fn income_tax_au(gross: f64) -> f64 {
    let g = gross.max(0.0);
    let brackets = [
        (18_200.0, 0.0),
        (45_000.0, 0.16),
        (135_000.0, 0.30),
        (190_000.0, 0.37),
        (f64::INFINITY, 0.45),
    ];
    let mut tax = 0.0;
    let mut lower = 0.0;
    for (upper, rate) in brackets {
        if g > lower {
            tax += (g.min(upper) - lower) * rate;
        }
        lower = upper;
    }
    let medicare = if g > 18_200.0 { 0.02 * g } else { 0.0 };
    tax + medicare
}

/// The monthly principal-and-interest repayment of `principal` at an
/// annual `rate` (compounded monthly) over `years`.
pub fn monthly_repayment(principal: f64, rate: f64, years: u32) -> f64 {
    let n = f64::from(years * 12);
    let r = rate / 12.0;
    if r == 0.0 {
        return principal / n;
    }
    principal * r / (1.0 - (1.0 + r).powf(-n))
}

/// The loan a monthly `payment` services at `rate` over `years`.
pub fn present_value(payment: f64, rate: f64, years: u32) -> f64 {
    let n = f64::from(years * 12);
    let r = rate / 12.0;
    if r == 0.0 {
        return payment * n;
    }
    payment * (1.0 - (1.0 + r).powf(-n)) / r
}

/// One month of an amortisation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Month {
    pub month: u32,
    pub payment: f64,
    pub interest: f64,
    pub principal: f64,
    pub balance: f64,
}

/// Every month of a principal-and-interest loan; the last payment clears
/// what rounding left.
pub fn schedule(principal: f64, rate: f64, years: u32) -> Vec<Month> {
    let payment = monthly_repayment(principal, rate, years);
    let r = rate / 12.0;
    let mut balance = principal;
    let n = years * 12;
    (1..=n)
        .map(|month| {
            let interest = balance * r;
            let mut principal_part = payment - interest;
            if month == n {
                principal_part = balance;
            }
            balance -= principal_part;
            Month {
                month,
                payment: interest + principal_part,
                interest,
                principal: principal_part,
                balance: balance.max(0.0),
            }
        })
        .collect()
}

/// Loan-to-value of buying `price` with `deposit`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lvr {
    pub price: f64,
    pub deposit: f64,
    pub loan: f64,
    pub lvr: f64,
    /// Above 80 %: lenders mortgage insurance.
    pub lmi: bool,
}

pub fn lvr(price: f64, deposit: f64) -> Lvr {
    let loan = (price - deposit).max(0.0);
    let lvr = if price > 0.0 { loan / price } else { 0.0 };
    Lvr {
        price,
        deposit,
        loan,
        lvr,
        lmi: lvr > LMI_LVR,
    }
}

/// Who is borrowing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applicant {
    /// Gross annual income of each applicant (one or two).
    pub incomes: Vec<f64>,
    /// Declared monthly living expenses.
    pub monthly_expenses: f64,
    /// Monthly repayments of other loans.
    pub other_repayments: f64,
    /// Limits of every credit card held.
    pub card_limits: f64,
    /// Balances of other debts (for debt-to-income).
    pub other_debt: f64,
    pub dependants: u32,
}

/// How much can be borrowed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BorrowingPower {
    pub product_rate: f64,
    pub assessment_rate: f64,
    pub years: u32,
    pub gross_income: f64,
    pub net_monthly_income: f64,
    /// The larger of the declared expenses and the benchmark.
    pub expenses_used: f64,
    pub expense_floor: f64,
    pub commitments: f64,
    pub monthly_surplus: f64,
    /// What the surplus services at the assessment rate.
    pub serviceable: f64,
    /// Six times gross income less other debt.
    pub dti_cap: f64,
    pub max_loan: f64,
    /// `serviceability` or `debt_to_income`: which limit binds.
    pub limited_by: &'static str,
    /// The repayment of `max_loan` at the product rate.
    pub repayment_at_product_rate: f64,
}

/// Borrowing power of `applicant` for a loan at `rate` over `years`.
pub fn borrowing_power(applicant: &Applicant, rate: f64, years: u32) -> BorrowingPower {
    let gross: f64 = applicant.incomes.iter().sum();
    let net_annual: f64 = applicant
        .incomes
        .iter()
        .map(|g| g - income_tax_au(*g))
        .sum();
    let net_monthly = net_annual / 12.0;
    let adults = applicant.incomes.len().max(1);
    let floor = if adults >= 2 {
        EXPENSE_FLOOR_COUPLE
    } else {
        EXPENSE_FLOOR_SINGLE
    } + EXPENSE_FLOOR_DEPENDANT * f64::from(applicant.dependants);
    let expenses = applicant.monthly_expenses.max(floor);
    let commitments = applicant.other_repayments + CARD_LIMIT_LOAD * applicant.card_limits;
    let surplus = (net_monthly - expenses - commitments).max(0.0);
    let assessment = (rate + BUFFER).max(FLOOR_RATE);
    let serviceable = present_value(surplus, assessment, years);
    let dti_cap = (MAX_DTI * gross - applicant.other_debt).max(0.0);
    let (max_loan, limited_by) = if serviceable <= dti_cap {
        (serviceable, "serviceability")
    } else {
        (dti_cap, "debt_to_income")
    };
    BorrowingPower {
        product_rate: rate,
        assessment_rate: assessment,
        years,
        gross_income: gross,
        net_monthly_income: net_monthly,
        expenses_used: expenses,
        expense_floor: floor,
        commitments,
        monthly_surplus: surplus,
        serviceable,
        dti_cap,
        max_loan,
        limited_by,
        repayment_at_product_rate: monthly_repayment(max_loan, rate, years),
    }
}

/// An amount of money found in text, with its byte span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Amount {
    pub value: f64,
    pub span: Range<usize>,
}

const SMALL: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("one", 1.0),
    ("a", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
    ("hundred", 100.0),
    ("half", 0.5),
];

fn scale(word: &str) -> Option<f64> {
    match word {
        "k" | "K" | "thousand" | "grand" => Some(1e3),
        "m" | "M" | "mil" | "million" | "mn" => Some(1e6),
        "b" | "bn" | "billion" => Some(1e9),
        _ => None,
    }
}

/// Every amount in `text`: `$50,000`, `50k`, `$650K`, `1.2m`,
/// `$1.5 million`, `fifty thousand`, `half a million`. Bare numbers
/// without `$` or a scale word are not amounts (a term of 30 years, a
/// rate of 6.1 %).
pub fn amounts(text: &str) -> Vec<Amount> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    // Tokens: (start, end) of words and numbers.
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() {
            let s = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || ((bytes[i] == b',' || bytes[i] == b'.')
                        && i + 1 < bytes.len()
                        && bytes[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            tokens.push((s, i));
        } else if c.is_ascii_alphabetic() {
            let s = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            tokens.push((s, i));
        } else {
            i += 1;
        }
    }
    let word = |k: usize| &text[tokens[k].0..tokens[k].1];
    let mut k = 0;
    while k < tokens.len() {
        let (s, e) = tokens[k];
        let w = word(k);
        if bytes[s].is_ascii_digit() {
            let Ok(n) = w.replace(',', "").parse::<f64>() else {
                k += 1;
                continue;
            };
            let dollar = s > 0 && bytes[s - 1] == b'$';
            let start = if dollar { s - 1 } else { s };
            // A scale glued on (`50k`) or as the next word (`1.5 million`).
            let (mut value, mut end, mut next) = (n, e, k + 1);
            if next < tokens.len() {
                let (ns, ne) = tokens[next];
                let gap = &text[e..ns];
                if let Some(sc) = scale(word(next)) {
                    if gap.is_empty() || gap == " " {
                        value = n * sc;
                        end = ne;
                        next += 1;
                    }
                }
            }
            if dollar || end != e {
                out.push(Amount {
                    value,
                    span: start..end,
                });
            }
            k = next;
            continue;
        }
        // Number words: a run of small numbers and scales ("fifty
        // thousand", "half a million", "two hundred and fifty thousand").
        let lower = w.to_ascii_lowercase();
        if SMALL.iter().any(|(n, _)| *n == lower) && lower != "a" {
            let mut total = 0.0f64;
            let mut current = 0.0f64;
            let mut saw_scale = false;
            let mut counted = false;
            let mut j = k;
            let mut last = k;
            while j < tokens.len() {
                let t = word(j).to_ascii_lowercase();
                if let Some((_, v)) = SMALL.iter().find(|(n, _)| *n == t) {
                    if t == "hundred" {
                        current = if counted { current } else { 1.0 } * 100.0;
                        counted = true;
                    } else if t == "half" {
                        current += 0.5;
                        counted = true;
                    } else if t != "a" {
                        current += v;
                        counted = true;
                    }
                    last = j;
                } else if let Some(sc) = scale(&t).filter(|_| t.len() > 1) {
                    total += if counted { current } else { 1.0 } * sc;
                    current = 0.0;
                    counted = false;
                    saw_scale = true;
                    last = j;
                } else if t != "and" {
                    break;
                }
                j += 1;
            }
            if saw_scale {
                out.push(Amount {
                    value: total + current,
                    span: tokens[k].0..tokens[last].1,
                });
                k = last + 1;
                continue;
            }
        }
        k += 1;
    }
    out
}

/// The first amount in `text`, if any.
pub fn parse_amount(text: &str) -> Option<f64> {
    amounts(text).first().map(|a| a.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_as_customers_write_them() {
        let cases = [
            ("a home loan with $50,000 down payment", 50_000.0),
            ("I have 50k saved", 50_000.0),
            ("a $650K apartment", 650_000.0),
            ("about 1.2m", 1_200_000.0),
            ("$1.5 million house", 1_500_000.0),
            ("fifty thousand deposit", 50_000.0),
            ("half a million", 500_000.0),
            ("two hundred and fifty thousand dollars", 250_000.0),
            ("$85,000.50 a year", 85_000.5),
        ];
        for (text, want) in cases {
            assert_eq!(parse_amount(text), Some(want), "{text}");
        }
        assert_eq!(parse_amount("over 30 years at 6.1%"), None);
        let a = amounts("price $800k, deposit $160,000");
        assert_eq!(
            a.iter().map(|x| x.value).collect::<Vec<_>>(),
            [800_000.0, 160_000.0]
        );
        assert_eq!(&"price $800k, deposit $160,000"[a[0].span.clone()], "$800k");
    }

    #[test]
    fn tax_of_2024_25_with_medicare() {
        // 4,288 + 16,500 + 2 % of 100,000.
        assert!((income_tax_au(100_000.0) - 22_788.0).abs() < 1e-9);
        assert_eq!(income_tax_au(18_000.0), 0.0);
        // 4,288 + 27,000 + 20,350 + 0.45 × 10,000 + 2 % of 200,000.
        assert!(
            (income_tax_au(200_000.0) - (4_288.0 + 27_000.0 + 20_350.0 + 4_500.0 + 4_000.0)).abs()
                < 1e-9
        );
    }

    #[test]
    fn a_schedule_pays_off_the_loan() {
        let s = schedule(500_000.0, 0.062, 30);
        assert_eq!(s.len(), 360);
        assert!(s.last().unwrap().balance.abs() < 1e-6);
        let paid: f64 = s.iter().map(|m| m.principal).sum();
        assert!((paid - 500_000.0).abs() < 1e-6);
        assert!(s[0].interest > s[359].interest);
    }

    #[test]
    fn lvr_and_lmi() {
        let l = lvr(800_000.0, 160_000.0);
        assert_eq!(l.loan, 640_000.0);
        assert!((l.lvr - 0.8).abs() < 1e-12);
        assert!(!l.lmi);
        assert!(lvr(800_000.0, 50_000.0).lmi);
    }

    #[test]
    fn borrowing_power_is_limited_by_the_tighter_rule() {
        let a = Applicant {
            incomes: vec![120_000.0],
            monthly_expenses: 1_500.0,
            other_repayments: 0.0,
            card_limits: 10_000.0,
            other_debt: 0.0,
            dependants: 0,
        };
        let b = borrowing_power(&a, 0.06, 30);
        assert_eq!(
            b.expenses_used, EXPENSE_FLOOR_SINGLE,
            "declared below the benchmark"
        );
        assert!((b.commitments - 380.0).abs() < 1e-9);
        assert!((b.assessment_rate - 0.09).abs() < 1e-12);
        assert!(b.max_loan <= 6.0 * 120_000.0);
        // The repayment at the assessment rate uses up the surplus.
        let at_assessment = monthly_repayment(b.serviceable, b.assessment_rate, 30);
        assert!((at_assessment - b.monthly_surplus).abs() < 1e-6);
        // A high earner with low costs hits the DTI cap instead.
        let rich = Applicant {
            incomes: vec![400_000.0, 300_000.0],
            ..a
        };
        assert_eq!(
            borrowing_power(&rich, 0.02, 30).limited_by,
            "debt_to_income"
        );
    }
}
