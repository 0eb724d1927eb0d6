//! Intent detection on labelled queries: exact match per intent and
//! overall, with precision and recall. Eighteen sets, each written apart
//! from the detector by a different author who saw neither it nor the
//! other sets:
//!
//! - `data/intents.jsonl` (422 queries), `intents_fresh.jsonl` (320),
//!   `intents_third.jsonl` (320), `intents_fourth.jsonl` (383),
//!   `intents_fifth.jsonl` (468), `intents_sixth.jsonl` (534),
//!   `intents_seventh.jsonl` (531), `intents_eighth.jsonl` (518),
//!   `intents_ninth.jsonl` (526), `intents_tenth.jsonl` (510),
//!   `intents_eleventh.jsonl` (522), `intents_twelfth.jsonl` (522),
//!   `intents_thirteenth.jsonl` (528), `intents_fourteenth.jsonl` (522),
//!   `intents_fifteenth.jsonl` (518), `intents_sixteenth.jsonl` (514) and
//!   `intents_seventeenth.jsonl` (518) are the tuning sets: the rules are
//!   tuned on them, the model is trained on them. Their misses are
//!   printed, with the cues behind each.
//! - `data/intents_eighteenth.jsonl` (513) is the held-out set: nothing has
//!   been tuned on it, and it says whether the detector generalises. Its
//!   misses are counted, never printed.
//!
//! Each set was held out in its turn, then became a tuning set when the
//! next one had been written. What each scored while held out, after
//! tuning on every set before it (from the eighth on, half the general
//! questions name a domain in passing: "the app logs me out while I check
//! my portfolio"; the eleventh on also use domain words in other senses:
//! "invest time in", "charge my phone", "stock" for inventory; the
//! thirteenth on were written to `docs/intent-labels.md`):
//!
//! | held out | card | loan | wealth | general | exact |
//! |---|---|---|---|---|---|
//! | fourth (383) | 0.948 | 0.956 | 0.960 | 0.953 | 0.950 |
//! | fifth (468) | 0.987 | 0.967 | 0.942 | 0.946 | 0.966 |
//! | sixth (534) | 0.955 | 0.966 | 0.952 | 0.900 | 0.949 |
//! | seventh (531) | 1.000 | 0.977 | 0.982 | 0.935 | 0.977 |
//! | eighth (518) | 0.980 | 0.960 | 0.966 | 0.605 | 0.878 |
//! | ninth (526) | 0.987 | 0.969 | 0.967 | 0.627 | 0.895 |
//! | ninth, with the model's general output (below) | 0.993 | 0.975 | 0.967 | 0.839 | 0.947 |
//! | tenth (510) | 0.972 | 0.980 | 0.946 | 0.889 | 0.947 |
//! | eleventh (522) | 0.931 | 0.937 | 0.955 | 0.809 | 0.920 |
//! | twelfth (522) | 0.945 | 0.957 | 0.962 | 0.877 | 0.939 |
//! | thirteenth (528) | 0.872 | 0.964 | 0.932 | 0.898 | 0.919 |
//! | fourteenth (522) | 0.951 | 0.951 | 0.975 | 0.926 | 0.954 |
//! | fifteenth (518) | 0.931 | 0.931 | 0.962 | 0.851 | 0.923 |
//! | sixteenth (514) | 0.894 | 0.967 | 0.925 | 0.902 | 0.940 |
//! | seventeenth (518) | 0.838 | 0.927 | 0.953 | 0.979 | 0.921 |
//! | eighteenth (513) | 0.955 | 0.966 | 0.952 | 0.968 | 0.959 |
//!
//! The eighth and the ninth were measured with the same detector (tuned
//! on the first seven); then the model learned to say a question is
//! general whatever it names (trained with the eighth), and the ninth was
//! measured a second time, its misses still unread; the tenth to the
//! eighteenth were each measured once, after tuning on the set before.
//! Once trained on, a held-out set's misses fall to a handful (the
//! twelfth: 32 held out, 6 once in the training, 1 after tuning; the
//! thirteenth: 43, 7, 2; the fourteenth: 24, 3, 1; the fifteenth: 40, 8,
//! 1; the sixteenth: 31, 0 (the model learns it whole), 12 for the rules
//! with the model not trained on it; the seventeenth: 41 held out, 16 for
//! the rules and the model not trained on it). The
//! labelling guide gives the everyday account's balance to the card agent
//! (it reads it from the Account): five earlier labels of general were
//! changed to card by it.

use std::collections::BTreeMap;

use ultracore_agents::{detect, Intent, INTENT_TUNING_SETS as TUNING_SETS};

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
        let detected = detect(&row.query);
        let got = detected.intents;
        let right = got == gold;
        exact += usize::from(right);
        if !right {
            misses.push(format!(
                "{line}: {:?} → {got:?}, labelled {gold:?}; cues {:?}",
                row.query, detected.cues
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

const HELD_OUT: &str = include_str!("../data/intents_eighteenth.jsonl");

/// Each intent's accuracy on the held-out set, and its exact match, as
/// measured (rounded down) when it was first evaluated: card 0.955 (171
/// of 179), loan 0.966 (172 of 178), wealth 0.951 (138 of 145), general
/// 0.967 (90 of 93), exact 0.959 (492 of 513). The goal is 0.95 on every
/// intent: the first held-out set on which all four reach it (the sets
/// before it ranged from 0.838 to 0.979 per intent). The
/// floors keep a change from making it worse unnoticed; raising them by
/// tuning on this set's misses would make it a tuning set.
const HELD_OUT_FLOORS: [(Intent, f64); 4] = [
    (Intent::Card, 0.955),
    (Intent::Loan, 0.966),
    (Intent::Wealth, 0.951),
    (Intent::General, 0.967),
];
const HELD_OUT_EXACT: f64 = 0.959;

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
    let rows = parse(HELD_OUT, "intents_eighteenth.jsonl");
    assert_eq!(rows.len(), 513);
    let (exact, accuracies) = report("held out (intents_eighteenth.jsonl)", &rows, false);
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
