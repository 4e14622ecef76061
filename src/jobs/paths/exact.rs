//! The exact answers a process has, shown beside the estimates (the
//! `exact` columns): for a finite state space (a Markov chain, a bounded
//! walk, the queue) the distribution x0·Pᵗ at every recorded step, hence
//! the mean, sd, quantiles, occupation and absorption by step T, the first
//! hitting time's distribution by step T from the chain with the target
//! set made absorbing, and the queue's mean event times; for the unbounded
//! walk, the Poisson counts, GBM and OU their closed-form means and sds. A
//! plugin's process has none.

use super::process::Process;
use super::stats::quantiles_of_counts;

/// Multiply-adds the exact distribution of a finite space may take at most
/// (nonzero transitions × steps): beyond it, no exact column.
const MAX_WORK: f64 = 2e8;

/// What is known exactly; `None` where nothing is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exact {
    /// Per recorded step: the mean and sd of the value.
    pub moments: Option<Vec<[f64; 2]>>,
    /// Per recorded step × state of a finite space: the probability.
    pub occupation: Option<Vec<f64>>,
    /// Per recorded step × requested quantile (finite spaces).
    pub quantiles: Option<Vec<f64>>,
    /// The first hitting step's mean and sd over the paths that hit by the
    /// last step, and the probability of never hitting by then.
    pub hitting: Option<[f64; 3]>,
    /// Per absorbing state: the probability of being absorbed by the last step.
    pub absorption: Option<Vec<f64>>,
    /// Per recorded step, where times are random: the mean time of the step.
    pub time_mean: Option<Vec<f64>>,
}

/// The exact answers of `process` over `steps` steps, at the `recorded`
/// steps, for the target set `hitting` (values) and the `quantiles`.
pub fn exact(
    process: &Process,
    steps: u64,
    recorded: &[u64],
    hitting: &[i64],
    quantiles: &[f64],
) -> Exact {
    if let (Some(p), Some(x0), Some(values)) = (
        process.transition(),
        process.start(),
        process.finite_values(),
    ) {
        return finite(process, &p, x0, &values, steps, recorded, hitting, quantiles)
            .unwrap_or_default();
    }
    let moments = |f: &dyn Fn(f64) -> [f64; 2]| {
        Some(recorded.iter().map(|&t| f(process.time(t))).collect())
    };
    let moments = match *process {
        Process::RandomWalk { p, x0, .. } => {
            moments(&|t| [x0 as f64 + t * (2.0 * p - 1.0), (4.0 * p * (1.0 - p) * t).sqrt()])
        }
        Process::Poisson { rate, .. } => moments(&|t| [rate * t, (rate * t).sqrt()]),
        Process::Gbm { mu, sigma, s0, .. } => moments(&|t| {
            let mean = s0 * (mu * t).exp();
            [mean, mean * (sigma * sigma * t).exp_m1().sqrt()]
        }),
        Process::Ou {
            theta,
            mu,
            sigma,
            x0,
            ..
        } => moments(&|t| {
            let mean = mu + (x0 - mu) * (-theta * t).exp();
            [
                mean,
                sigma * (-(-2.0 * theta * t).exp_m1() / (2.0 * theta)).sqrt(),
            ]
        }),
        _ => None,
    };
    Exact {
        moments,
        ..Exact::default()
    }
}

