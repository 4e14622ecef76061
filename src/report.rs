//! What the user sees while a run goes: progress (a bar on a terminal, a log
//! line every few seconds otherwise), and the load-balance line at the end.
//! Each kind prints its own closing tables (`Job::report`).

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress: a bar on a terminal, a log line every few seconds otherwise
/// (batch jobs, where a bar would fill the log with control characters).
pub struct Progress {
    bar: Option<ProgressBar>,
    unit: &'static str,
    total: u64,
    /// Units a resumed run restored: done before this process started, so
    /// not in its rate.
    restored: Arc<AtomicU64>,
    started: Instant,
    last_line: Instant,
    every: Duration,
    quiet: bool,
}

impl Progress {
    /// Progress towards `total` units of work called `unit` ("walker-steps").
    pub fn new(total: u64, unit: &'static str, quiet: bool) -> Self {
        let restored = Arc::new(AtomicU64::new(0));
        let before = restored.clone();
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let template = format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{percent:>3}}% \
                 {{human_pos}}/{{human_len}} {unit}, {{per_sec}}, ETA {{honest_eta}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("valid progress template")
                    .with_key(
                        "honest_eta",
                        move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let done = state.pos();
                            let secs = state.elapsed().as_secs_f64();
                            let total = state.len().unwrap_or(done);
                            let restored = before.load(Ordering::Relaxed);
                            let _ = write!(w, "{}", eta_text(done, restored, total, secs));
                        },
                    ),
            );
            bar
        });
        Self {
            bar,
            unit,
            total,
            restored,
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

/// Told how far the run is, from rank 0's main thread, often (the
/// executor's observer; [`Progress`] draws a bar).
pub trait Monitor {
    /// `units_done` of the run so far, of which `restored` were done before
    /// this process (a resumed run's).
    fn tick(&mut self, units_done: u64, restored: u64);
}

/// A monitor that does nothing (tests, `--quiet`).
impl Monitor for () {
    fn tick(&mut self, _: u64, _: u64) {}
}

impl Monitor for Progress {
    fn tick(&mut self, done: u64, restored: u64) {
        self.restored.store(restored, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        if self.quiet || self.last_line.elapsed() < self.every {
            return;
        }
        self.last_line = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done.saturating_sub(restored) as f64 / secs.max(1e-9);
        let unit = self.unit;
        tracing::info!(
            "progress: {:.1}% ({done}/{} {unit}), {:.3e} {unit}/s, ETA {}",
            100.0 * done as f64 / self.total.max(1) as f64,
            self.total,
            rate,
            eta_text(done, restored, self.total, secs)
        );
    }
}

/// The time left at the rate this process has measured (its own work: not
/// the `restored` units a resumed run began with), in units a person reads
/// ("3 h 20 min", "40 years"); unknown until some work is done, instead of
/// an estimate from nothing.
pub fn eta_text(done: u64, restored: u64, total: u64, elapsed_secs: f64) -> String {
    let here = done.saturating_sub(restored);
    if here == 0 {
        return format!("unknown (no step done in {})", duration_text(elapsed_secs));
    }
    let left = total.saturating_sub(done) as f64 * elapsed_secs / here as f64;
    duration_text(left)
}

fn duration_text(secs: f64) -> String {
    const UNITS: [(f64, &str); 5] = [
        (365.25 * 86400.0, "years"),
        (86400.0, "d"),
        (3600.0, "h"),
        (60.0, "min"),
        (1.0, "s"),
    ];
    if secs < 60.0 {
        return format!("{:.0} s", secs.max(0.0));
    }
    for (i, (unit, name)) in UNITS.iter().enumerate() {
        if secs >= *unit {
            let whole = (secs / unit).floor();
            if i + 1 < UNITS.len() && whole < 10.0 {
                let (next, next_name) = UNITS[i + 1];
                let rest = ((secs - whole * unit) / next).floor();
                return format!("{whole:.0} {name} {rest:.0} {next_name}");
            }
            return format!("{whole:.0} {name}");
        }
    }
    format!("{secs:.0} s")
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

pub use crate::output::human_bytes;

#[cfg(test)]
mod eta_tests {
    use super::eta_text;

    #[test]
    fn the_eta_is_unknown_until_work_is_done_and_then_readable() {
        assert_eq!(eta_text(0, 0, 100, 12.0), "unknown (no step done in 12 s)");
        assert_eq!(eta_text(50, 0, 100, 30.0), "30 s");
        assert_eq!(eta_text(1, 0, 100, 60.0), "1 h 39 min");
        // A resumed run's restored units are not in the rate: 10 units in
        // 10 s here, 40 left.
        assert_eq!(eta_text(60, 50, 100, 10.0), "40 s");
        assert_eq!(eta_text(50, 50, 100, 3.0), "unknown (no step done in 3 s)");
        // One step of 10⁶ in a day: years, not "10 s".
        assert_eq!(eta_text(1, 0, 1_000_000, 86400.0), "2737 years");
    }
}
