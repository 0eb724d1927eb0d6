//! One pass over the text finds every candidate: runs of digit groups
//! (cards, TFNs, ABNs, Medicare numbers, SSNs, phone numbers), IBAN-shaped
//! words and e-mail addresses. Each candidate is validated (checksum,
//! issuer ranges, numbering plan, registry length), given a likelihood
//! from its format and the words around it, and overlapping candidates
//! are settled in favour of the likeliest.

use crate::context::{Around, Cue};
use crate::{checksum, iban, Entity, Finding, Likelihood};

/// Digit groups of a run beyond this are not looked at.
const MAX_GROUPS: usize = 12;
/// Digits of the longest value a recognizer accepts (a 19-digit card).
const MAX_DIGITS: usize = 19;
/// Digits of the shortest (a national phone number without area code).
const MIN_DIGITS: usize = 8;

/// Scans text for personal data.
#[derive(Debug, Clone)]
pub struct Scanner {
    min: Likelihood,
    entities: Vec<Entity>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            min: Likelihood::Possible,
            entities: Entity::ALL.to_vec(),
        }
    }
}

/// Card numbers published for testing by the payment networks and
/// processors: never a person's card, so never a finding.
const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4000056655665556",
    "4222222222222",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
    "3566002020360505",
    "30569309025904",
    "38520000023237",
    "6200000000000005",
];

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Reports findings from `min` up (default [`Likelihood::Possible`]).
    pub fn min_likelihood(mut self, min: Likelihood) -> Scanner {
        self.min = min;
        self
    }

    /// Looks for these entities only.
    pub fn entities(mut self, entities: &[Entity]) -> Scanner {
        self.entities = entities.to_vec();
        self
    }

    /// The findings in `text`, in order, none overlapping another.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        self.scan_bytes(text.as_bytes())
    }

    /// [`Scanner::scan`] for bytes that may not be UTF-8 (a line of a
    /// file): the recognizers read ASCII only, offsets are bytes.
    pub fn scan_bytes(&self, text: &[u8]) -> Vec<Finding> {
        let mut candidates = Vec::new();
        candidates_of(text, &mut candidates);
        candidates.retain(|c| self.entities.contains(&c.entity));
        let mut kept = settle(candidates);
        kept.retain(|f| f.likelihood >= self.min);
        kept
    }
}

/// Keeps the likeliest of overlapping candidates (then checksum entities,
/// then the longer), in text order. Candidates are settled in clusters
/// of transitively overlapping spans, so a long document costs what its
/// sentences would.
fn settle(mut candidates: Vec<Finding>) -> Vec<Finding> {
    candidates.sort_by_key(|c| c.start);
    let mut kept = Vec::with_capacity(candidates.len());
    let mut from = 0;
    while from < candidates.len() {
        let mut to = from + 1;
        let mut end = candidates[from].end;
        while to < candidates.len() && candidates[to].start < end {
            end = end.max(candidates[to].end);
            to += 1;
        }
        settle_cluster(&mut candidates[from..to], &mut kept);
        from = to;
    }
    kept
}

