//! The paths job against the in-memory store: each process's estimates
//! within 5 standard errors of exact answers computed here (x0·Pᵗ, the
//! stationary distribution, absorption probabilities and mean hitting
//! times from the fundamental matrix, GBM's and OU's moments), a path
//! recomputed alone equal to its row, the same bits however a task pauses,
//! and the tables `sampo summary` shows.

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};

use super::PathsJob;
use crate::jobs::summary::SummaryOptions;
use crate::jobs::testing::{assert_same_contents, cell, drive, spec, Pause};
use crate::jobs::{Job, RunSpec};
use crate::output::{MemoryStore, Reader};

/// Within 5 standard errors (and a hair for rounding where se is 0).
fn near(what: &str, estimate: f64, exact: f64, se: f64) {
    assert!(
        (estimate - exact).abs() <= 5.0 * se + 1e-12,
        "{what}: {estimate} vs exact {exact} (se {se})"
    );
}

fn text(sampler: &str, states: &str) -> String {
    format!("[run]\nseed = 5\n[sampler]\nkind = \"paths\"\n{sampler}\n{states}")
}

fn run(text: &str) -> (Arc<RunSpec>, PathsJob, MemoryStore) {
    let sp = spec(text);
    let job = PathsJob::new(sp.clone());
    let store = drive(&job, Pause::Never).store;
    (sp, job, store)
}

/// The value in column `column` of row `i` of a table whose rows are
/// recorded times.
fn at(table: &crate::table::Table, i: usize, column: &str) -> f64 {
    let c = table.columns.iter().position(|c| c.name == column).expect(column);
    match &table.rows[i].cells[c] {
        crate::table::Cell::Float(v) => *v,
        crate::table::Cell::Int(v) => *v as f64,
        other => panic!("row {i}, {column}: {other:?}"),
    }
}

/// Row-major rows × k.
fn rows(v: &[f64], k: usize) -> Vec<Vec<f64>> {
    v.chunks_exact(k).map(<[f64]>::to_vec).collect()
}

/// x·P.
fn step(x: &[f64], p: &[Vec<f64>]) -> Vec<f64> {
    (0..x.len())
        .map(|j| x.iter().zip(p).map(|(xi, row)| xi * row[j]).sum())
        .collect()
}

const CHAIN: [[f64; 3]; 3] = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.4, 0.4, 0.2]];

fn chain_rows() -> Vec<Vec<f64>> {
    CHAIN.iter().map(|r| r.to_vec()).collect()
}

#[test]
fn a_markov_chain_follows_x0_p_to_the_t_and_settles_in_its_stationary_distribution() {
    let states = "[[states]]\nname = \"w\"\nprocess = { kind = \"markov-chain\", labels = \
                  [\"sun\", \"cloud\", \"rain\"], transition = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], \
                  [0.4, 0.4, 0.2]], x0 = { distribution = [0.0, 0.25, 0.75] } }\n";
    let (_, _, store) = run(&text(
        "paths = 20000\nsteps = 40\nstatistics = { every = 2 }",
        states,
    ));
    let share = rows(&store.f64_rows("paths/w/occupation"), 3);
    let se = rows(&store.f64_rows("paths/w/occupation_se"), 3);
    let moments = rows(&store.f64_rows("paths/w/statistics"), 3);
    assert_eq!(share.len(), 21);
    let p = chain_rows();
    let mut x: Vec<f64> = vec![0.0, 0.25, 0.75];
    for t in 0..=40 {
        if t % 2 == 0 {
            let r = t / 2;
            for j in 0..3 {
                // The exact standard error, so a share estimated 0 is tested too.
                let exact_se = (x[j] * (1.0 - x[j]) / 20000.0).sqrt();
                near(&format!("P(X_{t} = {j})"), share[r][j], x[j], exact_se);
                assert!((se[r][j] - exact_se).abs() < 0.1 * exact_se + 1e-9);
            }
            let mean: f64 = (0..3).map(|j| j as f64 * x[j]).sum();
            near(&format!("E X_{t}"), moments[r][0], mean, moments[r][2]);
        }
        x = step(&x, &p);
    }
    // The stationary distribution, solved from π(P − I) = 0, Σπ = 1.
    let mut a = DMatrix::from_fn(3, 3, |i, j| p[j][i] - f64::from(u8::from(i == j)));
    a.row_mut(2).fill(1.0);
    let pi = a.lu().solve(&DVector::from_vec(vec![0.0, 0.0, 1.0])).unwrap();
    for j in 0..3 {
        near("π", share[20][j], pi[j], se[20][j]);
    }
    // Quantiles of the state index, exact from the counts.
    let q = rows(&store.f64_rows("paths/w/quantiles"), 3);
    assert_eq!(q[0], vec![1.0, 2.0, 2.0]);
}

