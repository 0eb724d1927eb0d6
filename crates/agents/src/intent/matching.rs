//! Splitting a query into words and matching cue phrases against them.

use super::vocabulary::{FLOATING, NOT_TYPOS};

/// A word of a query.
pub(super) struct Word {
    /// Lower-cased, without leading or trailing `'` and `-`.
    pub text: String,
    /// Whether a clause ends after it (`.`, `?`, `!`, `;`, a dash).
    pub ends_clause: bool,
    /// Where it starts in the query, in bytes.
    pub start: usize,
}

/// The words of a query.
pub(super) fn words(query: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let push = |cur: &mut String, start: usize, out: &mut Vec<Word>| {
        let trimmed = cur.trim_start_matches(['\'', '-']);
        let start = start + (cur.len() - trimmed.len());
        let text = trimmed.trim_end_matches(['\'', '-']);
        if !text.is_empty() {
            out.push(Word {
                text: text.to_owned(),
                ends_clause: false,
                start,
            });
        }
        cur.clear();
    };
    for (i, c) in query.char_indices() {
        if c.is_alphanumeric() || c == '\'' || c == '-' {
            if cur.is_empty() {
                start = i;
            }
            cur.extend(c.to_lowercase());
        } else {
            push(&mut cur, start, &mut out);
            if matches!(c, '.' | '?' | '!' | ';' | '—' | '–') {
                if let Some(last) = out.last_mut() {
                    last.ends_clause = true;
                }
            }
        }
    }
    push(&mut cur, start, &mut out);
    out
}

/// How a phrase matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Match {
    Exact,
    /// One word one typo from the cue ("portfollio", "borow").
    Typo,
}

/// Whether `phrase` matches the words from `i`. A typo is tried only when
/// `typo` is set, for a one-word phrase of six letters or more: shorter
/// cues have too many real words one letter away.
pub(super) fn matches_at(ws: &[Word], i: usize, phrase: &[&str], typo: bool) -> Option<Match> {
    if i + phrase.len() > ws.len() {
        return None;
    }
    let exact = phrase
        .iter()
        .zip(&ws[i..])
        .all(|(p, w)| part_matches(&w.text, p));
    if exact {
        return Some(Match::Exact);
    }
    (typo && phrase.len() == 1 && phrase[0].len() >= 6 && is_typo_of(&ws[i].text, phrase[0]))
        .then_some(Match::Typo)
}

/// A part of four letters or more matches words starting with it; a
/// shorter one the word or its plural; `#` a number. A hyphenated word
/// also matches by what follows a hyphen ("micro-investing" is investing,
/// "co-borrower" borrowing), unless the part has a hyphen itself.
fn part_matches(w: &str, p: &str) -> bool {
    whole_matches(w, p)
        || (!p.contains('-')
            && w.match_indices('-')
                .any(|(i, _)| whole_matches(&w[i + 1..], p)))
}

fn whole_matches(w: &str, p: &str) -> bool {
    if p == "#" {
        !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())
    } else if p.len() >= 4 {
        w.starts_with(p)
    } else {
        w == p || (w.len() == p.len() + 1 && w.starts_with(p) && w.ends_with('s'))
    }
}

/// Whether `word` is `cue` misspelt: some prefix of it one edit
/// (insertion, deletion, substitution) from the cue, the first letter
/// right (a typo there is rare, a different word likely), five letters at
/// least, and not a real word that happens to be one edit away.
fn is_typo_of(word: &str, cue: &str) -> bool {
    let (w, c) = (word.as_bytes(), cue.as_bytes());
    if w.len() < 5 || w.first() != c.first() {
        return false;
    }
    // The word lists last: most words fail the edit distance first.
    [c.len() - 1, c.len(), c.len() + 1]
        .into_iter()
        .filter(|n| *n <= w.len())
        .any(|n| within_one_edit(&w[..n], c))
        && !NOT_TYPOS.iter().any(|s| word.starts_with(s))
        && !FLOATING.iter().any(|(f, _)| *f == word)
}

fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (mut i, mut j, mut edits) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        match a.len().cmp(&b.len()) {
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    edits + (a.len() - i) + (b.len() - j) <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_of_long_cues_only_and_not_real_words() {
        assert!(is_typo_of("walth", "wealth"));
        assert!(is_typo_of("portfollio", "portfolio"));
        assert!(is_typo_of("borow", "borrow"));
        assert!(is_typo_of("invsting", "invest"));
        assert!(!is_typo_of("weather", "wealth"));
        assert!(!is_typo_of("health", "wealth"));
        assert!(!is_typo_of("invented", "invest"));
        assert!(!is_typo_of("point", "points"));
        assert!(!is_typo_of("wea", "wealth"));
    }

    #[test]
    fn a_hyphenated_word_matches_by_its_parts() {
        assert!(part_matches("micro-investing", "invest"));
        assert!(part_matches("co-borrower", "borrow"));
        assert!(part_matches("interest-only", "interest-only"));
        assert!(!part_matches("interest-only", "only-"));
        assert!(!part_matches("self-managed", "manage-d"));
        assert!(!part_matches("cardigan", "card-"));
    }
}
