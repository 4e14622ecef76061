//! Bounds checked in several layers (the spec, the command line, the
//! plugin loader, the thread layout), kept in one place at the bottom.

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

/// The largest run spec read, in bytes: far above any spec (its data live in
/// files), and a bound on what `check /dev/zero`-like mistakes can cost.
pub const MAX_SPEC_BYTES: u64 = 64 << 20;
