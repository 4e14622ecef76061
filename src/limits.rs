//! Bounds checked in several layers (the spec, the command line, the
//! plugin loader, the thread layout), kept in one place at the bottom, and
//! the clock the timeouts of ranks and evaluations are measured on.

/// The most threads a rank may run: `--threads` and `[parallel] threads`
/// are refused above it, and plugins keep one context per thread below it.
pub const MAX_THREADS: usize = 1024;

/// The longest state or parameter name, in bytes: names are stored as
/// fixed-length strings of this width.
pub const NAME_MAX: usize = 64;

/// The default of `[parallel] timeout`: long enough for a loaded node or a
/// slow filesystem, short enough not to waste an allocation.
pub const RANK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The longest duration a spec, the command line or the environment may
/// give (a wall time, a checkpoint period): a hundred years, far beyond any
/// allocation, and far below what `Duration` and `Instant` can hold.
pub const MAX_DURATION_SECS: f64 = 100.0 * 365.25 * 86_400.0;

/// The largest `cost_us` (a busy-wait per evaluation, for benchmarks): one
/// hour per evaluation, far beyond any benchmark, and far below what would
/// make a run (or `check`'s estimate of it) never end.
pub const MAX_COST_US: u64 = 3_600_000_000;

/// The largest run spec read, in bytes: far above any spec (its data live in
/// files), and a bound on what `check /dev/zero`-like mistakes can cost.
pub const MAX_SPEC_BYTES: u64 = 64 << 20;

/// The memory this process may use, in bytes: the machine's (`MemTotal`),
/// or its control group's limit when lower (a batch job's allocation);
/// `None` where neither can be read.
pub fn machine_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    let group = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok())
    .min();
    match (total, group) {
        (Some(t), Some(g)) => Some(t.min(g)),
        (t, g) => t.or(g),
    }
}

/// Milliseconds on the process's monotonic clock, from its first call, at
/// least 1 (so that 0 can mean "not set" in an atomic): the clock the
/// watchers of ranks and evaluations compare with their timeouts.
pub fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}