#[test]
fn gamblers_ruin_absorbs_and_hits_as_the_fundamental_matrix_says() {
    // Positions 0..=5, up with 0.4, absorbed at 0 and 5, from 2.
    let up = 0.4;
    let mut p = vec![vec![0.0; 6]; 6];
    p[0][0] = 1.0;
    p[5][5] = 1.0;
    for (i, row) in p.iter_mut().enumerate().take(5).skip(1) {
        row[i + 1] = up;
        row[i - 1] = 1.0 - up;
    }
    let matrix = format!("{p:?}");
    let states = format!(
        "[[states]]\nname = \"ruin\"\nprocess = {{ kind = \"markov-chain\", transition = \
         {matrix}, x0 = 2 }}\nhitting = [0, 5]\n"
    );
    let (_, _, store) = run(&text("paths = 20000\nsteps = 200\nstatistics = { every = 50 }", &states));
    // N = (I − Q)⁻¹ over the transient states 1..=4; B = N R.
    let q = DMatrix::from_fn(4, 4, |i, j| p[i + 1][j + 1]);
    let n = (DMatrix::identity(4, 4) - q).try_inverse().unwrap();
    let r = DMatrix::from_fn(4, 2, |i, j| p[i + 1][if j == 0 { 0 } else { 5 }]);
    let b = &n * r;
    let steps = n.column_sum();
    let absorption = rows(&store.f64_rows("paths/ruin/absorption"), 2);
    assert_eq!(absorption.len(), 2);
    for (j, a) in absorption.iter().enumerate() {
        near(&format!("absorbed at {j}"), a[0], b[(1, j)], a[1]);
    }
    let h = store.f64_rows("paths/ruin/hitting");
    // By step 200 the chance of never hitting is below 1e-15.
    assert_eq!((h[0], h[4], h[5]), (20000.0, 0.0, 0.0));
    near("mean hitting step", h[1], steps[1], h[3]);
    // The fundamental matrix's variance of the hitting time: (2N − I)t − t².
    let t = &steps;
    let var = (2.0 * &n - DMatrix::identity(4, 4)) * t - t.component_mul(t);
    assert!((h[2] / var[1].sqrt() - 1.0).abs() < 0.05, "sd {} vs {}", h[2], var[1].sqrt());
}

#[test]
fn random_walks_match_their_exact_distributions() {
    // Bounded: a finite chain whose matrix is built here.
    let (lo, hi, up) = (-2i64, 3i64, 0.7);
    let k = (hi - lo + 1) as usize;
    let mut p = vec![vec![0.0; k]; k];
    for (i, row) in p.iter_mut().enumerate() {
        match i {
            0 => row[1] = 1.0,
            _ if i == k - 1 => row[k - 2] = 1.0,
            _ => {
                row[i + 1] = up;
                row[i - 1] = 1.0 - up;
            }
        }
    }
    let states = format!(
        "[[states]]\nname = \"b\"\nprocess = {{ kind = \"random-walk\", p = {up}, x0 = 0, lower = \
         {lo}, upper = {hi} }}\n[[states]]\nname = \"u\"\nprocess = {{ kind = \"random-walk\", p = \
         {up}, x0 = 4 }}\nhitting = [10]\n"
    );
    let (_, _, store) = run(&text("paths = 20000\nsteps = 30\nstatistics = { every = 10 }", &states));
    let share = rows(&store.f64_rows("paths/b/occupation"), k);
    let mut x: Vec<f64> = vec![0.0; k];
    x[(0 - lo) as usize] = 1.0;
    for t in 0..=30 {
        if t % 10 == 0 {
            for j in 0..k {
                let se = (x[j] * (1.0 - x[j]) / 20000.0).sqrt();
                near(&format!("P(X_{t} = {})", j as i64 + lo), share[t / 10][j], x[j], se);
            }
        }
        x = step(&x, &p);
    }
    // Unbounded: mean x0 + t(2p − 1), variance 4p(1 − p)t.
    let m = rows(&store.f64_rows("paths/u/statistics"), 3);
    for (r, t) in [0.0, 10.0, 20.0, 30.0].iter().enumerate() {
        near("E X_t", m[r][0], 4.0 + t * (2.0 * up - 1.0), m[r][2].max(1e-300));
        let var = 4.0 * up * (1.0 - up) * t;
        let var_se = var * (2.0f64 / 19999.0).sqrt();
        near("Var X_t", m[r][1] * m[r][1], var, var_se.max(1e-300));
    }
    assert!(!store.layout.datasets.iter().any(|d| d.path == "paths/u/occupation"));
    // From 4, up with 0.7: 10 is hit by step 30 by most paths.
    let h = store.f64_rows("paths/u/hitting");
    assert!(h[0] > 10000.0 && h[1] >= 6.0 && h[4] > 0.0);
}

