//! The learned half of intent detection: one logistic regression per
//! domain (card, loan, wealth), and one for general (the question asks
//! none of them, whatever it names in passing), over hashed features of
//! the query — its
//! words, word pairs, the letter n-grams of its words, and the cue tables'
//! matches in it — trained on the labelled tuning sets when it is first
//! needed.
//!
//! Why these: word pairs keep the phrases ("term deposit", "break fee")
//! whose single words belong to other intents; letter n-grams carry a
//! misspelt or unseen word to the words it looks like; the cue matches
//! (each phrase, and its kind: a strong loan cue, a weak card one) bring
//! the tables' vocabulary, far larger than a thousand examples, without
//! the rules' clause logic, so the model learns where a cue misleads.
//! Cross-validation (see `tests::cross_validation`) put the model's
//! exact match on the third set at 0.81 with words and pairs, 0.85 with
//! letter n-grams, 0.91 with the cue matches.
//!
//! Training is deterministic (a seeded shuffle, fixed epochs) and takes
//! under a second in a debug build, most of it matching the cue tables on
//! the 8,176 queries; a prediction is one pass over the
//! query's hundred or so features.

use std::sync::OnceLock;

use ultracore_rng::SplitMix64;

use super::Intent::{self, *};

/// The domains the model scores.
pub(super) const DOMAINS: [Intent; 3] = [Card, Loan, Wealth];

/// What the model scores: each domain, then general (the question asks
/// none of them, whatever it names).
pub(super) const OUTPUTS: [Intent; 4] = [Card, Loan, Wealth, General];

/// The model's probabilities, in the order of [`OUTPUTS`].
pub(super) type Probabilities = [f64; 4];

/// The labelled sets (file name, JSON lines) the rules are tuned on and
/// the shipped model is trained on; the tests score them. The eighteenth
/// set (`data/intents_eighteenth.jsonl`) is held out: never trained or
/// tuned on.
pub const TUNING_SETS: [(&str, &str); 17] = [
    ("intents.jsonl", include_str!("../../data/intents.jsonl")),
    (
        "intents_fresh.jsonl",
        include_str!("../../data/intents_fresh.jsonl"),
    ),
    (
        "intents_third.jsonl",
        include_str!("../../data/intents_third.jsonl"),
    ),
    (
        "intents_fourth.jsonl",
        include_str!("../../data/intents_fourth.jsonl"),
    ),
    (
        "intents_fifth.jsonl",
        include_str!("../../data/intents_fifth.jsonl"),
    ),
    (
        "intents_sixth.jsonl",
        include_str!("../../data/intents_sixth.jsonl"),
    ),
    (
        "intents_seventh.jsonl",
        include_str!("../../data/intents_seventh.jsonl"),
    ),
    (
        "intents_eighth.jsonl",
        include_str!("../../data/intents_eighth.jsonl"),
    ),
    (
        "intents_ninth.jsonl",
        include_str!("../../data/intents_ninth.jsonl"),
    ),
    (
        "intents_tenth.jsonl",
        include_str!("../../data/intents_tenth.jsonl"),
    ),
    (
        "intents_eleventh.jsonl",
        include_str!("../../data/intents_eleventh.jsonl"),
    ),
    (
        "intents_twelfth.jsonl",
        include_str!("../../data/intents_twelfth.jsonl"),
    ),
    (
        "intents_thirteenth.jsonl",
        include_str!("../../data/intents_thirteenth.jsonl"),
    ),
    (
        "intents_fourteenth.jsonl",
        include_str!("../../data/intents_fourteenth.jsonl"),
    ),
    (
        "intents_fifteenth.jsonl",
        include_str!("../../data/intents_fifteenth.jsonl"),
    ),
    (
        "intents_sixteenth.jsonl",
        include_str!("../../data/intents_sixteenth.jsonl"),
    ),
    (
        "intents_seventeenth.jsonl",
        include_str!("../../data/intents_seventeenth.jsonl"),
    ),
];

/// Hash buckets: 2^18, so that the tens of thousands of distinct features
/// of the tuning sets seldom share one.
const BITS: u32 = 18;

/// A query's features: `(bucket, value)`, the vector of unit length.
pub(super) type Features = Vec<(u32, f32)>;

