//! The diagnostics checked against ArviZ's own output on the chains of
//! `fixtures/arviz.json` (made by `scripts/make-diag-fixtures.py`), and
//! against properties they must have on chains of known behaviour.

use serde_json::Value;

use super::beta_quantile::beta_quantile;
use super::*;

const FIXTURE: &str = include_str!("fixtures/arviz.json");

/// Relative agreement asked of every value.
const TOLERANCE: f64 = 1e-8;

/// A number of the fixture: JSON numbers, or "NaN", "inf", "-inf".
/// None for a value ArviZ could not compute (recorded as an error).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            other => panic!("unexpected number {other:?}"),
        },
        _ => None,
    }
}

/// Equal to [`TOLERANCE`] relative; NaN only to NaN, ∞ only to itself.
fn agrees(got: f64, want: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= TOLERANCE * got.abs().max(want.abs())
}

#[test]
fn matches_arviz() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in fixture["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let chains: Vec<Vec<f64>> = case["chains"]
            .as_array()
            .expect("chains")
            .iter()
            .map(|c| {
                c.as_array()
                    .expect("chain")
                    .iter()
                    .map(|v| number(v).expect("draw"))
                    .collect()
            })
            .collect();
        let chains: Vec<&[f64]> = chains.iter().map(Vec::as_slice).collect();
        let x = chains.as_slice();
        let odd_draws = x[0].len() % 2 == 1;
        let d = diagnose(x);

        let mut expect = |key: &str, got: f64| {
            let Some(want) = number(&case[key]) else {
                panic!("{name}: no {key} in the fixture ({})", case[key]);
            };
            checked += 1;
            if !agrees(got, want) {
                failures.push(format!("{name}.{key}: got {got:e}, ArviZ {want:e}"));
            }
        };
        // The individual functions (az.rhat, az.ess, az.mcse).
        expect("rhat", rhat_rank(x));
        expect("rhat_bulk", rhat_bulk(x));
        expect("rhat_tail", rhat_tail(x));
        expect("ess_bulk", ess_bulk(x));
        expect("ess_tail", ess_tail(x));
        expect("ess_mean", ess_mean(x));
        expect("mcse_mean", mcse_mean(x));
        expect("mcse_sd", mcse_sd(x));
        for (tag, p) in [("05", 0.05), ("50", 0.5), ("95", 0.95)] {
            expect(&format!("ess_q{tag}"), ess_quantile(x, p));
            expect(&format!("mcse_q{tag}"), mcse_quantile(x, p));
        }
        // diagnose() against the same.
        expect("rhat", d.rhat);
        expect("rhat_bulk", d.rhat_bulk);
        expect("rhat_tail", d.rhat_tail);
        expect("ess_bulk", d.ess_bulk);
        expect("ess_tail", d.ess_tail);
        expect("mcse_mean", d.mcse_mean);
        expect("mcse_sd", d.mcse_sd);
        expect("mcse_q05", d.mcse_q05);
        expect("mcse_q50", d.mcse_q50);
        expect("mcse_q95", d.mcse_q95);
        // diagnose() against az.summary.
        expect("summary_mean", d.mean);
        expect("summary_sd", d.sd);
        expect("summary_mcse_mean", d.mcse_mean);
        expect("summary_mcse_sd", d.mcse_sd);
        expect("summary_ess_bulk", d.ess_bulk);
        expect("summary_ess_tail", d.ess_tail);
        expect("summary_median", d.q50);
        expect("summary_q05", d.q05);
        expect("summary_q95", d.q95);
        expect("summary_q05", quantile(x, 0.05));
        expect("summary_q95", quantile(x, 0.95));
        // az.summary folds about the median of all draws, az.rhat about
        // that of the split draws: the same unless a middle draw is left out.
        if !odd_draws {
            expect("summary_r_hat", d.rhat);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} values differ from ArviZ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 500, "only {checked} values checked");
}

#[test]
fn beta_quantiles_match_scipy() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let rows = fixture["beta_ppf"].as_array().expect("beta_ppf");
    let mut worst = (0.0, String::new());
    for row in rows {
        let r: Vec<f64> = row
            .as_array()
            .expect("row")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        let (p, a, b, want) = (r[0], r[1], r[2], r[3]);
        let got = beta_quantile(p, a, b);
        let err = (got - want).abs() / want;
        if err.is_nan() || err > worst.0 {
            worst = (err, format!("p={p} a={a} b={b}: {got:e} vs scipy {want:e}"));
        }
    }
    assert!(rows.len() >= 300);
    // A few ulps (ε = 2.2e-16): statrs's inverse alone is off by up to
    // 2e-9 here.
    assert!(
        worst.0 < 5e-15,
        "worst relative error {:e} at {}",
        worst.0,
        worst.1
    );
}