#[test]
fn gbm_and_ou_match_their_exact_moments() {
    let states = "[[states]]\nname = \"g\"\nprocess = { kind = \"gbm\", mu = 0.1, sigma = 0.3, s0 \
                  = 2.0, dt = 0.05 }\n[[states]]\nname = \"o\"\nprocess = { kind = \"ou\", theta = \
                  1.5, mu = 1.0, sigma = 0.5, x0 = -1.0, dt = 0.1 }\n";
    let (_, _, store) = run(&text("paths = 20000\nsteps = 40\nstatistics = { every = 8 }", states));
    let times = |state: &str| {
        Reader::read_f64(&store, &format!("paths/{state}/times"), None, None).unwrap()
    };
    let times = times("g");
    // t·dt at steps 0, 8, …, 40.
    assert_eq!(times, [0.0, 8.0, 16.0, 24.0, 32.0, 40.0].map(|s| s * 0.05));
    let g = rows(&store.f64_rows("paths/g/statistics"), 3);
    for (r, t) in times.iter().enumerate() {
        near("E S_t", g[r][0], 2.0 * (0.1 * t).exp(), g[r][2].max(1e-300));
    }
    let o = rows(&store.f64_rows("paths/o/statistics"), 3);
    for (r, t) in Reader::read_f64(&store, "paths/o/times", None, None).unwrap().iter().enumerate() {
        let mean = 1.0 + (-1.0 - 1.0) * (-1.5 * t).exp();
        let var = 0.25 / 3.0 * (1.0 - (-3.0 * t).exp());
        near("E X_t", o[r][0], mean, o[r][2].max(1e-300));
        near("Var X_t", o[r][1] * o[r][1], var, (var * (2.0f64 / 19999.0).sqrt()).max(1e-300));
    }
    // Continuous values: no occupation; quantiles from the histograms,
    // within 5 standard errors and a bin width of OU's normal quantiles.
    assert!(!store.layout.datasets.iter().any(|d| d.path.ends_with("occupation")));
    let q = rows(&store.f64_rows("paths/o/quantiles"), 3);
    let qse = rows(&store.f64_rows("paths/o/quantiles_se"), 3);
    let bins = rows(&store.f64_rows("paths/o/quantile_bins"), 2);
    let z = [-1.6448536269514722, 0.0, 1.6448536269514722];
    let times = Reader::read_f64(&store, "paths/o/times", None, None).unwrap();
    for (r, t) in times.iter().enumerate().skip(1) {
        let mean = 1.0 + (-1.0 - 1.0) * (-1.5 * t).exp();
        let sd = (0.25 / 3.0 * (1.0 - (-3.0 * t).exp())).sqrt();
        for j in 0..3 {
            let exact = mean + sd * z[j];
            let within = 5.0 * qse[r][j] + bins[r][1];
            assert!(
                (q[r][j] - exact).abs() <= within,
                "q{j} at t = {t}: {} vs {exact} (se {}, bin {})",
                q[r][j],
                qse[r][j],
                bins[r][1]
            );
            // The se is √(q(1 − q)/n)/f: within 30% of the exact one.
            let f = (-0.5 * z[j] * z[j]).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt());
            let p = [0.05, 0.5, 0.95][j];
            let exact_se = (p * (1.0 - p) / 20000.0f64).sqrt() / f;
            assert!((qse[r][j] / exact_se - 1.0).abs() < 0.3, "{} vs {exact_se}", qse[r][j]);
        }
    }
    // At step 0 every path is at x0: its quantiles are x0 exactly.
    assert_eq!(q[0], vec![-1.0; 3]);
}

