//! A seeded corpus of labelled sentences in the prose agents write about
//! customers and their money, for scoring recognizers span by span.
//!
//! Three kinds of sentence: with personal data (each value labelled with
//! its entity and byte span; formats vary as people write them, with and
//! without a cue word nearby); near misses (the same sentences with values
//! that fail their checksum or validity rules, or e-mail addresses and
//! phone numbers that are not valid: nothing to find); and lookalikes
//! (order and invoice numbers, ISINs, CUSIPs, BSBs and account numbers,
//! tracking numbers, amounts, dates, IP addresses: nothing to find).
//! The same seed gives the same corpus on every platform.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ultracore_rng::SplitMix64;

use crate::checksum::{self, luhn_check_digit};
use crate::{iban, Entity};

/// One labelled value: `text[start..end]` (bytes) is `entity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub entity: Entity,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Pii,
    NearMiss,
    Lookalike,
}

/// One sentence and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    pub text: String,
    pub kind: Kind,
    pub spans: Vec<Span>,
    /// The values of the spans (PII) or the near-miss values, as written.
    #[serde(skip)]
    pub values: Vec<String>,
}

const FIRST: &[&str] = &[
    "Olivia",
    "Liam",
    "Charlotte",
    "Noah",
    "Amelia",
    "Jack",
    "Isla",
    "William",
    "Mia",
    "Oliver",
    "Ava",
    "Henry",
    "Grace",
    "Thomas",
    "Chloe",
    "James",
    "Ruby",
    "Lucas",
    "Zoë",
    "José",
    "Priya",
    "Wei",
    "Aisha",
    "Mateo",
    "Hannah",
    "Kenji",
    "Fatima",
    "Sean",
    "Ngọc",
    "Björn",
];
const LAST: &[&str] = &[
    "Smith", "Nguyen", "Williams", "Brown", "Wilson", "Taylor", "Johnson", "White", "Martin",
    "Anderson", "Thompson", "Lee", "Walker", "Harris", "Ryan", "Robinson", "Kelly", "King",
    "Müller", "O'Brien", "García", "Patel", "Chen", "Kowalski", "Rossi", "Singh",
];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com.au",
    "bigpond.net.au",
    "icloud.com",
    "example.org",
    "acme-wealth.com.au",
    "northbank.co.uk",
    "fastmail.fm",
    "proton.me",
    "uni.edu.au",
    "corp.example.io",
];

/// Templates with a value of one entity (`{v}`), a name (`{name}`), an
/// amount (`{amount}`) and a date (`{date}`). A template marked `~` says
/// nothing of what its value is: it gets the value only in the format that
/// identifies the entity alone (a TFN as 3-3-3, never nine bare digits,
/// which no recognizer can tell from any other nine digits).
fn templates(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::CreditCard => &[
            "I've noted the Visa card {v} for the recurring payment.",
            "Card number {v} was declined at 14:02; please ask {name} to retry.",
            "{name} wants the {amount} deposit charged to {v}.",
            "Your new debit card {v} will arrive within five business days.",
            "{name}'s credit card ({v}) has a limit of {amount}.",
            "Please confirm the credit card ending the transaction chain: {v}.",
            "Charge {v} for the advisory fee of {amount} on {date}.",
            "The customer read out {v} as the card to use.",
            "Refund of {amount} issued to card {v} on {date}.",
            "Payment method updated: {v} (expires 09/28).",
        ],
        Entity::AuTfn => &[
            "My TFN is {v}, please update my super fund.",
            "{name} supplied tax file number {v} for the new account.",
            "Tax file number: {v}",
            "We have {name}'s TFN on file as {v}.",
            "Please quote TFN {v} on the rollover form dated {date}.",
            "The ATO letter lists {v} as the tax file number.",
            "Update the TFN for {name} to {v} before {date}.",
        ],
        Entity::AuAbn => &[
            "Invoices go to ABN {v}.",
            "{name} trades under ABN {v} since {date}.",
            "The business number is {v} and GST is registered.",
            "Please add ABN {v} to the SMSF's records.",
            "Supplier {name} Pty Ltd, ABN {v}, billed {amount}.",
            "Our records show {v} as {name}'s ABN.",
        ],
        Entity::AuMedicare => &[
            "Medicare card {v} is valid until {date}.",
            "{name}'s Medicare number is {v}.",
            "Please confirm the Medicare number {v} for the claim of {amount}.",
            "Medicare: {v}",
            "The form lists {v} under Medicare details.",
        ],
        Entity::UsSsn => &[
            "SSN {v} was verified for {name}.",
            "{name} provided social security number {v}.",
            "The applicant's SSN is {v}.",
            "~W-9 on file: {name}, {v}.",
            "~Please mask {v} when you share the tax form.",
            "Social Security: {v}",
        ],
        Entity::IbanCode => &[
            "Please transfer {amount} to IBAN {v} by {date}.",
            "{name}'s account {v} received the wire.",
            "Payee IBAN: {v}",
            "Send the redemption proceeds to {v}.",
            "The SEPA mandate for {v} starts on {date}.",
            "Wire {amount} to {name} at {v}, reference ANNUAL-FEE.",
            "Bank details on file: {v}.",
        ],
        Entity::EmailAddress => &[
            "Contact {name} at {v} about the rebalance.",
            "Email {v} with the statement for {date}.",
            "{name} asked us to use {v} from now on.",
            "Send the report to {v}.",
            "Reply-to address: {v}",
            "I've cc'd {v} on the loan documents.",
            "The login for {name} is {v}.",
        ],
        Entity::PhoneNumber => &[
            "Call {name} on {v} after 3pm.",
            "{name}'s mobile is {v}.",
            "Phone: {v}",
            "Please ring {v} to confirm the trade.",
            "You can reach the adviser on {v}.",
            "SMS {v} when the transfer of {amount} settles.",
            "Our new number is {v}, effective {date}.",
            "{name} can be contacted on {v} or by post.",
        ],
    }
}

