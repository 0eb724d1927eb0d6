//! Small hand-built models: SHAP values against a brute-force Shapley sum,
//! the corners of the JSON format, and the errors users see.

use serde_json::{json, Value};
use ultracore_models::{Error, FastTreeShap, Model, Objective, TreeShap};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A node: `Split(feature, condition, default_left, left, right)` or `Leaf(value)`,
/// each with its cover.
#[derive(Clone, Copy)]
enum N {
    Split(u32, f32, bool, i64, i64, f64),
    Leaf(f32, f64),
}

fn tree_json(nodes: &[N]) -> Value {
    let mut t = json!({
        "left_children": [], "right_children": [], "split_indices": [],
        "split_conditions": [], "default_left": [], "sum_hessian": [],
        "base_weights": [], "split_type": [], "parents": [],
        "loss_changes": [], "categories": [], "categories_nodes": [],
        "categories_segments": [], "categories_sizes": [], "id": 0,
        "tree_param": {"num_deleted": "0", "num_feature": "0", "num_nodes": "0", "size_leaf_vector": "1"}
    });
    for n in nodes {
        let (l, r, f, c, d, h) = match *n {
            N::Split(f, c, d, l, r, h) => (l, r, f, c, d, h),
            N::Leaf(v, h) => (-1, -1, 0, v, false, h),
        };
        for (key, value) in [
            ("left_children", json!(l)),
            ("right_children", json!(r)),
            ("split_indices", json!(f)),
            ("split_conditions", json!(c)),
            ("default_left", json!(u8::from(d))),
            ("sum_hessian", json!(h)),
            ("base_weights", json!(c)),
            ("split_type", json!(0)),
        ] {
            t[key].as_array_mut().unwrap().push(value);
        }
    }
    t
}

fn model_json(objective: &str, base_score: Value, num_feature: usize, trees: &[Vec<N>]) -> Value {
    json!({
        "learner": {
            "attributes": {},
            "feature_names": [],
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": trees.len().to_string()},
                    "iteration_indptr": (0..=trees.len()).collect::<Vec<_>>(),
                    "tree_info": vec![0; trees.len()],
                    "trees": trees.iter().map(|t| tree_json(t)).collect::<Vec<_>>(),
                },
                "name": "gbtree"
            },
            "learner_model_param": {
                "base_score": base_score, "boost_from_average": "1", "num_class": "0",
                "num_feature": num_feature.to_string(), "num_target": "1"
            },
            "objective": {"name": objective, "reg_loss_param": {"scale_pos_weight": "1"}}
        },
        "version": [3, 1, 3]
    })
}

/// Trees over 5 features with a feature repeated on a path, a child no
/// training row reached (cover 0), a single-leaf tree, both default
/// directions, and every block shape of the fast algorithm (lone leaves,
/// sibling pairs, four leaves under one node).
fn handmade_trees() -> Vec<Vec<N>> {
    vec![
        vec![
            N::Split(0, 0.5, true, 1, 2, 10.0),
            N::Split(1, 1.0, false, 3, 4, 4.0),
            N::Split(0, 2.0, false, 5, 6, 6.0), // feature 0 again
            N::Leaf(1.0, 1.0),
            N::Leaf(-0.5, 3.0),
            N::Split(2, -1.0, true, 7, 8, 2.5),
            N::Leaf(0.25, 3.5),
            N::Leaf(2.0, 2.0),
            N::Leaf(-1.5, 0.5),
        ],
        vec![
            N::Split(3, 0.0, false, 1, 2, 8.0),
            N::Leaf(0.75, 8.0),
            N::Split(0, 1.0, true, 3, 4, 0.0), // never reached in training
            N::Leaf(3.0, 0.0),
            N::Leaf(-3.0, 0.0),
        ],
        vec![N::Leaf(0.125, 5.0)],
        vec![
            N::Split(4, 10.0, true, 1, 2, 7.0),
            N::Split(2, 0.0, false, 3, 4, 3.0),
            N::Split(4, 20.0, true, 5, 6, 4.0), // feature 4 again
            N::Split(4, 5.0, false, 7, 8, 1.0), // and again, below the other branch
            N::Leaf(0.5, 2.0),
            N::Leaf(-0.25, 1.5),
            N::Leaf(1.25, 2.5),
            N::Leaf(-2.0, 0.25),
            N::Leaf(0.0, 0.75),
        ],
        // Four leaves two levels under the root, feature 1 repeated.
        vec![
            N::Split(1, 0.5, false, 1, 2, 9.0),
            N::Split(1, -1.0, true, 3, 4, 4.0),
            N::Split(3, 1.0, false, 5, 6, 5.0),
            N::Leaf(0.3, 1.5),
            N::Leaf(-0.2, 2.5),
            N::Leaf(1.1, 3.0),
            N::Leaf(-0.9, 2.0),
        ],
        // The same under a split, next to a lone leaf; feature 2 repeated.
        vec![
            N::Split(0, 1.0, true, 1, 2, 12.0),
            N::Split(2, 0.0, false, 3, 4, 8.0),
            N::Leaf(0.6, 4.0),
            N::Split(3, 2.0, true, 5, 6, 5.0),
            N::Split(2, 3.0, false, 7, 8, 3.0),
            N::Leaf(-0.4, 2.0),
            N::Leaf(0.9, 3.0),
            N::Leaf(1.7, 1.0),
            N::Leaf(-1.2, 2.0),
        ],
    ]
}

