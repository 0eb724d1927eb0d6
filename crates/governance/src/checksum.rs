//! The check-digit rules the recognizers verify. Every function takes the
//! value's digits as numbers (`0..=9`), separators removed.

/// Luhn (ISO/IEC 7812-1): payment card numbers.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(*d);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The Luhn check digit that completes `payload`.
pub fn luhn_check_digit(payload: &[u8]) -> u8 {
    let mut with = payload.to_vec();
    with.push(0);
    (0..10)
        .find(|d| {
            *with.last_mut().expect("pushed") = *d;
            luhn(&with)
        })
        .expect("one of ten digits completes a Luhn number")
}

/// Australian tax file number, 9 digits: weights 1 4 3 7 5 8 6 9 10, sum
/// divisible by 11 (the ATO's algorithm). Eight-digit TFNs, issued long
/// ago, are not recognised.
pub fn au_tfn(digits: &[u8]) -> bool {
    const W: [u32; 9] = [1, 4, 3, 7, 5, 8, 6, 9, 10];
    digits.len() == 9 && weighted(digits, &W).is_multiple_of(11)
}

/// Australian business number, 11 digits: subtract 1 from the first
/// digit, weights 10 1 3 5 7 9 11 13 15 17 19, sum divisible by 89.
pub fn au_abn(digits: &[u8]) -> bool {
    const W: [u32; 11] = [10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
    if digits.len() != 11 || digits[0] == 0 {
        return false;
    }
    let mut d = digits.to_vec();
    d[0] -= 1;
    weighted(&d, &W).is_multiple_of(89)
}

/// Australian Medicare card number, 10 digits: the first 2–6, weights
/// 1 3 7 9 1 3 7 9 over the first eight, the sum mod 10 is the ninth; the
/// tenth (the card's issue number) is not 0.
pub fn au_medicare(digits: &[u8]) -> bool {
    const W: [u32; 8] = [1, 3, 7, 9, 1, 3, 7, 9];
    digits.len() == 10
        && (2..=6).contains(&digits[0])
        && weighted(&digits[..8], &W) % 10 == u32::from(digits[8])
        && digits[9] != 0
}

/// US social security number, 9 digits, by the SSA's rules: area not
/// 000, 666 or 900–999, group not 00, serial not 0000; and none of the
/// numbers known to be invalid or published (all one digit, 123-45-6789,
/// 078-05-1120 from the Woolworth wallet insert, 219-09-9999 from an SSA
/// pamphlet).
pub fn us_ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let n = |r: std::ops::Range<usize>| {
        digits[r]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(*d))
    };
    let (area, group, serial) = (n(0..3), n(3..5), n(5..9));
    let all = n(0..9);
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !digits.iter().all(|d| *d == digits[0])
        && ![123_456_789, 78_051_120, 219_099_999].contains(&all)
}

/// ISO 13616 IBAN check: the country code and check digits moved to the
/// end, letters as 10–35, the number mod 97 is 1. `iban` is ASCII
/// alphanumeric without spaces.
pub fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for c in iban[4..].iter().chain(&iban[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            b'a'..=b'z' => u32::from(c - b'a') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn weighted(digits: &[u8], weights: &[u32]) -> u32 {
    digits
        .iter()
        .zip(weights)
        .map(|(d, w)| u32::from(*d) * w)
        .sum()
}

/// Digits of an ASCII string, ignoring everything else (for tests and the
/// corpus).
pub fn digits_of(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_valid_numbers_pass() {
        // Payment networks' documented test numbers.
        for card in ["4111111111111111", "5555555555554444", "378282246310005"] {
            assert!(luhn(&digits_of(card)), "{card}");
        }
        // The ATO's example TFN and the ABR's example ABN (the ABR's own).
        assert!(au_tfn(&digits_of("123 456 782")));
        assert!(au_abn(&digits_of("51 824 753 556")));
        // Presidio's Medicare example.
        assert!(au_medicare(&digits_of("2123 45670 1")));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(us_ssn(&digits_of("536-90-4399")));
    }

    #[test]
    fn one_changed_digit_fails_every_checksum() {
        type Check = fn(&[u8]) -> bool;
        let cases: [(&str, Check); 4] = [
            ("4111111111111111", luhn),
            ("123456782", au_tfn),
            ("51824753556", au_abn),
            ("2123456701", au_medicare),
        ];
        for (good, check) in cases {
            let d = digits_of(good);
            // Every position except the Medicare issue number, which no
            // checksum covers.
            let positions = if d.len() == 10 { 9 } else { d.len() };
            for i in 0..positions {
                for delta in 1..10 {
                    let mut bad = d.clone();
                    bad[i] = (bad[i] + delta) % 10;
                    assert!(!check(&bad), "{good} with digit {i} +{delta}");
                }
            }
        }
        let mut iban = b"GB82WEST12345698765432".to_vec();
        for i in 4..iban.len() {
            let keep = iban[i];
            if keep.is_ascii_digit() {
                iban[i] = b'0' + (keep - b'0' + 3) % 10;
                assert!(!iban_mod97(&iban), "position {i}");
                iban[i] = keep;
            }
        }
    }

    #[test]
    fn ssn_rules() {
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
            "111-11-1111",
            "123-45-6789",
            "078-05-1120",
        ] {
            assert!(!us_ssn(&digits_of(bad)), "{bad}");
        }
    }

    #[test]
    fn check_digits_complete_numbers() {
        let payload = digits_of("411111111111111");
        let mut full = payload.clone();
        full.push(luhn_check_digit(&payload));
        assert_eq!(full, digits_of("4111111111111111"));
    }
}
