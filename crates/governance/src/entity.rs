//! What a recognizer finds: the entity, where, and how likely it is.

use serde::{Deserialize, Serialize};

/// The kinds of personal data the recognizers find (Presidio's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Entity {
    CreditCard,
    IbanCode,
    AuTfn,
    AuAbn,
    AuMedicare,
    UsSsn,
    EmailAddress,
    PhoneNumber,
}

impl Entity {
    pub const ALL: [Entity; 8] = [
        Entity::CreditCard,
        Entity::IbanCode,
        Entity::AuTfn,
        Entity::AuAbn,
        Entity::AuMedicare,
        Entity::UsSsn,
        Entity::EmailAddress,
        Entity::PhoneNumber,
    ];

    /// The name used in findings, alerts and the CLI (`CREDIT_CARD`, …).
    pub fn name(self) -> &'static str {
        match self {
            Entity::CreditCard => "CREDIT_CARD",
            Entity::IbanCode => "IBAN_CODE",
            Entity::AuTfn => "AU_TFN",
            Entity::AuAbn => "AU_ABN",
            Entity::AuMedicare => "AU_MEDICARE",
            Entity::UsSsn => "US_SSN",
            Entity::EmailAddress => "EMAIL_ADDRESS",
            Entity::PhoneNumber => "PHONE_NUMBER",
        }
    }

    /// The entity of a name (`CREDIT_CARD`), case-insensitively.
    pub fn parse(name: &str) -> Option<Entity> {
        Entity::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
    }

    /// Whether a value of this entity carries a checksum (or, for SSNs,
    /// validity rules) that a recognizer verifies.
    pub fn is_checked(self) -> bool {
        !matches!(self, Entity::EmailAddress | Entity::PhoneNumber)
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How likely a match is the entity, in the five buckets of Google's DLP
/// (Presidio's scores map onto them). Scanners report from
/// [`Likelihood::Possible`] up unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    VeryUnlikely,
    Unlikely,
    Possible,
    Likely,
    VeryLikely,
}

impl Likelihood {
    const ORDER: [Likelihood; 5] = [
        Likelihood::VeryUnlikely,
        Likelihood::Unlikely,
        Likelihood::Possible,
        Likelihood::Likely,
        Likelihood::VeryLikely,
    ];

    /// `steps` buckets up (negative: down), clamped to the scale.
    pub fn shift(self, steps: i32) -> Likelihood {
        let i = (self as i32 + steps).clamp(0, 4);
        Likelihood::ORDER[i as usize]
    }

    pub fn name(self) -> &'static str {
        match self {
            Likelihood::VeryUnlikely => "very_unlikely",
            Likelihood::Unlikely => "unlikely",
            Likelihood::Possible => "possible",
            Likelihood::Likely => "likely",
            Likelihood::VeryLikely => "very_likely",
        }
    }

    /// The bucket of a name (`likely`, `very-likely`), case-insensitively.
    pub fn parse(name: &str) -> Option<Likelihood> {
        let n = name.replace('-', "_");
        Likelihood::ORDER
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(&n))
    }
}

/// One finding: `text[start..end]` (byte offsets) is probably `entity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub entity: Entity,
    pub start: usize,
    pub end: usize,
    pub likelihood: Likelihood,
    /// The recognizer that matched (`credit_card`, `au_tfn`, …).
    pub recognizer: &'static str,
}

impl Finding {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    pub fn overlaps(&self, other: &Finding) -> bool {
        self.start < other.end && other.start < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_presidio_names() {
        for e in Entity::ALL {
            assert_eq!(Entity::parse(e.name()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.name());
        }
        assert_eq!(Entity::parse("iban_code"), Some(Entity::IbanCode));
        assert_eq!(Entity::parse("PASSPORT"), None);
    }

    #[test]
    fn likelihood_shifts_clamp() {
        assert_eq!(Likelihood::Possible.shift(1), Likelihood::Likely);
        assert_eq!(Likelihood::Possible.shift(-5), Likelihood::VeryUnlikely);
        assert_eq!(Likelihood::Likely.shift(9), Likelihood::VeryLikely);
        assert_eq!(
            Likelihood::parse("very-likely"),
            Some(Likelihood::VeryLikely)
        );
        assert!(Likelihood::Possible < Likelihood::Likely);
    }
}
