//! The shared tables exactly as written: serde types mirroring `[run]`,
//! `[parallel]` and the keys every state has, with spans kept on the values
//! that validation may need to point at. Nothing here checks meaning.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub name: Option<Spanned<String>>,
    pub seed: Option<Spanned<Seed>>,
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

/// A seed: any u64, written as an integer or (as `--set` passes one above
/// 2⁶³ − 1, which TOML editors cannot hold) as a string of its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub u64);

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Digits;
        impl serde::de::Visitor<'_> for Digits {
            type Value = Seed;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a seed from 0 to 18446744073709551615 (an integer, or its digits as a string)",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seed, E> {
                Ok(Seed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seed, E> {
                u64::try_from(v)
                    .map(Seed)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seed, E> {
                let digits = v.trim();
                match digits.parse::<u64>() {
                    Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => Ok(Seed(n)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Digits)
    }
}