#[test]
fn a_path_recomputed_alone_equals_its_row_and_pauses_change_no_bit() {
    let states = "[[states]]\nname = \"w\"\nprocess = { kind = \"markov-chain\", transition = \
                  [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.4, 0.4, 0.2]], x0 = 1 }\nhitting = [2]\n\
                  [[states]]\nname = \"o\"\nprocess = { kind = \"ou\", theta = 1.0, mu = 0.0, sigma \
                  = 1.0, x0 = 0.5, dt = 0.1 }\n";
    let sp = spec(&text(
        "paths = 300\nsteps = 12\nchunk = 40\nrecord = \"both\"\nstatistics = { every = 3 }",
        states,
    ));
    let job = PathsJob::new(sp);
    assert_eq!(job.plan(0).tasks(), 16);
    assert_eq!(job.work(), (600, "paths"));
    let whole = drive(&job, Pause::Never);
    let w = whole.store.f64_rows("paths/w/states");
    let o = whole.store.f64_rows("paths/o/states");
    assert_eq!((w.len(), o.len()), (300 * 5, 300 * 5));
    for i in [0u64, 39, 40, 299] {
        let at = 5 * i as usize;
        let super::OnePath { values, hit, .. } = job.path(0, i).unwrap();
        assert_eq!(values, &w[at..at + 5], "path {i}");
        // The hitting step agrees with the recorded values where it can.
        if let Some(t) = hit {
            if t % 3 == 0 {
                assert_eq!(values[t as usize / 3], 2.0);
            }
        }
        assert_eq!(job.path(1, i).unwrap().values, &o[at..at + 5], "path {i}");
    }
    // The statistics are the stored paths' own.
    let mean0: f64 = (0..300).map(|i| o[5 * i + 4]).sum::<f64>() / 300.0;
    let m = whole.store.f64_rows("paths/o/statistics");
    assert!((m[12] - mean0).abs() < 1e-12);
    for pause in [Pause::AtAsk(7), Pause::AfterEmits(3)] {
        let paused = drive(&job, pause);
        assert!(paused.yields > 0, "{pause:?}");
        assert_same_contents(&whole.store, &paused.store);
    }
}

#[test]
fn the_summary_shows_what_the_run_wrote() {
    let states = "[[states]]\nname = \"w\"\nprocess = { kind = \"markov-chain\", labels = [\"a\", \
                  \"b\", \"z\"], transition = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]], \
                  x0 = \"a\" }\nhitting = [\"z\"]\n";
    let (_, job, mut store) = run(&text("paths = 1000\nsteps = 100", states));
    let tables = job.summary(&store, &SummaryOptions::default()).unwrap();
    assert_eq!(tables.len(), 4);
    let share = store.f64_rows("paths/w/occupation");
    assert_eq!(cell(&tables[1], "z", "share"), share[100 * 3 + 2]);
    assert_eq!(cell(&tables[3], "z", "probability"), share[100 * 3 + 2]);
    let h = store.f64_rows("paths/w/hitting");
    assert_eq!(cell(&tables[2], "z", "mean"), h[1]);
    // 101 recorded times: the fixed-width table shows about 21.
    let shown = tables[0].rows.iter().filter(|r| r.shown.table).count();
    assert!((20..=22).contains(&shown), "{shown}");
    let mut out = Vec::new();
    job.report(&mut store, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("absorbed by step 100"));
}

