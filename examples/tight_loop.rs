//! The speed ceiling for scripts/bench-ensemble.sh: a hand-written, single-thread
//! stretch-move ensemble (two halves, one Xoshiro256++ stream per walker) on a
//! Gaussian target with a uniform prior box, storing nothing.
//!
//! It reads the problem (mean, covariance, prior box, walkers, stretch scale,
//! starting ball) from the same run spec that sampo runs, so that both sample
//! exactly the same density:
//!
//!   cargo run --release --example tight_loop -- SPEC.toml [--steps N] [--min-seconds S]
//!
//! Results are printed as `key=value` lines.

use std::f64::consts::PI;
use std::hint::black_box;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use nalgebra::DMatrix;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// log N(x; μ, Σ) + log U(x; box), normalised, as sampo's Gaussian model and
/// uniform prior compute it: W = L⁻¹ (Σ = L Lᵀ), density from |W (x − μ)|².
struct Target {
    mean: Vec<f64>,
    /// The lower triangle of W, row by row (row i holds i + 1 entries).
    w: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    /// −½ (d ln 2π + ln det Σ) − Σ ln(high − low).
    log_norm: f64,
}

impl Target {
    fn new(mean: Vec<f64>, cov: &[Vec<f64>], low: Vec<f64>, high: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if cov.len() != d || cov.iter().any(|row| row.len() != d) {
            bail!("cov must be {d} × {d}");
        }
        if low.len() != d || high.len() != d {
            bail!("the prior box must have {d} entries per bound");
        }
        let l = DMatrix::from_fn(d, d, |i, j| cov[i][j])
            .cholesky()
            .ok_or_else(|| anyhow!("cov is not positive definite"))?
            .l();
        let w = l
            .solve_lower_triangular(&DMatrix::identity(d, d))
            .ok_or_else(|| anyhow!("cov is singular"))?;
        let packed = (0..d).flat_map(|i| (0..=i).map(move |j| (i, j)));
        let log_det = 2.0 * (0..d).map(|i| l[(i, i)].ln()).sum::<f64>();
        let log_volume: f64 = low.iter().zip(&high).map(|(lo, hi)| (hi - lo).ln()).sum();
        Ok(Self {
            w: packed.map(|(i, j)| w[(i, j)]).collect(),
            log_norm: -0.5 * (d as f64 * (2.0 * PI).ln() + log_det) - log_volume,
            mean,
            low,
            high,
        })
    }

    /// `r` is scratch space of length d for x − μ.
    #[inline]
    fn log_prob(&self, x: &[f64], r: &mut [f64]) -> f64 {
        // Written so that NaN falls outside the box, as in sampo's prior.
        for ((&xi, &lo), &hi) in x.iter().zip(&self.low).zip(&self.high) {
            if !(xi >= lo && xi <= hi) {
                return f64::NEG_INFINITY;
            }
        }
        for ((ri, &xi), &mi) in r.iter_mut().zip(x).zip(&self.mean) {
            *ri = xi - mi;
        }
        let mut quad = 0.0;
        let mut start = 0;
        for i in 0..r.len() {
            let row = &self.w[start..start + i + 1];
            start += i + 1;
            let z: f64 = row.iter().zip(&r[..=i]).map(|(w, r)| w * r).sum();
            quad += z * z;
        }
        self.log_norm - 0.5 * quad
    }
}

/// The ensemble's settings and starting ball, from the run spec.
struct Problem {
    target: Target,
    walkers: usize,
    steps: usize,
    a: f64,
    center: Vec<f64>,
    radius: Vec<f64>,
}

fn field<'a>(v: &'a toml::Value, path: &[&str]) -> Result<&'a toml::Value> {
    path.iter().try_fold(v, |v, key| {
        v.get(key)
            .ok_or_else(|| anyhow!("missing key `{}`", path.join(".")))
    })
}

fn number(v: &toml::Value) -> Result<f64> {
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .ok_or_else(|| anyhow!("expected a number, found {v}"))
}

fn numbers(v: &toml::Value) -> Result<Vec<f64>> {
    v.as_array()
        .ok_or_else(|| anyhow!("expected an array, found {v}"))?
        .iter()
        .map(number)
        .collect()
}

fn count(v: &toml::Value) -> Result<usize> {
    v.as_integer()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| anyhow!("expected a non-negative integer, found {v}"))
}

impl Problem {
    /// Reads the first state of a spec written by scripts/bench_emcee.py: a
    /// gaussian model, a uniform prior, one stretch move, a ball init.
    fn from_spec(text: &str) -> Result<Self> {
        let doc: toml::Value = toml::from_str(text)?;
        let sampler = field(&doc, &["sampler"])?;
        let state = field(&doc, &["states"])?
            .get(0)
            .ok_or_else(|| anyhow!("no [[states]]"))?;
        for (path, kind) in [
            (["model", "kind"], "gaussian"),
            (["prior", "kind"], "uniform"),
        ] {
            if field(state, &path)?.as_str() != Some(kind) {
                bail!("{} must be \"{kind}\"", path.join("."));
            }
        }
        let moves = field(sampler, &["moves"])?
            .as_array()
            .ok_or_else(|| anyhow!("sampler.moves must be an array"))?;
        let [mv] = moves.as_slice() else {
            bail!("expected exactly one move");
        };
        if field(mv, &["kind"])?.as_str() != Some("stretch") {
            bail!("the move must be a stretch move");
        }
        let mean = numbers(field(state, &["model", "mean"])?)?;
        let cov = field(state, &["model", "cov"])?
            .as_array()
            .ok_or_else(|| anyhow!("model.cov must be an array of rows"))?
            .iter()
            .map(numbers)
            .collect::<Result<Vec<_>>>()?;
        let low = numbers(field(state, &["prior", "low"])?)?;
        let high = numbers(field(state, &["prior", "high"])?)?;
        let d = mean.len();
        let center = numbers(field(sampler, &["init", "center"])?)?;
        let radius = match field(sampler, &["init", "radius"])? {
            v @ toml::Value::Array(_) => numbers(v)?,
            v => vec![number(v)?; d],
        };
        if center.len() != d || radius.len() != d {
            bail!("init.center and init.radius must have {d} entries");
        }
        Ok(Self {
            target: Target::new(mean, &cov, low, high)?,
            walkers: count(field(sampler, &["walkers"])?)?,
            steps: count(field(sampler, &["steps"])?)?,
            a: mv.get("a").map_or(Ok(2.0), number)?,
            center,
            radius,
        })
    }
}

