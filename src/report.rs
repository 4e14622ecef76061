//! What the user sees: progress while the run goes, and the closing summary
//! table per state (acceptance, autocorrelation time, posterior mean and sd).

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::diag::{ChainAccumulator, ChainSummary};
use crate::exec::mpi::Mode;
use crate::exec::{Monitor, TaskRecord};
use crate::output::{OutputError, OutputWriter};
use crate::spec::RunSpec;

/// Progress: a bar on a terminal, a log line every few seconds otherwise
/// (batch jobs, where a bar would fill the log with control characters).
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
    quiet: bool,
}

impl Progress {
    pub fn new(total_walker_steps: u64, quiet: bool) -> Self {
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total_walker_steps);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% \
                     {human_pos}/{human_len} walker-steps, {per_sec}, ETA {eta}",
                )
                .expect("valid progress template"),
            );
            bar
        });
        Self {
            bar,
            total: total_walker_steps,
            started: Instant::now(),
            last_line: Instant::now(),
            every: Duration::from_secs(5),
            quiet,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Monitor for Progress {
    fn tick(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        if self.quiet || self.last_line.elapsed() < self.every {
            return;
        }
        self.last_line = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1e-9);
        tracing::info!(
            "progress: {:.1}% ({done}/{} walker-steps), {:.3e} walker-steps/s, ETA {:.0} s",
            100.0 * done as f64 / self.total.max(1) as f64,
            self.total,
            rate,
            eta
        );
    }
}

/// The summary of one task's ensemble.
#[derive(Debug, Clone)]
pub struct EnsembleReport {
    pub state: String,
    pub replicate: usize,
    pub walkers: usize,
    pub steps: usize,
    pub acceptance: f64,
    pub params: Vec<(String, ChainSummary)>,
}

/// Summarises every finished task from the output file (after burn-in),
/// writes `<group>/summary`, and returns the reports for the table.
pub fn summarize(
    spec: &RunSpec,
    writer: &OutputWriter,
    records: &[TaskRecord],
) -> Result<Vec<EnsembleReport>, OutputError> {
    let mut reports = Vec::with_capacity(records.len());
    for r in records {
        let st = &spec.states[r.task.state];
        let e = &st.ensemble;
        let burn_rows = e.burn_rows();
        // One pass over the chain after the burn-in, for every parameter.
        let rows = writer.chain_rows(r.task.id)?.saturating_sub(burn_rows);
        let mut chain = ChainAccumulator::new(e.walkers, st.dim(), rows);
        writer.read_chain_blocks(r.task.id, burn_rows, |block| chain.push(block))?;
        let summaries = chain.finish();
        let acceptance = r.stats.accepted as f64 / (e.walkers * e.steps) as f64;
        writer.write_summary(r.task.id, burn_rows, acceptance, &summaries)?;
        let params = st.params.iter().cloned().zip(summaries).collect();
        reports.push(EnsembleReport {
            state: st.name.clone(),
            replicate: r.task.replicate,
            walkers: e.walkers,
            steps: e.steps,
            acceptance,
            params,
        });
    }
    Ok(reports)
}

/// Prints the closing table.
pub fn print_table(
    out: &mut dyn Write,
    reports: &[EnsembleReport],
    replicates: usize,
) -> io::Result<()> {
    for r in reports {
        let tau_mean = r.params.iter().map(|p| p.1.tau).sum::<f64>() / r.params.len().max(1) as f64;
        let title = if replicates > 1 {
            format!("{} (replicate {})", r.state, r.replicate)
        } else {
            r.state.clone()
        };
        writeln!(
            out,
            "state {title}: {} walkers × {} steps, acceptance {:.3}, mean τ {:.1}",
            r.walkers, r.steps, r.acceptance, tau_mean
        )?;
        let width = r.params.iter().map(|p| p.0.len()).max().unwrap_or(5).max(5);
        writeln!(
            out,
            "  {:<width$} {:>12} {:>12} {:>8} {:>10}",
            "param", "mean", "sd", "tau", "ess"
        )?;
        for (name, s) in &r.params {
            writeln!(
                out,
                "  {name:<width$} {:>12.5} {:>12.5} {:>8.1} {:>10.0}",
                s.mean,
                s.sd,
                s.tau,
                s.ess()
            )?;
        }
    }
    Ok(())
}

/// One line on how evenly the ranks were loaded: seconds of task time on
/// the busiest and the idlest rank, and the ranks that got no work.
pub fn load_balance(spec: &RunSpec, records: &[TaskRecord], ranks: usize, mode: &Mode) -> String {
    let mut busy = vec![0.0f64; ranks];
    for r in records {
        let secs = r.end - r.start;
        match mode {
            Mode::Queue => busy[r.rank] += secs,
            // A shared ensemble keeps busy the ranks of its group that own
            // walkers: with more ranks than walkers per half, some own none.
            Mode::Groups(groups) => {
                let half = spec.states[r.task.state].ensemble.walkers / 2;
                for rank in groups[r.task.id].clone().take(half) {
                    busy[rank] += secs;
                }
            }
        }
    }
    let by = |f: fn(f64, f64) -> bool| {
        (0..ranks).fold(0, |best, r| if f(busy[r], busy[best]) { r } else { best })
    };
    let (max, min) = (by(|a, b| a > b), by(|a, b| a < b));
    let idle: Vec<usize> = (0..ranks).filter(|&r| busy[r] == 0.0).collect();
    let mut line = format!(
        "load balance: busiest rank {max} ({:.2} s of tasks), idlest rank {min} ({:.2} s)",
        busy[max], busy[min]
    );
    if !idle.is_empty() {
        line += &format!("; ranks without work: {idle:?} (more ranks than tasks or walkers)");
    }
    line
}