/// Two-value templates: `{a}` and `{b}`.
const PAIRS: &[(Entity, Entity, &str)] = &[
    (
        Entity::PhoneNumber,
        Entity::EmailAddress,
        "Contact {name} on {a} or at {b}.",
    ),
    (
        Entity::AuTfn,
        Entity::AuAbn,
        "{name}'s TFN is {a} and the ABN is {b}.",
    ),
    (
        Entity::CreditCard,
        Entity::PhoneNumber,
        "Card {a} was blocked; {name} will call from {b}.",
    ),
    (
        Entity::IbanCode,
        Entity::EmailAddress,
        "Proceeds to IBAN {a}; confirmation to {b}.",
    ),
    (
        Entity::UsSsn,
        Entity::PhoneNumber,
        "SSN {a}, daytime phone {b}.",
    ),
    (Entity::AuMedicare, Entity::AuTfn, "Medicare {a}; TFN {b}."),
];

/// Sentences with nothing to find.
const LOOKALIKES: &[&str] = &[
    "Order #{order} shipped on {date}.",
    "Your order {order} is ready for collection.",
    "Invoice INV-{year}-{small} for {amount} is due on {date}.",
    "ISIN {isin} closed at {price}, up {pct}.",
    "CUSIP {cusip} was added to the watch list.",
    "BSB {bsb}, account number {acct}.",
    "Deposit to account {acct} at BSB {bsb} cleared.",
    "Tracking number {tracking}: expect delivery in 3 days.",
    "Reference {ref3} has been logged with the broker.",
    "Your balance is {amount} as of {date}.",
    "Portfolio pf-{small} rebalanced: 12 trades, turnover {pct}.",
    "Policy {order} renews on {date} at a premium of {amount}.",
    "Server 10.{b}.{b}.{b} answered in 12 ms.",
    "Bought {units} units at {price} for a total of {amount}.",
    "Confirmation {ref3} for the switch of {amount}.",
    "The claim {order} was paid on {date}.",
    "Ticket #{ref3} was escalated to the desk.",
    "{name} holds {units} shares of ISIN {isin}.",
    "Fund code ORD-{order} replaces the old class.",
    "Booking reference {ref3} for {date}.",
];

/// Real ISINs and CUSIPs (public identifiers of securities).
const ISINS: &[&str] = &[
    "AU000000BHP4",
    "AU000000CBA7",
    "US0378331005",
    "US5949181045",
    "GB0002634946",
    "DE0007164600",
    "FR0000120271",
    "NL0010273215",
];
const CUSIPS: &[&str] = &[
    "037833100",
    "594918104",
    "88160R101",
    "02079K305",
    "30303M102",
];

