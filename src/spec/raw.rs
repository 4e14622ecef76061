//! The shared tables exactly as written: serde types mirroring `[run]`,
//! `[parallel]`, `[python]` and the keys every state has, with spans kept on the values
//! that validation may need to point at. Nothing here checks meaning.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// The run's name: the output is `<name>.h5` unless `output` says otherwise.
    #[schemars(extend("x-default" = "the spec file's stem"))]
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// The seed every random stream is derived from: the same spec and seed give bit-identical
    /// results on any layout.
    #[schemars(extend("default" = 0))]
    #[schemars(with = "Option<Seed>")]
    pub seed: Option<Spanned<Seed>>,
    /// The output file, relative to the working directory (`-o` overrides it).
    #[schemars(extend("x-default" = "`<name>.h5`"))]
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
    /// Independent runs of every state, each with its own streams (stored under `/replicates`).
    #[schemars(extend("default" = 1), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub replicates: Option<Spanned<usize>>,
    /// Time between checkpoints, as "90s", "10m", "4h 30m", or "off".
    #[schemars(extend("default" = "10m"))]
    #[schemars(with = "Option<String>")]
    pub checkpoint_every: Option<Spanned<String>>,
    /// Wall-time budget ("4h"): checkpoint and exit 75 before it is up; `--walltime` and
    /// SLURM's end time also set it.
    #[schemars(with = "Option<String>")]
    pub walltime: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParallel {
    /// Threads per rank; 0 decides (SLURM_CPUS_PER_TASK, else the cores the rank may use).
    #[schemars(extend("default" = 0), range(max = crate::limits::MAX_THREADS))]
    #[schemars(with = "Option<usize>")]
    pub threads: Option<Spanned<usize>>,
    /// Seconds a rank may stay silent before the job ends, naming it.
    #[schemars(extend("default" = crate::limits::RANK_TIMEOUT.as_secs()), range(min = 1.0, max = 1e7))]
    #[schemars(with = "Option<f64>")]
    pub timeout: Option<Spanned<f64>>,
    /// Seconds one plugin evaluation may run before the job fails, naming the state and parameters (default 10 × timeout).
    #[schemars(range(min = 1.0, max = 1e8))]
    #[schemars(with = "Option<f64>")]
    pub evaluation_timeout: Option<Spanned<f64>>,
}

/// `[python]`: the Python environment of the run's Python models and processes.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPython {
    /// The Python interpreter whose environment the models import from (a venv's or conda
    /// env's `bin/python`; relative to the spec): sampo asks it for its import path once at
    /// start-up and adds its packages, instead of using VIRTUAL_ENV or CONDA_PREFIX. It must
    /// be of the Python version sampo embeds.
    #[schemars(extend("x-default" = "VIRTUAL_ENV, else CONDA_PREFIX"))]
    #[schemars(with = "Option<String>")]
    pub executable: Option<Spanned<String>>,
}

/// A seed: any u64, written as an integer or (as `--set` passes one above
/// 2⁶³ − 1, which TOML editors cannot hold) as a string of its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub u64);

impl schemars::JsonSchema for Seed {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "seed".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A seed from 0 to 18446744073709551615: an integer, or its digits as a string.",
            "anyOf": [
                { "type": "integer", "minimum": 0, "maximum": u64::MAX },
                { "type": "string", "pattern": "^[0-9]{1,20}$" }
            ]
        })
    }
}

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
