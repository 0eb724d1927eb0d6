//! The planner's intent detection: which agents a customer's question is
//! for (card, loan, wealth; general when none), several at once when the
//! question asks several things. Rules, not a model: every decision is a
//! list of the cue words that made it, so an answer can say why it went
//! to the agents it went to.
//!
//! The query is lower-cased and split into words; multi-word cues match
//! consecutive words, and a cue matches a word that starts with it (so
//! "invest" matches "investing", "refinanc" "refinancing"). Words that
//! belong to no one ("balance", "rate", "interest", "fee", "limit") go to
//! the intent of the nearest cue in the same clause, or to their default
//! when the clause has none. A cue of general banking (a password, the
//! app, opening hours, a person to talk to) wins its clause: "reset my
//! password to see my portfolio" is a login problem.

use serde::Serialize;

/// What a customer asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Card,
    Loan,
    Wealth,
    General,
}

impl Intent {
    pub const ALL: [Intent; 4] = [Intent::Card, Intent::Loan, Intent::Wealth, Intent::General];

    pub fn name(self) -> &'static str {
        match self {
            Intent::Card => "card",
            Intent::Loan => "loan",
            Intent::Wealth => "wealth",
            Intent::General => "general",
        }
    }

    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// The intents of a query and the cues behind them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detected {
    /// Sorted; `[General]` when nothing else was asked.
    pub intents: Vec<Intent>,
    /// `(intent, cue)` for every cue that counted.
    pub cues: Vec<(Intent, String)>,
    /// For each intent, the part of the query that asks it (its clauses,
    /// as written): what its agent is given.
    pub parts: Vec<(Intent, String)>,
}

use Intent::*;

/// Cues by intent: phrases of one or more word prefixes.
const CUES: &[(Intent, &[&str])] = &[
    // Cards.
    (Card, &["card"]),
    (Card, &["cards"]),
    (Card, &["creditcard"]),
    (Card, &["visa"]),
    (Card, &["mastercard"]),
    (Card, &["amex"]),
    (Card, &["reward"]),
    (Card, &["points"]),
    (Card, &["frequent", "flyer"]),
    (Card, &["cashback"]),
    (Card, &["contactless"]),
    (Card, &["chargeback"]),
    (Card, &["balance", "transfer"]),
    (Card, &["available", "credit"]),
    (Card, &["credit", "limit"]),
    (Card, &["purchase"]),
    (Card, &["transaction"]),
    (Card, &["spent"]),
    (Card, &["spend"]),
    (Card, &["charged"]),
    (Card, &["pin"]),
    (Card, &["cvv"]),
    (Card, &["stolen"]),
    (Card, &["apple", "pay"]),
    (Card, &["google", "pay"]),
    (Card, &["overseas", "purchase"]),
    (Card, &["interest", "free"]),
    (Card, &["minimum", "repayment"]),
    (Card, &["minimum", "payment"]),
    (Card, &["owing"]),
    (Card, &["owe", "on", "my", "card"]),
    // Loans, where a card word is part of the phrase.
    (Loan, &["purchase", "price"]),
    (Loan, &["investment", "property"]),
    (Loan, &["investment", "loan"]),
    (Loan, &["investor", "loan"]),
    // Loans.
    (Loan, &["loan"]),
    (Loan, &["mortgage"]),
    (Loan, &["borrow"]),
    (Loan, &["refinanc"]),
    (Loan, &["repayment"]),
    (Loan, &["repay"]),
    (Loan, &["lvr"]),
    (Loan, &["lmi"]),
    (Loan, &["down", "payment"]),
    (Loan, &["deposit", "of"]),
    (Loan, &["home", "deposit"]),
    (Loan, &["first", "home"]),
    (Loan, &["home", "buyer"]),
    (Loan, &["stamp", "duty"]),
    (Loan, &["offset"]),
    (Loan, &["redraw"]),
    (Loan, &["pre", "approval"]),
    (Loan, &["preapproval"]),
    (Loan, &["pre-approval"]),
    (Loan, &["serviceab"]),
    (Loan, &["property"]),
    (Loan, &["house"]),
    (Loan, &["apartment"]),
    (Loan, &["unit", "in"]),
    (Loan, &["interest", "only"]),
    (Loan, &["principal", "and", "interest"]),
    (Loan, &["fixed", "rate"]),
    (Loan, &["variable", "rate"]),
    (Loan, &["equity"]),
    (Loan, &["credit", "score"]),
    (Loan, &["credit", "history"]),
    (Loan, &["credit", "check"]),
    (Loan, &["afford"]),
    (Loan, &["debt", "to", "income"]),
    (Loan, &["guarantor"]),
    (Loan, &["lender"]),
    (Loan, &["settlement"]),
    // Wealth.
    (Wealth, &["invest"]),
    (Wealth, &["portfolio"]),
    (Wealth, &["shares"]),
    (Wealth, &["share", "market"]),
    (Wealth, &["stock"]),
    (Wealth, &["etf"]),
    (Wealth, &["esg"]),
    (Wealth, &["ethical"]),
    (Wealth, &["sustainab"]),
    (Wealth, &["super"]),
    (Wealth, &["diversif"]),
    (Wealth, &["rebalanc"]),
    (Wealth, &["optimi"]),
    (Wealth, &["volatil"]),
    (Wealth, &["sharpe"]),
    (Wealth, &["dividend"]),
    (Wealth, &["managed", "fund"]),
    (Wealth, &["index", "fund"]),
    (Wealth, &["retire"]),
    (Wealth, &["wealth"]),
    (Wealth, &["asset", "allocation"]),
    (Wealth, &["allocation"]),
    (Wealth, &["correlat"]),
    (Wealth, &["drawdown"]),
    (Wealth, &["bond"]),
    (Wealth, &["term", "deposit"]),
    (Wealth, &["crypto"]),
    (Wealth, &["bitcoin"]),
    (Wealth, &["holdings"]),
    (Wealth, &["carbon"]),
    (Wealth, &["fossil"]),
    (Wealth, &["tech", "stocks"]),
    (Wealth, &["growth", "option"]),
    (Wealth, &["balanced", "option"]),
    (Wealth, &["financial", "adviser"]),
    (Wealth, &["financial", "advisor"]),
    (Wealth, &["risk", "profile"]),
    (Wealth, &["risk", "tolerance"]),
    (Wealth, &["market"]),
    (Wealth, &["performance"]),
    (Wealth, &["fund"]),
    (Wealth, &["sharemarket"]),
    (Wealth, &["asx"]),
    (Wealth, &["reit"]),
    (Wealth, &["exposure"]),
];