/// What a timed run did.
struct Outcome {
    seconds: f64,
    accepted: u64,
}

/// Runs `steps` iterations of the stretch-move ensemble from a fresh start.
fn run(p: &Problem, steps: usize, seed: u64) -> Outcome {
    let (n, d, a, t) = (p.walkers, p.center.len(), p.a, &p.target);
    // seed_from_u64 expands the key through SplitMix64, so consecutive keys
    // give unrelated streams.
    let mut rngs: Vec<Xoshiro256PlusPlus> = (0..n as u64)
        .map(|i| Xoshiro256PlusPlus::seed_from_u64((seed << 32) ^ i))
        .collect();
    let mut positions = vec![0.0; n * d];
    for (x, rng) in positions.chunks_exact_mut(d).zip(&mut rngs) {
        for ((xi, c), r) in x.iter_mut().zip(&p.center).zip(&p.radius) {
            *xi = c + r * rng.sample::<f64, _>(StandardNormal);
        }
    }
    let mut r = vec![0.0; d];
    let mut log_prob: Vec<f64> = positions
        .chunks_exact(d)
        .map(|x| t.log_prob(x, &mut r))
        .collect();
    let mut y = vec![0.0; d];
    let mut accepted = 0u64;
    let half = n / 2;
    let d_minus_1 = d as f64 - 1.0;

    let started = Instant::now();
    for _ in 0..steps {
        for h in 0..2 {
            let (first, second) = positions.split_at_mut(half * d);
            let (active, complement, offset) = if h == 0 {
                (first, &*second, 0)
            } else {
                (second, &*first, half)
            };
            let nc = complement.len() / d;
            for (k, x) in active.chunks_exact_mut(d).enumerate() {
                let rng = &mut rngs[offset + k];
                let j = rng.random_range(0..nc);
                let c = &complement[j * d..(j + 1) * d];
                // z = ((a − 1) u + 1)² / a has density ∝ 1/√z on [1/a, a].
                let s = (a - 1.0) * rng.random::<f64>() + 1.0;
                let z = s * s / a;
                for ((yi, &xi), &ci) in y.iter_mut().zip(x.iter()).zip(c) {
                    *yi = ci + z * (xi - ci);
                }
                let lp_new = t.log_prob(&y, &mut r);
                let lp = &mut log_prob[offset + k];
                if rng.random::<f64>().ln() < d_minus_1 * z.ln() + lp_new - *lp {
                    x.copy_from_slice(&y);
                    *lp = lp_new;
                    accepted += 1;
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    black_box(&positions);
    Outcome { seconds, accepted }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut spec = None;
    let mut steps = None;
    let mut min_seconds = 0.0;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--steps" => steps = Some(value("--steps")?.parse().context("--steps")?),
            "--min-seconds" => {
                min_seconds = value("--min-seconds")?.parse().context("--min-seconds")?
            }
            "-h" | "--help" => {
                println!("usage: tight_loop SPEC.toml [--steps N] [--min-seconds S]");
                return Ok(());
            }
            _ if spec.is_none() && !arg.starts_with('-') => spec = Some(arg),
            _ => bail!("unexpected argument `{arg}` (see --help)"),
        }
    }
    let spec = spec.ok_or_else(|| anyhow!("usage: tight_loop SPEC.toml [--steps N]"))?;
    let text = std::fs::read_to_string(&spec).with_context(|| format!("cannot read {spec}"))?;
    let problem = Problem::from_spec(&text).with_context(|| format!("in {spec}"))?;
    if problem.walkers < 4 {
        bail!("need at least 4 walkers");
    }

    // Lengthen the run until it lasts at least `min_seconds` (20% margin).
    let mut steps = steps.unwrap_or(problem.steps).max(1);
    let mut outcome = run(&problem, steps, 1);
    while outcome.seconds < min_seconds {
        let scale = 1.2 * min_seconds / outcome.seconds.max(1e-3);
        steps = ((steps as f64 * scale).ceil() as usize).max(2 * steps);
        outcome = run(&problem, steps, 1);
    }
    let walker_steps = (problem.walkers * steps) as u64;
    println!("walker_steps={walker_steps}");
    println!("steps={steps}");
    println!("seconds={:.6}", outcome.seconds);
    println!(
        "acceptance={:.4}",
        outcome.accepted as f64 / walker_steps as f64
    );
    Ok(())
}
