//! What a question names and asks: instruments by ticker or company
//! name, portfolio ids, and which tools it wants.

use crate::specialists::has_any;

/// An instrument of the data mesh: its ticker and the words of its name
/// a question may use.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Instrument {
    pub(super) ticker: String,
    pub(super) name: String,
    /// Lower-case word sequences that name it.
    aliases: Vec<Vec<String>>,
}

/// Words that end a company name without naming it.
const NAME_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "corporation",
    "corp",
    "company",
    "co",
    "plc",
    "ltd",
    "limited",
    "group",
    "&",
    "and",
];

/// First words of names too common to name a company alone ("in general").
const COMMON_WORDS: &[&str] = &[
    "general",
    "range",
    "best",
    "home",
    "bank",
    "first",
    "united",
    "american",
    "national",
    "international",
];

/// Lower-case words, '&' a word of its own, hyphens and apostrophes
/// splitting words ("Coca-Cola" → coca, cola; "Apple's" → apple, s), each
/// with its byte offset in `text`.
fn name_words_at(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if cur.is_empty() {
                start = i;
            }
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push((start, std::mem::take(&mut cur)));
            }
            if c == '&' {
                out.push((i, "&".into()));
            }
        }
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

fn name_words(text: &str) -> Vec<String> {
    name_words_at(text).into_iter().map(|(_, w)| w).collect()
}

