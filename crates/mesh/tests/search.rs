//! Search against brute force: on random catalogues and queries, the
//! matches and every facet count equal what a scan of all products finds
//! with the same rules (every word of the query in the name, description or
//! tags — exactly, within the allowed typos, or the last word as a prefix
//! of a name word — and every filter).

use std::collections::BTreeMap;

use proptest::prelude::*;
use ultracore_mesh::search::fuzzy_distance;
use ultracore_mesh::{SearchDoc, SearchIndex, SearchQuery, Tier};

const WORDS: &[&str] = &[
    "esg",
    "risk",
    "price",
    "prices",
    "portfolio",
    "portfolios",
    "trade",
    "trading",
    "customer",
    "agent",
    "alerts",
    "bond",
    "fund",
    "funds",
    "yield",
    "carbon",
    "scores",
    "score",
];
const DOMAINS: &[&str] = &["markets", "esg", "wealth", "customer"];
const TAGS: &[&str] = &["prices", "esg", "pii", "audit", "risk"];

/// Optimal string alignment distance (Levenshtein with adjacent
/// transpositions costing one), as tantivy's fuzzy automata count typos.
fn osa(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn brute_matches(d: &SearchDoc, q: &SearchQuery) -> bool {
    if q.domain.as_ref().is_some_and(|x| *x != d.domain)
        || q.tier.is_some_and(|t| d.tier != Some(t))
    {
        return false;
    }
    if !q.tags.iter().all(|t| d.tags.contains(t)) {
        return false;
    }
    let qw = words(&q.text);
    let name = words(&d.name);
    let all: Vec<String> = name
        .iter()
        .cloned()
        .chain(words(&d.description))
        .chain(d.tags.iter().flat_map(|t| words(t)))
        .collect();
    qw.iter().enumerate().all(|(i, w)| {
        let near = |t: &String| match fuzzy_distance(w) {
            Some(k) => osa(w, t) <= usize::from(k),
            None => t == w,
        };
        all.iter().any(near)
            || (i + 1 == qw.len() && name.iter().any(|t| t.starts_with(w.as_str())))
    })
}

fn doc_strategy(
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>, usize, Option<usize>)> {
    (
        prop::collection::vec(0..WORDS.len(), 1..4),
        prop::collection::vec(0..WORDS.len(), 0..6),
        prop::collection::btree_set(0..TAGS.len(), 0..3).prop_map(|s| s.into_iter().collect()),
        0..DOMAINS.len(),
        prop::option::of(0..3usize),
    )
}

fn typo(w: &str, at: usize) -> String {
    // Drops one letter: one typo.
    let i = at % w.len();
    format!("{}{}", &w[..i], &w[i + 1..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn facet_counts_equal_brute_force(
        docs in prop::collection::vec(doc_strategy(), 1..40),
        query_words in prop::collection::vec((0..WORDS.len(), prop::bool::ANY, 0..10usize), 0..3),
        domain in prop::option::of(0..DOMAINS.len()),
        tier in prop::option::of(0..3usize),
        tag in prop::option::of(0..TAGS.len()),
    ) {
        let docs: Vec<SearchDoc> = docs
            .into_iter()
            .enumerate()
            .map(|(i, (name, desc, tags, domain, tier))| SearchDoc {
                id: format!("p{i}"),
                name: name.iter().map(|&w| WORDS[w]).collect::<Vec<_>>().join(" "),
                description: desc.iter().map(|&w| WORDS[w]).collect::<Vec<_>>().join(" "),
                tags: tags.iter().map(|&t| TAGS[t].to_owned()).collect(),
                domain: DOMAINS[domain].to_owned(),
                tier: tier.map(|t| Tier::ALL[t]),
            })
            .collect();
        let ix = SearchIndex::new().unwrap();
        ix.upsert(&docs).unwrap();
        let text = query_words
            .iter()
            .map(|&(w, mistyped, at)| if mistyped { typo(WORDS[w], at) } else { WORDS[w].to_owned() })
            .collect::<Vec<_>>()
            .join(" ");
        let q = SearchQuery {
            text,
            domain: domain.map(|d| DOMAINS[d].to_owned()),
            tier: tier.map(|t| Tier::ALL[t]),
            tags: tag.map(|t| vec![TAGS[t].to_owned()]).unwrap_or_default(),
            limit: 100,
        };
        let got = ix.search(&q).unwrap();
        let matching: Vec<&SearchDoc> = docs.iter().filter(|d| brute_matches(d, &q)).collect();
        let mut domain_counts = BTreeMap::new();
        let mut tier_counts = BTreeMap::new();
        let mut tag_counts = BTreeMap::new();
        for d in &matching {
            *domain_counts.entry(d.domain.clone()).or_insert(0u64) += 1;
            if let Some(t) = d.tier {
                *tier_counts.entry(t.as_str().to_owned()).or_insert(0u64) += 1;
            }
            for t in &d.tags {
                *tag_counts.entry(t.clone()).or_insert(0u64) += 1;
            }
        }
        prop_assert_eq!(got.total, matching.len(), "query {:?}", q);
        let mut got_ids: Vec<&str> = got.hits.iter().map(|h| h.id.as_str()).collect();
        let mut want_ids: Vec<&str> = matching.iter().map(|d| d.id.as_str()).collect();
        got_ids.sort_unstable();
        want_ids.sort_unstable();
        prop_assert_eq!(got_ids, want_ids);
        prop_assert_eq!(&got.facets.domain, &domain_counts);
        prop_assert_eq!(&got.facets.tier, &tier_counts);
        prop_assert_eq!(&got.facets.tags, &tag_counts);
    }
}

#[test]
fn typos_and_prefixes_find_products() {
    let ix = SearchIndex::new().unwrap();
    let doc = |id: &str, name: &str, domain: &str| SearchDoc {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        tags: vec![],
        domain: domain.into(),
        tier: None,
    };
    ix.upsert(&[
        doc("optimizations", "Portfolio optimizations", "wealth"),
        doc("prices", "Financial prices", "markets"),
        doc("agents", "Agent performance", "agents"),
    ])
    .unwrap();
    let find = |text: &str| {
        let r = ix
            .search(&SearchQuery {
                text: text.into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        r.hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
    };
    assert_eq!(
        find("portfollio"),
        ["optimizations"],
        "one typo (an extra letter)"
    );
    assert_eq!(find("protfolio"), ["optimizations"], "a transposition");
    assert_eq!(
        find("optimisatoins"),
        ["optimizations"],
        "two typos in a long word"
    );
    assert_eq!(find("financ"), ["prices"], "a prefix of a name word");
    assert_eq!(
        find("perf agent"),
        Vec::<String>::new(),
        "only the last word is a prefix"
    );
    assert_eq!(find("agent perf"), ["agents"]);
    assert!(find("esh").is_empty(), "short words need an exact match");
    let s = ix.autocomplete("fin", 5).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "Financial prices");
}
