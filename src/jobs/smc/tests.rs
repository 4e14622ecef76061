//! The SMC job against the in-memory store: its plan, the evidence of
//! Gaussian posteriors (known exactly) within its reported error, the
//! state probabilities, the same bits however a task pauses, and the
//! tables `sampo summary` shows.

use crate::jobs::summary::SummaryOptions;
use crate::jobs::testing::{assert_same_contents, cell, drive, field, row_names, spec, Pause};
use crate::jobs::{build, TaskId};
use crate::output::{Attr, Reader};

/// A 2-D Gaussian (mean (0, 1)) in the box [−10, 10]²: all its mass is
/// inside, so Z = 1/400.
const GAUSS: &str = r#"
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
"#;

/// A 1-D Gaussian (mean 2, sd 0.5) in [−5, 5]: Z = 1/10.
const NARROW: &str = r#"
[[states]]
name = "n"
params = ["z"]
model = { kind = "gaussian", mean = [2.0], cov = [[0.25]] }
prior = { kind = "uniform", low = [-5.0], high = [5.0] }
"#;

const SAMPLER: &str = "[sampler]\nkind = \"smc\"\nparticles = 400\neffective = 800\n\
                       total = 400\ngroups = 8\n";

fn text(seed: u64, states: &str) -> String {
    format!("[run]\nseed = {seed}\n{SAMPLER}{states}")
}

#[test]
fn the_plan_has_one_shareable_task_per_state() {
    let job = build(spec(&text(1, &format!("{GAUSS}{NARROW}"))));
    let plan = job.plan(0);
    assert_eq!(plan.tasks(), 2);
    assert_eq!(
        (plan.runs[0].tasks.clone(), plan.runs[1].tasks.clone()),
        (0..1, 1..2)
    );
    // Particles × dimension: the 2-D state costs more.
    assert!(plan.runs[0].cost > plan.runs[1].cost && plan.runs[1].cost > 0.0);
    assert!(job.shareable(0));
    assert_eq!(job.useful_members(TaskId { stage: 0, index: 1 }), 400);
    assert_eq!(job.work(), (2, "states"));
}

#[test]
fn the_evidence_of_a_gaussian_is_found_within_its_error() {
    let job = build(spec(&text(4, GAUSS)));
    let run = drive(job.as_ref(), Pause::Never);
    let store = &run.store;
    let exact = -(400f64.ln());
    let Some(Attr::F64(log_z)) = store.attr("smc/g", "log_evidence").unwrap() else {
        panic!("no log_evidence")
    };
    let Some(Attr::F64(err)) = store.attr("smc/g", "log_evidence_err").unwrap() else {
        panic!("no log_evidence_err")
    };
    assert!(err > 0.0 && err < 0.1, "error {err}");
    assert!(
        (log_z - exact).abs() < 5.0 * err,
        "{log_z} ± {err} vs {exact}"
    );
    // β rises to 1.
    let beta = Reader::read_f64(store, "smc/g/beta", None, None).unwrap();
    assert_eq!(beta.iter().copied().fold(f64::NAN, f64::max), 1.0);
    // The summary's weighted means, within 5 errors of the groups' spread.
    let tables = job.summary(store, &SummaryOptions::default()).unwrap();
    let [table, evidences] = &tables[..] else {
        panic!("a table for the state and the evidences: {tables:?}")
    };
    assert_eq!(field(table, "log_evidence"), log_z);
    assert_eq!(field(table, "groups"), 8.0);
    for (name, truth) in [("x", 0.0), ("y", 1.0)] {
        let mean = cell(table, name, "mean");
        let mcse = cell(table, name, "mcse_mean");
        assert!(mcse > 0.0 && mcse < 0.1, "{name}: mcse {mcse}");
        assert!((mean - truth).abs() < 5.0 * mcse, "{name}: {mean} ± {mcse}");
    }
    assert_eq!(row_names(evidences, "state"), ["g"]);
}

#[test]
fn state_probabilities_follow_the_evidences() {
    let job = build(spec(&text(9, &format!("{GAUSS}{NARROW}"))));
    let run = drive(job.as_ref(), Pause::Never);
    let store = &run.store;
    // Z = 1/400 and 1/10.
    let exact = [1.0 / 41.0, 40.0 / 41.0];
    let p = Reader::read_f64(store, "smc/state_probabilities/probability", None, None).unwrap();
    let e = Reader::read_f64(store, "smc/state_probabilities/error", None, None).unwrap();
    assert_eq!(
        store.read_strings("smc/state_probabilities/state").unwrap(),
        ["g", "n"]
    );
    for k in 0..2 {
        assert!(
            e[k] > 0.0 && (p[k] - exact[k]).abs() < 5.0 * e[k],
            "{p:?} ± {e:?}"
        );
    }
    assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    let tables = job.summary(store, &SummaryOptions::default()).unwrap();
    assert_eq!(tables.len(), 3);
    assert_eq!(row_names(&tables[1], "param"), ["z"]);
    assert_eq!(field(&tables[1], "probability"), p[1]);
    assert_eq!(row_names(&tables[2], "state"), ["g", "n"]);
    let only = SummaryOptions {
        state: Some("n".into()),
        ..SummaryOptions::default()
    };
    assert_eq!(job.summary(store, &only).unwrap().len(), 2);
}

#[test]
fn pausing_anywhere_gives_the_same_bits() {
    let job = build(spec(&text(2, &format!("{GAUSS}{NARROW}"))));
    let whole = drive(job.as_ref(), Pause::Never);
    for pause in [Pause::AtAsk(3), Pause::AfterEmits(4)] {
        let paused = drive(job.as_ref(), pause);
        assert!(paused.yields > 0, "{pause:?}: no task paused");
        assert_same_contents(&whole.store, &paused.store);
    }
}