/// The path-dependent value of a coalition: follow the row on features in
/// `s`, average the children by cover elsewhere.
fn value(nodes: &[N], node: usize, row: &[f32], s: u32) -> f64 {
    match nodes[node] {
        N::Leaf(v, _) => f64::from(v),
        N::Split(f, c, d, l, r, _) => {
            let cover = |i: i64| match nodes[i as usize] {
                N::Split(.., h) | N::Leaf(_, h) => h,
            };
            if s >> f & 1 == 1 {
                let x = row[f as usize];
                let left = if x.is_nan() { d } else { x < c };
                value(nodes, if left { l } else { r } as usize, row, s)
            } else {
                let (cl, cr) = (cover(l), cover(r));
                let (wl, wr) = if cl + cr > 0.0 {
                    (cl / (cl + cr), cr / (cl + cr))
                } else {
                    (0.5, 0.5)
                };
                wl * value(nodes, l as usize, row, s) + wr * value(nodes, r as usize, row, s)
            }
        }
    }
}

/// Shapley values by the definition: every coalition of the other features.
fn brute_force(trees: &[Vec<N>], m: usize, row: &[f32]) -> Vec<f64> {
    let fact = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
    let mut phi = vec![0.0; m];
    for (i, p) in phi.iter_mut().enumerate() {
        for s in 0u32..(1 << m) {
            if s >> i & 1 == 1 {
                continue;
            }
            let k = s.count_ones() as usize;
            let w = fact(k) * fact(m - k - 1) / fact(m);
            for t in trees {
                *p += w * (value(t, 0, row, s | 1 << i) - value(t, 0, row, s));
            }
        }
    }
    phi
}

fn rows() -> Vec<Vec<f32>> {
    let values = [
        -2.0,
        -1.0,
        0.0,
        0.5,
        1.0,
        2.0,
        3.0,
        5.0,
        10.0,
        20.0,
        25.0,
        f32::NAN,
    ];
    let mut state = 12345u64;
    (0..300)
        .map(|_| {
            (0..5)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    values[(state >> 40) as usize % values.len()]
                })
                .collect()
        })
        .collect()
}

