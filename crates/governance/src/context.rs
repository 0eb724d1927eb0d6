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

/// Bit of a cue's kind in a mask: an entity's position in
/// [`Entity::ALL`], or [`AGAINST`] for the negative cues.
const AGAINST: u16 = 1 << 8;

fn bit(entity: Entity) -> u16 {
    1 << Entity::ALL
        .iter()
        .position(|e| *e == entity)
        .expect("every entity is in ALL")
}

/// Every cue phrase with its bit, by the first letter of its first word:
/// a word is compared with the few phrases that start like it.
struct Table {
    by_letter: [Vec<(u16, &'static [&'static str])>; 26],
}

fn table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            by_letter: std::array::from_fn(|_| Vec::new()),
        };
        let mut add = |b: u16, phrase: &'static [&'static str]| {
            let first = phrase[0].as_bytes()[0];
            t.by_letter[usize::from(first - b'a')].push((b, phrase));
        };
        for e in Entity::ALL {
            for phrase in cues(e) {
                add(bit(e), phrase);
            }
        }
        for phrase in NEGATIVE {
            add(AGAINST, phrase);
        }
        t
    })
}

/// The words around a match, lower-cased (ASCII), at most 16 bytes each.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Around {
    /// The bits of the cues among the words before and after.
    mask: u16,
}

#[derive(Debug)]
struct Words<const N: usize> {
    words: [[u8; 16]; N],
    lens: [u8; N],
    n: usize,
}

impl<const N: usize> Default for Words<N> {
    fn default() -> Self {
        Words {
            words: [[0; 16]; N],
            lens: [0; N],
            n: 0,
        }
    }
}

impl<const N: usize> Words<N> {
    fn push(&mut self, bytes: &[u8]) {
        let (w, len) = word(bytes);
        self.words[self.n] = w;
        self.lens[self.n] = len;
        self.n += 1;
    }

    fn full(&self) -> bool {
        self.n == N
    }

    /// The bits of every cue phrase among the words.
    fn mask(&self) -> u16 {
        let table = table();
        let mut mask = 0;
        for i in 0..self.n {
            let first = self.words[i][0];
            if !first.is_ascii_lowercase() {
                continue;
            }
            for (b, phrase) in &table.by_letter[usize::from(first - b'a')] {
                if mask & b != 0 || i + phrase.len() > self.n {
                    continue;
                }
                let all = phrase
                    .iter()
                    .enumerate()
                    .all(|(k, cue)| matches(&self.words[i + k], self.lens[i + k], cue));
                if all {
                    mask |= b;
                }
            }
        }
        mask
    }
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
        // Before: walk back over at most BEFORE_BYTES, nearest word first.
        let mut nearest_first: Words<BEFORE_WORDS> = Words::default();
        let floor = start.saturating_sub(BEFORE_BYTES);
        let mut i = start;
        while i > floor && !nearest_first.full() {
            while i > floor && !letter(text, i - 1) {
                i -= 1;
            }
            let word_end = i;
            while i > floor && letter(text, i - 1) {
                i -= 1;
            }
            if i < word_end {
                nearest_first.push(&text[i..word_end]);
            }
        }
        let mut before: Words<BEFORE_WORDS> = Words::default();
        for k in (0..nearest_first.n).rev() {
            before.words[before.n] = nearest_first.words[k];
            before.lens[before.n] = nearest_first.lens[k];
            before.n += 1;
        }
        let mut after: Words<AFTER_WORDS> = Words::default();
        let ceil = (end + AFTER_BYTES).min(text.len());
        let mut j = end;
        while j < ceil && !after.full() {
            while j < ceil && !letter(text, j) {
                j += 1;
            }
            let word_start = j;
            while j < ceil && letter(text, j) {
                j += 1;
            }
            if word_start < j {
                after.push(&text[word_start..j]);
            }
        }
        Around {
            mask: before.mask() | after.mask(),
        }
    }

    /// For, against, or silent about `entity`.
    pub(crate) fn about(&self, entity: Entity) -> Cue {
        if self.mask & bit(entity) != 0 {
            Cue::For
        } else if entity != Entity::IbanCode && self.mask & AGAINST != 0 {
            Cue::Against
        } else {
            Cue::None
        }
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
