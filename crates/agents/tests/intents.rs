//! Intent detection on labelled queries: exact match per intent and
//! overall, with precision and recall. Four sets, each written apart from
//! the detector by a different author:
//!
//! - `data/intents.jsonl` (422 queries), `data/intents_fresh.jsonl` (320)
//!   and `data/intents_third.jsonl` (320) are the tuning sets: the rules
//!   are tuned on them, the model is trained on them and its thresholds
//!   were chosen by cross-validation on them. Their misses are printed.
//! - `data/intents_fourth.jsonl` (383), written before the model and
//!   before the rules were tuned on the third set, is the held-out set:
//!   nothing has been tuned on it, and it is the one that says whether the
//!   detector generalises. Its misses are counted, never printed.

use std::collections::BTreeMap;

use ultracore_agents::{detect, Intent};

#[derive(serde::Deserialize)]
struct Labelled {
    query: String,
    intents: Vec<String>,
}

#[derive(Default, Debug)]
struct Counts {
    labelled: usize,
    exact: usize,
    true_positives: usize,
    false_positives: usize,
}

fn evaluate(rows: &[(usize, Labelled)]) -> (BTreeMap<Intent, Counts>, usize, Vec<String>) {
    let mut per: BTreeMap<Intent, Counts> = Intent::ALL
        .iter()
        .map(|i| (*i, Counts::default()))
        .collect();
    let mut exact = 0;
    let mut misses = Vec::new();
    for (line, row) in rows {
        let gold: Vec<Intent> = row
            .intents
            .iter()
            .map(|s| Intent::parse(s).unwrap_or_else(|| panic!("line {line}: unknown intent {s}")))
            .collect();
        let got = detect(&row.query).intents;
        let right = got == gold;
        exact += usize::from(right);
        if !right {
            misses.push(format!(
                "{line}: {:?} → {got:?}, labelled {gold:?}",
                row.query
            ));
        }
        for i in &gold {
            let c = per.get_mut(i).expect("every intent");
            c.labelled += 1;
            c.exact += usize::from(right);
        }
        for i in &got {
            let c = per.get_mut(i).expect("every intent");
            if gold.contains(i) {
                c.true_positives += 1;
            } else {
                c.false_positives += 1;
            }
        }
    }
    (per, exact, misses)
}

fn parse(text: &str, file: &str) -> Vec<(usize, Labelled)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            (
                i + 1,
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1)),
            )
        })
        .collect()
}

/// Prints the table of a set (and its misses, when `show_misses`) and
/// returns its exact match and each intent's accuracy. The held-out set's
/// misses stay unprinted: reading them is tuning on them.
fn report(
    name: &str,
    rows: &[(usize, Labelled)],
    show_misses: bool,
) -> (f64, BTreeMap<Intent, f64>) {
    let (per, exact, misses) = evaluate(rows);
    let exact = exact as f64 / rows.len().max(1) as f64;
    println!("{name}: {} queries, exact {exact:.3}", rows.len());
    println!("  intent   labelled  accuracy  precision  recall");
    let mut accuracies = BTreeMap::new();
    for (intent, c) in &per {
        let accuracy = c.exact as f64 / c.labelled.max(1) as f64;
        let recall = c.true_positives as f64 / c.labelled.max(1) as f64;
        let precision =
            c.true_positives as f64 / (c.true_positives + c.false_positives).max(1) as f64;
        println!(
            "  {:8} {:8}  {accuracy:8.3}  {precision:9.3}  {recall:6.3}",
            intent.name(),
            c.labelled
        );
        accuracies.insert(*intent, accuracy);
    }
    if show_misses {
        for m in &misses {
            println!("  miss {m}");
        }
    } else {
        println!("  {} misses (not shown)", misses.len());
    }
    (exact, accuracies)
}

const TUNING_SETS: [(&str, &str); 3] = [
    ("intents.jsonl", include_str!("../data/intents.jsonl")),
    (
        "intents_fresh.jsonl",
        include_str!("../data/intents_fresh.jsonl"),
    ),
    (
        "intents_third.jsonl",
        include_str!("../data/intents_third.jsonl"),
    ),
];

const HELD_OUT: &str = include_str!("../data/intents_fourth.jsonl");

/// Each intent's accuracy on the held-out set, and its exact match, as
/// measured (rounded down) when the model was added: card 0.948 (127 of
/// 134), loan 0.956 (131 of 137), wealth 0.960 (119 of 124), general 0.953
/// (61 of 64), exact 0.950 (364 of 383). The goal is 0.95 on every intent;
/// card is one query short of it. The rules alone scored card 0.940, loan
/// 0.942, wealth 0.960, general 0.953, exact 0.945. The floors keep a
/// change from making it worse unnoticed; raising them by tuning on this
/// set's misses would make it a tuning set.
const HELD_OUT_FLOORS: [(Intent, f64); 4] = [
    (Intent::Card, 0.947),
    (Intent::Loan, 0.956),
    (Intent::Wealth, 0.959),
    (Intent::General, 0.953),
];
const HELD_OUT_EXACT: f64 = 0.950;

#[test]
fn intents_on_the_tuning_sets() {
    for (name, text) in TUNING_SETS {
        let rows = parse(text, name);
        assert!(
            rows.len() >= 300,
            "{name}: only {} labelled queries",
            rows.len()
        );
        let (exact, _) = report(&format!("tuning ({name})"), &rows, true);
        assert!(exact >= 0.97, "exact {exact:.3} on {name}");
    }
}

#[test]
fn intents_on_the_held_out_set() {
    let rows = parse(HELD_OUT, "intents_fourth.jsonl");
    assert_eq!(rows.len(), 383);
    let (exact, accuracies) = report("held out (intents_fourth.jsonl)", &rows, false);
    let below: Vec<String> = HELD_OUT_FLOORS
        .iter()
        .filter(|(i, floor)| accuracies[i] < *floor)
        .map(|(i, floor)| format!("{}: {:.3} < {floor}", i.name(), accuracies[i]))
        .collect();
    assert!(below.is_empty(), "{below:?}");
    assert!(
        exact >= HELD_OUT_EXACT,
        "exact {exact:.3} < {HELD_OUT_EXACT} on the held-out set"
    );
}