/// How the model is trained. In cross-validation, 6 to 24 epochs, steps
/// of 0.2 to 1 and L2 penalties of 0 to 1e-4 were all within a point of
/// each other.
#[derive(Debug, Clone, Copy)]
pub(super) struct Training {
    pub epochs: usize,
    /// Adagrad's base step.
    pub step: f32,
    /// L2 penalty per example seen.
    pub l2: f32,
    pub seed: u64,
}

impl Default for Training {
    fn default() -> Training {
        Training {
            epochs: 12,
            step: 0.5,
            l2: 1e-5,
            seed: 0x1A7E_475E,
        }
    }
}

/// A labelled query: its features and, per domain, whether it asks it.
pub(super) struct Example {
    pub features: Features,
    pub labels: [bool; 4],
}

impl Example {
    pub fn new(query: &str, intents: &[Intent]) -> Example {
        Example::shaped(query, intents, &SHAPE)
    }

    pub fn shaped(query: &str, intents: &[Intent], shape: &Shape) -> Example {
        Example {
            features: features_shaped(query, shape),
            labels: OUTPUTS.map(|d| intents.contains(&d)),
        }
    }
}

/// The weights of the three regressions.
pub(super) struct Model {
    /// Per bucket, one weight per domain.
    weights: Vec<[f32; 4]>,
    bias: [f32; 4],
}

impl Model {
    /// Logistic regressions fitted by Adagrad on the log loss, examples in
    /// a seeded order each epoch.
    pub fn train(examples: &[Example], t: &Training) -> Model {
        let size = 1usize << BITS;
        let mut m = Model {
            weights: vec![[0.0; 4]; size],
            bias: [0.0; 4],
        };
        let mut squared = vec![[1e-8f32; 4]; size];
        let mut bias_squared = [1e-8f32; 4];
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = SplitMix64::new(t.seed);
        for _ in 0..t.epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for &e in &order {
                let ex = &examples[e];
                let scores = m.scores(&ex.features);
                for d in 0..OUTPUTS.len() {
                    let p = sigmoid(scores[d]);
                    let g = p - f32::from(u8::from(ex.labels[d]));
                    bias_squared[d] += g * g;
                    m.bias[d] -= t.step * g / bias_squared[d].sqrt();
                    for &(f, v) in &ex.features {
                        let w = &mut m.weights[f as usize][d];
                        let gw = g * v + t.l2 * *w;
                        let s = &mut squared[f as usize][d];
                        *s += gw * gw;
                        *w -= t.step * gw / s.sqrt();
                    }
                }
            }
        }
        m
    }

    fn scores(&self, features: &[(u32, f32)]) -> [f32; 4] {
        let mut s = self.bias;
        for &(f, v) in features {
            let w = &self.weights[f as usize];
            for d in 0..OUTPUTS.len() {
                s[d] += w[d] * v;
            }
        }
        s
    }

    /// Per output, the probability that `query` asks it.
    pub fn probabilities(&self, query: &str) -> Probabilities {
        self.scores(&features(query)).map(|s| f64::from(sigmoid(s)))
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The labelled queries of a JSON-lines set.
pub(super) fn labelled(text: &str) -> Vec<(String, Vec<Intent>)> {
    #[derive(serde::Deserialize)]
    struct Row {
        query: String,
        intents: Vec<String>,
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: Row = serde_json::from_str(l).expect("the tuning sets are valid JSON lines");
            let intents = row
                .intents
                .iter()
                .map(|s| Intent::parse(s).expect("the tuning sets name known intents"))
                .collect();
            (row.query, intents)
        })
        .collect()
}

static MODEL: OnceLock<Model> = OnceLock::new();

/// Trains the shipped model on a thread of its own, if it is not trained
/// yet: a service calls it when it starts, so that its first question does
/// not train it on an async worker (a question that comes sooner waits
/// for the training to end). If the thread cannot start, the first
/// question trains it.
pub(super) fn warm_up() {
    if MODEL.get().is_none() {
        let _ = std::thread::Builder::new()
            .name("intent-model".into())
            .spawn(|| {
                shipped();
            });
    }
}

/// The model trained on the tuning sets, once per process.
pub(super) fn shipped() -> &'static Model {
    MODEL.get_or_init(|| {
        let examples: Vec<Example> = TUNING_SETS
            .iter()
            .flat_map(|(_, text)| labelled(text))
            .map(|(q, intents)| Example::new(&q, &intents))
            .collect();
        Model::train(&examples, &Training::default())
    })
}

