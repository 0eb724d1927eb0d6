//! What leaves the platform instead of a value: a placeholder in masked
//! text, and a keyed fingerprint in alerts (the same value always gives the
//! same fingerprint under one key, so alerts about one value can be
//! correlated, but the value cannot be recovered or guessed without the key).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Entity, Finding};

/// `text` with every finding replaced by `<ENTITY>` (`findings` in text
/// order, not overlapping, as [`crate::Scanner::scan`] returns them).
pub fn mask(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        if f.start < at || f.end > text.len() {
            continue;
        }
        out.push_str(&text[at..f.start]);
        out.push('<');
        out.push_str(f.entity.name());
        out.push('>');
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The value as compared: digits of numbers, the alphanumerics of an IBAN
/// upper-cased, an e-mail address lower-cased.
pub fn normalize(entity: Entity, value: &str) -> String {
    match entity {
        Entity::EmailAddress => value.to_ascii_lowercase(),
        Entity::IbanCode => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        _ => value.chars().filter(char::is_ascii_digit).collect(),
    }
}

/// HMAC-SHA-256 of the entity and the normalised value under `key`, as
/// 32 hex digits (128 bits).
pub fn fingerprint(key: &[u8], entity: Entity, value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(entity.name().as_bytes());
    mac.update(&[0]);
    mac.update(normalize(entity, value).as_bytes());
    let tag = mac.finalize().into_bytes();
    tag[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;

    #[test]
    fn masking_replaces_each_finding() {
        let text = "TFN 123 456 782, mail jo@example.com.";
        let masked = mask(text, &Scanner::new().scan(text));
        assert_eq!(masked, "TFN <AU_TFN>, mail <EMAIL_ADDRESS>.");
    }

    #[test]
    fn fingerprints_ignore_formatting_and_depend_on_the_key() {
        let a = fingerprint(b"k1", Entity::AuTfn, "123 456 782");
        assert_eq!(a, fingerprint(b"k1", Entity::AuTfn, "123456782"));
        assert_ne!(a, fingerprint(b"k2", Entity::AuTfn, "123456782"));
        assert_ne!(a, fingerprint(b"k1", Entity::UsSsn, "123456782"));
        assert_eq!(a.len(), 32);
        assert!(!a.contains("123456782"));
    }
}
