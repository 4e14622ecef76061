//! The trans-conceptual stage against the in-memory store, after an
//! ensemble or chains stage: its plan, state probabilities of two states
//! whose evidence ratio is known exactly, by each method, within their
//! reported errors; the same bits however its tasks pause; and the tables
//! `sampo summary` shows.

use crate::jobs::summary::SummaryOptions;
use crate::jobs::testing::{assert_same_contents, cell, drive, field, row_names, spec, Pause};
use crate::jobs::{build, TaskId};
use crate::output::Reader;

/// Two normalised Gaussians in boxes of volume 1/0.7 and 1/0.3, each with
/// all its mass inside: the evidences are 0.7 and 0.3, so the state
/// probabilities (equal state priors) are exactly those.
const STATES: &str = r#"
[[states]]
name = "a"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.6, 0.6], cov = [[0.0025, 0.0], [0.0, 0.0025]] }
prior = { kind = "uniform", low = [0.0, 0.0], high = [1.1952286093343936, 1.1952286093343936] }

[[states]]
name = "b"
params = ["z"]
model = { kind = "gaussian", mean = [1.5], cov = [[0.01]] }
prior = { kind = "uniform", low = [0.0], high = [3.3333333333333335] }
"#;

const EXACT: [f64; 2] = [0.7, 0.3];

const ENSEMBLE: &str = "[sampler]\nkind = \"ensemble\"\nwalkers = 16\nsteps = 800\n";
const CHAINS: &str = "[sampler]\nkind = \"chains\"\nchains = 4\nsteps = 3000\n";

fn text(seed: u64, first: &str, method: &str, walkers: usize, steps: usize) -> String {
    format!(
        "[run]\nseed = {seed}\n{first}[transc]\nmethod = \"{method}\"\nwalkers = {walkers}\n\
         steps = {steps}\n{STATES}"
    )
}

#[test]
fn the_plan_is_the_first_stage_then_the_walkers() {
    let job = build(spec(&text(1, ENSEMBLE, "resample", 12, 1000)));
    assert_eq!(job.stages(), 2);
    // Stage 0: the ensemble's, one task per state.
    assert_eq!(job.plan(0).tasks(), 2);
    assert!(job.shareable(0));
    // Stage 1: one task per walker, none shared.
    let plan = job.plan(1);
    assert_eq!(plan.tasks(), 12);
    assert!(plan.runs[0].cost > 0.0);
    assert!(!job.shareable(1));
    assert_eq!(job.useful_members(TaskId { stage: 1, index: 0 }), 1);
    assert_eq!(job.work(), (2 * 16 * 800 + 12 * 1000, "walker-steps"));
    // The product-space ensemble is one task, costing all its walkers.
    let product = build(spec(&text(1, ENSEMBLE, "product-space", 12, 1000)));
    let one = product.plan(1);
    assert_eq!(one.tasks(), 1);
    // Its steps evaluate a density; the resampler's only look values up.
    assert!(one.runs[0].cost > plan.runs[0].cost);
}

/// Runs `text`, checks the state probabilities and the evidence ratio
/// against the exact ones within 5 reported errors, and returns the
/// driven run for more checks.
fn finds_the_exact_probabilities(text: &str) -> crate::jobs::testing::Driven {
    let job = build(spec(text));
    let run = drive(job.as_ref(), Pause::Never);
    let store = &run.store;
    let read = |name: &str| Reader::read_f64(store, &format!("transc/{name}"), None, None).unwrap();
    let (p, e) = (read("probability"), read("probability_err"));
    for k in 0..2 {
        assert!(e[k] > 0.0 && e[k] < 0.05, "{p:?} ± {e:?}");
        assert!((p[k] - EXACT[k]).abs() < 5.0 * e[k], "{p:?} ± {e:?}");
    }
    assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    let (z, ze) = (read("log_evidence"), read("log_evidence_err"));
    let ratio = (EXACT[1] / EXACT[0]).ln();
    assert_eq!(z[0], 0.0);
    assert!(
        (z[1] - ratio).abs() < 5.0 * ze[1],
        "{z:?} ± {ze:?} vs {ratio}"
    );
    // The summary: the first stage's table per state, then the transc table.
    let tables = job.summary(store, &SummaryOptions::default()).unwrap();
    let [first_a, first_b, transc] = &tables[..] else {
        panic!("two states' tables and the transc table: {tables:?}")
    };
    assert_eq!(row_names(first_a, "param"), ["x", "y"]);
    assert_eq!(row_names(first_b, "param"), ["z"]);
    assert_eq!(row_names(transc, "state"), ["a", "b"]);
    assert_eq!(cell(transc, "b", "probability"), p[1]);
    assert_eq!(cell(transc, "a", "dim"), 2.0);
    assert!(field(transc, "tau") > 0.0);
    run
}

#[test]
fn the_resampler_finds_the_exact_probabilities() {
    finds_the_exact_probabilities(&text(3, ENSEMBLE, "resample", 16, 4000));
}

#[test]
fn state_jumps_after_chains_find_the_exact_probabilities() {
    finds_the_exact_probabilities(&text(5, CHAINS, "state-jump", 16, 2000));
}

#[test]
fn the_product_space_ensemble_finds_the_exact_probabilities() {
    finds_the_exact_probabilities(&text(6, ENSEMBLE, "product-space", 32, 3000));
}

#[test]
fn pausing_anywhere_gives_the_same_bits() {
    for (first, method, at) in [
        // The resampler asks every 1024 steps, the others every step.
        (ENSEMBLE, "resample", 2),
        (CHAINS, "state-jump", 300),
        (ENSEMBLE, "product-space", 200),
    ] {
        let job = build(spec(&text(8, first, method, 8, 2500)));
        let whole = drive(job.as_ref(), Pause::Never);
        for pause in [Pause::AtAsk(at), Pause::AfterEmits(2)] {
            let paused = drive(job.as_ref(), pause);
            assert!(paused.yields > 0, "{method} {pause:?}: no task paused");
            assert_same_contents(&whole.store, &paused.store);
        }
    }
}
