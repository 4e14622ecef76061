//! What the user sees while a run goes: progress (a bar on a terminal, a log
//! line every few seconds otherwise), and the load-balance line at the end.
//! Each kind prints its own closing tables (`Job::report`).

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::exec::Monitor;

/// Progress: a bar on a terminal, a log line every few seconds otherwise
/// (batch jobs, where a bar would fill the log with control characters).
pub struct Progress {
    bar: Option<ProgressBar>,
    unit: &'static str,
    total: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
    quiet: bool,
}

impl Progress {
    /// Progress towards `total` units of work called `unit` ("walker-steps").
    pub fn new(total: u64, unit: &'static str, quiet: bool) -> Self {
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let template = format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{percent:>3}}% \
                 {{human_pos}}/{{human_len}} {unit}, {{per_sec}}, ETA {{eta}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template).expect("valid progress template"),
            );
            bar
        });
        Self {
            bar,
            unit,
            total,
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
        let unit = self.unit;
        let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1e-9);
        tracing::info!(
            "progress: {:.1}% ({done}/{} {unit}), {:.3e} {unit}/s, ETA {:.0} s",
            100.0 * done as f64 / self.total.max(1) as f64,
            self.total,
            rate,
            eta
        );
    }
}

/// One line on how evenly the ranks were loaded: seconds of task time on
/// the busiest and the idlest rank, and the ranks that got no work.
pub fn load_balance(busy: &[f64]) -> String {
    let ranks = busy.len();
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

/// A byte count for people: `1.5 MiB`.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}