/// A finite space's answers by stepping its distribution, or `None` when
/// that would take more than [`MAX_WORK`].
#[allow(clippy::too_many_arguments)]
fn finite(
    process: &Process,
    p: &[Vec<f64>],
    x0: Vec<f64>,
    values: &[i64],
    steps: u64,
    recorded: &[u64],
    hitting: &[i64],
    quantiles: &[f64],
) -> Option<Exact> {
    let k = values.len();
    // The nonzero transitions of each row.
    let rows: Vec<Vec<(usize, f64)>> = p
        .iter()
        .map(|r| r.iter().copied().enumerate().filter(|e| e.1 != 0.0).collect())
        .collect();
    let nonzero: usize = rows.iter().map(Vec::len).sum();
    let work = (nonzero as f64) * (steps as f64) * if hitting.is_empty() { 1.0 } else { 2.0 };
    if work > MAX_WORK {
        return None;
    }
    let step = |from: &[f64], to: &mut Vec<f64>| {
        to.clear();
        to.resize(k, 0.0);
        for (i, row) in rows.iter().enumerate() {
            if from[i] != 0.0 {
                for &(j, pij) in row {
                    to[j] += from[i] * pij;
                }
            }
        }
    };
    let target: Vec<bool> = values.iter().map(|v| hitting.contains(v)).collect();
    let rates: Option<Vec<f64>> = process
        .random_times()
        .then(|| values.iter().map(|&n| process.event_rate(n).unwrap_or(f64::NAN)).collect());

    let mut dist = x0;
    let mut next = vec![0.0; k];
    // Paths not yet in the target set (the taboo chain), and the
    // probability of hitting at each step's moments.
    let mut free: Vec<f64> = (0..k).map(|i| if target[i] { 0.0 } else { dist[i] }).collect();
    let mut hit = [(0..k).filter(|&i| target[i]).map(|i| dist[i]).sum::<f64>(), 0.0, 0.0];
    let mut clock = 0.0;
    let (mut occupation, mut time_mean) = (Vec::new(), Vec::new());
    let mut at = 0;
    for t in 0..=steps {
        if t > 0 {
            if let Some(rates) = &rates {
                clock += dist.iter().zip(rates).map(|(d, r)| d / r).sum::<f64>();
            }
            step(&dist, &mut next);
            std::mem::swap(&mut dist, &mut next);
            if !hitting.is_empty() {
                step(&free, &mut next);
                let h: f64 = (0..k).filter(|&i| target[i]).map(|i| next[i]).sum();
                let tf = t as f64;
                hit[0] += h;
                hit[1] += h * tf;
                hit[2] += h * tf * tf;
                for (i, v) in next.iter_mut().enumerate() {
                    if target[i] {
                        *v = 0.0;
                    }
                }
                std::mem::swap(&mut free, &mut next);
            }
        }
        if recorded.get(at) == Some(&t) {
            occupation.extend_from_slice(&dist);
            time_mean.push(clock);
            at += 1;
        }
    }
    let moments = occupation
        .chunks_exact(k)
        .map(|d| {
            let mean: f64 = d.iter().zip(values).map(|(p, &v)| p * v as f64).sum();
            let var: f64 = d
                .iter()
                .zip(values)
                .map(|(p, &v)| p * (v as f64 - mean).powi(2))
                .sum();
            [mean, var.sqrt()]
        })
        .collect();
    let qs = (!quantiles.is_empty()).then(|| {
        occupation
            .chunks_exact(k)
            .flat_map(|d| quantiles_of_counts(d, values, quantiles))
            .collect()
    });
    let last = &occupation[occupation.len() - k..];
    let absorbing = process.absorbing();
    let absorption = (!absorbing.is_empty()).then(|| absorbing.iter().map(|&i| last[i]).collect());
    let hitting = (!hitting.is_empty()).then(|| {
        let mean = hit[1] / hit[0];
        [mean, (hit[2] / hit[0] - mean * mean).max(0.0).sqrt(), 1.0 - hit[0]]
    });
    Some(Exact {
        moments: Some(moments),
        occupation: Some(occupation.clone()),
        quantiles: qs,
        hitting,
        absorption,
        time_mean: rates.map(|_| time_mean),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::paths::process::{recorded_steps, Start};

    #[test]
    fn a_two_state_chain_has_its_closed_form() {
        // P = [[1-a, a], [b, 1-b]] from state 0: P(X_t = 1) = a/(a+b)(1 − (1−a−b)^t).
        let (a, b) = (0.3, 0.1);
        let process = Process::MarkovChain {
            labels: vec!["x".into(), "y".into()],
            transition: vec![vec![1.0 - a, a], vec![b, 1.0 - b]],
            x0: Start::State(0),
        };
        let recorded = recorded_steps(12, 4);
        let e = exact(&process, 12, &recorded, &[1], &[0.5]);
        let occupation = e.occupation.unwrap();
        for (r, &t) in recorded.iter().enumerate() {
            let p1 = a / (a + b) * (1.0 - (1.0 - a - b).powi(t as i32));
            assert!((occupation[2 * r + 1] - p1).abs() < 1e-14);
            let [mean, sd] = e.moments.as_ref().unwrap()[r];
            assert!((mean - p1).abs() < 1e-14 && (sd - (p1 * (1.0 - p1)).sqrt()).abs() < 1e-14);
        }
        // The first step in state 1 is geometric(a), cut at 12 steps.
        let [mean, _, never] = e.hitting.unwrap();
        let f: Vec<f64> = (1..=12).map(|t| (1.0 - a).powi(t - 1) * a).collect();
        let hit: f64 = f.iter().sum();
        let m: f64 = f.iter().enumerate().map(|(i, p)| (i + 1) as f64 * p).sum::<f64>() / hit;
        assert!((never - (1.0 - a).powi(12)).abs() < 1e-14);
        assert!((mean - m).abs() < 1e-12);
    }

    #[test]
    fn the_queue_waits_one_over_its_rate_between_events() {
        let process = Process::Mm1Queue {
            arrival: 1.0,
            service: 3.0,
            capacity: 4,
            x0: 0,
        };
        let e = exact(&process, 2, &[0, 1, 2], &[], &[]);
        let times = e.time_mean.unwrap();
        // From 0 (rate 1) to 1 with certainty, then rate 4.
        assert_eq!(times, vec![0.0, 1.0, 1.25]);
        assert_eq!(e.occupation.unwrap()[10..], [0.75, 0.0, 0.25, 0.0, 0.0]);
    }
}