/// `chains` AR(1) chains of `draws` with coefficient `phi` and unit
/// stationary variance, each started in its stationary distribution.
fn ar1(phi: f64, chains: usize, draws: usize, seed: u64) -> Vec<Vec<f64>> {
    use rand::RngExt;
    use rand_distr::StandardNormal;
    (0..chains as u64)
        .map(|c| {
            let mut rng = crate::seed::StreamKey::of_seed(seed).stream(c);
            let scale = (1.0 - phi * phi).sqrt();
            let mut x: f64 = rng.sample(StandardNormal);
            (0..draws)
                .map(|_| {
                    let v = x;
                    x = phi * x + scale * rng.sample::<f64, _>(StandardNormal);
                    v
                })
                .collect()
        })
        .collect()
}

fn slices(x: &[Vec<f64>]) -> Vec<&[f64]> {
    x.iter().map(Vec::as_slice).collect()
}

#[test]
fn iid_chains_have_r_hat_one_and_ess_the_draws() {
    let x = ar1(0.0, 4, 5000, 1);
    let d = diagnose(&slices(&x));
    let n = 20_000.0;
    assert!((d.rhat - 1.0).abs() < 0.005, "{d:?}");
    assert!(d.rhat >= d.rhat_bulk && d.rhat >= d.rhat_tail);
    for ess in [d.ess_bulk, d.ess_tail, ess_mean(&slices(&x))] {
        assert!((ess / n - 1.0).abs() < 0.1, "ESS {ess} of {n} iid draws");
    }
    // MCSE of the mean of iid draws: sd/√n; of the median, ≈ √(π/2) sd/√n.
    assert!((d.mcse_mean * n.sqrt() / d.sd - 1.0).abs() < 0.05, "{d:?}");
    let median = d.mcse_q50 * n.sqrt() / d.sd / (std::f64::consts::PI / 2.0).sqrt();
    assert!((median - 1.0).abs() < 0.15, "{d:?}");
    // Quantiles of a standard normal sample.
    assert!((d.q05 + 1.6449).abs() < 0.05 && (d.q95 - 1.6449).abs() < 0.05 && d.q50.abs() < 0.03);
}

#[test]
fn ess_of_ar1_is_draws_times_one_minus_rho_over_one_plus_rho() {
    for phi in [0.5, 0.9] {
        let x = ar1(phi, 4, 25_000, 2);
        let want = 100_000.0 * (1.0 - phi) / (1.0 + phi);
        for (what, ess) in [
            ("bulk", ess_bulk(&slices(&x))),
            ("mean", ess_mean(&slices(&x))),
        ] {
            assert!(
                (ess / want - 1.0).abs() < 0.1,
                "phi={phi}: {what} ESS {ess} vs {want}"
            );
        }
        assert!((rhat_rank(&slices(&x)) - 1.0).abs() < 0.01);
    }
}

#[test]
fn shifted_chains_have_large_r_hat() {
    let mut x = ar1(0.0, 4, 1000, 3);
    for (c, chain) in x.iter_mut().enumerate() {
        chain.iter_mut().for_each(|v| *v += c as f64);
    }
    let d = diagnose(&slices(&x));
    assert!(d.rhat_bulk > 1.5 && d.rhat > 1.5, "{d:?}");
    // Scaled chains show in the tail R-hat instead.
    let mut x = ar1(0.0, 4, 1000, 4);
    x[0].iter_mut().for_each(|v| *v *= 10.0);
    assert!(rhat_tail(&slices(&x)) > 1.2);
}

#[test]
fn quantiles_of_a_known_sample() {
    // 0, 1, ..., 99 in two chains, as numpy.quantile(arange(100), p).
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let (a, b) = values.split_at(50);
    let x: [&[f64]; 2] = [a, b];
    assert_eq!(quantile(&x, 0.05), 4.95);
    assert_eq!(quantile(&x, 0.5), 49.5);
    assert_eq!(quantile(&x, 0.95), 94.05);
    assert_eq!(quantile(&[&[1.0, 2.0, 3.0, 4.0]], 0.05), 1.15);
    let d = diagnose(&x);
    assert_eq!((d.q05, d.q50, d.q95), (4.95, 49.5, 94.05));
    assert_eq!(d.mean, 49.5);
}

