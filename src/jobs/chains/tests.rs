//! The chains job against the in-memory store: its plan, the mean of a
//! Gaussian posterior within its Monte Carlo error, rounds decided on
//! R-hat and ESS, the same bits however its tasks pause, and its summary.

use crate::jobs::build;
use crate::jobs::summary::SummaryOptions;
use crate::jobs::testing::{assert_same_contents, cell, drive, field, row_names, spec, Pause};
use crate::output::{Attr, Reader};

/// As the ensemble's tests: a 2-D Gaussian, mean (0, 1), inside a wide box.
const GAUSS: &str = r#"
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

/// A 1-D state, mean 2, sd 0.5.
const NARROW: &str = r#"
[[states]]
name = "n"
params = ["z"]
model = { kind = "gaussian", mean = [2.0], cov = [[0.25]] }
prior = { kind = "uniform", low = [-5.0], high = [5.0] }
"#;

#[test]
fn the_plan_has_one_task_per_state_and_chain_costed_by_round() {
    let text = format!("[sampler]\nkind = \"chains\"\nchains = 5\nsteps = 1000\n{GAUSS}{NARROW}");
    let job = build(spec(&text));
    let plan = job.plan(0);
    assert_eq!(plan.tasks(), 10);
    assert_eq!(plan.runs[0].tasks, 0..5);
    assert_eq!(plan.runs[1].tasks, 5..10);
    // The same steps, the 2-D state's evaluations dearer.
    assert!(plan.runs[0].cost > plan.runs[1].cost && plan.runs[1].cost > 0.0);
    assert!(!job.shareable(0));
    assert_eq!(job.work(), (2 * 5 * 1000, "chain-steps"));
    // With a stop rule a task runs one round (check_every steps) at a time.
    let rounds = format!(
        "[sampler]\nkind = \"chains\"\nchains = 5\nburn = 100\n[sampler.stop]\n\
         max_steps = 1000\ncheck_every = 100\n{GAUSS}{NARROW}"
    );
    let in_rounds = build(spec(&rounds)).plan(0);
    assert!((in_rounds.runs[0].cost * 10.0 - plan.runs[0].cost).abs() < 1e-9 * plan.runs[0].cost);
}

#[test]
fn the_mean_of_a_gaussian_is_found_within_its_error() {
    let text = format!(
        "[run]\nseed = 11\n[sampler]\nkind = \"chains\"\nchains = 4\nsteps = 6000\n{GAUSS}"
    );
    let job = build(spec(&text));
    let run = drive(job.as_ref(), Pause::Never);
    assert_eq!((run.yields, run.rounds), (0, 0));
    let store = &run.store;
    assert_eq!(store.shape("states/g/chain").unwrap(), [6000, 4, 2]);
    let tables = job.summary(store, &SummaryOptions::default()).unwrap();
    let [table] = &tables[..] else {
        panic!("one table per state: {tables:?}")
    };
    assert_eq!(row_names(table, "param"), ["x", "y"]);
    // burn = a quarter of the steps by default.
    assert_eq!(field(table, "draws"), 4500.0);
    let written = Reader::read_f64(store, "summary/mean", None, None).unwrap();
    for (k, (name, truth)) in [("x", 0.0), ("y", 1.0)].into_iter().enumerate() {
        let mean = cell(table, name, "mean");
        let mcse = cell(table, name, "mcse_mean");
        assert!(mcse > 0.0 && mcse < 0.1, "{name}: mcse {mcse}");
        assert!((mean - truth).abs() < 5.0 * mcse, "{name}: {mean} ± {mcse}");
        assert!(cell(table, name, "rhat") < 1.05, "{name}");
        // finish_stage's /summary reads the same rows.
        assert!(
            (written[k] - mean).abs() < 1e-9,
            "{name}: {} vs {mean}",
            written[k]
        );
    }
    // The best point of the state is near the mode.
    let Some(Attr::F64s(best)) = store.attr("states/g", "best_position").unwrap() else {
        panic!("no best_position")
    };
    assert!(
        best[0].abs() < 0.3 && (best[1] - 1.0).abs() < 0.3,
        "{best:?}"
    );
    assert_eq!(store.attr_u64("states/g", "steps").unwrap(), Some(6000));
}

/// A stop rule that R-hat and ESS meet after a few rounds.
fn stopping() -> String {
    format!(
        "[run]\nseed = 5\n[sampler]\nkind = \"chains\"\nchains = 4\nburn = 200\n\
         [sampler.stop]\nmax_steps = 20000\ncheck_every = 250\nrhat = 1.05\ness = 400\n\
         {GAUSS}{NARROW}"
    )
}

#[test]
fn rounds_go_on_until_rhat_and_ess_are_met() {
    let job = build(spec(&stopping()));
    let run = drive(job.as_ref(), Pause::Never);
    assert!(run.rounds >= 2, "{} rounds", run.rounds);
    let store = &run.store;
    assert_eq!(
        store.attr("/", "converged").unwrap(),
        Some(Attr::Bool(true))
    );
    let steps = store.attr_u64("states/g", "steps").unwrap().unwrap();
    // Every chain stopped at the end of the last round, long before max_steps.
    assert_eq!(steps, 250 * run.rounds as u64);
    let tables = job.summary(store, &SummaryOptions::default()).unwrap();
    for t in &tables {
        for name in row_names(t, "param") {
            assert!(cell(t, &name, "rhat") <= 1.05, "{name}");
            assert!(cell(t, &name, "ess_bulk") >= 400.0, "{name}");
        }
    }
    let z = cell(&tables[1], "z", "mean");
    let mcse = cell(&tables[1], "z", "mcse_mean");
    assert!((z - 2.0).abs() < 5.0 * mcse, "{z} ± {mcse}");
}

#[test]
fn pausing_anywhere_gives_the_same_bits() {
    let job = build(spec(&stopping()));
    let whole = drive(job.as_ref(), Pause::Never);
    for pause in [Pause::AtAsk(97), Pause::AfterEmits(5)] {
        let paused = drive(job.as_ref(), pause);
        assert!(paused.yields > 0, "{pause:?}: no task paused");
        assert_eq!(paused.rounds, whole.rounds, "{pause:?}");
        assert_same_contents(&whole.store, &paused.store);
    }
}
