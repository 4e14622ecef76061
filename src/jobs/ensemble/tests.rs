//! The ensemble job against the in-memory store: its plan, the mean of a
//! Gaussian posterior within its Monte Carlo error, the same bits however
//! its tasks pause, and the tables `sampo summary` shows.

use crate::jobs::summary::SummaryOptions;
use crate::jobs::testing::{assert_same_contents, cell, drive, field, row_names, spec, Pause};
use crate::jobs::{build, TaskId};
use crate::output::Reader;

/// A 2-D Gaussian (mean (0, 1), sd (1, √2), correlation 0.35) inside a
/// box far wider than it: the posterior is the Gaussian.
const GAUSS: &str = r#"
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

/// A second, 3-D state, for plans.
const WIDE: &str = r#"
[[states]]
name = "w"
params = ["a", "b", "c"]
model = { kind = "gaussian", mean = [0.0, 0.0, 0.0], cov = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]] }
prior = { kind = "uniform", low = [-5.0, -5.0, -5.0], high = [5.0, 5.0, 5.0] }
walkers = 24
"#;

#[test]
fn the_plan_has_one_task_per_state_and_replicate() {
    let text = format!(
        "[run]\nreplicates = 3\n[sampler]\nkind = \"ensemble\"\nwalkers = 16\nsteps = 200\n\
         {GAUSS}{WIDE}"
    );
    let job = build(spec(&text));
    let plan = job.plan(0);
    assert_eq!(plan.tasks(), 6);
    // State-major: state g's replicates, then w's, each run costing its
    // walkers × steps evaluations of its dimension.
    assert_eq!(plan.runs.len(), 2);
    assert_eq!(
        (plan.runs[0].tasks.clone(), plan.runs[1].tasks.clone()),
        (0..3, 3..6)
    );
    assert!(plan.runs[0].cost > 0.0);
    assert!(plan.runs[1].cost > plan.runs[0].cost, "{plan:?}");
    assert_eq!(job.stages(), 1);
    assert!(job.shareable(0));
    // One walker per member and half: 16 walkers keep 8 ranks busy.
    assert_eq!(job.useful_members(TaskId { stage: 0, index: 0 }), 8);
    assert_eq!(job.work(), (3 * (16 * 200 + 24 * 200), "walker-steps"));
}

#[test]
fn the_mean_of_a_gaussian_is_found_within_its_error() {
    let text = format!(
        "[run]\nseed = 7\n[sampler]\nkind = \"ensemble\"\nwalkers = 16\nsteps = 2000\n\
         burn = 500\n{GAUSS}"
    );
    let job = build(spec(&text));
    let run = drive(job.as_ref(), Pause::Never);
    assert_eq!((run.yields, run.rounds), (0, 0));
    // Every walker-step evaluated once, and the start.
    assert!(run.evaluations >= 16 * 2000, "{}", run.evaluations);
    let store = &run.store;
    assert_eq!(store.shape("states/g/chain").unwrap(), [2000, 16, 2]);
    assert_eq!(store.attr_u64("states/g", "iteration").unwrap(), Some(2000));
    let tables = job.summary(store, &SummaryOptions::default()).unwrap();
    let [table] = &tables[..] else {
        panic!("one table per state: {tables:?}")
    };
    assert_eq!(row_names(table, "param"), ["x", "y"]);
    assert_eq!(field(table, "draws"), 1500.0);
    let acceptance = field(table, "acceptance");
    assert!((0.2..0.9).contains(&acceptance), "{acceptance}");
    // The written /summary (from the task, every row after burn-in) and
    // the file's summary agree; both find the mean within 5 MCSE.
    let written = Reader::read_f64(store, "summary/mean", None, None).unwrap();
    for (k, (name, truth)) in [("x", 0.0), ("y", 1.0)].into_iter().enumerate() {
        let mean = cell(table, name, "mean");
        let mcse = cell(table, name, "mcse_mean");
        assert!(mcse > 0.0 && mcse < 0.1, "{name}: mcse {mcse}");
        assert!((mean - truth).abs() < 5.0 * mcse, "{name}: {mean} ± {mcse}");
        assert!(
            (written[k] - mean).abs() < 1e-9,
            "{name}: {} vs {mean}",
            written[k]
        );
    }
    // The sds, √1 and √2, within 10%.
    for (name, sd) in [("x", 1.0), ("y", 2f64.sqrt())] {
        let got = cell(table, name, "sd");
        assert!((got / sd - 1.0).abs() < 0.1, "{name}: sd {got}");
    }
}

#[test]
fn pausing_anywhere_gives_the_same_bits() {
    // A stop rule that is never met makes the tasks emit their rows at
    // every check, so that pauses after some emits fall mid-run; two
    // replicates and two states, so that lanes are written too.
    let text = format!(
        "[run]\nseed = 3\nreplicates = 2\n[sampler]\nkind = \"ensemble\"\nwalkers = 8\n\
         burn = 40\n[sampler.stop]\nmax_steps = 300\ncheck_every = 50\ntau_lengths = 1e9\n\
         {GAUSS}{WIDE}"
    );
    let job = build(spec(&text));
    let whole = drive(job.as_ref(), Pause::Never);
    for pause in [Pause::AtAsk(37), Pause::AfterEmits(3)] {
        let paused = drive(job.as_ref(), pause);
        assert!(paused.yields > 0, "{pause:?}: no task paused");
        assert_same_contents(&whole.store, &paused.store);
    }
    // Unconverged, as the rule asks.
    assert_eq!(
        whole.store.attr("/", "converged").unwrap(),
        Some(crate::output::Attr::Bool(false))
    );
}

#[test]
fn the_summary_has_a_table_per_replicate_and_a_state_filter() {
    let text = format!(
        "[run]\nreplicates = 2\n[sampler]\nkind = \"ensemble\"\nwalkers = 8\nsteps = 100\n\
         {GAUSS}{WIDE}"
    );
    let job = build(spec(&text));
    let run = drive(job.as_ref(), Pause::Never);
    let tables = job.summary(&run.store, &SummaryOptions::default()).unwrap();
    assert_eq!(tables.len(), 4);
    let titles: Vec<&str> = tables.iter().map(|t| t.title[0].as_str()).collect();
    assert!(
        titles[1].starts_with("state g (replicate 1) (ensemble)"),
        "{titles:?}"
    );
    assert_eq!(row_names(&tables[3], "param"), ["a", "b", "c"]);
    let only = SummaryOptions {
        state: Some("w".into()),
        ..SummaryOptions::default()
    };
    let tables = job.summary(&run.store, &only).unwrap();
    assert_eq!(tables.len(), 2);
    assert!(tables.iter().all(|t| field(t, "chains") == 24.0));
}