/// The tokens of a query: lower-cased runs of letters and digits
/// (apostrophes dropped: "what's" is "whats"); a number is `#` (`#k` with
/// a k or m after it, "50k"), a `$` before one adds `$`, a `%` after one `%`.
fn tokens(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if cur.is_empty() {
            return;
        }
        if cur.starts_with(|c: char| c.is_ascii_digit()) {
            let unit = cur.trim_start_matches(|c: char| c.is_ascii_digit());
            out.push(match unit {
                "" => "#".to_owned(),
                "k" | "m" | "mil" | "grand" => "#k".to_owned(),
                _ => "#x".to_owned(),
            });
        } else {
            out.push(std::mem::take(cur));
        }
        cur.clear();
    };
    for c in query.chars() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if c == '\'' || c == '’' || (c == ',' && cur.ends_with(|c: char| c.is_ascii_digit()))
        {
            // "what's", "50,000": one token.
        } else {
            flush(&mut cur, &mut out);
            match c {
                '$' => out.push("$".to_owned()),
                '%' => out.push("%".to_owned()),
                _ => {}
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// What the features are made of, and how much each kind weighs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub words: f32,
    pub pairs: f32,
    /// Shared by a word's letter n-grams, so a long word does not outweigh
    /// a short one.
    pub chars: f32,
    /// The cue tables' matches (phrase and kind), before the rules weigh
    /// them by clause.
    pub cues: f32,
}

pub(super) const SHAPE: Shape = Shape {
    words: 1.0,
    pairs: 1.0,
    chars: 0.25,
    cues: 1.0,
};

/// The hashed features of a query, of unit length.
pub(super) fn features(query: &str) -> Features {
    features_shaped(query, &SHAPE)
}

pub(super) fn features_shaped(query: &str, shape: &Shape) -> Features {
    let toks = tokens(query);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(toks.len() * 16);
    for (i, t) in toks.iter().enumerate() {
        out.push((bucket(&[b"w", t.as_bytes()]), shape.words));
        let before = if i == 0 { "<" } else { toks[i - 1].as_str() };
        out.push((
            bucket(&[b"b", before.as_bytes(), b" ", t.as_bytes()]),
            shape.pairs,
        ));
        if shape.chars > 0.0 && t.chars().all(char::is_alphabetic) && t.len() > 2 {
            let padded: Vec<char> = format!("<{t}>").chars().collect();
            let mut grams = Vec::new();
            for n in 3..=5 {
                for w in padded.windows(n) {
                    grams.push(w.iter().collect::<String>());
                }
            }
            let v = shape.chars / (grams.len() as f32).sqrt();
            for g in grams {
                out.push((bucket(&[b"c", g.as_bytes()]), v));
            }
        }
    }
    if let Some(last) = toks.last() {
        out.push((bucket(&[b"b", last.as_bytes(), b" >"]), shape.pairs));
    }
    if shape.cues > 0.0 {
        for c in super::cues_of(&super::matching::words(query)) {
            let kind = format!("{:?}", c.kind);
            out.push((bucket(&[b"k", kind.as_bytes()]), shape.cues));
            out.push((bucket(&[b"p", c.phrase.join(" ").as_bytes()]), shape.cues));
        }
    }
    out.retain(|(_, v)| *v > 0.0);
    out.sort_unstable_by_key(|(f, _)| *f);
    out.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 += a.1;
            true
        } else {
            false
        }
    });
    let norm = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt().max(1e-6);
    for (_, v) in &mut out {
        *v /= norm;
    }
    out
}

/// FNV-1a of the parts, folded to `BITS`: the same bucket on every
/// platform and in every process.
fn bucket(parts: &[&[u8]]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    ((h >> 32) ^ h) as u32 & ((1 << BITS) - 1)
}

#[cfg(test)]
mod tests {
    use super::super::{combine, rules, Detected, Policy, Ruled, POLICY};
    use super::*;

    type Rows = Vec<(String, Vec<Intent>)>;

    /// Per-intent accuracy (exact match of the queries labelled with it,
    /// as `tests/intents.rs` counts it) and exact match overall.
    fn scores(gold: &[Vec<Intent>], got: &[Vec<Intent>]) -> ([f64; 4], f64) {
        let mut right = [0usize; 4];
        let mut all = [0usize; 4];
        let mut exact = 0;
        for (g, p) in gold.iter().zip(got) {
            exact += usize::from(g == p);
            for i in g {
                let k = *i as usize;
                all[k] += 1;
                right[k] += usize::from(g == p);
            }
        }
        (
            std::array::from_fn(|k| right[k] as f64 / all[k].max(1) as f64),
            exact as f64 / gold.len().max(1) as f64,
        )
    }