#[test]
fn degenerate_input_gives_nan_not_a_panic() {
    let nan_everywhere = |d: ParamDiagnostics| {
        [
            d.mcse_mean,
            d.mcse_sd,
            d.mcse_q05,
            d.mcse_q50,
            d.mcse_q95,
            d.ess_bulk,
            d.ess_tail,
            d.rhat_bulk,
            d.rhat_tail,
            d.rhat,
        ]
        .iter()
        .all(|v| v.is_nan())
    };
    // No chains, empty chains, one draw, three draws.
    let d = diagnose(&[]);
    assert!(nan_everywhere(d) && d.mean.is_nan() && d.q50.is_nan());
    let d = diagnose(&[&[], &[]]);
    assert!(nan_everywhere(d) && d.mean.is_nan() && d.q05.is_nan());
    let d = diagnose(&[&[2.0]]);
    assert!(nan_everywhere(d) && d.mean == 2.0 && d.sd.is_nan() && d.q95 == 2.0);
    let d = diagnose(&[&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]]);
    assert!(nan_everywhere(d) && d.mean == 2.5 && d.q50 == 2.5);
    // One chain: no R-hat, the rest from its halves.
    let x = ar1(0.0, 1, 100, 5);
    let d = diagnose(&slices(&x));
    assert!(d.rhat.is_nan() && d.ess_bulk > 0.0 && d.mcse_q05 > 0.0);
    // Constant: ArviZ's NaN R-hat, ESS = the split draws, MCSE 0 but sd's.
    let d = diagnose(&[&[1.5; 9], &[1.5; 9]]);
    assert!(d.rhat.is_nan() && d.ess_bulk == 16.0 && d.ess_tail == 16.0);
    assert!(d.mcse_mean == 0.0 && d.mcse_q50 == 0.0 && d.mcse_sd.is_nan() && d.sd == 0.0);
    // Chains constant at different values: R-hat ∞ (B > 0, W = 0).
    assert_eq!(rhat_bulk(&[&[1.0; 8], &[2.0; 8]]), f64::INFINITY);
    // NaN and ±∞.
    let mut x = ar1(0.0, 2, 50, 6);
    x[1][7] = f64::NAN;
    assert!(nan_everywhere(diagnose(&slices(&x))));
    x[1][7] = f64::NEG_INFINITY;
    let d = diagnose(&slices(&x));
    assert!(d.rhat.is_finite() && d.ess_bulk.is_finite() && d.mean == f64::NEG_INFINITY);
    assert!(d.sd.is_nan() && d.mcse_mean.is_nan() && d.mcse_sd.is_nan());
    // Probabilities outside (0, 1) leave no index out of range.
    assert!(mcse_quantile(&slices(&x), 1.0).is_finite());
    assert!(quantile(&slices(&x), 2.0).is_finite());
    assert!(quantile(&slices(&x), f64::NAN).is_nan());
    assert!(ess_quantile(&slices(&x), f64::NAN).is_finite());
    // ArviZ's rule for a NaN Beta quantile: half the range, here ∞.
    assert_eq!(mcse_quantile(&slices(&x), f64::NAN), f64::INFINITY);
}

#[test]
#[should_panic(expected = "same number of draws")]
fn chains_of_unequal_length_panic() {
    diagnose(&[&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]]);
}

/// 8 chains of 10^6 draws: well under a second on two cores (0.56 s, and
/// 0.83 s on one, on the machine this was written on). Ignored by default
/// for its 200 MB; `cargo test --release --lib diag -- --ignored`.
#[test]
#[ignore]
fn eight_million_draws_take_under_a_second() {
    let x = ar1(0.5, 8, 1_000_000, 7);
    let start = std::time::Instant::now();
    let d = diagnose(&slices(&x));
    let took = start.elapsed();
    eprintln!("diagnose of 8 × 10^6 draws: {took:?}");
    assert!((d.ess_bulk / (8e6 / 3.0) - 1.0).abs() < 0.05, "{d:?}");
    assert!(took.as_secs_f64() < 2.0, "{took:?}");
}
