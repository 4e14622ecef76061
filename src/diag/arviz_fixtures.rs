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
