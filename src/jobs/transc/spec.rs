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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransc {
    pub method: Option<Spanned<String>>,
    pub walkers: Option<Spanned<usize>>,
    pub steps: Option<Spanned<usize>>,
    pub burn: Option<Spanned<usize>>,
    pub thin: Option<Spanned<usize>>,
    pub pseudo_prior: Option<Spanned<RawPseudoPrior>>,
    pub state_weights: Option<Spanned<Vec<Vec<f64>>>>,
    pub state_priors: Option<Spanned<Vec<f64>>>,
    pub prob_state: Option<Spanned<f64>>,
    /// Which first-stage samples feed the pseudo-priors: "stage" (its
    /// burn-in and thinning) or "auto" (from τ).
    pub samples: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPseudoPrior {
    pub kind: Spanned<String>,
    pub components: Option<Spanned<usize>>,
}

/// The trans-conceptual sampler of the second stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
            let total: f64 = v.iter().sum();
            v.iter().map(|x| x / total).collect()
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
