use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A write-ahead log position (Log Sequence Number): a byte offset into the
/// WAL, written by PostgreSQL as two hexadecimal halves, `16/B374D848`.
///
/// Ordered like the WAL: a larger LSN is later. `Lsn(0)` (`0/0`) is
/// PostgreSQL's `InvalidXLogRecPtr`; as a start position it means "from the
/// slot's confirmed position".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`, PostgreSQL's invalid position.
    pub const ZERO: Lsn = Lsn(0);

    /// The raw 64-bit position.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Self {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> Self {
        lsn.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = Error;

    /// Parses `hi/lo`, each 1 to 8 hexadecimal digits (either case), as
    /// PostgreSQL's `pg_lsn` input does. No signs, spaces or prefixes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || Error::InvalidLsn(s.to_owned());
        let (hi, lo) = s.split_once('/').ok_or_else(invalid)?;
        let half = |part: &str| -> Result<u64, Error> {
            // `from_str_radix` would also accept a leading '+'.
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            u64::from_str_radix(part, 16).map_err(|_| invalid())
        };
        Ok(Lsn((half(hi)? << 32) | half(lo)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_postgres() {
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!(Lsn(0x1_0000_0000).to_string(), "1/0");
        assert_eq!(Lsn(u64::MAX).to_string(), "FFFFFFFF/FFFFFFFF");
    }

    #[test]
    fn parses_and_round_trips() {
        for text in [
            "0/0",
            "16/B374D848",
            "1/0",
            "0/1",
            "FFFFFFFF/FFFFFFFF",
            "0/16B3748",
        ] {
            let lsn: Lsn = text.parse().unwrap();
            assert_eq!(lsn.to_string(), text);
        }
        assert_eq!("16/b374d848".parse::<Lsn>().unwrap(), Lsn(0x16_B374_D848));
        assert_eq!(
            "00000016/0000000A".parse::<Lsn>().unwrap(),
            Lsn(0x16_0000_000A)
        );
        for value in [
            0,
            1,
            0xFFFF_FFFF,
            0x1_0000_0000,
            0xDEAD_BEEF_0BAD_F00D,
            u64::MAX,
        ] {
            assert_eq!(Lsn(value).to_string().parse::<Lsn>().unwrap(), Lsn(value));
        }
    }

    #[test]
    fn rejects_what_postgres_rejects() {
        for text in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "0/0/0",
            "+1/0",
            "1/-0",
            " 1/0",
            "1/0 ",
            "0x1/0",
            "123456789/0",
            "0/123456789",
            "g/0",
            "1/ä",
        ] {
            assert!(
                matches!(text.parse::<Lsn>(), Err(Error::InvalidLsn(_))),
                "{text:?} parsed"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn display_and_parse_round_trip(value: u64) {
            proptest::prop_assert_eq!(Lsn(value).to_string().parse::<Lsn>().unwrap(), Lsn(value));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,24}") {
            let _ = text.parse::<Lsn>();
        }

        #[test]
        fn order_is_numeric_order(a: u64, b: u64) {
            proptest::prop_assert_eq!(Lsn(a).cmp(&Lsn(b)), a.cmp(&b));
        }
    }

    #[test]
    fn orders_like_the_wal() {
        let a: Lsn = "0/FFFFFFFF".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.max(b), b);
        assert!(Lsn::ZERO < a);
    }
}
