//! Amounts as the agents write them: `$1,234.50`, or `$1,235` without cents.

/// `x` in dollars with thousands separators, with or without cents; a
/// negative amount as `-$23.50`.
pub(crate) fn dollars(x: f64, cents: bool) -> String {
    let scale = if cents { 100.0 } else { 1.0 };
    let units = (x.abs() * scale).round() as u64;
    let whole = if cents { units / 100 } else { units };
    let s = whole.to_string();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if x < 0.0 && units > 0 { "-" } else { "" };
    if cents {
        format!("{sign}${out}.{:02}", units % 100)
    } else {
        format!("{sign}${out}")
    }
}

#[cfg(test)]
mod tests {
    use super::dollars;

    #[test]
    fn as_written() {
        assert_eq!(dollars(1234.5, true), "$1,234.50");
        assert_eq!(dollars(-23.5, true), "-$23.50");
        assert_eq!(dollars(1_234_567.0, false), "$1,234,567");
        assert_eq!(dollars(0.004, true), "$0.00");
        assert_eq!(dollars(999.6, false), "$1,000");
    }
}
