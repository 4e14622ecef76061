//! `[transc]`: its keys, resolved with located errors.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::jobs::{Kind, StageContext};
use crate::spec::{SpecError, StateSpec};

/// `[transc]`, resolved (the registry's name for a stage's settings).
pub type Spec = TranscSpec;

/// The first-stage kinds `[transc]` follows: it resamples their chains (an
/// smc run gives the state probabilities from its evidences without it).
pub const FOLLOWS: &[Kind] = &[Kind::Ensemble, Kind::Chains];

/// `[transc]` as written.
/// `[transc]` in the JSON Schema.
pub type RawTable = RawTransc;

/// The trans-conceptual stage: once the first stage has sampled every
/// state, walkers move between the states to estimate each one's
/// probability.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTransc {
    /// How walkers move between states.
    #[schemars(extend("default" = "resample"))]
    #[schemars(with = "Option<Method>")]
    pub method: Option<Spanned<String>>,
    /// Independent walkers (product-space: the ensemble's walkers, even, at least 2 × (1 +
    /// every state's parameters)).
    #[schemars(extend("default" = DEFAULT_WALKERS), range(min = 2))]
    #[schemars(with = "Option<usize>")]
    pub walkers: Option<Spanned<usize>>,
    /// Steps of every walker.
    #[schemars(extend("default" = DEFAULT_STEPS), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub steps: Option<Spanned<usize>>,
    /// Steps of each walker left out of the state probabilities.
    #[schemars(extend("x-default" = "steps / 4"))]
    #[schemars(with = "Option<usize>")]
    pub burn: Option<Spanned<usize>>,
    /// Store every `thin`-th step.
    #[schemars(extend("default" = 1), range(min = 1))]
    #[schemars(with = "Option<usize>")]
    pub thin: Option<Spanned<usize>>,
    /// The pseudo-prior fitted to each state's first-stage samples.
    #[schemars(extend("x-default" = "`{ kind = \"gaussian\" }`"))]
    #[schemars(with = "Option<RawPseudoPrior>")]
    pub pseudo_prior: Option<Spanned<RawPseudoPrior>>,
    /// Between-state proposal weights, one row and column per state (rows normalised, diagonal
    /// ignored).
    #[schemars(extend("x-default" = "equal"))]
    #[schemars(with = "Option<Vec<Vec<f64>>>")]
    pub state_weights: Option<Spanned<Vec<Vec<f64>>>>,
    /// Prior probability of each state (normalised).
    #[schemars(extend("x-default" = "equal"))]
    #[schemars(with = "Option<Vec<f64>>")]
    pub state_priors: Option<Spanned<Vec<f64>>>,
    /// State-jump only: probability of a between-state move per step.
    #[schemars(extend("default" = 0.1), range(min = 0.0, max = 1.0))]
    #[schemars(with = "Option<f64>")]
    pub prob_state: Option<Spanned<f64>>,
    /// Which first-stage samples feed the pseudo-priors: "stage" (its burn-in and thinning) or
    /// "auto" (burn 2 max τ, thin min τ / 2).
    #[schemars(extend("default" = "stage"))]
    #[schemars(with = "Option<String>", extend("enum" = ["stage", "auto"]))]
    pub samples: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "pseudo_prior", description = "The pseudo-prior of each state: a density fitted to its first-stage samples.")]
pub struct RawPseudoPrior {
    /// "gaussian" (the samples' mean and covariance) or "gaussian-mixture" (fitted by EM).
    #[schemars(with = "String", extend("enum" = ["gaussian", "gaussian-mixture"]))]
    pub kind: Spanned<String>,
    /// Components of a gaussian-mixture.
    #[schemars(range(min = 1, max = 64))]
    #[schemars(with = "Option<usize>")]
    pub components: Option<Spanned<usize>>,
}

/// The trans-conceptual sampler of the second stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "transc.method", description = "How the trans-conceptual walkers move between states.")]
pub enum Method {
    /// Walkers move between (state, member) pairs of the stored samples.
    Resample,
    /// Between-state jumps drawn from the pseudo-priors, and random-walk
    /// Metropolis within a state.
    StateJump,
    /// The ensemble sampler on [k, m_1 … m_K].
    ProductSpace,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::Resample => "resample",
            Method::StateJump => "state-jump",
            Method::ProductSpace => "product-space",
        }
    }
}