/// IBAN countries the corpus draws from, with letters in their bank codes.
const IBAN_COUNTRIES: &[(&str, usize)] = &[
    ("GB", 4),
    ("IE", 4),
    ("NL", 4),
    ("DE", 0),
    ("FR", 0),
    ("ES", 0),
    ("IT", 1),
    ("BE", 0),
    ("CH", 0),
    ("AT", 0),
    ("SE", 0),
    ("NO", 0),
    ("PL", 0),
    ("PT", 0),
    ("DK", 0),
    ("FI", 0),
    ("LU", 0),
];

struct Gen {
    rng: SplitMix64,
    /// Whether bare digits may be written (the sentence names the entity).
    bare: bool,
}

fn digits_string(d: &[u8]) -> String {
    d.iter().map(|x| char::from(b'0' + x)).collect()
}

/// `digits` split into groups of `lens`, joined by `sep`.
fn grouped(digits: &str, lens: &[usize], sep: &str) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (i, l) in lens.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&digits[at..at + l]);
        at += l;
    }
    out
}

impl Gen {
    fn digit(&mut self) -> u8 {
        self.rng.below(10) as u8
    }

    fn digits(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.digit()).collect()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.below(items.len())]
    }

    fn name(&mut self) -> String {
        format!("{} {}", self.pick(FIRST), self.pick(LAST))
    }

    fn amount(&mut self) -> String {
        let whole = 50 + self.rng.below(250_000);
        let cents = self.rng.below(100);
        let s = whole.to_string();
        let mut with_commas = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                with_commas.push(',');
            }
            with_commas.push(c);
        }
        format!("${with_commas}.{cents:02}")
    }

    fn date(&mut self) -> String {
        let (y, m, d) = (
            2019 + self.rng.below(8),
            1 + self.rng.below(12),
            1 + self.rng.below(28),
        );
        match self.rng.below(3) {
            0 => format!("{y}-{m:02}-{d:02}"),
            1 => format!("{d}/{m}/{y}"),
            _ => format!(
                "{d} {} {y}",
                [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec"
                ][m - 1]
            ),
        }
    }

    /// A valid card number of a random network, as written.
    fn card(&mut self, valid: bool) -> String {
        let (prefix, len): (Vec<u8>, usize) = match self.rng.below(20) {
            0..=7 => (vec![4], 16),
            8..=12 => (vec![5, 1 + self.rng.below(5) as u8], 16),
            13..=15 => (vec![3, if self.rng.chance(0.5) { 4 } else { 7 }], 15),
            16 => (vec![6, 0, 1, 1], 16),
            17 => (
                vec![
                    3,
                    5,
                    2 + self.rng.below(4) as u8,
                    8 + self.rng.below(2) as u8,
                ],
                16,
            ),
            18 => (vec![3, 6], 14),
            _ => (vec![6, 2], 16),
        };
        let mut d = prefix;
        let rest = len - 1 - d.len();
        d.extend(self.digits(rest));
        let check = luhn_check_digit(&d);
        d.push(if valid {
            check
        } else {
            (check + 1 + self.rng.below(9) as u8) % 10
        });
        let s = digits_string(&d);
        match (len, self.rng.below(10)) {
            (15, 0..=6) => grouped(&s, &[4, 6, 5], " "),
            (14, 0..=6) => grouped(&s, &[4, 6, 4], " "),
            (16, 0..=4) => grouped(&s, &[4, 4, 4, 4], " "),
            (16, 5..=6) => grouped(&s, &[4, 4, 4, 4], "-"),
            _ => s,
        }
    }

    fn tfn(&mut self, valid: bool) -> String {
        let d = loop {
            let mut d = self.digits(8);
            d[0] = 1 + self.rng.below(9) as u8;
            const W: [u32; 8] = [1, 4, 3, 7, 5, 8, 6, 9];
            let sum: u32 = d.iter().zip(W).map(|(x, w)| u32::from(*x) * w).sum();
            // 10·c ≡ −sum (mod 11) and 10⁻¹ ≡ 10: c = 10·(11 − sum mod 11) mod 11.
            let c = (10 * (11 - sum % 11)) % 11;
            if c < 10 {
                let c = if valid {
                    c as u8
                } else {
                    (c as u8 + 1 + self.rng.below(9) as u8) % 10
                };
                d.push(c);
                if checksum::au_tfn(&d) == valid {
                    break d;
                }
            }
        };
        let s = digits_string(&d);
        match self.rng.below(if self.bare { 20 } else { 13 }) {
            0..=10 => grouped(&s, &[3, 3, 3], " "),
            11..=12 => grouped(&s, &[3, 3, 3], "-"),
            _ => s,
        }
    }

    fn abn(&mut self, valid: bool) -> String {
        let d = loop {
            let tail = self.digits(9);
            const W: [u32; 9] = [3, 5, 7, 9, 11, 13, 15, 17, 19];
            let s: u32 = tail.iter().zip(W).map(|(x, w)| u32::from(*x) * w).sum();
            let x = (89 - s % 89) % 89;
            let mut d = vec![(x / 10 + 1) as u8, (x % 10) as u8];
            d.extend(tail);
            if !valid {
                let i = self.rng.below(11);
                d[i] = (d[i] + 1 + self.rng.below(9) as u8) % 10;
            }
            if d[0] != 0 && checksum::au_abn(&d) == valid {
                break d;
            }
        };
        let s = digits_string(&d);
        if !self.bare || self.rng.chance(0.6) {
            grouped(&s, &[2, 3, 3, 3], " ")
        } else {
            s
        }
    }

    fn medicare(&mut self, valid: bool) -> String {
        let mut d = vec![2 + self.rng.below(5) as u8];
        d.extend(self.digits(7));
        const W: [u32; 8] = [1, 3, 7, 9, 1, 3, 7, 9];
        let check = (d.iter().zip(W).map(|(x, w)| u32::from(*x) * w).sum::<u32>() % 10) as u8;
        d.push(if valid {
            check
        } else {
            (check + 1 + self.rng.below(9) as u8) % 10
        });
        d.push(1 + self.rng.below(9) as u8);
        let s = digits_string(&d);
        if !self.bare || self.rng.chance(0.6) {
            grouped(&s, &[4, 5, 1], " ")
        } else {
            s
        }
    }

    fn ssn(&mut self, valid: bool) -> String {
        let d = loop {
            let area = if valid {
                1 + self.rng.below(899)
            } else {
                *[0usize, 666, 900 + self.rng.below(100)]
                    .get(self.rng.below(3))
                    .unwrap_or(&0)
            };
            let group = 1 + self.rng.below(99);
            let serial = 1 + self.rng.below(9999);
            let (group, serial) = if valid {
                (group, serial)
            } else {
                match self.rng.below(3) {
                    0 => (0, serial),
                    1 => (group, 0),
                    _ => (group, serial),
                }
            };
            let d = checksum::digits_of(&format!("{area:03}{group:02}{serial:04}"));
            if checksum::us_ssn(&d) == valid {
                break d;
            }
        };
        let s = digits_string(&d);
        match self.rng.below(if self.bare { 10 } else { 8 }) {
            0..=6 => grouped(&s, &[3, 2, 4], "-"),
            7 => grouped(&s, &[3, 2, 4], " "),
            _ => s,
        }
    }

    fn iban(&mut self, valid: bool) -> String {
        let (cc, letters) = IBAN_COUNTRIES[self.rng.below(IBAN_COUNTRIES.len())];
        let len = iban::length(cc.as_bytes()).expect("a registry country");
        let mut bban = String::new();
        for i in 0..len - 4 {
            if i < letters {
                bban.push(char::from(b'A' + self.rng.below(26) as u8));
            } else {
                bban.push(char::from(b'0' + self.digit()));
            }
        }
        let probe = format!("{cc}00{bban}");
        let mut rem = 0u32;
        for c in probe[4..].bytes().chain(probe[..4].bytes()) {
            let v = if c.is_ascii_digit() {
                u32::from(c - b'0')
            } else {
                u32::from(c - b'A') + 10
            };
            rem = if v >= 10 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            };
        }
        let check = 98 - rem;
        let mut value = format!("{cc}{check:02}{bban}");
        if !valid {
            // One digit of the account changed: mod 97 catches every such error.
            let digits: Vec<usize> = value
                .bytes()
                .enumerate()
                .skip(4)
                .filter(|(_, b)| b.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            let i = digits[self.rng.below(digits.len())];
            let old = value.as_bytes()[i] - b'0';
            let new = char::from(b'0' + (old + 1 + self.rng.below(9) as u8) % 10);
            value.replace_range(i..=i, &new.to_string());
        }
        debug_assert_eq!(checksum::iban_mod97(value.as_bytes()), valid);
        if self.rng.chance(0.55) {
            value
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).expect("ASCII"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            value
        }
    }

    fn email(&mut self, valid: bool) -> String {
        let first = ascii(self.pick(FIRST)).to_lowercase();
        let last = ascii(self.pick(LAST)).to_lowercase().replace('\'', "");
        let local = match self.rng.below(5) {
            0 => format!("{first}.{last}"),
            1 => format!("{}{last}", &first[..1]),
            2 => format!("{first}_{last}{}", 1950 + self.rng.below(60)),
            3 => format!("{first}.{last}+statements"),
            _ => first.clone(),
        };
        let domain = self.pick(DOMAINS);
        if valid {
            return format!("{local}@{domain}");
        }
        let company = domain.split('.').next().unwrap_or("mail");
        match self.rng.below(4) {
            0 => format!("{local}@{company}"),
            1 => format!("{local}(at){domain}"),
            2 => format!("{local}@{company}.internal"),
            _ => format!("{local}@@{domain}"),
        }
    }

    fn phone(&mut self, valid: bool) -> String {
        let d = |g: &mut Gen, n: usize| digits_string(&g.digits(n));
        if !valid {
            return match self.rng.below(4) {
                0 => format!("04{} {} {}", d(self, 2), d(self, 3), d(self, 2)),
                1 => format!("(1{}) {}-{}", d(self, 2), 2 + self.rng.below(8), d(self, 6)),
                2 => format!("+61 4{} {} {}", d(self, 2), d(self, 3), d(self, 2)),
                _ => format!("0{} {}", 5 + self.rng.below(2), d(self, 6)),
            };
        }
        // Numbers in assigned ranges (real area codes and mobile prefixes),
        // so that a recognizer checking numbering plans can accept them.
        let area = |g: &mut Gen| {
            g.pick(&[
                "212", "415", "617", "312", "646", "213", "305", "202", "206", "512", "713", "404",
            ])
            .to_owned()
        };
        let exchange = |g: &mut Gen| format!("{}{}", 2 + g.rng.below(8), d(g, 2));
        let au_mobile = |g: &mut Gen| {
            format!(
                "4{}{}",
                g.pick(&["0", "1", "2", "3", "5", "7", "8", "9"]),
                d(g, 1)
            )
        };
        match self.rng.below(12) {
            0 | 1 => format!("+61 {} {} {}", au_mobile(self), d(self, 3), d(self, 3)),
            2 | 3 => format!("0{} {} {}", au_mobile(self), d(self, 3), d(self, 3)),
            4 => format!(
                "(0{}) {}{} {}",
                [2, 3, 7, 8][self.rng.below(4)],
                8 + self.rng.below(2),
                d(self, 3),
                d(self, 4)
            ),
            5 => format!(
                "0{} {}{} {}",
                [2, 3, 7, 8][self.rng.below(4)],
                8 + self.rng.below(2),
                d(self, 3),
                d(self, 4)
            ),
            6 => format!("1300 {} {}", d(self, 3), d(self, 3)),
            7 => format!("({}) {}-{}", area(self), exchange(self), d(self, 4)),
            8 => format!("{}-{}-{}", area(self), exchange(self), d(self, 4)),
            9 => format!("+1 {} {} {}", area(self), exchange(self), d(self, 4)),
            10 => format!("+44 20 7{} {}", d(self, 3), d(self, 4)),
            _ => format!(
                "+44 7{}{} {}",
                4 + self.rng.below(6),
                d(self, 2),
                d(self, 6)
            ),
        }
    }

    fn value(&mut self, entity: Entity, valid: bool) -> String {
        match entity {
            Entity::CreditCard => self.card(valid),
            Entity::AuTfn => self.tfn(valid),
            Entity::AuAbn => self.abn(valid),
            Entity::AuMedicare => self.medicare(valid),
            Entity::UsSsn => self.ssn(valid),
            Entity::IbanCode => self.iban(valid),
            Entity::EmailAddress => self.email(valid),
            Entity::PhoneNumber => self.phone(valid),
        }
    }

    /// Fills `{name}`, `{amount}`, `{date}` and the lookalike fields.
    fn filler(&mut self, field: &str) -> String {
        match field {
            "name" => self.name(),
            "amount" => self.amount(),
            "date" => self.date(),
            "order" => {
                let n = 7 + self.rng.below(4);
                let mut d = self.digits(n);
                d[0] = 1 + self.rng.below(9) as u8;
                digits_string(&d)
            }
            "year" => (2019 + self.rng.below(8)).to_string(),
            "small" => (1 + self.rng.below(99_999)).to_string(),
            "isin" => self.pick(ISINS).to_owned(),
            "cusip" => self.pick(CUSIPS).to_owned(),
            "bsb" => format!("{:03}-{:03}", self.rng.below(1000), self.rng.below(1000)),
            "acct" => match self.rng.below(3) {
                0 => digits_string(&self.digits(8)),
                1 => digits_string(&self.digits(9)),
                _ => grouped(&digits_string(&self.digits(8)), &[4, 4], " "),
            },
            "tracking" => match self.rng.below(3) {
                0 => format!(
                    "1Z{}{}",
                    digits_string(&self.digits(6)),
                    digits_string(&self.digits(10))
                ),
                1 => format!("LX{}AU", digits_string(&self.digits(9))),
                _ => grouped(&digits_string(&self.digits(22)), &[4, 4, 4, 4, 4, 2], " "),
            },
            "ref3" => grouped(&digits_string(&self.digits(9)), &[3, 3, 3], " "),
            "price" => format!("${}.{:02}", 1 + self.rng.below(400), self.rng.below(100)),
            "pct" => format!("{}.{}%", self.rng.below(20), self.rng.below(10)),
            "units" => (1 + self.rng.below(20_000)).to_string(),
            "b" => self.rng.below(256).to_string(),
            _ => String::new(),
        }
    }

    /// Expands `template`: `{v}`, `{a}`, `{b}` become `values` (labelled
    /// as `labels` when given), other fields fillers.
    fn expand(
        &mut self,
        template: &str,
        values: &[(&str, String, Option<Entity>)],
    ) -> (String, Vec<Span>) {
        let mut text = String::new();
        let mut spans = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let close = open
                + rest[open..]
                    .find('}')
                    .expect("templates close their fields");
            let field = &rest[open + 1..close];
            match values.iter().find(|(k, _, _)| *k == field) {
                Some((_, v, label)) => {
                    let start = text.len();
                    text.push_str(v);
                    if let Some(entity) = label {
                        spans.push(Span {
                            entity: *entity,
                            start,
                            end: text.len(),
                        });
                    }
                }
                None => {
                    let v = self.filler(field);
                    text.push_str(&v);
                }
            }
            rest = &rest[close + 1..];
        }
        text.push_str(rest);
        (text, spans)
    }

    /// A template of `entity`, without its `~` mark, which sets whether
    /// bare digits may be written.
    fn template(&mut self, entity: Entity) -> &'static str {
        let t = self.pick(templates(entity));
        match t.strip_prefix('~') {
            Some(t) => {
                self.bare = false;
                t
            }
            None => {
                self.bare = true;
                t
            }
        }
    }

    fn sentence(&mut self) -> Sentence {
        let roll = self.rng.below(100);
        if roll < 55 {
            // Personal data: one value, or two (one sentence in six).
            if self.rng.below(6) == 0 {
                let (a, b, t) = PAIRS[self.rng.below(PAIRS.len())];
                let (va, vb) = (self.value(a, true), self.value(b, true));
                let (text, spans) =
                    self.expand(t, &[("a", va.clone(), Some(a)), ("b", vb.clone(), Some(b))]);
                return Sentence {
                    text,
                    kind: Kind::Pii,
                    spans,
                    values: vec![va, vb],
                };
            }
            let entity = Entity::ALL[self.rng.below(Entity::ALL.len())];
            let t = self.template(entity);
            let v = self.value(entity, true);
            self.bare = true;
            let (text, spans) = self.expand(t, &[("v", v.clone(), Some(entity))]);
            Sentence {
                text,
                kind: Kind::Pii,
                spans,
                values: vec![v],
            }
        } else if roll < 80 {
            let entity = Entity::ALL[self.rng.below(Entity::ALL.len())];
            let t = self.template(entity);
            let v = self.value(entity, false);
            self.bare = true;
            let (text, _) = self.expand(t, &[("v", v.clone(), None)]);
            Sentence {
                text,
                kind: Kind::NearMiss,
                spans: Vec::new(),
                values: vec![v],
            }
        } else {
            let t = self.pick(LOOKALIKES);
            let (text, _) = self.expand(t, &[]);
            Sentence {
                text,
                kind: Kind::Lookalike,
                spans: Vec::new(),
                values: Vec::new(),
            }
        }
    }
}

