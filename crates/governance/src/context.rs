//! Context words: a number next to "TFN" is a tax file number; the same
//! number after "order #" is not. A recognizer's likelihood goes up two
//! buckets when a cue word for its entity is among the few words around
//! the match, and down two when only a cue of something else (an order,
//! an invoice, a tracking number, …) is.

use crate::Entity;

/// Words looked at before a match, and after it.
const BEFORE_WORDS: usize = 6;
const AFTER_WORDS: usize = 4;
/// How far to look, in bytes, either side.
const BEFORE_BYTES: usize = 64;
const AFTER_BYTES: usize = 40;

/// Cues of one entity: each a phrase of one or more words. A word of the
/// text matches a cue word when it starts with it and is at most three
/// letters longer ("card", "cards", "cardholder" no: that is its own cue).
fn cues(entity: Entity) -> &'static [&'static [&'static str]] {
    match entity {
        Entity::CreditCard => &[
            &["card"],
            &["cardholder"],
            &["credit"],
            &["debit"],
            &["visa"],
            &["mastercard"],
            &["amex"],
            &["american", "express"],
            &["discover"],
            &["diners"],
            &["jcb"],
            &["unionpay"],
            &["cc"],
            &["pan"],
        ],
        Entity::AuTfn => &[&["tfn"], &["tax", "file"], &["ato"]],
        Entity::AuAbn => &[&["abn"], &["business", "number"]],
        Entity::AuMedicare => &[&["medicare"]],
        Entity::UsSsn => &[&["ssn"], &["social", "security"], &["taxpayer"], &["tin"]],
        Entity::IbanCode => &[
            &["iban"],
            &["sepa"],
            &["swift"],
            &["bic"],
            &["wire"],
            &["transfer"],
            &["bank"],
            &["account"],
            &["payee"],
        ],
        Entity::EmailAddress => &[
            &["email"],
            &["e", "mail"],
            &["mail"],
            &["contact"],
            &["reach"],
            &["write"],
            &["address"],
        ],
        Entity::PhoneNumber => &[
            &["phone"],
            &["telephone"],
            &["mobile"],
            &["mob"],
            &["cell"],
            &["tel"],
            &["call"],
            &["ring"],
            &["sms"],
            &["text"],
            &["contact"],
            &["fax"],
            &["ph"],
            &["landline"],
            &["whatsapp"],
        ],
    }
}

/// Words that say a number is an identifier of something else.
const NEGATIVE: &[&[&str]] = &[
    &["order"],
    &["invoice"],
    &["tracking"],
    &["ref"],
    &["reference"],
    &["confirmation"],
    &["ticket"],
    &["booking"],
    &["isin"],
    &["cusip"],
    &["sedol"],
    &["serial"],
    &["sku"],
    &["receipt"],
    &["transaction"],
    &["txn"],
    &["bsb"],
    &["account"],
    &["policy"],
    &["claim"],
    &["case"],
    &["member"],
    &["membership"],
    &["shipment"],
    &["parcel"],
    &["batch"],
    &["lot"],
    &["part"],
    &["model"],
    &["version"],
];

/// The words around a match, lower-cased ASCII letters only.
#[derive(Debug, Default)]
pub(crate) struct Around {
    /// In reading order.
    before: Vec<[u8; 16]>,
    after: Vec<[u8; 16]>,
    before_len: Vec<u8>,
    after_len: Vec<u8>,
}

/// What the words around a match say about an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cue {
    For,
    Against,
    None,
}

impl Around {
    pub(crate) fn read(text: &[u8], start: usize, end: usize) -> Around {
        let mut a = Around::default();
        // Before: walk back over at most BEFORE_BYTES.
        let floor = start.saturating_sub(BEFORE_BYTES);
        let mut i = start;
        while i > floor && a.before.len() < BEFORE_WORDS {
            while i > floor && !letter(text, i - 1) {
                i -= 1;
            }
            let word_end = i;
            while i > floor && letter(text, i - 1) {
                i -= 1;
            }
            if i < word_end {
                let (w, n) = word(&text[i..word_end]);
                a.before.push(w);
                a.before_len.push(n);
            }
        }
        a.before.reverse();
        a.before_len.reverse();
        let ceil = (end + AFTER_BYTES).min(text.len());
        let mut j = end;
        while j < ceil && a.after.len() < AFTER_WORDS {
            while j < ceil && !letter(text, j) {
                j += 1;
            }
            let word_start = j;
            while j < ceil && letter(text, j) {
                j += 1;
            }
            if word_start < j {
                let (w, n) = word(&text[word_start..j]);
                a.after.push(w);
                a.after_len.push(n);
            }
        }
        a
    }