#[test]
fn the_queue_follows_its_embedded_chain_and_its_event_times() {
    // M/M/1/K with λ = 1, μ = 1.5, K = 4, from 2: the embedded chain and
    // the mean time of step t, Σ_{s<t} E[1/rate(X_s)], built here.
    let (l, m, k) = (1.0, 1.5, 4usize);
    let mut p = vec![vec![0.0; k + 1]; k + 1];
    p[0][1] = 1.0;
    p[k][k - 1] = 1.0;
    for (i, row) in p.iter_mut().enumerate().take(k).skip(1) {
        row[i + 1] = l / (l + m);
        row[i - 1] = m / (l + m);
    }
    let rate = |i: usize| match i {
        0 => l,
        i if i == k => m,
        _ => l + m,
    };
    let states = "[[states]]\nname = \"q\"\nprocess = { kind = \"mm1-queue\", arrival_rate = 1.0, \
                  service_rate = 1.5, capacity = 4, x0 = 2 }\nhitting = [0]\n";
    let (_, job, mut store) = run(&text(
        "paths = 20000\nsteps = 30\nrecord = \"both\"\nstatistics = { every = 5 }",
        states,
    ));
    let share = rows(&store.f64_rows("paths/q/occupation"), k + 1);
    let se = rows(&store.f64_rows("paths/q/occupation_se"), k + 1);
    let times = rows(&store.f64_rows("paths/q/time_statistics"), 3);
    let mut x: Vec<f64> = vec![0.0; k + 1];
    x[2] = 1.0;
    let mut clock = 0.0;
    for t in 0..=30 {
        if t % 5 == 0 {
            let r = t / 5;
            for j in 0..=k {
                let exact_se = (x[j] * (1.0 - x[j]) / 20000.0).sqrt();
                near(&format!("P(N_{t} = {j})"), share[r][j], x[j], exact_se);
                assert!((se[r][j] - exact_se).abs() < 0.1 * exact_se + 1e-9);
            }
            near(&format!("E T_{t}"), times[r][0], clock, times[r][2].max(1e-300));
        }
        clock += (0..=k).map(|i| x[i] / rate(i)).sum::<f64>();
        x = step(&x, &p);
    }
    // Each path's event times rise, and its values move by one a step.
    let super::OnePath {
        values,
        times: path_times,
        ..
    } = job.path(0, 17).unwrap();
    let stored = store.f64_rows("paths/q/path_times");
    assert_eq!(&stored[17 * 7..18 * 7], &path_times[..]);
    assert!(path_times.windows(2).all(|w| w[1] > w[0]) && path_times[0] == 0.0);
    assert_eq!(values[0], 2.0);
    // The report prints the exact answers beside the estimates.
    let tables = job.summary(&store, &SummaryOptions::default()).unwrap();
    assert!((at(&tables[0], 6, "time_exact") - clock_at(&p, &rate, 30)).abs() < 1e-12);
    let mut out = Vec::new();
    job.report(&mut store, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("time_exact"));
}

/// E[T_t] of the queue test's chain from 2, stepped again.
fn clock_at(p: &[Vec<f64>], rate: &dyn Fn(usize) -> f64, t: usize) -> f64 {
    let mut x = vec![0.0; p.len()];
    x[2] = 1.0;
    let mut clock = 0.0;
    for _ in 0..t {
        clock += (0..p.len()).map(|i| x[i] / rate(i)).sum::<f64>();
        x = step(&x, p);
    }
    clock
}

#[test]
fn poisson_counts_have_mean_and_variance_rate_times_t() {
    let states = "[[states]]\nname = \"n\"\nprocess = { kind = \"poisson\", rate = 3.0, dt = 0.5 }\n\
                  hitting = [10]\n";
    let (_, job, store) = run(&text("paths = 20000\nsteps = 20\nstatistics = { every = 4 }", states));
    let m = rows(&store.f64_rows("paths/n/statistics"), 3);
    let times = Reader::read_f64(&store, "paths/n/times", None, None).unwrap();
    for (r, t) in times.iter().enumerate() {
        let lt = 3.0 * t;
        near("E N_t", m[r][0], lt, m[r][2].max(1e-300));
        // Var of the sample variance ≈ (μ4 − σ⁴)/n with μ4 = λt(1 + 3λt).
        let var_se = ((lt * (1.0 + 3.0 * lt) - lt * lt) / 20000.0).sqrt();
        near("Var N_t", m[r][1] * m[r][1], lt, var_se.max(1e-300));
    }
    // Counts are integers and never fall.
    let super::OnePath { values, hit, .. } = job.path(0, 3).unwrap();
    assert!(values.windows(2).all(|w| w[1] >= w[0] && w[1].fract() == 0.0));
    if let Some(t) = hit {
        assert!(t > 0);
    }
}