/// The whitespace-separated words of `text` with their byte offsets.
fn words_at(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

impl Instrument {
    /// The instruments of `records` with the aliases of their names: the
    /// name without "The" and corporate suffixes ("home depot"), and its
    /// first word alone when no other name starts with it and it is not a
    /// common word ("exxon").
    pub(super) fn all(records: &[(String, String)]) -> Vec<Instrument> {
        let keys: Vec<Vec<String>> = records
            .iter()
            .map(|(_, name)| {
                let mut w = name_words(name);
                if w.first().is_some_and(|f| f == "the") {
                    w.remove(0);
                }
                while w.len() > 1
                    && w.last()
                        .is_some_and(|l| NAME_SUFFIXES.contains(&l.as_str()))
                {
                    w.pop();
                }
                w
            })
            .collect();
        records
            .iter()
            .zip(&keys)
            .map(|((ticker, name), key)| {
                let mut aliases = Vec::new();
                if !key.is_empty() {
                    aliases.push(key.clone());
                }
                if let Some(first) = key.first().filter(|_| key.len() > 1) {
                    let unique = keys.iter().filter(|k| k.first() == Some(first)).count() == 1;
                    if unique && first.len() >= 4 && !COMMON_WORDS.contains(&first.as_str()) {
                        aliases.push(vec![first.clone()]);
                    }
                }
                Instrument {
                    ticker: ticker.clone(),
                    name: name.clone(),
                    aliases,
                }
            })
            .collect()
    }
}

/// The tickers `q` names, in the order named, once each: a ticker as
/// written in upper case (`KO`, `$KO`; a one-letter ticker only with the
/// `$`), or a company name in any case.
pub(super) fn tickers_in(q: &str, instruments: &[Instrument]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for (at, raw) in words_at(q) {
        let word = raw.trim_matches(|c: char| !(c.is_alphanumeric() || c == '$' || c == '.'));
        let word = word.trim_end_matches('.');
        let (dollar, word) = match word.strip_prefix('$') {
            Some(w) => (true, w),
            None => (false, word),
        };
        let word = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("’s"))
            .unwrap_or(word);
        if word.chars().any(char::is_lowercase) || (word.chars().count() < 2 && !dollar) {
            continue;
        }
        if let Some(i) = instruments.iter().find(|i| i.ticker == word) {
            found.push((at, i.ticker.clone()));
        }
    }
    let (starts, words): (Vec<usize>, Vec<String>) = name_words_at(q).into_iter().unzip();
    for i in instruments {
        for alias in &i.aliases {
            if let Some(k) = words.windows(alias.len()).position(|w| w == &alias[..]) {
                found.push((starts[k], i.ticker.clone()));
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    let mut out: Vec<String> = Vec::new();
    for (_, t) in found {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Whether `word` has the shape of a portfolio id: 1 to 64 letters,
/// digits, '-', '_' or '.' (what the API accepts).
fn id_shaped(word: &str) -> bool {
    ultracore_http::is_valid_portfolio_id(word)
}

/// The portfolio ids `q` names, in order, once each: any of the caller's
/// as written; a word like `pf-2` or `acct_7` (a letter first, a '-' or '_'
/// and a digit in it, or a `pf-` prefix); and an id-shaped word after
/// "portfolio" that has a digit, '-' or '_' ("portfolio 7").
pub(super) fn portfolio_ids_in(q: &str, caller: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after_portfolio = false;
    for (_, raw) in words_at(q) {
        let word = raw
            .trim_matches(|c: char| !(c.is_alphanumeric() || "-_.".contains(c)))
            .trim_end_matches('.');
        let word = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("’s"))
            .unwrap_or(word);
        let marked = word.contains(['-', '_']);
        let digit = word.bytes().any(|b| b.is_ascii_digit());
        let named = caller.iter().any(|c| c == word)
            || (id_shaped(word)
                && word.starts_with(|c: char| c.is_ascii_alphabetic())
                && ((marked && digit) || word.to_ascii_lowercase().starts_with("pf-")))
            || (after_portfolio && id_shaped(word) && (marked || digit));
        if named && !out.iter().any(|o| o == word) {
            out.push(word.to_owned());
        }
        after_portfolio = matches!(word.to_lowercase().as_str(), "portfolio" | "portfolios");
    }
    out
}

/// What a question asks of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Asks {
    pub(super) optimize: bool,
    pub(super) correlation: bool,
    pub(super) risk: bool,
}

pub(super) fn asks(q: &str) -> Asks {
    let words = name_words(q);
    // "optimise", "optimize", "optimisation", but not "optimistic".
    let optimize_word = words.iter().any(|w| {
        (w.starts_with("optimi") && !w.starts_with("optimist")) || w.starts_with("rebalanc")
    });
    let optimize = optimize_word
        || has_any(
            q,
            &[
                "greener",
                "more sustainab",
                "more ethical",
                "more esg",
                "lower carbon",
                "less carbon",
                "reduce carbon",
                "reduce my carbon",
                "cut carbon",
            ],
        )
        || (has_any(
            q,
            &[
                "make", "turn", "switch", "move", "shift", "change", "convert",
            ],
        ) && has_any(q, &["esg", "sustainab", "green", "ethical"]));
    let correlation = has_any(
        q,
        &[
            "correlat",
            "move together",
            "moves together",
            "move in step",
            "co-move",
            "diversif",
        ],
    );
    let risk = has_any(
        q,
        &[
            "risk", "volatil", "sharpe", "drawdown", "return", "perform", "how is", "how are",
            "how has", "how have", "doing", "metrics", "figures",
        ],
    );
    Asks {
        optimize,
        correlation,
        risk,
    }
}

/// Whether `q` is about the caller's own portfolio.
pub(super) fn about_portfolio(q: &str) -> bool {
    has_any(
        q,
        &[
            "portfolio",
            "holdings",
            "my investments",
            "my shares",
            "my stocks",
            "i hold",
            "i own",
            "my positions",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruments() -> Vec<Instrument> {
        let records: Vec<(String, String)> = [
            ("AAPL", "Apple Inc."),
            ("MSFT", "Microsoft Corporation"),
            ("KO", "The Coca-Cola Company"),
            ("PEP", "PepsiCo, Inc."),
            ("HD", "The Home Depot, Inc."),
            ("GE", "General Electric Company"),
            ("XOM", "Exxon Mobil Corporation"),
            ("JPM", "JPMorgan Chase & Co."),
            ("MRK", "Merck & Co., Inc."),
            ("MTUM", "iShares MSCI USA Momentum Factor ETF"),
            ("QUAL", "iShares MSCI USA Quality Factor ETF"),
        ]
        .iter()
        .map(|(t, n)| ((*t).to_owned(), (*n).to_owned()))
        .collect();
        Instrument::all(&records)
    }

    fn tickers(q: &str) -> Vec<String> {
        tickers_in(q, &instruments())
    }

    #[test]
    fn tickers_as_written_and_names_in_any_case() {
        assert_eq!(tickers("how risky is AAPL and MSFT"), ["AAPL", "MSFT"]);
        assert_eq!(tickers("how correlated are KO and PEP?"), ["KO", "PEP"]);
        assert_eq!(tickers("compare $KO, $PEP."), ["KO", "PEP"]);
        // Lower-case words are words, not tickers ("ge", "hd").
        assert!(tickers("how do I get a hd tv, ge?").is_empty());
        assert_eq!(
            tickers("is coca-cola more volatile than apple's shares"),
            ["KO", "AAPL"]
        );
        assert_eq!(
            tickers("Home Depot vs General Electric and Exxon"),
            ["HD", "GE", "XOM"]
        );
        assert_eq!(tickers("jpmorgan chase or merck"), ["JPM", "MRK"]);
        // Named twice, listed once.
        assert_eq!(tickers("MSFT, Microsoft and AAPL"), ["MSFT", "AAPL"]);
    }

    #[test]
    fn names_too_common_or_shared_are_not_aliases() {
        assert!(tickers("in general, what is best for my home").is_empty());
        // "iShares" starts two names: it names neither.
        assert!(tickers("how risky are ishares funds").is_empty());
        assert_eq!(tickers("how risky is MTUM"), ["MTUM"]);
    }

    #[test]
    fn portfolio_ids_named_in_a_question() {
        let mine = vec!["pf-1".to_owned(), "main".to_owned()];
        assert_eq!(
            portfolio_ids_in("rebalance pf-1 to be more sustainable", &mine),
            ["pf-1"]
        );
        assert_eq!(portfolio_ids_in("how risky is pf-2?", &mine), ["pf-2"]);
        assert_eq!(
            portfolio_ids_in("optimise pf-demo for ESG", &[]),
            ["pf-demo"]
        );
        assert_eq!(portfolio_ids_in("what about portfolio 7", &mine), ["7"]);
        assert_eq!(portfolio_ids_in("how is main doing", &mine), ["main"]);
        assert_eq!(portfolio_ids_in("is acct_9's risk high", &[]), ["acct_9"]);
        assert!(
            portfolio_ids_in("rebalance my portfolio to be more sustainable", &mine).is_empty()
        );
        assert!(portfolio_ids_in("the long-term risk of AAPL", &mine).is_empty());
    }

    #[test]
    fn what_a_question_asks() {
        let a = asks("rebalance my portfolio to be more sustainable");
        assert!(a.optimize && !a.correlation);
        assert!(asks("optimise pf-1 for ESG").optimize);
        assert!(asks("make my investments greener").optimize);
        assert!(!asks("are you optimistic about AAPL").optimize);
        assert!(asks("how correlated are KO and PEP").correlation);
        assert!(asks("how diversified am I").correlation);
        let r = asks("what's the volatility and drawdown of MSFT");
        assert!(r.risk && !r.optimize && !r.correlation);
        assert_eq!(asks("what is an ETF"), Asks::default());
    }
}
