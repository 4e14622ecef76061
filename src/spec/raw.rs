//! The shared tables exactly as written: serde types mirroring `[run]`,
//! `[parallel]` and the keys every state has, with spans kept on the values
//! that validation may need to point at. Nothing here checks meaning.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub name: Option<Spanned<String>>,
    pub seed: Option<Spanned<u64>>,
    pub output: Option<Spanned<String>>,
    pub replicates: Option<Spanned<usize>>,
    /// Time between checkpoints ("10m"; "off").
    pub checkpoint_every: Option<Spanned<String>>,
    /// Wall-time budget ("4h"): checkpoint and exit 75 before it is up.
    pub walltime: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParallel {
    pub threads: Option<Spanned<usize>>,
    /// Seconds a rank may stay silent before the job ends naming it.
    pub timeout: Option<Spanned<f64>>,
}