    /// For, against, or silent about `entity`.
    pub(crate) fn about(&self, entity: Entity) -> Cue {
        if self.has_any(cues(entity)) {
            Cue::For
        } else if entity != Entity::IbanCode && self.has_any(NEGATIVE) {
            Cue::Against
        } else {
            Cue::None
        }
    }

    fn has_any(&self, phrases: &[&[&str]]) -> bool {
        phrases.iter().any(|p| self.has(p))
    }

    /// Whether `phrase` occurs in the words before or after.
    fn has(&self, phrase: &[&str]) -> bool {
        let within = |words: &[[u8; 16]], lens: &[u8]| {
            words.len() >= phrase.len()
                && (0..=words.len() - phrase.len()).any(|i| {
                    phrase
                        .iter()
                        .enumerate()
                        .all(|(k, cue)| matches(&words[i + k], lens[i + k], cue))
                })
        };
        within(&self.before, &self.before_len) || within(&self.after, &self.after_len)
    }
}

/// Whether `text[i]` is part of a word: a letter (any non-ASCII byte
/// counts, so "Björn" is one word), or an apostrophe between letters
/// ("O'Brien's").
fn letter(text: &[u8], i: usize) -> bool {
    let b = text[i];
    b.is_ascii_alphabetic()
        || b >= 0x80
        || (b == b'\''
            && i > 0
            && i + 1 < text.len()
            && text[i - 1].is_ascii_alphabetic()
            && text[i + 1].is_ascii_alphabetic())
}

fn word(bytes: &[u8]) -> ([u8; 16], u8) {
    let mut w = [0u8; 16];
    let n = bytes.len().min(16);
    for (d, s) in w.iter_mut().zip(&bytes[..n]) {
        *d = s.to_ascii_lowercase();
    }
    (w, bytes.len().min(255) as u8)
}

fn matches(word: &[u8; 16], len: u8, cue: &str) -> bool {
    let cue = cue.as_bytes();
    let len = usize::from(len);
    len >= cue.len() && len <= cue.len() + 3 && word.starts_with(cue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(text: &str, needle: &str, e: Entity) -> Cue {
        let start = text.find(needle).unwrap();
        Around::read(text.as_bytes(), start, start + needle.len()).about(e)
    }

    #[test]
    fn cues_before_and_after() {
        assert_eq!(about("my TFN is 123", "123", Entity::AuTfn), Cue::For);
        assert_eq!(
            about("the Tax File Number: 123", "123", Entity::AuTfn),
            Cue::For
        );
        assert_eq!(about("123 is my tfn", "123", Entity::AuTfn), Cue::For);
        assert_eq!(about("file tax 123", "123", Entity::AuTfn), Cue::None);
        assert_eq!(
            about("Order #123 shipped", "123", Entity::AuTfn),
            Cue::Against
        );
        assert_eq!(about("cards: 123", "123", Entity::CreditCard), Cue::For);
        assert_eq!(
            about("account GB82", "GB82", Entity::IbanCode),
            Cue::For,
            "an IBAN is an account number"
        );
    }

    #[test]
    fn far_words_do_not_count() {
        let text = "tfn one two three four five six seven 123";
        assert_eq!(about(text, "123", Entity::AuTfn), Cue::None);
        let text = "123 is one two three four tfn";
        assert_eq!(about(text, "123", Entity::AuTfn), Cue::None);
    }

    #[test]
    fn names_are_one_word_each() {
        let text = "show 123 as Björn O'Brien's ABN";
        assert_eq!(about(text, "123", Entity::AuAbn), Cue::For);
    }
}
