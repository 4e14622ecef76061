//! The `[sampler]` keys of `kind = "smc"`: `particles`, `effective`,
//! `total`, `groups` and `[sampler.mutation]`, resolved with located errors. The
//! keys of the Markov-chain kinds are rejected where they are written.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::jobs::SamplerContext;
use crate::spec::{MutationKind, SpecError};

pub const DEFAULT_PARTICLES: usize = 1000;
/// Independent groups the particles are split into: their spread is the
/// error of log Z (7 degrees of freedom).
pub const DEFAULT_GROUPS: usize = 8;
/// Particles per group at least.
pub const MIN_GROUP: usize = 4;
/// Steps per iteration at most, per parameter (pocoMC's default bound).
pub const DEFAULT_MAX_STEPS: usize = 10;
pub const MAX_PARTICLES: usize = 10_000_000;

/// The resolved settings, shared by every state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Particles moved at each temperature.
    pub particles: usize,
    /// The effective sample size over every particle kept so far that
    /// fixes the next temperature (default 2 × particles).
    pub effective: f64,
    /// Stop once β = 1 and the effective sample size at β = 1 reaches it;
    /// also the size of the equally weighted posterior draw.
    pub total: usize,
    /// Independent runs the particles are split into (`particles`,
    /// `effective` and `total` are their sums).
    pub groups: usize,
    pub mutation: Mutation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    pub kind: MutationKind,
    /// Steps per iteration at most, per parameter.
    pub max_steps: usize,
}

pub(crate) fn resolve(cx: &SamplerContext<'_>) -> Result<Spec, SpecError> {
    let r = cx.resolver;
    let sm = cx.sampler();
    let span = |f: fn(&crate::spec::RawSampler) -> Option<std::ops::Range<usize>>| sm.and_then(f);
    cx.reject_keys(
        "smc",
        &[
            ("walkers", span(|s| s.walkers.as_ref().map(Spanned::span))),
            ("moves", span(|s| s.moves.as_ref().map(Spanned::span))),
            ("chains", span(|s| s.chains.as_ref().map(Spanned::span))),
            ("proposal", span(|s| s.proposal.as_ref().map(Spanned::span))),
            ("steps", span(|s| s.steps.as_ref().map(Spanned::span))),
            ("burn", span(|s| s.burn.as_ref().map(Spanned::span))),
            ("thin", span(|s| s.thin.as_ref().map(Spanned::span))),
            ("stop", span(|s| s.stop.as_ref().map(Spanned::span))),
            ("init", span(|s| s.init.as_ref().map(Spanned::span))),
        ],
    )?;
    for st in cx.raw_states {
        let st = st.get_ref();
        let own = [
            ("walkers", st.walkers.as_ref().map(Spanned::span)),
            ("steps", st.steps.as_ref().map(Spanned::span)),
            ("burn", st.burn.as_ref().map(Spanned::span)),
            ("init", st.init.as_ref().map(Spanned::span)),
        ];
        if let Some((key, span)) = own.iter().find_map(|(k, s)| s.clone().map(|s| (k, s))) {
            return Err(r.err(
                span,
                format!(
                    "state `{}`: `{key}` is not used by kind = \"smc\" (particles start from \
                     the prior; set [sampler] particles, effective, total)",
                    st.name.get_ref()
                ),
            ));
        }
    }
    if let (n, Some(span)) = &cx.replicates {
        if *n > 1 {
            return Err(r.err(
                span.clone(),
                "run.replicates is not supported by kind = \"smc\": run the spec with other \
                 seeds instead",
            ));
        }
    }
    let particles = match sm.and_then(|s| s.particles.as_ref()) {
        Some(p) if *p.get_ref() < 4 || *p.get_ref() > MAX_PARTICLES => {
            return Err(r.err(
                p.span(),
                format!("particles must be between 4 and {MAX_PARTICLES}"),
            ))
        }
        Some(p) => *p.get_ref(),
        None => DEFAULT_PARTICLES,
    };
    let effective = match sm.and_then(|s| s.effective.as_ref()) {
        Some(e) if !(e.get_ref().is_finite() && *e.get_ref() >= 1.0) => {
            return Err(r.err(e.span(), "effective must be a finite number of at least 1"))
        }
        Some(e) => *e.get_ref(),
        None => 2.0 * particles as f64,
    };
    let total = match sm.and_then(|s| s.total.as_ref()) {
        Some(t) if *t.get_ref() == 0 || *t.get_ref() > MAX_PARTICLES => {
            return Err(r.err(
                t.span(),
                format!("total must be between 1 and {MAX_PARTICLES}"),
            ))
        }
        Some(t) => *t.get_ref(),
        None => particles,
    };
    let groups = match sm.and_then(|s| s.groups.as_ref()) {
        Some(g) if *g.get_ref() == 0 || *g.get_ref() * MIN_GROUP > particles => {
            return Err(r.err(
                g.span(),
                format!(
                    "groups must be between 1 and particles / {MIN_GROUP} = {} (each group \
                     needs {MIN_GROUP} particles at least)",
                    particles / MIN_GROUP
                ),
            ))
        }
        Some(g) => *g.get_ref(),
        None => DEFAULT_GROUPS.min(particles / MIN_GROUP),
    };
    let mut mutation = Mutation {
        kind: MutationKind::Pcn,
        max_steps: DEFAULT_MAX_STEPS,
    };
    if let Some(m) = sm.and_then(|s| s.mutation.as_ref()) {
        let raw = m.get_ref();
        if let Some(k) = &raw.kind {
            mutation.kind = *k.get_ref();
        }
        if let Some(s) = &raw.max_steps {
            if *s.get_ref() == 0 || *s.get_ref() > 10_000 {
                return Err(r.err(s.span(), "mutation.max_steps must be between 1 and 10000"));
            }
            mutation.max_steps = *s.get_ref();
        }
    }
    Ok(Spec {
        particles,
        effective,
        total,
        groups,
        mutation,
    })
}