/// ASCII letters of a name (for e-mail local parts).
fn ascii(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'é' => 'e',
            'ë' => 'e',
            'ü' => 'u',
            'ö' => 'o',
            'í' => 'i',
            'ọ' => 'o',
            c => c,
        })
        .filter(|c| c.is_ascii_alphabetic())
        .collect()
}

/// `n` sentences drawn from `seed`.
pub fn generate(seed: u64, n: usize) -> Vec<Sentence> {
    let mut g = Gen {
        rng: SplitMix64::new(seed),
        bare: true,
    };
    (0..n).map(|_| g.sentence()).collect()
}

/// True positives, false positives and false negatives of one entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub labelled: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        let found = self.true_positives + self.false_positives;
        if found == 0 {
            1.0
        } else {
            self.true_positives as f64 / found as f64
        }
    }

    pub fn recall(&self) -> f64 {
        if self.labelled == 0 {
            1.0
        } else {
            self.true_positives as f64 / self.labelled as f64
        }
    }
}

/// A scanner's span-level score on a corpus: a finding counts only with
/// the labelled entity and exactly the labelled span.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub sentences: usize,
    pub entities: BTreeMap<Entity, Counts>,
    pub near_misses: usize,
    /// Near-miss sentences where something was found.
    pub near_misses_flagged: usize,
    pub lookalikes: usize,
    pub lookalikes_flagged: usize,
}

