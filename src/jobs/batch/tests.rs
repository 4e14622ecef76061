//! The batch job against the in-memory store: its plan, outputs exact for
//! every design, the same bits however a task pauses, statistics and
//! validation, and the tables `sampo summary` shows.

use super::design::{permute, Points};
use crate::jobs::summary::SummaryOptions;
use crate::jobs::testing::{assert_same_contents, cell, drive, field, spec, Pause};
use crate::jobs::{build, Kind};
use crate::model::Prior;
use crate::output::{Attr, MemoryStore, Reader};

const TIMES: [f64; 3] = [0.5, 1.0, 2.0];

fn text(sampler: &str, states: &str) -> String {
    format!("[run]\nseed = 11\n[sampler]\nkind = \"batch\"\n{sampler}\n{states}")
}

fn decay_state(name: &str, prior: bool) -> String {
    let prior = if prior {
        "prior = { kind = \"uniform\", low = [1.0, 0.5], high = [2.0, 3.0] }\n"
    } else {
        ""
    };
    format!(
        "[[states]]\nname = \"{name}\"\nparams = [\"amplitude\", \"tau\"]\n\
         model = {{ kind = \"decay\", times = [0.5, 1.0, 2.0] }}\n{prior}"
    )
}

/// Every item's inputs and outputs, checked against the closed form
/// bit for bit; returns the inputs.
fn check_exact(store: &MemoryStore, state: &str, items: usize) -> Vec<f64> {
    let x = store.f64_rows(&format!("batch/{state}/inputs"));
    let y = store.f64_rows(&format!("batch/{state}/outputs"));
    let status = store.f64_rows(&format!("batch/{state}/status"));
    assert_eq!((x.len(), y.len(), status.len()), (2 * items, 3 * items, items));
    for i in 0..items {
        let (a, tau) = (x[2 * i], x[2 * i + 1]);
        for (k, t) in TIMES.iter().enumerate() {
            assert_eq!(y[3 * i + k], a * (-t / tau).exp(), "item {i} output {k}");
        }
        assert_eq!(status[i], 0.0);
    }
    x
}

#[test]
fn the_plan_is_chunks_of_items_per_state() {
    let states = format!("{}{}", decay_state("a", true), decay_state("b", true));
    let job = build(spec(&text("items = 1000\nchunk = 300", &states)));
    let plan = job.plan(0);
    // ⌈1000 / 300⌉ = 4 tasks per state, state after state.
    assert_eq!(plan.tasks(), 8);
    assert_eq!(
        (plan.runs[0].tasks.clone(), plan.runs[1].tasks.clone()),
        (0..4, 4..8)
    );
    assert!(!job.shareable(0));
    assert_eq!(job.work(), (2000, "items"));
    // The automatic chunk gives about 256 tasks.
    let job = build(spec(&text("items = 100000", &decay_state("a", true))));
    assert_eq!(job.plan(0).tasks(), 100_000u64.div_ceil(100_000 / 256));
}

#[test]
fn random_designs_draw_each_item_from_its_own_stream() {
    let sp = spec(&text("items = 500\nchunk = 64", &decay_state("a", true)));
    let run = drive(build(sp.clone()).as_ref(), Pause::Never);
    let x = check_exact(&run.store, "a", 500);
    let prior = Prior::from_spec(&crate::model::PriorSpec::Uniform {
        low: vec![1.0, 0.5],
        high: vec![2.0, 3.0],
    })
    .unwrap();
    let Some(super::spec::Spec { design, .. }) = (match &sp.sampler {
        crate::jobs::SamplerSpec::Batch(s) => Some(s.clone()),
        _ => None,
    }) else {
        panic!("a batch spec")
    };
    let points = Points::new(
        &design,
        &sp.states[0],
        Some(&prior),
        500,
        Kind::Batch.streams(11, 0, 0),
    )
    .unwrap();
    let mut p = [0.0; 2];
    // Any item alone gives the stored point.
    for i in [0u64, 63, 64, 499] {
        points.point(i, &mut p);
        assert_eq!(p, [x[2 * i as usize], x[2 * i as usize + 1]], "item {i}");
    }
    // Uniform draws: the mean of the amplitude is 1.5 within 5 standard
    // errors (sd 1/√12).
    let mean = x.iter().step_by(2).sum::<f64>() / 500.0;
    assert!((mean - 1.5).abs() < 5.0 / 12f64.sqrt() / 500f64.sqrt(), "{mean}");
    assert!(x.chunks(2).all(|p| (1.0..2.0).contains(&p[0]) && (0.5..3.0).contains(&p[1])));
}

