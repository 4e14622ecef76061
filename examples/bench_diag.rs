//! The diagnostics' own cost, for scripts/bench-chains.sh: 8 AR(1) chains of
//! 10^6 draws (x_t = φ x_{t−1} + √(1 − φ²) ε_t, stationary N(0, 1), fixed
//! seed), then the time of `sampo::diag::diagnose` (rank-normalised split
//! R-hat, bulk- and tail-ESS, MCSE of the mean, sd and quantiles, the
//! quantiles) and of `sampo::diag::integrated_time` (emcee's τ) on them, and
//! the process's peak resident memory (VmHWM) after each.
//!
//!   cargo run --release --example bench_diag -- [--chains 8] [--draws 1000000] [--phi 0.9] [--repeat 3]
//!
//! `RAYON_NUM_THREADS=1` gives the one-core time (diagnose runs its sort,
//! quantiles and FFTs on two rayon tasks). Results are printed as
//! `key=value` lines; times are the fastest and the slowest of `--repeat`.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A field of /proc/self/status in kB ("VmHWM", "VmRSS"), 0 where unknown.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// One AR(1) chain with unit stationary variance, started in equilibrium.
fn ar1(draws: usize, phi: f64, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let innovation = (1.0 - phi * phi).sqrt();
    let mut x: f64 = StandardNormal.sample(&mut rng);
    (0..draws)
        .map(|_| {
            let e: f64 = StandardNormal.sample(&mut rng);
            x = phi * x + innovation * e;
            x
        })
        .collect()
}

/// Runs `f` `repeat` times; returns (fastest, slowest) seconds and the last result.
fn timed<T>(repeat: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut fastest = f64::INFINITY;
    let mut slowest = 0.0f64;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let out = black_box(f());
        let s = started.elapsed().as_secs_f64();
        fastest = fastest.min(s);
        slowest = slowest.max(s);
        last = Some(out);
    }
    (fastest, slowest, last.expect("at least one run"))
}

fn main() -> Result<()> {
    let (mut chains, mut draws, mut phi, mut repeat) = (8usize, 1_000_000usize, 0.9f64, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--chains" => chains = value("--chains")?.parse().context("--chains")?,
            "--draws" => draws = value("--draws")?.parse().context("--draws")?,
            "--phi" => phi = value("--phi")?.parse().context("--phi")?,
            "--repeat" => repeat = value("--repeat")?.parse().context("--repeat")?,
            "-h" | "--help" => {
                println!("usage: bench_diag [--chains N] [--draws N] [--phi F] [--repeat N]");
                return Ok(());
            }
            _ => bail!("unexpected argument `{arg}` (see --help)"),
        }
    }
    if chains == 0 || draws < 4 || !(0.0..1.0).contains(&phi) {
        bail!("need chains ≥ 1, draws ≥ 4 and 0 ≤ phi < 1");
    }

    let rss_start = status_kb("VmRSS");
    let data: Vec<Vec<f64>> = (0..chains).map(|c| ar1(draws, phi, 1 + c as u64)).collect();
    let rss_data = status_kb("VmRSS");
    let views: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();

    let (d_fast, d_slow, d) = timed(repeat, || sampo::diag::diagnose(&views));
    let hwm_diagnose = status_kb("VmHWM");
    let (t_fast, t_slow, tau) = timed(repeat, || sampo::diag::integrated_time(&data));
    let hwm_tau = status_kb("VmHWM");

    // For AR(1), τ = (1 + φ)/(1 − φ): a check that the data are what they say.
    println!("chains={chains}");
    println!("draws={draws}");
    println!("phi={phi}");
    println!("threads={}", rayon::current_num_threads());
    println!("repeat={repeat}");
    println!("data_mib={:.1}", mib(rss_data.saturating_sub(rss_start)));
    println!("diagnose_seconds={d_fast:.4}");
    println!("diagnose_seconds_slowest={d_slow:.4}");
    println!("integrated_time_seconds={t_fast:.4}");
    println!("integrated_time_seconds_slowest={t_slow:.4}");
    println!("peak_rss_mib_after_diagnose={:.1}", mib(hwm_diagnose));
    println!("peak_rss_mib_after_integrated_time={:.1}", mib(hwm_tau));
    println!("rhat={:.5}", d.rhat);
    println!("ess_bulk={:.0}", d.ess_bulk);
    println!("ess_tail={:.0}", d.ess_tail);
    println!("mcse_mean={:.3e}", d.mcse_mean);
    println!("tau={tau:.3}");
    println!("tau_exact={:.3}", (1.0 + phi) / (1.0 - phi));
    Ok(())
}
