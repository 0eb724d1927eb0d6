use super::*;

/// `tools/reference_sharpe_test.py`'s `gauss`: four uniforms, centred,
/// unit variance; only + − × so both compute the same bits.
fn gauss(rng: &mut SplitMix64) -> f64 {
    let s = rng.next_f64() + rng.next_f64() + rng.next_f64() + rng.next_f64();
    (s - 2.0) * 1.732_050_807_568_877_2
}

/// The script's `sample_returns`: a GARCH(1,1)-like common shock plus
/// own shocks, each accumulated by an AR(1) with coefficient `phi`.
fn sample_returns(
    seed: u64,
    t: usize,
    mean_a: f64,
    mean_b: f64,
    vol: f64,
    phi: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut rng = SplitMix64::new(seed);
    let (mut h, mut u_prev, mut xa, mut xb) = (1.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    let (mut a, mut b) = (Vec::with_capacity(t), Vec::with_capacity(t));
    for _ in 0..t {
        h = 0.05 + 0.10 * u_prev * u_prev + 0.85 * h;
        let s = h.sqrt();
        let u = s * gauss(&mut rng);
        let ea = s * gauss(&mut rng);
        let eb = s * gauss(&mut rng);
        xa = phi * xa + 0.6 * u + 0.8 * ea;
        xb = phi * xb + 0.6 * u + 0.8 * eb;
        a.push(mean_a + vol * xa);
        b.push(mean_b + vol * xb);
        u_prev = u;
    }
    (a, b)
}

fn assert_close(name: &str, actual: f64, expected: f64, rel: f64) {
    let err = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        err <= rel,
        "{name}: {actual} vs pinned {expected} (relative error {err:e} > {rel:e})"
    );
}

/// One case of `tools/reference_sharpe_test.py`'s output.
struct Pinned {
    data: (u64, usize, f64, f64, f64, f64),
    options: SharpeTestOptions,
    first_returns: [f64; 4],
    sharpe_a: f64,
    sharpe_b: f64,
    diff: f64,
    se: f64,
    exceedances: usize,
    ci_low: f64,
    ci_high: f64,
    min_detectable: f64,
}

fn check(p: &Pinned) -> Result<SharpeTest, SharpeTestError> {
    let (seed, t, mean_a, mean_b, vol, phi) = p.data;
    let (a, b) = sample_returns(seed, t, mean_a, mean_b, vol, phi);
    // The inputs themselves first, bit for bit.
    assert_eq!([a[0], b[0], a[t - 1], b[t - 1]], p.first_returns);
    let r = sharpe_difference_test(&a, &b, p.options)?;
    const REL: f64 = 1e-12;
    assert_close("sharpe_a", r.sharpe_a, p.sharpe_a, REL);
    assert_close("sharpe_b", r.sharpe_b, p.sharpe_b, REL);
    assert_close("diff", r.diff, p.diff, REL);
    assert_close("se", r.se, p.se, REL);
    assert_close("hac_standard_error", hac_standard_error(&a, &b)?, p.se, REL);
    // Same block starts, same comparisons (the script reports the nearest
    // d* at a relative distance of 1e-5 or more from d, far above
    // rounding), so the count, and the p-value, are equal exactly.
    let count = (r.p_value * (r.reps + 1) as f64).round() as usize - 1;
    assert_eq!(count, p.exceedances, "bootstrap exceedances");
    assert_eq!(r.p_value, (p.exceedances + 1) as f64 / (r.reps + 1) as f64);
    assert_close("ci_low", r.ci_low, p.ci_low, REL);
    assert_close("ci_high", r.ci_high, p.ci_high, REL);
    assert_close("min_detectable", r.min_detectable, p.min_detectable, REL);
    assert_eq!(
        (r.block, r.reps, r.observations),
        (p.options.block, p.options.reps, t)
    );
    Ok(r)
}

fn weekly() -> Pinned {
    Pinned {
        data: (2008, 520, 0.004, 0.002, 0.02, 0.3),
        options: SharpeTestOptions::default(),
        first_returns: [
            0.000_607_586_934_867_112_3,
            0.000_252_551_849_775_217_15,
            0.008_032_606_948_444_29,
            -0.029_046_775_551_005_752,
        ],
        sharpe_a: 0.158_165_370_823_567,
        sharpe_b: 0.025_445_290_034_984_06,
        diff: 0.132_720_080_788_582_94,
        se: 0.063_759_536_711_207_24,
        exceedances: 219,
        ci_low: 0.004_198_075_639_598_398,
        ci_high: 0.261_242_085_937_567_5,
        min_detectable: 0.182_183_385_087_908_3,
    }
}