/// `[transc]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscSpec {
    pub method: Method,
    /// Independent walkers (product-space: the ensemble's walkers).
    pub walkers: usize,
    pub steps: usize,
    /// Steps of each walker left out of the state probabilities.
    pub burn: usize,
    pub thin: usize,
    /// Pseudo-prior: a Gaussian mixture of this many components, fitted by
    /// EM (1: the Gaussian of the samples' mean and covariance).
    pub components: usize,
    /// Between-state proposal weights: rows normalised, diagonal zero.
    pub state_weights: Vec<Vec<f64>>,
    /// Prior probability of each state (normalised).
    pub state_priors: Vec<f64>,
    /// State-jump: probability of a between-state move.
    pub prob_state: f64,
    /// Burn-in and thinning of the first stage's samples from τ (burn 2·max
    /// τ, thin ½·min τ, as pyTransC's `auto_thin`) instead of the stage's.
    pub auto_samples: bool,
}

fn w_span(w: &Option<Spanned<Vec<Vec<f64>>>>) -> std::ops::Range<usize> {
    w.as_ref().map(Spanned::span).unwrap_or_default()
}

pub const DEFAULT_WALKERS: usize = 32;
pub const DEFAULT_STEPS: usize = 10_000;

pub(crate) fn resolve(cx: &StageContext<'_>) -> Result<TranscSpec, SpecError> {
    let r = cx.resolver;
    let spanned = cx.keys::<RawTransc>()?;
    let states: &[StateSpec] = cx.states;
    let replicates = cx.run.replicates;
    let t = spanned.get_ref();
    let k = states.len();
    if k < 2 {
        return Err(r.err(
            spanned.span(),
            "[transc] needs at least two [[states]] to choose between",
        ));
    }
    if replicates != 1 {
        return Err(r.err(
            spanned.span(),
            "[transc] works on one run of each state: leave run.replicates at 1",
        ));
    }
    let method = match &t.method {
        None => Method::Resample,
        Some(m) => match m.get_ref().as_str() {
            "resample" => Method::Resample,
            "state-jump" => Method::StateJump,
            "product-space" => Method::ProductSpace,
            other => {
                return Err(r.err(
                    m.span(),
                    format!(
                        "unknown transc.method `{other}`: expected \"resample\", \"state-jump\" \
                         or \"product-space\""
                    ),
                ))
            }
        },
    };
    let count = |v: &Option<Spanned<usize>>, key: &str, default: usize, min: usize| match v {
        Some(x) if *x.get_ref() < min => {
            Err(r.err(x.span(), format!("transc.{key} must be at least {min}")))
        }
        Some(x) => Ok(*x.get_ref()),
        None => Ok(default),
    };
    let dims: usize = states.iter().map(StateSpec::dim).sum();
    // Independent walkers: at least two, for the error across them.
    let min_walkers = match method {
        Method::ProductSpace => 2 * (dims + 1),
        _ => 2,
    };
    let walkers = count(
        &t.walkers,
        "walkers",
        DEFAULT_WALKERS.max(min_walkers),
        min_walkers,
    )?;
    if method == Method::ProductSpace && walkers % 2 == 1 {
        let span = t.walkers.as_ref().map_or(spanned.span(), Spanned::span);
        return Err(r.err(span, "transc.walkers must be even for product-space"));
    }
    let steps = count(&t.steps, "steps", DEFAULT_STEPS, 1)?;
    let thin = count(&t.thin, "thin", 1, 1)?;
    let burn = count(&t.burn, "burn", steps / 4, 0)?;
    if method == Method::ProductSpace && steps - burn.min(steps) < crate::jobs::transc::BATCHES {
        let span = t.steps.as_ref().map_or(spanned.span(), Spanned::span);
        return Err(r.err(
            span,
            format!(
                "transc: product-space needs at least {} steps after burn-in (its error is from \
                 batch means)",
                crate::jobs::transc::BATCHES
            ),
        ));
    }
    if burn + thin > steps {
        let span = t
            .burn
            .as_ref()
            .or(t.thin.as_ref())
            .map_or(spanned.span(), Spanned::span);
        return Err(r.err(
            span,
            format!("transc: burn ({burn}) + thin ({thin}) must be at most steps ({steps})"),
        ));
    }
    let components = match &t.pseudo_prior {
        None => 1,
        Some(p) => {
            let pp = p.get_ref();
            match pp.kind.get_ref().as_str() {
                "gaussian" => {
                    if let Some(c) = &pp.components {
                        return Err(r.err(
                            c.span(),
                            "`components` belongs to kind = \"gaussian-mixture\"",
                        ));
                    }
                    1
                }
                "gaussian-mixture" => match &pp.components {
                    Some(c) if (1..=64).contains(c.get_ref()) => *c.get_ref(),
                    Some(c) => return Err(r.err(c.span(), "components must be from 1 to 64")),
                    None => {
                        return Err(r.err(
                            p.span(),
                            "a gaussian-mixture pseudo-prior needs `components`",
                        ))
                    }
                },
                other => {
                    return Err(r.err(
                        pp.kind.span(),
                        format!(
                            "unknown pseudo_prior kind `{other}`: expected \"gaussian\" or \
                             \"gaussian-mixture\""
                        ),
                    ))
                }
            }
        }
    };
    // The fit needs two samples per component of every state: the first
    // stage's samples after its burn-in (its longest run, when it may stop
    // early; "auto" thins them further) must hold them.
    let fewest = first_stage_samples(cx.first)
        .into_iter()
        .zip(states)
        .min_by_key(|(n, _)| *n);
    if let Some((n, state)) = fewest.filter(|(n, _)| *n < 2 * components) {
        let span = t
            .pseudo_prior
            .as_ref()
            .map(|p| p.get_ref().components.as_ref().map_or(p.span(), Spanned::span))
            .unwrap_or_else(|| spanned.span());
        return Err(r.err(
            span,
            format!(
                "transc: a pseudo-prior of {components} component(s) needs {} first-stage samples \
                 of each state, and state `{}` keeps {n} after its burn-in (walkers × stored \
                 rows): fewer components, or a longer first stage",
                2 * components,
                state.name
            ),
        ));
    }
    let state_weights = match &t.state_weights {
        None => (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| if i == j { 0.0 } else { 1.0 / (k - 1) as f64 })
                    .collect()
            })
            .collect(),
        Some(w) => {
            let rows = w.get_ref();
            if rows.len() != k || rows.iter().any(|row| row.len() != k) {
                return Err(r.err(
                    w.span(),
                    format!(
                        "transc.state_weights must be {k} × {k} (one row and column per state)"
                    ),
                ));
            }
            let mut out = Vec::with_capacity(k);
            for (i, row) in rows.iter().enumerate() {
                if row.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    return Err(r.err(
                        w.span(),
                        format!("transc.state_weights row {i}: weights must be finite and ≥ 0"),
                    ));
                }
                let total: f64 = row
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, v)| v)
                    .sum();
                if total <= 0.0 {
                    return Err(r.err(
                        w.span(),
                        format!(
                            "transc.state_weights row {i}: no weight on any other state (the \
                             diagonal is ignored)"
                        ),
                    ));
                }
                out.push(
                    row.iter()
                        .enumerate()
                        .map(|(j, v)| if j == i { 0.0 } else { v / total })
                        .collect::<Vec<f64>>(),
                );
            }
            // A move k → k′ needs its reverse for detailed balance.
            for (i, row) in out.iter().enumerate() {
                for (j, w) in row.iter().enumerate() {
                    if (*w > 0.0) != (out[j][i] > 0.0) {
                        return Err(r.err(
                            w_span(&t.state_weights),
                            format!(
                                "transc.state_weights: [{i}][{j}] and [{j}][{i}] must both be \
                                 positive or both zero (every jump needs its reverse)"
                            ),
                        ));
                    }
                }
            }
            // Every state reachable from every other (else the walkers stay
            // where they started).
            let mut reached = vec![false; k];
            let mut todo = vec![0];
            reached[0] = true;
            while let Some(i) = todo.pop() {
                for (j, w) in out[i].iter().enumerate() {
                    if *w > 0.0 && !reached[j] {
                        reached[j] = true;
                        todo.push(j);
                    }
                }
            }
            if let Some(j) = reached.iter().position(|r| !r) {
                return Err(r.err(
                    w_span(&t.state_weights),
                    format!(
                        "transc.state_weights: state {j} cannot be reached from state 0: every \
                         state must be reachable by jumps with positive weight"
                    ),
                ));
            }
            out
        }
    };
    let state_priors = match &t.state_priors {
        None => vec![1.0 / k as f64; k],
        Some(p) => {
            let v = p.get_ref();
            if v.len() != k || v.iter().any(|x| !x.is_finite() || *x <= 0.0) {
                return Err(r.err(
                    p.span(),
                    format!("transc.state_priors must list {k} positive numbers, one per state"),
                ));
            }
            // Scaled by the largest first: a sum of large priors (1e308
            // each) must not overflow to ∞ and turn them all into 0.
            let largest = v.iter().copied().fold(0.0, f64::max);
            let total: f64 = v.iter().map(|x| x / largest).sum();
            let priors: Vec<f64> = v.iter().map(|x| x / largest / total).collect();
            if priors.iter().any(|p| p.is_nan() || *p < 1e-300) {
                return Err(r.err(
                    p.span(),
                    "transc.state_priors: the smallest is too small beside the largest (their \
                     ratio must be above 1e-300)",
                ));
            }
            priors
        }
    };
    let prob_state = match &t.prob_state {
        None => 0.1,
        Some(p) if p.get_ref().is_finite() && *p.get_ref() > 0.0 && *p.get_ref() <= 1.0 => {
            *p.get_ref()
        }
        Some(p) => return Err(r.err(p.span(), "transc.prob_state must be in (0, 1]")),
    };
    if t.prob_state.is_some() && method != Method::StateJump {
        let span = t.prob_state.as_ref().map(Spanned::span).unwrap_or_default();
        return Err(r.err(span, "transc.prob_state belongs to method = \"state-jump\""));
    }
    let auto_samples = match &t.samples {
        None => false,
        Some(s) => match s.get_ref().as_str() {
            "stage" => false,
            "auto" => true,
            other => {
                return Err(r.err(
                    s.span(),
                    format!("unknown transc.samples `{other}`: expected \"stage\" or \"auto\""),
                ))
            }
        },
    };
    Ok(TranscSpec {
        method,
        walkers,
        steps,
        burn,
        thin,
        components,
        state_weights,
        state_priors,
        prob_state,
        auto_samples,
    })
}