/// Batches give every row exactly what one call per row gives: the same
/// margin and SHAP values, bit for bit, whatever the batch size.
fn assert_batches_match_rows(fast: &FastTreeShap, rows: &[Vec<f32>]) -> TestResult {
    let n = fast.num_features();
    let mut ws = fast.workspace();
    let mut one = vec![0.0; n];
    let mut expected = Vec::new();
    for row in rows {
        let m = fast.shap_values(row, &mut ws, &mut one)?;
        expected.push((m, one.clone()));
    }
    for size in [1, 3, 64, rows.len()] {
        for (chunk, want) in rows.chunks(size).zip(expected.chunks(size)) {
            let flat: Vec<f32> = chunk.concat();
            let mut phi = vec![f64::NAN; flat.len()];
            let mut margins = vec![f64::NAN; chunk.len()];
            fast.shap_values_batch(&flat, &mut ws, &mut phi, &mut margins)?;
            for (r, (m, p)) in want.iter().enumerate() {
                assert_eq!(margins[r].to_bits(), m.to_bits(), "batch {size} row {r}");
                let got = &phi[r * n..(r + 1) * n];
                assert!(
                    got.iter().zip(p).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "batch {size} row {r}: {got:?} vs {p:?}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn shap_values_equal_the_shapley_definition() -> TestResult {
    let trees = handmade_trees();
    let model =
        Model::from_json(&model_json("reg:squarederror", json!("[1.5E0]"), 5, &trees).to_string())?;
    assert_eq!(model.base_margin(), 1.5);
    let exact = TreeShap::new(&model);
    let fast = FastTreeShap::new(&model);
    let (mut we, mut wf) = (exact.workspace(), fast.workspace());
    let (mut pe, mut pf) = (vec![0.0; 5], vec![0.0; 5]);
    for row in rows() {
        let expected = brute_force(&trees, 5, &row);
        let me = exact.shap_values(&row, &mut we, &mut pe)?;
        let mf = fast.shap_values(&row, &mut wf, &mut pf)?;
        assert_eq!(me, model.margin(&row)?);
        assert!((me - mf).abs() < 1e-12);
        assert!((pe.iter().sum::<f64>() + exact.expected_value() - me).abs() < 1e-12);
        for i in 0..5 {
            assert!(
                (pe[i] - expected[i]).abs() < 1e-12,
                "row {row:?} feature {i}: exact {} vs {}",
                pe[i],
                expected[i]
            );
            assert!(
                (pf[i] - expected[i]).abs() < 1e-12,
                "row {row:?} feature {i}: fast {} vs {}",
                pf[i],
                expected[i]
            );
        }
    }
    assert_batches_match_rows(&fast, &rows())?;
    Ok(())
}

#[test]
fn paths_of_more_than_four_features_use_the_wide_tables() -> TestResult {
    // A chain over features 0..5 (six distinct features on the deepest path),
    // with feature 1 repeated and a balanced split at the bottom.
    let trees = vec![
        handmade_trees()[0].clone(),
        vec![
            N::Split(0, 0.0, true, 1, 2, 20.0),
            N::Leaf(0.5, 4.0),
            N::Split(1, 1.0, false, 3, 4, 16.0),
            N::Split(2, 2.0, true, 5, 6, 10.0),
            N::Leaf(-0.75, 6.0),
            N::Split(3, 3.0, false, 7, 8, 7.0),
            N::Leaf(1.5, 3.0),
            N::Split(1, 0.0, true, 9, 10, 5.0),
            N::Leaf(0.25, 2.0),
            N::Split(4, 4.0, false, 11, 12, 3.0),
            N::Split(5, 5.0, true, 13, 14, 2.0),
            N::Leaf(-2.0, 1.0),
            N::Leaf(3.0, 2.0),
            N::Leaf(1.0, 1.5),
            N::Leaf(-1.0, 0.5),
        ],
    ];
    let model =
        Model::from_json(&model_json("reg:squarederror", json!("0"), 6, &trees).to_string())?;
    let fast = FastTreeShap::new(&model);
    assert_eq!((fast.depth4_trees(), fast.exact_trees()), (1, 0));
    let exact = TreeShap::new(&model);
    let (mut we, mut wf) = (exact.workspace(), fast.workspace());
    let (mut pe, mut pf) = (vec![0.0; 6], vec![0.0; 6]);
    let values = [-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, f32::NAN];
    let rows: Vec<Vec<f32>> = (0..400usize)
        .map(|k| {
            (0..6)
                .map(|f| values[(k * 7 + f * 3 + k / (f + 1)) % values.len()])
                .collect()
        })
        .collect();
    assert_batches_match_rows(&fast, &rows)?;
    for row in rows {
        let expected = brute_force(&trees, 6, &row);
        let me = exact.shap_values(&row, &mut we, &mut pe)?;
        let mf = fast.shap_values(&row, &mut wf, &mut pf)?;
        assert!((me - mf).abs() < 1e-12);
        for i in 0..6 {
            assert!(
                (pe[i] - expected[i]).abs() < 1e-12,
                "row {row:?} feature {i}: exact {} vs {}",
                pe[i],
                expected[i]
            );
            assert!(
                (pf[i] - expected[i]).abs() < 1e-12,
                "row {row:?} feature {i}: fast {} vs {}",
                pf[i],
                expected[i]
            );
        }
    }
    Ok(())
}

#[test]
fn one_split_by_hand() -> TestResult {
    let trees = vec![vec![
        N::Split(0, 0.5, false, 1, 2, 10.0),
        N::Leaf(1.0, 4.0),
        N::Leaf(-1.0, 6.0),
    ]];
    let model =
        Model::from_json(&model_json("binary:logistic", json!("5E-1"), 1, &trees).to_string())?;
    assert_eq!(model.base_margin(), 0.0);
    assert!((model.expected_value() - -0.2).abs() < 1e-15);
    let explainer = FastTreeShap::new(&model);
    let mut ws = explainer.workspace();
    let mut phi = [0.0];
    // Left (x < 0.5): 1 - (-0.2) = 1.2. Equal to the condition goes right; missing goes right.
    for (x, margin, shap) in [(0.0, 1.0, 1.2), (0.5, -1.0, -0.8), (f32::NAN, -1.0, -0.8)] {
        assert_eq!(explainer.shap_values(&[x], &mut ws, &mut phi)?, margin);
        assert!((phi[0] - shap).abs() < 1e-15);
        assert_eq!(model.predict_margin(&[x])?, margin as f32);
        let p = 1.0 / (1.0 + (-margin).exp());
        assert!((f64::from(model.predict(&[x])?) - p).abs() < 1e-7);
    }
    Ok(())
}

#[test]
fn very_deep_trees_fall_back_to_the_exact_recursion() -> TestResult {
    // A chain of 20 splits on 20 distinct features: 2^20 table rows per leaf
    // would be too many.
    let mut nodes = Vec::new();
    for f in 0..20u32 {
        let i = nodes.len() as i64;
        nodes.push(N::Split(
            f,
            f as f32,
            f % 2 == 0,
            i + 1,
            i + 2,
            40.0 - 2.0 * f as f64,
        ));
        nodes.push(N::Leaf(f as f32 / 10.0 - 1.0, 1.0));
    }
    // The last split's right child is the chain's final leaf.
    let last = nodes.len() - 1;
    nodes[last] = N::Leaf(0.5, 1.0);
    // Children: node 2k splits into 2k+1 (leaf) and 2k+2 (next split).
    let nodes: Vec<N> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match *n {
            N::Split(f, c, d, _, _, h) => N::Split(f, c, d, i as i64 + 1, i as i64 + 2, h),
            leaf => leaf,
        })
        .collect();
    let mut nodes = nodes;
    nodes.push(N::Leaf(0.75, 1.0));
    let model =
        Model::from_json(&model_json("reg:squarederror", json!("0"), 20, &[nodes]).to_string())?;
    let fast = FastTreeShap::new(&model);
    assert_eq!((fast.depth4_trees(), fast.exact_trees()), (0, 1));
    let exact = TreeShap::new(&model);
    let (mut we, mut wf) = (exact.workspace(), fast.workspace());
    let (mut pe, mut pf) = (vec![0.0; 20], vec![0.0; 20]);
    let mut rows = Vec::new();
    for k in 0..25 {
        let row: Vec<f32> = (0..20)
            .map(|f| {
                if (f + k) % 7 == 0 {
                    f32::NAN
                } else {
                    (f + k % 3) as f32
                }
            })
            .collect();
        let me = exact.shap_values(&row, &mut we, &mut pe)?;
        assert_eq!(me, fast.shap_values(&row, &mut wf, &mut pf)?);
        assert_eq!(pe, pf);
        assert!((pe.iter().sum::<f64>() + exact.expected_value() - me).abs() < 1e-12);
        rows.push(row);
    }
    assert_batches_match_rows(&fast, &rows)?;
    Ok(())
}

#[test]
fn format_variants_read_the_same() -> TestResult {
    let trees = handmade_trees();
    let a =
        Model::from_json(&model_json("reg:squarederror", json!("[5E-1]"), 5, &trees).to_string())?;
    let b =
        Model::from_json(&model_json("reg:squarederror", json!("5E-1"), 5, &trees).to_string())?;
    let c = Model::from_json(&model_json("reg:squarederror", json!(0.5), 5, &trees).to_string())?;
    // Old files: default_left as booleans.
    let mut old = model_json("reg:squarederror", json!("5E-1"), 5, &trees);
    for t in old["learner"]["gradient_booster"]["model"]["trees"]
        .as_array_mut()
        .unwrap()
    {
        let flags: Vec<bool> = t["default_left"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        t["default_left"] = json!(flags);
    }
    let d = Model::from_json(&old.to_string())?;
    assert_eq!(a.feature_names(), ["f0", "f1", "f2", "f3", "f4"]);
    assert_eq!(a.objective(), Objective::SquaredError);
    for row in rows() {
        let m = a.predict_margin(&row)?;
        for other in [&b, &c, &d] {
            assert_eq!(other.predict_margin(&row)?, m);
        }
    }
    Ok(())
}

fn error_of(json: &Value) -> Error {
    match Model::from_json(&json.to_string()) {
        Ok(_) => panic!("accepted {json}"),
        Err(e) => e,
    }
}

#[test]
fn bad_models_are_clear_errors() {
    let trees = handmade_trees();
    let good = model_json("reg:squarederror", json!("0"), 5, &trees);

    assert!(matches!(Model::from_json("not json"), Err(Error::Json(_))));
    assert!(matches!(
        Model::from_json("{\"learner\": {}}"),
        Err(Error::Json(_))
    ));

    let e = error_of(&model_json("multi:softprob", json!("0"), 5, &trees));
    assert!(matches!(e, Error::Unsupported { .. }));
    assert!(e.to_string().contains("multi:softprob"), "{e}");

    let mut dart = good.clone();
    dart["learner"]["gradient_booster"]["name"] = json!("dart");
    assert!(matches!(error_of(&dart), Error::Unsupported { .. }));

    let mut multi = good.clone();
    multi["learner"]["learner_model_param"]["base_score"] = json!("[1E0,2E0]");
    assert!(matches!(error_of(&multi), Error::Unsupported { .. }));

    let mut categorical = good.clone();
    categorical["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = json!(1);
    let e = error_of(&categorical);
    assert!(
        e.to_string().contains("tree 0") && e.to_string().contains("categorical"),
        "{e}"
    );

    let mut child = good.clone();
    child["learner"]["gradient_booster"]["model"]["trees"][1]["left_children"][0] = json!(99);
    assert!(matches!(error_of(&child), Error::Invalid { .. }));

    let mut cycle = good.clone();
    cycle["learner"]["gradient_booster"]["model"]["trees"][1]["left_children"][2] = json!(0);
    assert!(matches!(error_of(&cycle), Error::Invalid { .. }));

    let mut feature = good.clone();
    feature["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = json!(7);
    let e = error_of(&feature);
    assert!(e.to_string().contains("feature 7"), "{e}");

    let mut short = good.clone();
    short["learner"]["gradient_booster"]["model"]["trees"][0]["sum_hessian"] = json!([1.0]);
    assert!(matches!(error_of(&short), Error::Invalid { .. }));

    let mut names = good.clone();
    names["learner"]["feature_names"] = json!(["a", "b"]);
    assert!(matches!(error_of(&names), Error::Invalid { .. }));

    let e = error_of(&model_json("binary:logistic", json!("1.5"), 5, &trees));
    assert!(e.to_string().contains("base_score"), "{e}");

    let e = Model::load("/nonexistent/model.json").unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("/nonexistent/model.json"),
        "{e}"
    );
}

#[test]
fn rows_of_the_wrong_length_are_errors() -> TestResult {
    let model = Model::from_json(
        &model_json("reg:squarederror", json!("0"), 5, &handmade_trees()).to_string(),
    )?;
    assert!(matches!(
        model.predict(&[0.0; 4]),
        Err(Error::RowLength {
            expected: 5,
            actual: 4
        })
    ));
    let fast = FastTreeShap::new(&model);
    let mut ws = fast.workspace();
    let mut phi = vec![0.0; 6];
    assert!(matches!(
        fast.shap_values(&[0.0; 5], &mut ws, &mut phi),
        Err(Error::RowLength {
            expected: 5,
            actual: 6
        })
    ));
    // Two margins want two rows of five.
    assert!(matches!(
        fast.shap_values_batch(&[0.0; 5], &mut ws, &mut [0.0; 10], &mut [0.0; 2]),
        Err(Error::RowLength {
            expected: 10,
            actual: 5
        })
    ));
    Ok(())
}