#[test]
fn weekly_series_matches_the_reference_script() -> Result<(), SharpeTestError> {
    let r = check(&weekly())?;
    assert_eq!(r.p_value, 0.044);
    // Rejected at 5 %, and the interval agrees.
    assert!(r.ci_low > 0.0);
    Ok(())
}

#[test]
fn short_series_with_a_partial_last_block_matches_the_reference_script(
) -> Result<(), SharpeTestError> {
    // T = 60, b = 7: eight blocks, resamples of 56.
    let r = check(&Pinned {
        data: (60, 60, 0.006, 0.001, 0.02, 0.2),
        options: SharpeTestOptions {
            block: 7,
            reps: 999,
            seed: 7,
        },
        first_returns: [
            0.013_074_191_480_453_155,
            -0.005_068_193_380_557_723,
            0.025_293_890_244_471_186,
            0.027_649_923_134_615_007,
        ],
        sharpe_a: 0.287_861_492_143_071_3,
        sharpe_b: 0.323_126_766_819_456_1,
        diff: -0.035_265_274_676_384_85,
        se: 0.198_846_003_964_496_28,
        exceedances: 872,
        ci_low: -0.595_287_419_799_478_7,
        ci_high: 0.524_756_870_446_709,
        min_detectable: 0.727_375_164_270_737_9,
    })?;
    assert_eq!(r.p_value, 0.873);
    Ok(())
}

#[test]
fn persistent_series_where_the_prewhitening_cap_binds_matches_the_reference_script(
) -> Result<(), SharpeTestError> {
    // AR(1) coefficient 0.99: the VAR's two largest singular values
    // (0.998 and 0.985 in the script's output) are capped at 0.97.
    let r = check(&Pinned {
        data: (1991, 260, 0.003, 0.001, 0.004, 0.99),
        options: SharpeTestOptions {
            block: 10,
            reps: 999,
            seed: 11,
        },
        first_returns: [
            0.005_729_456_388_056_858,
            0.003_540_082_573_445_097_8,
            0.003_280_658_289_386_835_8,
            -0.019_962_772_945_749_812,
        ],
        sharpe_a: 0.218_202_017_494_739_5,
        sharpe_b: -0.489_985_386_607_073_8,
        diff: 0.708_187_404_101_813_2,
        se: 0.443_593_338_324_471_2,
        exceedances: 135,
        ci_low: -0.218_702_296_225_185,
        ci_high: 1.635_077_104_428_811_5,
        min_detectable: 1.300_227_272_932_366_7,
    })?;
    assert_eq!(r.p_value, 0.136);
    Ok(())
}

#[test]
fn identical_series_differ_by_nothing() -> Result<(), SharpeTestError> {
    let (a, _) = sample_returns(5, 200, 0.003, 0.0, 0.02, 0.3);
    let r = sharpe_difference_test(&a, &a, SharpeTestOptions::default())?;
    assert_eq!(r.diff, 0.0);
    assert_eq!(r.p_value, 1.0);
    assert_eq!((r.ci_low, r.ci_high), (0.0, 0.0));
    // The collinear VAR regression is handled, and the variance of a
    // difference of identical series is zero up to rounding.
    assert!(r.se.is_finite() && r.se < 1e-6, "se {}", r.se);
    Ok(())
}

#[test]
fn a_positive_multiple_has_the_same_sharpe_ratio() -> Result<(), SharpeTestError> {
    let (a, _) = sample_returns(6, 150, 0.002, 0.0, 0.02, 0.1);
    let b: Vec<f64> = a.iter().map(|x| 3.0 * x).collect();
    let r = sharpe_difference_test(&a, &b, SharpeTestOptions::default())?;
    assert!(r.diff.abs() < 1e-12, "diff {}", r.diff);
    assert!(r.p_value > 0.5, "p {}", r.p_value);
    Ok(())
}

#[test]
fn a_large_true_difference_is_detected() -> Result<(), SharpeTestError> {
    // Weekly Sharpe ratios near 0.5 and −0.25 over ten years.
    let (a, b) = sample_returns(77, 520, 0.01, -0.005, 0.02, 0.2);
    let options = SharpeTestOptions {
        reps: 999,
        ..SharpeTestOptions::default()
    };
    let r = sharpe_difference_test(&a, &b, options)?;
    assert!(r.diff > 0.5, "diff {}", r.diff);
    assert!(r.p_value < 0.01, "p {}", r.p_value);
    assert!(r.ci_low > 0.0 && r.ci_low < r.diff && r.diff < r.ci_high);
    // Swapping the series mirrors everything but the p-value.
    let s = sharpe_difference_test(&b, &a, options)?;
    assert_eq!(s.diff, -r.diff);
    assert_close("swapped se", s.se, r.se, 1e-9);
    assert!(s.p_value < 0.01 && s.ci_high < 0.0);
    Ok(())
}