/// What a rank holds for the trans-conceptual stage at most: rank 0 reads a
/// state's whole first-stage chain and log-probabilities to fit its
/// pseudo-prior (and keeps the samples used); the walkers' counts of visits
/// and moves.
pub fn memory(t: &TranscSpec, first: &crate::jobs::SamplerSpec, states: &[StateSpec]) -> crate::jobs::Memory {
    use crate::jobs::SamplerSpec;
    let rows_lanes: Vec<(f64, f64)> = match first {
        SamplerSpec::Ensemble(e) => e
            .states
            .iter()
            .map(|s| (s.stored_rows() as f64, s.walkers as f64))
            .collect(),
        SamplerSpec::Chains(c) => c
            .states
            .iter()
            .map(|s| ((s.steps / s.thin) as f64, c.chains as f64))
            .collect(),
        _ => Vec::new(),
    };
    let fit = rows_lanes
        .iter()
        .zip(states)
        .map(|((rows, lanes), st)| 2.0 * rows * lanes * (st.dim() as f64 + 1.0))
        .fold(0.0, f64::max);
    let k = states.len() as f64;
    let counts = t.walkers as f64 * k * (super::BATCHES as f64 + 4.0);
    crate::jobs::Memory::values(fit + counts, "transc.walkers and the first stage's lengths")
}

/// Per state, the first stage's samples after its burn-in: walkers (or
/// chains) × stored rows past the burn-in, for a run of its full length.
fn first_stage_samples(first: &crate::jobs::SamplerSpec) -> Vec<usize> {
    use crate::jobs::SamplerSpec;
    match first {
        SamplerSpec::Ensemble(e) => e
            .states
            .iter()
            .map(|s| s.walkers * s.stored_rows().saturating_sub(s.burn_rows()))
            .collect(),
        SamplerSpec::Chains(c) => c
            .states
            .iter()
            .map(|s| c.chains * (s.steps / s.thin).saturating_sub(s.burn_rows()))
            .collect(),
        // `resolve` refuses [transc] after the kinds not in `FOLLOWS`.
        _ => Vec::new(),
    }
}

/// A resolved `[transc]` for unit tests.
#[cfg(test)]
pub(crate) fn tests_spec() -> TranscSpec {
    TranscSpec {
        method: Method::Resample,
        walkers: 4,
        steps: 100,
        burn: 25,
        thin: 1,
        components: 1,
        state_weights: vec![vec![0.0, 1.0], vec![1.0, 0.0]],
        state_priors: vec![0.5, 0.5],
        prob_state: 0.1,
        auto_samples: false,
    }
}