/// Scores `find` (text → `(entity, start, end)` findings) on `corpus`.
pub fn score(
    corpus: &[Sentence],
    mut find: impl FnMut(&str) -> Vec<(Entity, usize, usize)>,
) -> Score {
    let mut s = Score {
        sentences: corpus.len(),
        entities: Entity::ALL
            .iter()
            .map(|e| (*e, Counts::default()))
            .collect(),
        ..Score::default()
    };
    for sentence in corpus {
        let found = find(&sentence.text);
        match sentence.kind {
            Kind::NearMiss => {
                s.near_misses += 1;
                s.near_misses_flagged += usize::from(!found.is_empty());
            }
            Kind::Lookalike => {
                s.lookalikes += 1;
                s.lookalikes_flagged += usize::from(!found.is_empty());
            }
            Kind::Pii => {}
        }
        for span in &sentence.spans {
            let c = s.entities.entry(span.entity).or_default();
            c.labelled += 1;
            if found.contains(&(span.entity, span.start, span.end)) {
                c.true_positives += 1;
            } else {
                c.false_negatives += 1;
            }
        }
        for (entity, start, end) in found {
            let labelled = sentence
                .spans
                .iter()
                .any(|l| l.entity == entity && l.start == start && l.end == end);
            if !labelled {
                s.entities.entry(entity).or_default().false_positives += 1;
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_corpus() {
        assert_eq!(generate(7, 200), generate(7, 200));
        assert_ne!(generate(7, 200), generate(8, 200));
    }

    #[test]
    fn labels_point_at_valid_values() {
        for s in generate(11, 3000) {
            for span in &s.spans {
                let v = &s.text[span.start..span.end];
                let d = checksum::digits_of(v);
                let ok = match span.entity {
                    Entity::CreditCard => checksum::luhn(&d),
                    Entity::AuTfn => checksum::au_tfn(&d),
                    Entity::AuAbn => checksum::au_abn(&d),
                    Entity::AuMedicare => checksum::au_medicare(&d),
                    Entity::UsSsn => checksum::us_ssn(&d),
                    Entity::IbanCode => {
                        let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                        checksum::iban_mod97(compact.as_bytes())
                    }
                    Entity::EmailAddress => v.contains('@'),
                    Entity::PhoneNumber => d.len() >= 9,
                };
                assert!(ok, "{:?} {v:?} in {:?}", span.entity, s.text);
            }
        }
    }
}