#[test]
fn interval_excludes_zero_exactly_when_p_is_at_most_five_percent() -> Result<(), SharpeTestError> {
    let mut rejections = 0;
    for (seed, reps) in [(1, 999), (2, 1000), (3, 199), (4, 4999), (5, 19)] {
        // Mean gaps around two standard errors: some cases reject, some not.
        let gap = 0.0015 * seed as f64;
        let (a, b) = sample_returns(seed, 300, 0.002 + gap, 0.002, 0.02, 0.3);
        let r = sharpe_difference_test(
            &a,
            &b,
            SharpeTestOptions {
                block: 4,
                reps,
                seed,
            },
        )?;
        let rejected = r.p_value <= 0.05;
        rejections += usize::from(rejected);
        assert_eq!(
            r.ci_low > 0.0 || r.ci_high < 0.0,
            rejected,
            "seed {seed}, reps {reps}: p {} but interval [{}, {}]",
            r.p_value,
            r.ci_low,
            r.ci_high
        );
    }
    assert!((1..5).contains(&rejections), "{rejections} of 5 rejected");
    Ok(())
}

#[test]
fn units_do_not_matter() -> Result<(), SharpeTestError> {
    // Percent instead of fractions for a, a fifth for b: the paper's code
    // would change its standard error (the prewhitening cap and the
    // bandwidth see units); standardising first keeps it.
    let p = weekly();
    let (seed, t, mean_a, mean_b, vol, phi) = p.data;
    let (a, b) = sample_returns(seed, t, mean_a, mean_b, vol, phi);
    let a100: Vec<f64> = a.iter().map(|x| x * 100.0).collect();
    let b5: Vec<f64> = b.iter().map(|x| x / 5.0).collect();
    let r = sharpe_difference_test(&a100, &b5, p.options)?;
    assert_close("diff", r.diff, p.diff, 1e-12);
    assert_close("se", r.se, p.se, 1e-10);
    assert_eq!(r.p_value, 0.044);
    Ok(())
}

#[test]
fn annualising_scales_the_sharpe_figures_only() -> Result<(), SharpeTestError> {
    let p = weekly();
    let (seed, t, mean_a, mean_b, vol, phi) = p.data;
    let (a, b) = sample_returns(seed, t, mean_a, mean_b, vol, phi);
    let r = sharpe_difference_test(&a, &b, p.options)?;
    let y = r.annualised(52.0);
    let k = 52.0_f64.sqrt();
    assert_eq!(y.diff, r.diff * k);
    assert_eq!(y.sharpe_a, r.sharpe_a * k);
    assert_eq!(y.min_detectable, r.min_detectable * k);
    assert_eq!((y.ci_low, y.ci_high), (r.ci_low * k, r.ci_high * k));
    assert_eq!(y.se, r.se * k);
    assert_eq!(y.p_value, r.p_value);
    assert_eq!((y.block, y.reps, y.observations), (5, 4999, 520));
    Ok(())
}

#[test]
fn the_seed_fixes_the_result() -> Result<(), SharpeTestError> {
    let (a, b) = sample_returns(9, 120, 0.003, 0.002, 0.02, 0.2);
    let o = SharpeTestOptions {
        reps: 199,
        ..SharpeTestOptions::default()
    };
    let first = sharpe_difference_test(&a, &b, o)?;
    assert_eq!(sharpe_difference_test(&a, &b, o)?, first);
    let other = sharpe_difference_test(&a, &b, SharpeTestOptions { seed: 43, ..o })?;
    assert_eq!(other.se, first.se);
    assert_ne!((other.ci_low, other.p_value), (first.ci_low, first.p_value));
    Ok(())
}

