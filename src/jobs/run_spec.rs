//! The resolved run spec: the shared parts (`spec`), the kind's `[sampler]`
//! and states, and an optional second stage, joined through the registry.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{resolve_kind, resolve_stage, Kind, SamplerContext, SamplerSpec, StageContext};
use super::{Memory, StageSpec, STAGE_TABLES};
use crate::model::{PluginSpec, PosteriorSpec};
use crate::spec::{Resolver, SpecError, SpecSource, StateSpec};

/// A validated run spec with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub seed: u64,
    /// The kind of work and its resolved settings (`[sampler]`).
    pub sampler: SamplerSpec,
    pub output: PathBuf,
    pub replicates: usize,
    /// Rayon threads per rank; 0 = decide from SLURM or the machine.
    pub threads: usize,
    /// Seconds a worker rank may stay silent (`[parallel] timeout`).
    pub rank_timeout: f64,
    /// Seconds one plugin evaluation may run (`[parallel] evaluation_timeout`).
    pub evaluation_timeout: f64,
    /// Seconds between checkpoints (`[run] checkpoint_every`; `None`: off).
    pub checkpoint_every: Option<f64>,
    /// Wall-time budget in seconds (`[run] walltime`).
    pub walltime: Option<f64>,
    /// The interpreter whose environment Python models import from
    /// (`[python] executable`); `None`: VIRTUAL_ENV, else CONDA_PREFIX.
    #[serde(default)]
    pub python_executable: Option<PathBuf>,
    /// What every state has (name, parameters); the rest of each state is
    /// in its kind's `sampler`.
    pub states: Vec<StateSpec>,
    /// A second stage over the first stage's results (`[transc]`).
    #[serde(default)]
    pub second_stage: Option<StageSpec>,
    /// The spec file, as given, and its text (recorded in the output), with
    /// the `--set` overrides applied; the overrides themselves.
    pub path: PathBuf,
    /// Left out of the resolved spec a file records (it has `spec`).
    #[serde(default)]
    pub text: String,
    pub overrides: Vec<String>,
}

impl RunSpec {
    /// Reads, parses and validates a spec file (`-`: standard input).
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        Self::from_source(&SpecSource::read(path)?)
    }

    /// As [`Self::from_file`], with `--set key=value` overrides applied to
    /// the text first (and recorded in `overrides`).
    pub fn from_file_with(path: &Path, sets: &[String]) -> anyhow::Result<Self> {
        let source = SpecSource::read(path)?.with_overrides(sets)?;
        let mut spec = Self::from_source(&source)?;
        spec.overrides = sets.to_vec();
        Ok(spec)
    }

    /// Parses and validates spec text. Relative data paths are taken from
    /// the directory of `source.path`.
    pub fn from_source(source: &SpecSource) -> Result<Self, SpecError> {
        let resolver = Resolver { source };
        let parts = resolver.parts(STAGE_TABLES)?;
        // The plugins initialised while resolving the states (and later
        // in this process) get this spec's rank timeout to return.
        crate::model::plugin::limit_init(std::time::Duration::from_secs_f64(
            parts.run.rank_timeout,
        ));
        // A model evaluated while checking (the start points) that never
        // returns ends the check with exit 2, naming the call.
        crate::model::eval_watch::limit(std::time::Duration::from_secs_f64(
            parts.run.evaluation_timeout,
        ));
        let _validating = crate::model::eval_watch::validating();
        // The environment is known before any Python file is imported.
        if let Some((exe, span)) = &parts.run.python_executable {
            crate::model::python::use_interpreter(exe)
                .map_err(|e| resolver.err(span.clone(), format!("python.executable: {e}")))?;
        }
        let sampler_span = parts.sampler.as_ref().map_or(0..0, |t| t.span());
        let (kind, sampler) = match parts.sampler {
            None => (Kind::Ensemble, None),
            Some(mut table) => {
                let kind = table
                    .take_as::<Kind>("kind", source)?
                    .map_or(Kind::Ensemble, |k| k.into_inner());
                table.title = format!("[sampler] kind = \"{}\"", kind.name());
                (kind, Some(table))
            }
        };
        let cx = SamplerContext {
            resolver: &resolver,
            kind,
            sampler,
            states: &parts.states,
            run: &parts.run,
        };
        let (sampler, states) = resolve_kind(&cx)?;
        refuse_memory(&resolver, sampler.spec().memory(&states), sampler_span)?;
        let mut second_stage = None;
        for (name, table) in parts.stages {
            let span = table.span();
            let cx = StageContext {
                resolver: &resolver,
                table,
                first: &sampler,
                states: &states,
                run: &parts.run,
            };
            let stage = resolve_stage(&name, &cx)?;
            refuse_memory(&resolver, stage.memory(&sampler, &states), span)?;
            second_stage = Some(stage);
        }
        let run = parts.run;
        Ok(RunSpec {
            name: run.name,
            seed: run.seed,
            sampler,
            output: run.output,
            replicates: run.replicates,
            threads: run.threads,
            rank_timeout: run.rank_timeout,
            evaluation_timeout: run.evaluation_timeout,
            checkpoint_every: run.checkpoint_every,
            walltime: run.walltime,
            python_executable: run.python_executable.map(|(exe, _)| exe),
            states,
            second_stage,
            path: source.path.clone(),
            text: source.text.clone(),
            overrides: Vec::new(),
        })
    }

    /// The resolved spec as the output file records it (without the text,
    /// which it records as written).
    pub fn resolved_json(&self) -> serde_json::Value {
        let mut resolved = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = resolved.as_object_mut() {
            map.remove("text");
        }
        resolved
    }

    /// Each state's posterior, when the kind samples one.
    pub fn posteriors(&self) -> Option<&[PosteriorSpec]> {
        self.sampler.spec().posteriors()
    }

    /// The posterior of state `s`, for the kinds that sample one.
    pub fn posterior(&self, s: usize) -> &PosteriorSpec {
        &self
            .posteriors()
            .expect("only a kind that samples a posterior asks for one")[s]
    }

    /// The run's plugin models, by state name.
    pub fn plugins(&self) -> Vec<(String, PluginSpec)> {
        self.sampler.spec().plugins(&self.states)
    }

    /// The states whose model is in Python (one thread per rank).
    pub fn python_states(&self) -> Vec<String> {
        self.sampler.spec().python_states(&self.states)
    }

    /// Loads the run's plugin models in this process (see
    /// [`KindSpec::prepare_plugins`]).
    pub fn prepare_plugins(&self) -> Result<(), String> {
        if let Some(exe) = &self.python_executable {
            crate::model::python::use_interpreter(exe)
                .map_err(|e| format!("python.executable: {e}"))?;
        }
        self.sampler.spec().prepare_plugins(&self.states)
    }
}

/// Refuses a stage whose work needs more memory than this machine has (a
/// spec error, located at its table): found by `check`, not by an
/// allocation that aborts the run.
fn refuse_memory(
    resolver: &Resolver<'_>,
    need: Memory,
    span: std::ops::Range<usize>,
) -> Result<(), SpecError> {
    let Some(machine) = crate::limits::machine_memory() else {
        return Ok(());
    };
    if need.bytes <= machine as f64 {
        return Ok(());
    }
    let human = |b: f64| {
        if b < 1024f64.powi(5) {
            crate::output::human_bytes(b)
        } else {
            format!("{b:.1e} bytes")
        }
    };
    Err(resolver.err(
        span,
        format!(
            "this work needs about {} of memory per rank, more than this machine's {}: lower \
             {}",
            human(need.bytes),
            human(machine as f64),
            need.keys
        ),
    ))
}