/// Cues that count only in a clause without a stronger one: words that
/// usually, not always, mean their intent ("charged" a card, or an
/// everyday account's fee; a "house" to buy, or to move to).
const WEAK: &[&str] = &[
    "charged",
    "spent",
    "spend",
    "purchase",
    "transaction",
    "pin",
    "house",
    "property",
    "apartment",
    "afford",
    "settlement",
    "market",
    "performance",
    "fund",
    "holdings",
    "allocation",
];

/// General banking: wins the clause it is in.
const GENERAL: &[&[&str]] = &[
    &["password"],
    &["passcode"],
    &["log", "in"],
    &["login"],
    &["logged", "out"],
    &["sign", "in"],
    &["locked", "out"],
    &["two", "factor"],
    &["verification", "code"],
    &["opening", "hours"],
    &["open", "on"],
    &["branch"],
    &["atm"],
    &["speak", "to"],
    &["talk", "to"],
    &["human"],
    &["real", "person"],
    &["complain"],
    &["complaint"],
    &["change", "my", "address"],
    &["update", "my", "address"],
    &["phone", "number"],
    &["email", "address"],
    &["the", "app"],
    &["your", "app"],
    &["website"],
    &["everyday", "account"],
    &["transaction", "account"],
    &["savings", "account"],
    &["bank", "statement"],
    &["direct", "debit"],
    &["dishonour"],
    &["overdraft"],
    &["online", "banking"],
    &["centrelink"],
];

/// Words that belong to the nearest cue, or to their default alone.
const FLOATING: &[(&str, Intent)] = &[
    ("balance", Card),
    ("rate", Loan),
    ("rates", Loan),
    ("interest", Loan),
    ("limit", Card),
    ("fee", General),
    ("fees", General),
    ("risk", Wealth),
    ("risky", Wealth),
    ("deposit", Loan),
    ("returns", Wealth),
    ("return", Wealth),
];