#[test]
fn a_latin_hypercube_puts_one_item_in_every_stratum_of_every_parameter() {
    let n = 200;
    let sp = spec(&text(
        &format!("items = {n}\ndesign = {{ kind = \"lhs\" }}"),
        &decay_state("a", true),
    ));
    let run = drive(build(sp).as_ref(), Pause::Never);
    let x = check_exact(&run.store, "a", n);
    for (j, (low, high)) in [(1.0, 2.0), (0.5, 3.0)].into_iter().enumerate() {
        let mut strata: Vec<usize> = (0..n)
            .map(|i| ((x[2 * i + j] - low) / (high - low) * n as f64).floor() as usize)
            .collect();
        strata.sort_unstable();
        assert_eq!(strata, (0..n).collect::<Vec<_>>(), "parameter {j}");
    }
    // The strata are shuffled, not in item order.
    assert_ne!((0..10).map(|i| permute(i, 200, 5)).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_grid_is_the_full_factorial_in_c_order() {
    let design = "design = { kind = \"grid\", amplitude = { values = [1.0, 2.0] }, \
                  tau = { linspace = [1.0, 3.0, 3] } }";
    let sp = spec(&text(design, &decay_state("a", false)));
    let run = drive(build(sp).as_ref(), Pause::Never);
    let x = check_exact(&run.store, "a", 6);
    assert_eq!(x, vec![1., 1., 1., 2., 1., 3., 2., 1., 2., 2., 2., 3.]);
    // `items` is the grid's.
    let e = crate::jobs::RunSpec::from_source(&crate::spec::SpecSource::new(
        "t.toml",
        text(&format!("items = 7\n{design}"), &decay_state("a", false)),
    ))
    .unwrap_err();
    assert!(e.message.contains("the grid has 6"), "{e}");
}

#[test]
fn a_file_design_takes_the_parameters_columns_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("design.csv");
    std::fs::write(&csv, "tau, note, amplitude\n2.0, 9, 1.5\n0.75, 8, 3.0\n1e1, 7, 0.25\n").unwrap();
    let spec_path = dir.path().join("t.toml");
    let body = text("design = { kind = \"file\", path = \"design.csv\" }", &decay_state("a", false));
    std::fs::write(&spec_path, &body).unwrap();
    let sp = std::sync::Arc::new(crate::jobs::RunSpec::from_file_with(&spec_path, &[]).unwrap());
    let run = drive(build(sp).as_ref(), Pause::Never);
    let x = check_exact(&run.store, "a", 3);
    assert_eq!(x, vec![1.5, 2.0, 3.0, 0.75, 0.25, 10.0]);
}

#[test]
fn an_hdf5_design_takes_its_columns_by_name_or_in_order() {
    use hdf5::types::VarLenUnicode;
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("design.h5");
    {
        let f = hdf5::File::create(&h5).unwrap();
        let plain = f.new_dataset::<f64>().shape((3, 2)).create("plain").unwrap();
        plain.write_raw(&[1.5, 2.0, 3.0, 0.75, 0.25, 10.0]).unwrap();
        // Named columns, in another order.
        let named = f.new_dataset::<f64>().shape((3, 2)).create("named").unwrap();
        named.write_raw(&[2.0, 1.5, 0.75, 3.0, 10.0, 0.25]).unwrap();
        let names: Vec<VarLenUnicode> = ["tau", "amplitude"].iter().map(|n| n.parse().unwrap()).collect();
        named
            .new_attr::<VarLenUnicode>()
            .shape(2)
            .create("params")
            .unwrap()
            .write(&names)
            .unwrap();
    }
    for dataset in ["plain", "named"] {
        let spec_path = dir.path().join(format!("{dataset}.toml"));
        let body = text(
            &format!("design = {{ kind = \"file\", path = \"design.h5\", dataset = \"{dataset}\" }}"),
            &decay_state("a", false),
        );
        std::fs::write(&spec_path, &body).unwrap();
        let sp = std::sync::Arc::new(crate::jobs::RunSpec::from_file_with(&spec_path, &[]).unwrap());
        let run = drive(build(sp).as_ref(), Pause::Never);
        let x = check_exact(&run.store, "a", 3);
        assert_eq!(x, vec![1.5, 2.0, 3.0, 0.75, 0.25, 10.0], "{dataset}");
    }
}

#[test]
fn pausing_anywhere_gives_the_same_bits() {
    for design in ["", "design = { kind = \"lhs\" }", "design = { kind = \"sobol\" }"] {
        let sp = spec(&text(
            &format!("items = 300\nchunk = 50\nvalidate = 5\n{design}"),
            &decay_state("a", true),
        ));
        let job = build(sp);
        let whole = drive(job.as_ref(), Pause::Never);
        for pause in [Pause::AtAsk(7), Pause::AfterEmits(2)] {
            let paused = drive(job.as_ref(), pause);
            assert!(paused.yields > 0, "{pause:?}");
            assert_same_contents(&whole.store, &paused.store);
        }
    }
}

#[test]
fn statistics_validation_and_the_summary_agree_with_the_outputs() {
    let sp = spec(&text(
        "items = 400\nvalidate = 10\nstatistics = { quantiles = [0.25, 0.5] }",
        &decay_state("a", true),
    ));
    let job = build(sp);
    let run = drive(job.as_ref(), Pause::Never);
    let store = &run.store;
    let y = store.f64_rows("batch/a/outputs");
    // The mean and median of the first output, from the outputs directly.
    let mut first: Vec<f64> = y.iter().step_by(3).copied().collect();
    let mean = first.iter().sum::<f64>() / 400.0;
    first.sort_by(f64::total_cmp);
    let median = 0.5 * (first[199] + first[200]);
    let tables = job
        .summary(store, &SummaryOptions::default())
        .expect("a summary");
    assert_eq!(tables.len(), 1);
    let t = &tables[0];
    assert_eq!(cell(t, "t0.5", "count"), 400.0);
    assert!((cell(t, "t0.5", "mean") - mean).abs() < 1e-12);
    assert_eq!(cell(t, "t0.5", "q0.5"), median);
    assert_eq!(cell(t, "t0.5", "min"), first[0]);
    assert_eq!(cell(t, "t0.5", "max"), first[399]);
    assert_eq!(field(t, "failed"), 0.0);
    assert_eq!(field(t, "validate_max_rel"), 0.0);
    assert_eq!(store.attr("batch/a", "validated").unwrap(), Some(Attr::U64(10)));
    let filtered = job.summary(
        store,
        &SummaryOptions {
            state: Some("b".into()),
            ..SummaryOptions::default()
        },
    );
    assert!(filtered.unwrap().is_empty());
}