    /// Out-of-fold probabilities for every row: each of `folds` folds
    /// (a seeded shuffle) scored by a model trained on the others.
    fn out_of_fold(rows: &Rows, folds: usize, seed: u64, shape: &Shape) -> Vec<Probabilities> {
        let examples: Vec<Example> = rows
            .iter()
            .map(|(q, i)| Example::shaped(q, i, shape))
            .collect();
        let mut fold: Vec<usize> = (0..rows.len()).map(|i| i % folds).collect();
        let mut rng = SplitMix64::new(seed);
        for i in (1..fold.len()).rev() {
            fold.swap(i, rng.below(i + 1));
        }
        let mut out = vec![[0.0; 4]; rows.len()];
        for k in 0..folds {
            let train: Vec<Example> = examples
                .iter()
                .zip(&fold)
                .filter(|(_, f)| **f != k)
                .map(|(e, _)| Example {
                    features: e.features.clone(),
                    labels: e.labels,
                })
                .collect();
            let m = Model::train(&train, &Training::default());
            for (i, _) in fold.iter().enumerate().filter(|(_, f)| **f == k) {
                out[i] = m
                    .scores(&examples[i].features)
                    .map(|s| f64::from(sigmoid(s)));
            }
        }
        out
    }

    fn env_list<T: std::str::FromStr>(name: &str, default: &str, sep: char) -> Vec<Vec<T>> {
        std::env::var(name)
            .unwrap_or_else(|_| default.to_owned())
            .split(';')
            .map(|item| {
                item.split(sep)
                    .map(|x| x.trim().parse().ok().expect("a number"))
                    .collect()
            })
            .collect()
    }