/// Words that end one request and start another.
const SPLITTERS: &[&[&str]] = &[
    &["and", "also"],
    &["also"],
    &["as", "well", "as"],
    &["plus"],
    &["then"],
    &["and", "then"],
    &["additionally"],
    &["oh", "and"],
    &["while", "you're", "at", "it"],
    &["while", "youre", "at", "it"],
];

/// The words of a query: (lower-cased word, ends a clause, byte start).
fn words(query: &str) -> Vec<(String, bool, usize)> {
    let mut out: Vec<(String, bool, usize)> = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, c) in query.char_indices() {
        if c.is_alphanumeric() || c == '\'' || c == '-' {
            if cur.is_empty() {
                start = i;
            }
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push((std::mem::take(&mut cur), false, start));
            }
            if matches!(c, '.' | '?' | '!' | ';' | '—' | '–') {
                if let Some(last) = out.last_mut() {
                    last.1 = true;
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push((cur, false, start));
    }
    out
}

fn matches_at(ws: &[String], i: usize, phrase: &[&str]) -> bool {
    i + phrase.len() <= ws.len()
        && phrase.iter().enumerate().all(|(k, p)| {
            let w = ws[i + k].trim_matches(|c| c == '\'' || c == '-');
            // A prefix of at least four letters matches longer words (and,
            // from five letters, a word one typo away); short cues match
            // whole words and their plural.
            if p.len() >= 4 {
                w.starts_with(p) || (p.len() >= 5 && typo_prefix(w, p))
            } else {
                w == *p || (w.starts_with(p) && w.len() == p.len() + 1 && w.ends_with('s'))
            }
        })
}

/// Whether some prefix of `word` is one edit (insertion, deletion,
/// substitution) from `cue` ("borow" for "borrow").
fn typo_prefix(word: &str, cue: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    let c: Vec<char> = cue.chars().collect();
    [c.len() - 1, c.len(), c.len() + 1]
        .into_iter()
        .filter(|n| *n <= w.len())
        .any(|n| levenshtein_at_most_one(&w[..n], &c))
}

fn levenshtein_at_most_one(a: &[char], b: &[char]) -> bool {
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

/// The intents of `query`.
pub fn detect(query: &str) -> Detected {
    let tokens = words(query);
    let ws: Vec<String> = tokens.iter().map(|(w, _, _)| w.clone()).collect();
    // Clause boundaries: after a word ending a clause, and before a splitter.
    let mut clause = vec![0usize; ws.len()];
    let mut c = 0;
    let mut i = 0;
    while i < ws.len() {
        if i > 0 && SPLITTERS.iter().any(|s| matches_at(&ws, i, s)) {
            c += 1;
        }
        clause[i] = c;
        if tokens[i].1 {
            c += 1;
        }
        i += 1;
    }
    let clauses = c + 1;
    // Every cue that matches, then the longest first: words a longer cue
    // took ("minimum repayment", "investment property") are not cues again.
    let mut matched: Vec<(Intent, usize, &[&str])> = Vec::new();
    for i in 0..ws.len() {
        for (intent, phrase) in CUES {
            if matches_at(&ws, i, phrase) {
                matched.push((*intent, i, phrase));
            }
        }
        for phrase in GENERAL {
            if matches_at(&ws, i, phrase) {
                matched.push((General, i, phrase));
            }
        }
    }
    matched.sort_by_key(|(_, i, p)| (std::cmp::Reverse(p.len()), *i));
    let mut covered = vec![false; ws.len()];
    // (intent, position, cue text, weak).
    let mut cued: Vec<(Intent, usize, String, bool)> = Vec::new();
    for (intent, i, phrase) in matched {
        if (i..i + phrase.len()).any(|k| covered[k]) {
            continue;
        }
        covered[i..i + phrase.len()].fill(true);
        let text = phrase.join(" ");
        let weak = WEAK.contains(&text.as_str());
        cued.push((intent, i, text, weak));
    }
    // A weak cue counts only in a clause with no strong one.
    let strong_in = |k: usize, cued: &[(Intent, usize, String, bool)]| {
        cued.iter().any(|(_, p, _, weak)| clause[*p] == k && !weak)
    };
    let mut found: Vec<(Intent, usize, String)> = cued
        .iter()
        .filter(|(_, p, _, weak)| !weak || !strong_in(clause[*p], &cued))
        .map(|(it, p, t, _)| (*it, *p, t.clone()))
        .collect();
    // Floating words: to the nearest cue of a domain in the clause.
    for i in 0..ws.len() {
        if covered[i] {
            continue;
        }
        let Some((word, default)) = FLOATING.iter().find(|(w, _)| ws[i] == *w) else {
            continue;
        };
        let nearest = found
            .iter()
            .filter(|(it, p, _)| *it != General && clause[*p] == clause[i])
            .min_by_key(|(_, p, _)| p.abs_diff(i))
            .map(|(it, _, _)| *it);
        let intent = nearest.unwrap_or(*default);
        found.push((intent, i, (*word).to_owned()));
    }
    // Per clause: a general cue wins it; otherwise every domain cued in it.
    let mut intents = std::collections::BTreeSet::new();
    let mut cues = Vec::new();
    let mut clauses_of: std::collections::BTreeMap<Intent, Vec<usize>> = Default::default();
    for k in 0..clauses {
        let here: Vec<&(Intent, usize, String)> =
            found.iter().filter(|(_, p, _)| clause[*p] == k).collect();
        let general = here.iter().any(|(it, _, _)| *it == General);
        for (it, _, cue) in here {
            if general && *it != General {
                continue;
            }
            if *it != General {
                intents.insert(*it);
                let of = clauses_of.entry(*it).or_default();
                if !of.contains(&k) {
                    of.push(k);
                }
            }
            cues.push((*it, cue.clone()));
        }
    }
    let intents: Vec<Intent> = if intents.is_empty() {
        vec![General]
    } else {
        intents.into_iter().collect()
    };
    // A clause's text: from its first word (with a `$` before it) to the
    // next clause's first word.
    let starts: Vec<usize> = (0..clauses)
        .map(|k| {
            let first = clause
                .iter()
                .position(|c| *c == k)
                .map_or(query.len(), |i| tokens[i].2);
            if first > 0 && query.as_bytes()[first - 1] == b'$' {
                first - 1
            } else {
                first
            }
        })
        .collect();
    let text_of = |k: usize| {
        let end = starts
            .get(k + 1)
            .copied()
            .unwrap_or(query.len())
            .max(starts[k]);
        query[starts[k]..end].trim()
    };
    let parts = intents
        .iter()
        .map(|i| {
            let text = clauses_of.get(i).map_or_else(
                || query.trim().to_owned(),
                |ks| ks.iter().map(|k| text_of(*k)).collect::<Vec<_>>().join(" "),
            );
            (*i, text)
        })
        .collect();
    Detected {
        intents,
        cues,
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(q: &str) -> Vec<Intent> {
        detect(q).intents
    }

    #[test]
    fn the_issue_examples() {
        assert_eq!(
            of("check my balance and also show loan options"),
            [Card, Loan]
        );
        assert_eq!(of("I want a home loan with $50,000 down payment"), [Loan]);
        assert_eq!(of("How risky is my portfolio?"), [Wealth]);
        assert_eq!(of("how risky is AAPL and MSFT"), [Wealth]);
        assert_eq!(of("hello there"), [General]);
    }

    #[test]
    fn floating_words_follow_their_clause() {
        assert_eq!(of("what's the interest rate on my home loan"), [Loan]);
        assert_eq!(of("what's the interest rate on my credit card"), [Card]);
        assert_eq!(of("what is the balance of my mortgage"), [Loan]);
    }

    #[test]
    fn a_login_problem_is_general() {
        assert_eq!(
            of("how do I reset my password to see my portfolio"),
            [General]
        );
        assert_eq!(
            of("I forgot my password. Also, what is my card balance?"),
            [Card]
        );
    }

    #[test]
    fn each_intent_gets_the_part_of_the_question_that_asks_it() {
        let d = detect("check my balance and also show loan options with $50,000 down payment");
        assert_eq!(
            d.parts,
            [
                (Card, "check my balance".to_owned()),
                (
                    Loan,
                    "also show loan options with $50,000 down payment".to_owned()
                )
            ]
        );
    }

    #[test]
    fn every_decision_has_its_cues() {
        let d = detect("Can I refinance my mortgage and invest the equity in ETFs?");
        assert_eq!(d.intents, [Loan, Wealth]);
        assert!(d.cues.iter().any(|(i, c)| *i == Loan && c == "refinanc"));
        assert!(d.cues.iter().any(|(i, c)| *i == Wealth && c == "etf"));
    }
}
