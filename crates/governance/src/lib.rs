//! PII governance: find personal data in text, mask it, and fingerprint
//! it for alerts without keeping it.
//!
//! # Layout
//!
//! - [`Scanner`] (`scanner.rs`): one pass over the text; candidates from
//!   runs of digit groups, IBAN-shaped words and e-mail addresses, each
//!   validated (`checksum.rs`, `iban.rs`, numbering plans), given a
//!   [`Likelihood`] from its format and the words around it
//!   (`context.rs`), overlapping candidates settled for the likeliest.
//! - [`mask`] and [`fingerprint`] (`mask.rs`): what leaves instead of a
//!   value.
//! - [`corpus`]: a seeded generator of labelled sentences in agent-style
//!   financial prose, with checksum-invalid near misses and lookalikes
//!   (order numbers, ISINs, account numbers), and the span-level score of
//!   a scanner on it.
//!
//! The recognizers and their rules:
//!
//! | entity | validation | format that is enough alone | with a cue word |
//! |---|---|---|---|
//! | `CREDIT_CARD` | Luhn, network ranges and lengths, not a published test number | 4-4-4-4 (or 4-6-5, unbroken) | very likely |
//! | `IBAN_CODE` | ISO 13616 mod 97, the country's registry length | electronic or groups of 4 | very likely |
//! | `AU_TFN` | ATO weights, mod 11 | 3-3-3 | 9 digits unbroken too |
//! | `AU_ABN` | ABR weights, mod 89 | 2-3-3-3 | 11 digits unbroken too |
//! | `AU_MEDICARE` | weights, check digit, issue number | 4-5-1 | 10 digits unbroken too |
//! | `US_SSN` | SSA area/group/serial rules, known invalid numbers | 3-2-4 (hyphens, spaces or dots) | 9 digits unbroken too |
//! | `EMAIL_ADDRESS` | RFC 5322 dot-atom, a real top-level domain | always | very likely |
//! | `PHONE_NUMBER` | numbering plans (+1, +61, +44, …; AU, US, UK national) | international, national formatted | unbroken national |
//!
//! A cue of something else ("order", "invoice", "tracking", "ISIN", "BSB",
//! a `#` prefix) lowers the likelihood two buckets, and so does being part
//! of a longer run of digit groups (the TFN-shaped tail of an ABN); findings are reported
//! from [`Likelihood::Possible`] up unless the scanner is told otherwise.

mod checksum;
mod context;
pub mod corpus;
mod entity;
pub mod iban;
mod mask;
mod scanner;

pub use checksum::{au_abn, au_medicare, au_tfn, iban_mod97, luhn, us_ssn};
pub use entity::{Entity, Finding, Likelihood};
pub use mask::{fingerprint, mask, normalize};
pub use scanner::Scanner;