#[test]
fn bad_inputs_are_rejected_with_what_to_do() {
    let (a, b) = sample_returns(3, 40, 0.003, 0.002, 0.02, 0.2);
    let o = SharpeTestOptions {
        block: 5,
        reps: 99,
        seed: 1,
    };
    let run = |a: &[f64], b: &[f64], o| sharpe_difference_test(a, b, o).map(|_| ());

    assert_eq!(
        run(&a, &b[..39], o),
        Err(SharpeTestError::LengthMismatch { a: 40, b: 39 })
    );
    // Exactly two blocks pass, one fewer fails.
    let twenty = SharpeTestOptions { block: 20, ..o };
    assert_eq!(run(&a, &b, twenty), Ok(()));
    let err = run(&a, &b, SharpeTestOptions { block: 21, ..o }).unwrap_err();
    assert_eq!(
        err,
        SharpeTestError::TooShort {
            observations: 40,
            needed: 42,
            block: 21
        }
    );
    assert!(err.to_string().contains("smaller block"), "{err}");
    // Never fewer than ten, whatever the block.
    assert_eq!(
        run(&a[..9], &b[..9], SharpeTestOptions { block: 1, ..o }),
        Err(SharpeTestError::TooShort {
            observations: 9,
            needed: 10,
            block: 1
        })
    );
    assert_eq!(
        hac_standard_error(&a[..9], &b[..9]).map(|_| ()),
        Err(SharpeTestError::TooShort {
            observations: 9,
            needed: 10,
            block: 1
        })
    );
    assert!(hac_standard_error(&a[..10], &b[..10]).is_ok());

    let mut nan = b.clone();
    nan[17] = f64::NAN;
    let err = run(&a, &nan, o).unwrap_err();
    assert!(matches!(
        err,
        SharpeTestError::NonFinite {
            series: "b",
            index: 17,
            ..
        }
    ));
    assert!(
        err.to_string().contains("return 17 of series b is NaN"),
        "{err}"
    );
    let mut inf = a.clone();
    inf[0] = f64::INFINITY;
    assert!(matches!(
        run(&inf, &b, o),
        Err(SharpeTestError::NonFinite {
            series: "a",
            index: 0,
            ..
        })
    ));

    let flat = vec![0.001; 40];
    let err = run(&flat, &b, o).unwrap_err();
    assert_eq!(err, SharpeTestError::ZeroVariance { series: "a" });
    assert!(err.to_string().contains("zero variance"), "{err}");
    assert_eq!(
        run(&a, &flat, o),
        Err(SharpeTestError::ZeroVariance { series: "b" })
    );

    for bad in [
        SharpeTestOptions { block: 0, ..o },
        SharpeTestOptions { reps: 18, ..o },
    ] {
        let err = run(&a, &b, bad).unwrap_err();
        assert_eq!(
            err,
            SharpeTestError::BadOptions {
                block: bad.block,
                reps: bad.reps
            }
        );
        assert!(err.to_string().contains("at least 19"), "{err}");
    }
    assert_eq!(run(&a, &b, SharpeTestOptions { reps: 19, ..o }), Ok(()));
}

#[test]
fn the_cap_lowers_only_the_large_singular_values() {
    // A = Q diag(2, 0.5, 0.1, 0) Rᵀ with two rotations Q, R.
    let rot = |p: usize, q: usize, angle: f64| -> Mat4 {
        let mut m: Mat4 =
            std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))));
        let (c, s) = (angle.cos(), angle.sin());
        m[p][p] = c;
        m[q][q] = c;
        m[p][q] = -s;
        m[q][p] = s;
        m
    };
    let diag = |d: [f64; 4]| -> Mat4 {
        std::array::from_fn(|i| std::array::from_fn(|j| if i == j { d[i] } else { 0.0 }))
    };
    let q = mat_mul(&rot(0, 2, 0.7), &rot(1, 3, -0.3));
    let r = mat_mul(&rot(0, 1, 1.1), &rot(2, 3, 0.4));
    let a = mat_mul(&mat_mul(&q, &diag([2.0, 0.5, 0.1, 0.0])), &transpose(&r));
    let want = mat_mul(&mat_mul(&q, &diag([0.97, 0.5, 0.1, 0.0])), &transpose(&r));
    let got = cap_singular_values(&a, 0.97);
    for i in 0..4 {
        for j in 0..4 {
            assert!(
                (got[i][j] - want[i][j]).abs() < 1e-13,
                "{got:?} vs {want:?}"
            );
        }
    }
    // Below the cap the matrix is returned as it is.
    let small = mat_mul(&mat_mul(&q, &diag([0.9, 0.5, 0.1, 0.0])), &transpose(&r));
    assert_eq!(cap_singular_values(&small, 0.97), small);
}

#[test]
fn eigen_decomposition_and_inverse_reconstruct() {
    let m: Mat4 = [
        [4.0, 1.0, -2.0, 0.5],
        [1.0, 3.0, 0.0, 1.0],
        [-2.0, 0.0, 5.0, -1.0],
        [0.5, 1.0, -1.0, 2.0],
    ];
    let (lambda, v) = symmetric_eigen(&m);
    let back = mat_mul(
        &mat_mul(
            &v,
            &std::array::from_fn(|i| std::array::from_fn(|j| if i == j { lambda[i] } else { 0.0 })),
        ),
        &transpose(&v),
    );
    let product = mat_mul(&m, &inverse(&m));
    let pinv_product = mat_mul(&m, &pseudo_inverse(&m));
    for i in 0..4 {
        for j in 0..4 {
            let eye = if i == j { 1.0 } else { 0.0 };
            assert!((back[i][j] - m[i][j]).abs() < 1e-13);
            assert!((product[i][j] - eye).abs() < 1e-13);
            assert!((pinv_product[i][j] - eye).abs() < 1e-13);
        }
    }
    assert!((lambda.iter().sum::<f64>() - 14.0).abs() < 1e-12);
}