/// Settles one cluster, appending what it keeps to `kept` in text order.
fn settle_cluster(cluster: &mut [Finding], kept: &mut Vec<Finding>) {
    if let [only] = cluster {
        kept.push(*only);
        return;
    }
    cluster.sort_by(|a, b| {
        b.likelihood
            .cmp(&a.likelihood)
            .then(b.entity.is_checked().cmp(&a.entity.is_checked()))
            .then(b.len().cmp(&a.len()))
            .then(a.start.cmp(&b.start))
    });
    let first = kept.len();
    for c in cluster.iter() {
        if !kept[first..].iter().any(|k| k.overlaps(c)) {
            kept.push(*c);
        }
    }
    kept[first..].sort_by_key(|f| f.start);
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every candidate of every recognizer in `text`.
fn candidates_of(text: &[u8], out: &mut Vec<Finding>) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        let c = text[i];
        let at_word_start = i == 0 || !is_word_byte(text[i - 1]);
        match c {
            b'0'..=b'9' if at_word_start => i = digit_run(text, i, out),
            b'+' | b'(' if i + 1 < n && text[i + 1].is_ascii_digit() && at_word_start => {
                i = digit_run(text, i, out)
            }
            b'@' => {
                email(text, i, out);
                i += 1;
            }
            b'A'..=b'Z' if at_word_start => {
                if i + 4 <= n
                    && text[i + 1].is_ascii_uppercase()
                    && text[i + 2].is_ascii_digit()
                    && text[i + 3].is_ascii_digit()
                {
                    iban_at(text, i, out);
                }
                while i < n && is_word_byte(text[i]) {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' => {
                while i < n && is_word_byte(text[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
}

/// A run of digit groups as written: `+61 412 345 678`, `(02) 9876 5432`,
/// `4111-1111-1111-1111`, `123456782`.
#[derive(Debug)]
struct Run {
    /// Byte range of each group.
    groups: [(usize, usize); MAX_GROUPS],
    /// The separator after each group but the last: b' ', b'-', b'.' or b')'.
    seps: [u8; MAX_GROUPS],
    k: usize,
    plus: bool,
    paren: bool,
    /// The run is glued to a word before it (`ORD-123…`) or after it
    /// (`123abc`, `1,234`): windows cannot start (end) at its edge.
    glued_head: bool,
    glued_tail: bool,
}

/// Reads the run starting at `i` and records the candidates in it.
/// Returns the byte after the run.
fn digit_run(text: &[u8], i: usize, out: &mut Vec<Finding>) -> usize {
    let n = text.len();
    let mut run = Run {
        groups: [(0, 0); MAX_GROUPS],
        seps: [0; MAX_GROUPS],
        k: 0,
        plus: text[i] == b'+',
        paren: text[i] == b'(',
        glued_head: false,
        glued_tail: false,
    };
    // `ORD-482913775`, `pf_1234`, `v2.123`: part of an identifier; `$123`: an amount.
    if i >= 1 {
        let p = text[i - 1];
        run.glued_head = p == b'$'
            || (matches!(p, b'-' | b'/' | b'_' | b'.') && i >= 2 && is_word_byte(text[i - 2]))
            || after_iban_head(text, i);
    }
    let mut pos = if run.plus || run.paren { i + 1 } else { i };
    loop {
        let s = pos;
        while pos < n && text[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == s || run.k == MAX_GROUPS {
            break;
        }
        run.groups[run.k] = (s, pos);
        run.k += 1;
        if pos + 1 >= n {
            break;
        }
        let sep = text[pos];
        if run.paren && run.k == 1 && sep == b')' {
            let mut next = pos + 1;
            if next < n && text[next] == b' ' {
                next += 1;
            }
            if next < n && text[next].is_ascii_digit() {
                run.seps[run.k - 1] = b')';
                pos = next;
                continue;
            }
            break;
        }
        if matches!(sep, b' ' | b'-' | b'.') && text[pos + 1].is_ascii_digit() {
            run.seps[run.k - 1] = sep;
            pos += 1;
            continue;
        }
        break;
    }
    if run.k == 0 {
        return pos.max(i + 1);
    }
    let end = run.groups[run.k - 1].1;
    if run.paren && (run.k == 1 || run.seps[0] != b')') {
        // An opening parenthesis with no closing one after the first group.
        run.paren = false;
    }
    if end < n {
        let next = text[end];
        if is_word_byte(next)
            || next == b'%'
            || (matches!(next, b',' | b'.' | b'/' | b':')
                && end + 1 < n
                && text[end + 1].is_ascii_digit())
        {
            run.glued_tail = true;
        }
    }
    windows(text, &run, out);
    // Skip the rest of a glued word so its digits do not start a run.
    let mut after = end;
    if run.glued_tail {
        while after < n && is_word_byte(text[after]) {
            after += 1;
        }
    }
    after
}

/// Whether the digits at `i` continue an IBAN-shaped value printed in
/// groups of four (`CC99 `, or `IT38 D992 ` and so on): they are the rest
/// of that value, valid or not, not a number of their own.
fn after_iban_head(text: &[u8], i: usize) -> bool {
    let mut j = i;
    // An IBAN has at most 8 groups before its last.
    for _ in 0..8 {
        if j < 5 || text[j - 1] != b' ' {
            return false;
        }
        let g = j - 5;
        let group = &text[g..j - 1];
        if !group.iter().all(u8::is_ascii_alphanumeric) || (g > 0 && is_word_byte(text[g - 1])) {
            return false;
        }
        if group[0].is_ascii_uppercase()
            && group[1].is_ascii_uppercase()
            && group[2].is_ascii_digit()
            && group[3].is_ascii_digit()
        {
            return iban::length(&group[..2]).is_some();
        }
        j = g;
    }
    false
}

/// A candidate span of a run: consecutive groups, split from the rest at spaces.
#[derive(Debug)]
struct Window<'a> {
    digits: &'a [u8],
    lens: &'a [u8],
    /// Separators between the window's groups.
    seps: &'a [u8],
    plus: bool,
    paren: bool,
}

impl Window<'_> {
    fn shape(&self, lens: &[u8]) -> bool {
        self.lens == lens
    }

    /// All separators the same and one of `allowed` (a single group passes).
    fn uniform(&self, allowed: &[u8]) -> bool {
        self.seps
            .iter()
            .all(|s| *s == self.seps[0] && allowed.contains(s))
    }

    fn unbroken(&self) -> bool {
        self.lens.len() == 1
    }

    fn starts(&self, prefix: &[u8]) -> bool {
        self.digits.starts_with(prefix)
    }
}

fn windows(text: &[u8], run: &Run, out: &mut Vec<Finding>) {
    for a in 0..run.k {
        if a == 0 && run.glued_head {
            continue;
        }
        if a > 0 && run.seps[a - 1] != b' ' {
            continue;
        }
        let mut digits = [0u8; MAX_DIGITS];
        let mut lens = [0u8; MAX_GROUPS];
        let mut count = 0;
        for b in a + 1..=run.k {
            let (s, e) = run.groups[b - 1];
            if count + (e - s) > MAX_DIGITS {
                break;
            }
            for (d, byte) in digits[count..].iter_mut().zip(&text[s..e]) {
                *d = byte - b'0';
            }
            count += e - s;
            lens[b - 1 - a] = (e - s) as u8;
            if count < MIN_DIGITS {
                continue;
            }
            let tail_ok = if b == run.k {
                !run.glued_tail
            } else {
                run.seps[b - 1] == b' '
            };
            if !tail_ok {
                continue;
            }
            let plus = a == 0 && run.plus;
            let paren = a == 0 && run.paren;
            let w = Window {
                digits: &digits[..count],
                lens: &lens[..b - a],
                seps: &run.seps[a..b - 1],
                plus,
                paren,
            };
            let start = if plus || paren {
                run.groups[0].0 - 1
            } else {
                run.groups[a].0
            };
            let end = run.groups[b - 1].1;
            // Part of a longer run of digit groups (`74 107 828 802`, an
            // ABN, holds a TFN-shaped `107 828 802`): two buckets less.
            let partial = a > 0 || b < run.k;
            recognize(text, &w, start, end, partial, out);
        }
    }
}

/// Every recognizer on one window.
fn recognize(
    text: &[u8],
    w: &Window<'_>,
    start: usize,
    end: usize,
    partial: bool,
    out: &mut Vec<Finding>,
) {
    let found: [(Entity, &'static str, Option<Likelihood>); 6] = [
        (Entity::CreditCard, "credit_card", card(w)),
        (Entity::AuTfn, "au_tfn", tfn(w)),
        (Entity::AuAbn, "au_abn", abn(w)),
        (Entity::AuMedicare, "au_medicare", medicare(w)),
        (Entity::UsSsn, "us_ssn", ssn(w)),
        (Entity::PhoneNumber, "phone_number", phone(w)),
    ];
    let mut around: Option<Around> = None;
    for (entity, recognizer, base) in found {
        let Some(base) = base else { continue };
        let ctx = around.get_or_insert_with(|| Around::read(text, start, end));
        let mut likelihood = match ctx.about(entity) {
            Cue::For => base.shift(2),
            Cue::Against => base.shift(-2),
            Cue::None => base,
        };
        // `#482 913 775`: numbered like an order or a ticket.
        if start > 0 && text[start - 1] == b'#' {
            likelihood = likelihood.shift(-2);
        }
        if partial {
            likelihood = likelihood.shift(-2);
        }
        out.push(Finding {
            entity,
            start,
            end,
            likelihood,
            recognizer,
        });
    }
}

/// Issuer ranges and lengths of the card networks.
fn card_network_accepts(d: &[u8]) -> bool {
    let n = d.len();
    let num = |k: usize| d[..k].iter().fold(0u32, |a, x| a * 10 + u32::from(*x));
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),                  // Visa
        5 => (51..=55).contains(&num(2)) && n == 16,     // Mastercard
        2 => (2221..=2720).contains(&num(4)) && n == 16, // Mastercard 2-series
        3 => {
            (matches!(num(2), 34 | 37) && n == 15)              // American Express
                || ((3528..=3589).contains(&num(4)) && (16..=19).contains(&n)) // JCB
                || (((300..=305).contains(&num(3)) || matches!(num(2), 36 | 38 | 39))
                    && (14..=19).contains(&n)) // Diners Club
        }
        6 => {
            (num(4) == 6011 || (644..=649).contains(&num(3)) || num(2) == 65 || num(2) == 62)
                && (16..=19).contains(&n) // Discover, UnionPay
        }
        _ => false,
    }
}

fn card(w: &Window<'_>) -> Option<Likelihood> {
    let n = w.digits.len();
    if !(13..=19).contains(&n) || w.plus || w.paren || !w.uniform(b" -") {
        return None;
    }
    let last = *w.lens.last()?;
    let grouped = w.unbroken()
        || (w.lens[..w.lens.len() - 1].iter().all(|l| *l == 4) && (1..=4).contains(&last))
        || w.shape(&[4, 6, 5])
        || w.shape(&[4, 6, 4]);
    if !grouped || !card_network_accepts(w.digits) || !checksum::luhn(w.digits) {
        return None;
    }
    let is_test = TEST_CARDS
        .iter()
        .any(|t| t.len() == n && t.bytes().zip(w.digits).all(|(a, b)| a - b'0' == *b));
    (!is_test).then_some(Likelihood::Likely)
}

fn tfn(w: &Window<'_>) -> Option<Likelihood> {
    if w.plus || w.paren || !checksum::au_tfn(w.digits) {
        return None;
    }
    if w.unbroken() {
        Some(Likelihood::Unlikely)
    } else if w.shape(&[3, 3, 3]) && w.uniform(b" -") {
        Some(Likelihood::Possible)
    } else {
        None
    }
}

fn abn(w: &Window<'_>) -> Option<Likelihood> {
    if w.plus || w.paren || !checksum::au_abn(w.digits) {
        return None;
    }
    if w.unbroken() {
        Some(Likelihood::Unlikely)
    } else if w.shape(&[2, 3, 3, 3]) && w.uniform(b" -") {
        Some(Likelihood::Possible)
    } else {
        None
    }
}

fn medicare(w: &Window<'_>) -> Option<Likelihood> {
    if w.plus || w.paren || !checksum::au_medicare(w.digits) {
        return None;
    }
    if w.unbroken() {
        Some(Likelihood::Unlikely)
    } else if w.shape(&[4, 5, 1]) && w.uniform(b" -") {
        Some(Likelihood::Possible)
    } else {
        None
    }
}

fn ssn(w: &Window<'_>) -> Option<Likelihood> {
    if w.plus || w.paren || !checksum::us_ssn(w.digits) {
        return None;
    }
    if w.unbroken() {
        Some(Likelihood::VeryUnlikely)
    } else if w.shape(&[3, 2, 4]) && w.uniform(b"- .") {
        Some(Likelihood::Possible)
    } else {
        None
    }
}

/// Numbering plans: international numbers by country code where the
/// plan is known (others by length), and national Australian, US and UK
/// formats.
fn phone(w: &Window<'_>) -> Option<Likelihood> {
    let d = w.digits;
    let n = d.len();
    if w.plus {
        // Separators between groups: spaces, hyphens or dots, one kind.
        if !w.uniform(b" -.") {
            return None;
        }
        let known = if d[0] == 1 {
            Some(n == 11 && d[1] >= 2 && d[4] >= 2)
        } else if w.starts(&[6, 1]) {
            Some(n == 11 && matches!(d[2], 2 | 3 | 4 | 7 | 8))
        } else if w.starts(&[4, 4]) {
            Some((11..=12).contains(&n) && d[2] != 0)
        } else if w.starts(&[6, 4]) {
            Some((10..=12).contains(&n))
        } else if w.starts(&[6, 5]) {
            Some(n == 10)
        } else if w.starts(&[8, 5, 2]) {
            Some(n == 11)
        } else if w.starts(&[9, 1]) {
            Some(n == 12 && d[2] >= 6)
        } else if w.starts(&[3, 3]) {
            Some(n == 11 && d[2] != 0)
        } else if w.starts(&[4, 9]) {
            Some((9..=14).contains(&n))
        } else if w.starts(&[8, 1]) {
            Some((11..=12).contains(&n))
        } else if w.starts(&[8, 6]) {
            Some(n == 13)
        } else {
            None
        };
        return match known {
            Some(true) => Some(Likelihood::Likely),
            Some(false) => None,
            None => (8..=15).contains(&n).then_some(Likelihood::Possible),
        };
    }
    let formatted = |shapes: &[&[u8]], seps: &[u8]| {
        !w.unbroken() && shapes.iter().any(|s| w.shape(s)) && w.uniform(seps)
    };
    // Australia: 0 + area or mobile code + 8 digits; 1300 / 1800 numbers.
    if n == 10 && d[0] == 0 && matches!(d[1], 2 | 3 | 4 | 7 | 8) {
        if w.paren && w.shape(&[2, 4, 4]) && w.seps[1] == b' ' {
            return Some(Likelihood::Possible);
        }
        if formatted(&[&[4, 3, 3], &[2, 4, 4]], b" -") {
            return Some(Likelihood::Possible);
        }
        return (w.unbroken() && !w.paren).then_some(Likelihood::Unlikely);
    }
    if n == 10 && (w.starts(&[1, 3, 0, 0]) || w.starts(&[1, 8, 0, 0])) && !w.paren {
        if formatted(&[&[4, 3, 3]], b" -") {
            return Some(Likelihood::Possible);
        }
        return w.unbroken().then_some(Likelihood::Unlikely);
    }
    // North America: area and exchange codes start 2–9.
    if n == 10 && d[0] >= 2 && d[3] >= 2 {
        if w.paren && w.shape(&[3, 3, 4]) && matches!(w.seps[1], b'-' | b' ') {
            return Some(Likelihood::Possible);
        }
        if !w.paren && formatted(&[&[3, 3, 4]], b"-.") {
            return Some(Likelihood::Possible);
        }
        if !w.paren && formatted(&[&[3, 3, 4]], b" ") {
            return Some(Likelihood::Unlikely);
        }
        return (w.unbroken() && !w.paren).then_some(Likelihood::Unlikely);
    }
    if n == 11 && d[0] == 1 && d[1] >= 2 && d[4] >= 2 && !w.paren {
        return formatted(&[&[1, 3, 3, 4]], b"-. ").then_some(Likelihood::Possible);
    }
    // United Kingdom: 0 + 10 digits.
    if n == 11 && d[0] == 0 && d[1] != 0 && !w.paren {
        return formatted(&[&[5, 6], &[3, 4, 4], &[4, 3, 4]], b" ").then_some(Likelihood::Possible);
    }
    None
}

/// An IBAN starting at `i` (two capital letters and two digits): the
/// country's length exactly, electronic or printed in groups of four.
fn iban_at(text: &[u8], i: usize, out: &mut Vec<Finding>) {
    let Some(len) = iban::length(&text[i..i + 2]) else {
        return;
    };
    let n = text.len();
    let mut value = [0u8; 34];
    let mut count = 0;
    let mut j = i;
    while count < len && j < n {
        let c = text[j];
        if c.is_ascii_alphanumeric() {
            value[count] = c.to_ascii_uppercase();
            count += 1;
            j += 1;
        } else if c == b' ' && count % 4 == 0 && j + 1 < n && text[j + 1].is_ascii_alphanumeric() {
            j += 1;
        } else {
            break;
        }
    }
    if count != len || (j < n && is_word_byte(text[j])) || !checksum::iban_mod97(&value[..len]) {
        return;
    }
    let likelihood = match Around::read(text, i, j).about(Entity::IbanCode) {
        Cue::For => Likelihood::VeryLikely,
        _ => Likelihood::Likely,
    };
    out.push(Finding {
        entity: Entity::IbanCode,
        start: i,
        end: j,
        likelihood,
        recognizer: "iban_code",
    });
}

/// Top-level domains other than the two-letter country codes.
const GENERIC_TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "edu",
    "gov",
    "mil",
    "int",
    "info",
    "biz",
    "name",
    "pro",
    "aero",
    "coop",
    "museum",
    "mobi",
    "jobs",
    "travel",
    "tel",
    "asia",
    "cat",
    "app",
    "dev",
    "cloud",
    "online",
    "site",
    "tech",
    "store",
    "blog",
    "shop",
    "email",
    "bank",
    "finance",
    "financial",
    "money",
    "capital",
    "fund",
    "insurance",
    "law",
    "legal",
    "agency",
    "company",
    "group",
    "global",
    "solutions",
    "services",
    "digital",
    "network",
    "systems",
    "media",
    "news",
    "live",
    "life",
    "world",
    "today",
    "space",
    "xyz",
    "top",
    "club",
    "vip",
    "work",
    "care",
    "health",
    "consulting",
    "partners",
    "invest",
    "investments",
    "tax",
    "accountant",
    "credit",
    "loans",
    "mortgage",
    "exchange",
    "trading",
    "markets",
];

fn local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// An e-mail address around the `@` at `at`.
fn email(text: &[u8], at: usize, out: &mut Vec<Finding>) {
    let n = text.len();
    let mut s = at;
    while s > 0 && local_byte(text[s - 1]) {
        s -= 1;
    }
    while s < at && matches!(text[s], b'.' | b'-' | b'+') {
        s += 1;
    }
    if s == at || text[at - 1] == b'.' || text[s..at].windows(2).any(|p| p == b"..") {
        return;
    }
    // Domain labels: letters, digits and inner hyphens, joined by dots.
    let mut q = at + 1;
    let mut labels = 0;
    let mut tld;
    loop {
        let ls = q;
        while q < n && (text[q].is_ascii_alphanumeric() || text[q] == b'-') {
            q += 1;
        }
        if q == ls || text[ls] == b'-' || text[q - 1] == b'-' {
            return;
        }
        labels += 1;
        tld = (ls, q);
        if q + 1 < n && text[q] == b'.' && text[q + 1].is_ascii_alphanumeric() {
            q += 1;
            continue;
        }
        break;
    }
    if labels < 2 || (q < n && matches!(text[q], b'@' | b'_')) {
        return;
    }
    let tld = &text[tld.0..tld.1];
    let known = tld.iter().all(u8::is_ascii_alphabetic)
        && (tld.len() == 2
            || GENERIC_TLDS
                .iter()
                .any(|g| g.as_bytes().eq_ignore_ascii_case(tld)));
    if !known {
        return;
    }
    let likelihood = match Around::read(text, s, q).about(Entity::EmailAddress) {
        Cue::For => Likelihood::VeryLikely,
        _ => Likelihood::Likely,
    };
    out.push(Finding {
        entity: Entity::EmailAddress,
        start: s,
        end: q,
        likelihood,
        recognizer: "email_address",
    });
}

#[cfg(test)]
mod tests;