    /// Five-fold cross-validation on the tuning sets, averaged over fold
    /// seeds: the model alone, the rules alone, and the rules amended by
    /// the model under each policy. How `SHAPE` and `POLICY` were chosen.
    ///
    /// The rules had been written on the first two sets (they score 1.000
    /// there), so policies were compared on the third, whose queries the
    /// rules had not been tuned on then. Averaged over fold seeds 1–4, on
    /// the third set, per-intent minimum and exact: rules 0.899 / 0.931;
    /// model alone (≥ 0.5) 0.84 / 0.91; rules amended with add 0.8 and
    /// alone 0.5, 0.923 / 0.941. Words and pairs alone gave the model
    /// 0.81 exact, with letter n-grams 0.85, with the cue matches 0.91;
    /// letter n-grams at 0.25 beside the cue matches cost nothing and keep
    /// misspellings near their words. Dropping a domain the rules found
    /// (found by a strong cue or only by weak words) never did better. The
    /// rules have since been tuned on the third set as well, so a run now
    /// shows them near 1.000 on all three.
    ///
    /// The general output was chosen the same way, on the eighth set (the
    /// rules not yet tuned on it; half its general questions name a domain
    /// in passing), fold seeds 1–2: general 0.686 without it; overruling
    /// the rules' domains at p ≥ 0.9 0.736, 0.8 0.775, 0.7 0.791, 0.6
    /// 0.822, 0.5 0.845 (exact 0.901 → 0.932 at 0.6), while on the other
    /// sets no intent lost more than 0.008 down to 0.6 (the fifth's wealth
    /// lost 0.008 more at 0.5).
    ///
    /// Knobs: `SHAPES="1,1,0.25,1;1,1,0,1"` (words, pairs, chars, cues),
    /// `POLICIES="0.8,0.5,0.8;0.8,0.5,1.1"` (add, alone, general; above 1
    /// never overrules), `FOLD_SEEDS="1,2,3,4"`.
    #[test]
    #[ignore = "about 10 s in a debug build: cargo test -p ultracore-agents --lib cross_validation -- --ignored --nocapture"]
    fn cross_validation() {
        let sets: Vec<(&str, Rows)> = TUNING_SETS.iter().map(|(n, t)| (*n, labelled(t))).collect();
        let rows: Rows = sets.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
        let ruled: Vec<_> = rows.iter().map(|(q, _)| rules(q)).collect();
        let default_shape = format!(
            "{},{},{},{}",
            SHAPE.words, SHAPE.pairs, SHAPE.chars, SHAPE.cues
        );
        let default_policy = format!("{},{},{}", POLICY.add, POLICY.alone, POLICY.general);
        let seeds: Vec<u64> = env_list("FOLD_SEEDS", "1,2,3,4", ',').concat();
        let policies: Vec<Vec<f64>> = env_list("POLICIES", &default_policy, ',');
        for w in env_list::<f32>("SHAPES", &default_shape, ',') {
            let shape = Shape {
                words: w[0],
                pairs: w[1],
                chars: w[2],
                cues: w[3],
            };
            println!("{shape:?}");
            // Per set, per method: summed scores over the seeds.
            let mut sums: Vec<Vec<(String, [f64; 4], f64)>> = vec![Vec::new(); sets.len()];
            for seed in &seeds {
                let probs = out_of_fold(&rows, 5, *seed, &shape);
                let mut from = 0;
                for (s, (_, set)) in sets.iter().enumerate() {
                    let range = from..from + set.len();
                    from += set.len();
                    let gold: Vec<Vec<Intent>> = set.iter().map(|(_, i)| i.clone()).collect();
                    let mut methods: Vec<(String, Vec<Vec<Intent>>)> = vec![
                        (
                            "rules".into(),
                            ruled[range.clone()]
                                .iter()
                                .map(|r| r.detected.intents.clone())
                                .collect(),
                        ),
                        (
                            "model ≥ 0.5".into(),
                            probs[range.clone()]
                                .iter()
                                .map(|p| {
                                    let r = Ruled {
                                        detected: Detected {
                                            intents: vec![General],
                                            cues: vec![],
                                            parts: vec![],
                                        },
                                        won: false,
                                        set_aside: vec![],
                                    };
                                    combine(
                                        &r,
                                        *p,
                                        &Policy {
                                            add: 0.5,
                                            alone: 0.5,
                                            general: 1.1,
                                        },
                                    )
                                })
                                .collect(),
                        ),
                    ];
                    for v in &policies {
                        let policy = Policy {
                            add: v[0],
                            alone: v[1],
                            general: v[2],
                        };
                        methods.push((
                            format!("rules + model {}/{}/{}", v[0], v[1], v[2]),
                            ruled[range.clone()]
                                .iter()
                                .zip(&probs[range.clone()])
                                .map(|(r, p)| combine(r, *p, &policy))
                                .collect(),
                        ));
                    }
                    for (m, (name, got)) in methods.into_iter().enumerate() {
                        let (per, exact) = scores(&gold, &got);
                        if sums[s].len() <= m {
                            sums[s].push((name, [0.0; 4], 0.0));
                        }
                        for (sum, x) in sums[s][m].1.iter_mut().zip(per) {
                            *sum += x;
                        }
                        sums[s][m].2 += exact;
                    }
                }
            }
            let n = seeds.len() as f64;
            for ((set, _), methods) in sets.iter().zip(&sums) {
                println!("  {set}");
                for (name, per, exact) in methods {
                    let per = per.map(|x| x / n);
                    println!(
                        "    {name:22} exact {:.3}  card {:.3} loan {:.3} wealth {:.3} general {:.3}  min {:.3}",
                        exact / n,
                        per[0],
                        per[1],
                        per[2],
                        per[3],
                        per.iter().copied().fold(1.0, f64::min)
                    );
                }
            }
        }
    }

    #[test]
    fn training_is_deterministic() {
        let rows = labelled(TUNING_SETS[0].1);
        let examples: Vec<Example> = rows[..150]
            .iter()
            .map(|(q, i)| Example::new(q, i))
            .collect();
        let t = Training {
            epochs: 3,
            ..Training::default()
        };
        let (a, b) = (Model::train(&examples, &t), Model::train(&examples, &t));
        for (q, _) in &rows[150..170] {
            assert_eq!(a.probabilities(q), b.probabilities(q), "{q}");
        }
    }

    #[test]
    fn numbers_and_apostrophes_are_tokens_of_their_own() {
        assert_eq!(
            tokens("What's $50,000 down at 6.2%, on 600k?"),
            ["whats", "$", "#", "down", "at", "#", "#", "%", "on", "#k"]
        );
    }

    #[test]
    fn features_are_of_unit_length_and_do_not_repeat() {
        let f = features("Lost my card, lost my card again");
        let norm: f32 = f.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
