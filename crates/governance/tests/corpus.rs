//! The recognizers on the seeded corpus: span-level precision and recall
//! per entity, every near miss and lookalike left alone.

use ultracore_governance::corpus::{generate, score, Kind};
use ultracore_governance::{Entity, Scanner};

#[test]
fn precision_and_recall_per_entity_on_ten_thousand_sentences() {
    let corpus = generate(42, 10_000);
    let scanner = Scanner::new();
    let s = score(&corpus, |text| {
        scanner
            .scan(text)
            .into_iter()
            .map(|f| (f.entity, f.start, f.end))
            .collect()
    });
    assert_eq!(s.sentences, 10_000);
    for (entity, c) in &s.entities {
        assert!(c.labelled >= 500, "{entity}: only {} labelled", c.labelled);
        let floor = if entity.is_checked() { 0.99 } else { 0.95 };
        assert!(
            c.precision() >= floor && c.recall() >= floor,
            "{entity}: precision {:.4}, recall {:.4} ({c:?})",
            c.precision(),
            c.recall()
        );
    }
    assert!(s.near_misses > 2_000 && s.lookalikes > 1_500);
    assert_eq!(s.near_misses_flagged, 0, "a near miss was reported");
    assert_eq!(s.lookalikes_flagged, 0, "a lookalike was reported");
}

#[test]
fn every_near_miss_fails_its_rule_and_is_rejected() {
    let scanner = Scanner::new();
    let mut seen = 0;
    for s in generate(7, 5_000)
        .into_iter()
        .filter(|s| s.kind == Kind::NearMiss)
    {
        let found = scanner.scan(&s.text);
        assert!(found.is_empty(), "{:?} in {:?}", found, s.text);
        seen += 1;
    }
    assert!(seen > 1_000);
}

#[test]
fn masked_sentences_keep_no_generated_value() {
    let scanner = Scanner::new();
    for s in generate(3, 3_000)
        .into_iter()
        .filter(|s| s.kind == Kind::Pii)
    {
        let masked = ultracore_governance::mask(&s.text, &scanner.scan(&s.text));
        for v in &s.values {
            assert!(!masked.contains(v.as_str()), "{v:?} left in {masked:?}");
        }
        for span in &s.spans {
            assert!(masked.contains(&format!("<{}>", span.entity.name())));
        }
    }
    assert!(Entity::ALL.len() == 8);
}