#[test]
fn the_exact_columns_agree_with_answers_computed_here() {
    // The weather chain from "sun": x0·Pᵗ, built in this file with its own
    // arithmetic, against the exact column of the report.
    let states = "[[states]]\nname = \"w\"\nprocess = { kind = \"markov-chain\", labels = \
                  [\"sun\", \"cloud\", \"rain\"], transition = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], \
                  [0.4, 0.4, 0.2]], x0 = \"sun\" }\nhitting = [\"rain\"]\n\
                  [[states]]\nname = \"g\"\nprocess = { kind = \"gbm\", mu = 0.1, sigma = 0.3, s0 \
                  = 2.0, dt = 0.05 }\n";
    let (_, job, store) = run(&text("paths = 2000\nsteps = 10", states));
    let tables = job.summary(&store, &SummaryOptions::default()).unwrap();
    let p = chain_rows();
    let mut x = vec![1.0, 0.0, 0.0];
    for t in 0..=10 {
        let mean: f64 = (0..3).map(|j| j as f64 * x[j]).sum();
        assert!((at(&tables[0], t, "exact") - mean).abs() < 1e-14);
        if t < 10 {
            x = step(&x, &p);
        }
    }
    for (j, label) in ["sun", "cloud", "rain"].iter().enumerate() {
        assert!((cell(&tables[1], label, "exact") - x[j]).abs() < 1e-14);
    }
    // First step in "rain": taboo probabilities from "sun", cut at 10 steps.
    let mut free = vec![1.0, 0.0, 0.0];
    let (mut hit, mut weighted) = (0.0, 0.0);
    for t in 1..=10 {
        let next = step(&free, &p);
        hit += next[2];
        weighted += t as f64 * next[2];
        free = vec![next[0], next[1], 0.0];
    }
    assert!((cell(&tables[2], "rain", "exact_mean") - weighted / hit).abs() < 1e-12);
    assert!((cell(&tables[2], "rain", "exact_never") - (1.0 - hit)).abs() < 1e-12);
    // GBM: S0·e^{μt}.
    let g = &tables[3];
    assert!((at(g, 10, "exact") - 2.0 * (0.1f64 * 0.5).exp()).abs() < 1e-14);
}

/// The share of ±2 standard error intervals around estimates that hold
/// the exact answer, over many seeds, is about 95.4%: the errors are
/// calibrated, not merely small.
#[test]
fn standard_errors_are_calibrated_over_seeds() {
    let states = "[[states]]\nname = \"w\"\nprocess = { kind = \"markov-chain\", transition = \
                  [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.4, 0.4, 0.2]], x0 = 0 }\nhitting = [2]\n\
                  [[states]]\nname = \"o\"\nprocess = { kind = \"ou\", theta = 1.5, mu = 1.0, \
                  sigma = 0.5, x0 = -1.0, dt = 0.1 }\n\
                  [[states]]\nname = \"q\"\nprocess = { kind = \"mm1-queue\", arrival_rate = 1.0, \
                  service_rate = 2.0, capacity = 6 }\n";
    let (mut held, mut intervals) = (0u32, 0u32);
    for seed in 0..150 {
        let text = format!(
            "[run]\nseed = {seed}\n[sampler]\nkind = \"paths\"\npaths = 400\nsteps = 6\n{states}"
        );
        let (_, job, store) = run(&text);
        let tables = job.summary(&store, &SummaryOptions::default()).unwrap();
        let mut check = |estimate: f64, se: f64, exact: f64| {
            intervals += 1;
            held += u32::from((estimate - exact).abs() <= 2.0 * se);
        };
        // The states tables of w, o and q (w also has final and hitting).
        for states in [&tables[0], &tables[3], &tables[4]] {
            for step in [3, 6] {
                check(
                    at(states, step, "mean"),
                    at(states, step, "se"),
                    at(states, step, "exact"),
                );
            }
        }
        let w_final = &tables[1];
        for label in ["0", "1", "2"] {
            check(cell(w_final, label, "share"), cell(w_final, label, "se"), cell(w_final, label, "exact"));
        }
        let h = &tables[2];
        check(cell(h, "2", "never"), cell(h, "2", "never_se"), cell(h, "2", "exact_never"));
        check(cell(h, "2", "mean"), cell(h, "2", "se"), cell(h, "2", "exact_mean"));
    }
    // 150 seeds × 12 intervals; the share's binomial sd at 95.4% is about
    // 0.5%, seeds' intervals are correlated within a seed: allow ±3%.
    let share = f64::from(held) / f64::from(intervals);
    assert!((0.924..=0.984).contains(&share), "{held} of {intervals} intervals held: {share}");
}
