//! One adaptive-Metropolis chain: the algorithm of the `chains` kind, with no
//! I/O, MPI or threads.
//!
//! The proposal is a Gaussian random walk y = x + √λ L z, z ~ N(0, I). Until
//! enough history exists L Lᵀ = C0; then L Lᵀ = s_d (Σ + ε D) (Haario,
//! Saksman & Tamminen 2001): s_d = 2.38²/d, Σ the sample covariance of the
//! chain's own history (a Welford running estimate, O(d²) per iteration, no
//! history kept), D the prior variances and ε a tiny floor. λ is a global
//! scale driven toward a target acceptance rate by Robbins–Monro steps
//! (Andrieu & Thoms 2008, algorithm 4). Both adapt during burn-in only
//! (iterations 1..=burn) and are frozen after it, so the kept samples come
//! from one fixed, reversible Metropolis kernel.
//!
//! Burn-in is cut into windows, as Stan's warm-up is. The first 90% are
//! covariance windows of doubling length t0, 2t0, 4t0, …, the last one
//! stretched to end at 90%: Σ is estimated afresh in each window and becomes
//! the proposal's at its end (one Cholesky factorisation per window). The
//! last 10% adapt λ alone, so that the frozen λ belongs to the frozen Σ.
//! Why windows rather than Haario's single estimate over the whole history:
//! that estimate keeps the way in from the start with weight (its
//! length)/t, and from a start in the tails of a wide prior the transient
//! dominates Σ for most of a burn-in of a few thousand iterations; the
//! proposal gets too wide to accept anything and a chain frozen that way
//! stays stuck. Seen in testing on the 4-D Gaussian of the tests (4 chains
//! started from draws of the uniform prior, up to ~40 posterior sds out,
//! burn-in 2000, C0 = the true sds, no λ): with a whole-history estimate,
//! even restarted once at half of burn-in, an ESS of ~50 of 80 000 draws;
//! with windows ~1800 (~5200 with λ). The transient only spoils the short
//! early windows.
//!
//! A [`Chain`] is plain serde data (position, log-posterior, random stream,
//! adaptation state, counters): it can be paused after any step, sent
//! elsewhere and resumed bit for bit. Every float in it is finite, so any
//! serde format (JSON included) carries it.

use nalgebra::{Cholesky, DMatrix, DMatrixView, DVectorView, DVectorViewMut};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::model::{EvalError, Posterior};
use crate::seed::Stream;

/// Robbins–Monro gain of the global scale at the k-th iteration of a
/// window: k^−0.6. Andrieu & Thoms require Σγ = ∞ and Σγ² < ∞, i.e. an
/// exponent in (½, 1]; 0.6 keeps the gain large for long (over a window of
/// 200 iterations ln λ can still move by ~20) while its noise dies out.
const GAIN_EXPONENT: f64 = 0.6;

/// Bound on |ln λ|: the proposal sd may grow or shrink by e²⁰ ≈ 5·10⁸,
/// far beyond any sensible correction, while λ stays finite.
const MAX_LOG_SCALE: f64 = 40.0;

/// Jitters tried, as fractions of the prior variances, when a covariance
/// does not factorise: 10⁻¹⁰, 10⁻⁹, …, 1.
const JITTERS: i32 = 11;

/// Settings of the chains of one state. Fields left out of a serialised
/// form take their defaults; `None` means "derived from the dimension or
/// the prior", as documented per field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetropolisSettings {
    /// Iterations 1..=burn adapt the proposal; it is frozen after them.
    pub burn: usize,
    /// Per-parameter sd of the initial proposal, C0 = diag(sd²). Default:
    /// 0.1 × the prior's sd ([`crate::model::Prior::scales`]): a tenth of
    /// the prior's width still moves in a posterior much narrower than the
    /// prior, and λ shrinks or grows it by orders of magnitude within the
    /// first window if it is far off.
    pub initial_sd: Option<Vec<f64>>,
    /// Haario's t0: the length of the first window (proposal C0), and the
    /// fewest samples a window's Σ is made from. Default max(2d, 100): a
    /// full-rank estimate, and enough samples for it not to be mostly noise
    /// in low dimension.
    pub adapt_after: Option<usize>,
    /// Target acceptance rate of the global scale λ; `None` keeps λ = 1
    /// (plain AM). 0.234 is optimal for random-walk Metropolis in many
    /// dimensions (Roberts, Gelman & Gilks 1997), and s_d is the scale that
    /// attains it on Gaussian targets, so λ stays near 1 there. It is on by
    /// default because plain AM recovers badly from a C0 far too wide: a
    /// chain that never accepts has no history to adapt to. In testing (the
    /// tests' 4-D Gaussian, C0 = 100 × the true sds, starts near the mode,
    /// 20 runs of 4 chains) 5 runs missed a mean by more than 5 standard
    /// errors without λ (smallest ESS 4), none with it (smallest ESS
    /// ~4400). On a funnel it helps less than hoped: Σ and λ are global,
    /// the neck needs smaller steps than the mouth, and the standard errors
    /// are about as well calibrated either way.
    pub target_acceptance: Option<f64>,
    /// ε: the floor added to the diagonal of Σ, as a fraction of each
    /// parameter's prior variance, so that a window in which a parameter
    /// did not move still gives a positive-definite covariance. 10⁻¹⁰ (a
    /// floor sd of 10⁻⁵ prior sds) leaves any posterior less than 10⁵ times
    /// narrower than its prior untouched; being relative per parameter, it
    /// does not mix units. (Degenerate windows are handled by shrinkage,
    /// see `Chain::adapt`; this is only numerical safety.)
    pub floor: f64,
}

impl Default for MetropolisSettings {
    fn default() -> Self {
        Self {
            burn: 1000,
            initial_sd: None,
            adapt_after: None,
            target_acceptance: Some(0.234),
            floor: 1e-10,
        }
    }
}

impl MetropolisSettings {
    /// Haario's t0 for dimension `d` (see the field).
    pub fn adapt_after(&self, d: usize) -> usize {
        self.adapt_after.unwrap_or((2 * d).max(100))
    }

    /// The last iteration of the covariance windows: 90% of burn-in; the
    /// rest adapts the global scale alone (see the module's documentation).
    pub fn covariance_end(&self) -> usize {
        self.burn - self.burn / 10
    }

    /// Checks the settings against the dimension `d`.
    pub fn check(&self, d: usize) -> Result<(), ChainError> {
        let invalid = |field: String, message: &str| {
            Err(ChainError::Invalid {
                field,
                message: message.into(),
            })
        };
        if let Some(sd) = &self.initial_sd {
            if sd.len() != d {
                return invalid(
                    "initial_sd".into(),
                    &format!("has {} entries for {d} parameters", sd.len()),
                );
            }
            if let Some(i) = sd.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                return invalid(format!("initial_sd[{i}]"), "must be positive and finite");
            }
        }
        if let Some(a) = self.target_acceptance {
            if !(a > 0.0 && a < 1.0) {
                return invalid("target_acceptance".into(), "must be in (0, 1)");
            }
        }
        if !(self.floor.is_finite() && self.floor >= 0.0) {
            return invalid("floor".into(), "must be finite and ≥ 0");
        }
        if self.adapt_after.is_some_and(|t| t < 2) {
            return invalid("adapt_after".into(), "must be at least 2");
        }
        Ok(())
    }
}

/// Why a chain cannot start or continue. The chain does not know its own
/// identity (state, chain index, seed): the caller adds it.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("evaluation failed at parameters {params:?}: {cause}")]
    Evaluation { params: Vec<f64>, cause: EvalError },
    #[error(
        "the start {params:?} has log-probability −∞ (zero prior or likelihood, or NaN); \
         choose a start inside the posterior's support"
    )]
    NoFiniteStart { params: Vec<f64> },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

/// Running mean and sum of squared deviations (Welford) of the positions
/// since the estimate was last restarted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct History {
    count: u64,
    mean: Vec<f64>,
    /// Σ (x − mean)(x − mean)ᵀ, d × d column-major; only the lower triangle
    /// (row ≥ column) is kept up to date, so that it is exactly symmetric.
    m2: Vec<f64>,
}

impl History {
    fn new(d: usize) -> Self {
        Self {
            count: 0,
            mean: vec![0.0; d],
            m2: vec![0.0; d * d],
        }
    }

    fn clear(&mut self) {
        self.count = 0;
        self.mean.fill(0.0);
        self.m2.fill(0.0);
    }

    /// Adds x: O(d²), nothing of the history kept.
    fn push(&mut self, x: &[f64], delta: &mut [f64]) {
        let d = x.len();
        self.count += 1;
        let n = self.count as f64;
        for ((dl, m), xi) in delta.iter_mut().zip(&mut self.mean).zip(x) {
            *dl = xi - *m;
            *m += *dl / n;
        }
        // M2 += δ (x − mean_new)ᵀ, with x − mean_new = δ (n − 1)/n.
        let w = (n - 1.0) / n;
        for (j, column) in self.m2.chunks_mut(d).enumerate() {
            let dj = delta[j] * w;
            for (m, di) in column[j..].iter_mut().zip(&delta[j..]) {
                *m += di * dj;
            }
        }
    }

    /// s_d (Σ + ε D), with Σ = M2/(count − 1) its off-diagonal entries
    /// multiplied by `keep` (shrinkage toward its diagonal) and `floor` the
    /// diagonal ε D.
    fn proposal_covariance(&self, keep: f64, floor: &[f64]) -> DMatrix<f64> {
        let d = self.mean.len();
        let s_d = 2.38 * 2.38 / d as f64;
        let n1 = (self.count.max(2) - 1) as f64;
        DMatrix::from_fn(d, d, |i, j| {
            let (r, c) = if i >= j { (i, j) } else { (j, i) };
            let cov = self.m2[r + c * d] / n1;
            s_d * if i == j { cov + floor[i] } else { keep * cov }
        })
    }
}

/// The lower Cholesky factor of `cov` (column-major), adding jitters of
/// 10⁻¹⁰ … 1 times `unit` (per-parameter variances) to the diagonal when it
/// is not numerically positive definite. `None` if nothing factorises into
/// finite numbers (a covariance with NaN or ∞).
fn factorise(cov: DMatrix<f64>, unit: &[f64]) -> Option<Vec<f64>> {
    let finite = |l: DMatrix<f64>| {
        l.iter()
            .all(|v| v.is_finite())
            .then(|| l.as_slice().to_vec())
    };
    if let Some(c) = Cholesky::new(cov.clone()) {
        return finite(c.unpack());
    }
    (0..JITTERS).find_map(|k| {
        let jitter = 10f64.powi(k - 10);
        let mut m = cov.clone();
        for (i, u) in unit.iter().enumerate() {
            m[(i, i)] += jitter * u;
        }
        Cholesky::new(m).and_then(|c| finite(c.unpack()))
    })
}

/// The end of a covariance window that starts after iteration `start` and
/// would last `length` iterations: `start + length`, or `last` if the window
/// after it could not have twice this length (the last window is stretched
/// to `last` rather than followed by a shorter one).
fn window_end(start: usize, length: usize, last: usize) -> usize {
    let end = start.saturating_add(length);
    if end >= last || last - end < 2 * length {
        last
    } else {
        end
    }
}

/// One chain's whole state, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    position: Vec<f64>,
    log_prob: f64,
    rng: Stream,
    /// Steps done; the start is iteration 0.
    iteration: usize,
    accepted: u64,
    evaluations: u64,
    nans: u64,
    best: Vec<f64>,
    best_log_prob: f64,
    /// L, lower triangular, column-major: the proposal covariance is λ L Lᵀ.
    factor: Vec<f64>,
    /// ln λ.
    log_scale: f64,
    history: History,
    /// Whether the running covariance has replaced C0.
    adapted: bool,
    /// The adaptation window in progress: iterations window_start + 1 ..=
    /// window_end.
    window_start: usize,
    window_end: usize,
    /// `accepted` when the window started.
    window_accepted: u64,
}

impl Chain {
    /// Evaluates the start `x0` and sets up the proposal from C0. A start at
    /// −∞ is an error. `rng` is this chain's own stream, keyed by the caller;
    /// every random number of the chain comes from it.
    pub fn start(
        posterior: &Posterior,
        settings: &MetropolisSettings,
        x0: Vec<f64>,
        rng: Stream,
    ) -> Result<Self, ChainError> {
        let d = posterior.dim();
        if x0.len() != d {
            return Err(ChainError::Invalid {
                field: "start".into(),
                message: format!("has {} parameters, the posterior {d}", x0.len()),
            });
        }
        settings.check(d)?;
        let sd = match &settings.initial_sd {
            Some(sd) => sd.clone(),
            None => posterior.prior().scales().iter().map(|s| 0.1 * s).collect(),
        };
        if let Some(i) = sd.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(ChainError::Invalid {
                field: format!("initial_sd[{i}]"),
                message: format!(
                    "0.1 × the prior's sd is {}; give initial_sd for this prior",
                    sd[i]
                ),
            });
        }
        // C0 is diagonal: its factor is diag(sd).
        let mut factor = vec![0.0; d * d];
        for (i, s) in sd.iter().enumerate() {
            factor[i + i * d] = *s;
        }
        let mut chain = Self {
            log_prob: f64::NEG_INFINITY,
            rng,
            iteration: 0,
            accepted: 0,
            evaluations: 0,
            nans: 0,
            best: x0.clone(),
            best_log_prob: f64::NEG_INFINITY,
            factor,
            log_scale: 0.0,
            history: History::new(d),
            adapted: false,
            window_start: 0,
            window_accepted: 0,
            window_end: window_end(0, settings.adapt_after(d), settings.covariance_end()),
            position: x0,
        };
        let x0 = chain.position.clone();
        let lp = chain.evaluate(posterior, &x0)?;
        if lp == f64::NEG_INFINITY {
            return Err(ChainError::NoFiniteStart {
                params: chain.position,
            });
        }
        chain.log_prob = lp;
        chain.best_log_prob = lp;
        // The start is the first point of the history (Haario: x0 … x_t).
        let mut delta = vec![0.0; d];
        chain.history.push(&chain.position, &mut delta);
        Ok(chain)
    }

    /// One Metropolis step (iteration += 1); then, while iteration ≤ burn,
    /// one adaptation step. `settings` must be those the chain started with.
    pub fn step(
        &mut self,
        posterior: &Posterior,
        settings: &MetropolisSettings,
    ) -> Result<(), ChainError> {
        let d = self.position.len();
        if posterior.dim() != d {
            return Err(ChainError::Invalid {
                field: "posterior".into(),
                message: format!("has {} parameters, the chain {d}", posterior.dim()),
            });
        }
        let z: Vec<f64> = (0..d)
            .map(|_| self.rng.sample::<f64, _>(StandardNormal))
            .collect();
        let mut y = self.position.clone();
        DVectorViewMut::from_slice(&mut y, d).gemv(
            (0.5 * self.log_scale).exp(),
            &DMatrixView::from_slice(&self.factor, d, d),
            &DVectorView::from_slice(&z, d),
            1.0,
        );
        let lp = self.evaluate(posterior, &y)?;
        // The current log-probability is finite, so the ratio is a number
        // or −∞, and −∞ is never accepted: ln u < −∞ is false for every u,
        // ln 0 = −∞ included.
        let log_ratio = lp - self.log_prob;
        let accept = self.rng.random::<f64>().ln() < log_ratio;
        if lp > self.best_log_prob {
            self.best.copy_from_slice(&y);
            self.best_log_prob = lp;
        }
        if accept {
            self.position = y;
            self.log_prob = lp;
            self.accepted += 1;
        }
        self.iteration += 1;
        if self.iteration <= settings.burn {
            self.adapt(posterior, settings, log_ratio.min(0.0).exp());
        }
        Ok(())
    }

    /// The adaptation after burn-in iteration t = `self.iteration`, with
    /// `alpha` the acceptance probability of its proposal (windows: see the
    /// module's documentation).
    ///
    /// λ is reset to 1 whenever a new covariance is adopted (s_d is the
    /// right scale for a good Σ; the λ adapted so far corrected the old
    /// one), and its Robbins–Monro gain restarts with each window, so that
    /// it can move fast again. (Keeping λ across windows did as well in the
    /// tests; the reset avoids carrying over, say, the large correction a
    /// C0 100× too wide needed.)
    fn adapt(&mut self, posterior: &Posterior, settings: &MetropolisSettings, alpha: f64) {
        let d = self.position.len();
        let t = self.iteration;
        // ln λ += γ (α − α*), γ = (iterations into the window)^−κ. The
        // acceptance probability rather than the accept/reject outcome:
        // same expectation, less noise.
        if let Some(target) = settings.target_acceptance {
            let gain = ((t - self.window_start) as f64).powf(-GAIN_EXPONENT);
            self.log_scale =
                (self.log_scale + gain * (alpha - target)).clamp(-MAX_LOG_SCALE, MAX_LOG_SCALE);
        }
        let covariance_end = settings.covariance_end();
        if t > covariance_end {
            return;
        }
        let mut delta = vec![0.0; d];
        self.history.push(&self.position, &mut delta);
        if t < self.window_end {
            return;
        }
        // The window's moves: its covariance has rank at most their number,
        // and it is an estimate from about that many steps. Shrinking it
        // toward its own diagonal with weight d/(d + moves) (in the spirit
        // of Ledoit & Wolf) keeps it full rank and well-conditioned when the
        // window moved little, and fades as windows grow (the last window
        // of a 4-D chain at 0.234 acceptance over 2000 burn-in iterations
        // moves ~250 times: weight 0.015). Without it a window that moved
        // fewer than d times gives a proposal that cannot move in the
        // missing directions, the next window inherits the gap, and the
        // chain never explores them: seen in testing on the 4-D Gaussian of
        // the tests in 5 of 200 four-chain runs (the absolute floor ε D is
        // far too small to help).
        // A window without a move says nothing: the last factor stays.
        let moves = self.accepted - self.window_accepted;
        if self.history.count >= settings.adapt_after(d) as u64 && moves > 0 {
            let keep = moves as f64 / (moves + d as u64) as f64;
            let scales = posterior.prior().scales();
            let unit: Vec<f64> = scales.iter().map(|s| s * s).collect();
            let floor: Vec<f64> = unit.iter().map(|u| settings.floor * u).collect();
            // A covariance that does not factorise even with jitter (NaN
            // or ∞ in it) leaves the last factor in use.
            if let Some(l) = factorise(self.history.proposal_covariance(keep, &floor), &unit) {
                self.factor = l;
                self.log_scale = 0.0;
                self.adapted = true;
            }
        }
        self.history.clear();
        let length = 2 * (t - self.window_start);
        self.window_start = t;
        self.window_accepted = self.accepted;
        self.window_end = if t == covariance_end {
            settings.burn
        } else {
            window_end(t, length, covariance_end)
        };
    }

    /// Evaluates the posterior, counting the evaluation: NaN counts and
    /// becomes −∞; +∞ (a density that is not normalisable) is an error.
    fn evaluate(&mut self, posterior: &Posterior, x: &[f64]) -> Result<f64, ChainError> {
        self.evaluations += 1;
        let failed = |cause: EvalError| ChainError::Evaluation {
            params: x.to_vec(),
            cause,
        };
        let lp = posterior.log_prob(x).map_err(failed)?;
        if lp.is_nan() {
            self.nans += 1;
            return Ok(f64::NEG_INFINITY);
        }
        if lp == f64::INFINITY {
            return Err(failed(EvalError("log-probability is +∞".into())));
        }
        Ok(lp)
    }

    pub fn dim(&self) -> usize {
        self.position.len()
    }
    pub fn position(&self) -> &[f64] {
        &self.position
    }
    pub fn log_prob(&self) -> f64 {
        self.log_prob
    }
    /// Steps done (the start is iteration 0).
    pub fn iteration(&self) -> usize {
        self.iteration
    }
    /// Accepted proposals so far, burn-in included.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }
    /// Posterior evaluations so far, the start's included.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }
    /// Evaluations that returned NaN (treated as −∞).
    pub fn nan_count(&self) -> u64 {
        self.nans
    }
    /// The highest-posterior point evaluated so far (rejected proposals
    /// included) and its log-posterior.
    pub fn best(&self) -> (&[f64], f64) {
        (&self.best, self.best_log_prob)
    }
    /// λ, the global factor of the proposal covariance.
    pub fn proposal_scale(&self) -> f64 {
        self.log_scale.exp()
    }
    /// The proposal covariance λ L Lᵀ, d × d (symmetric, so row- or
    /// column-major alike).
    pub fn proposal_covariance(&self) -> Vec<f64> {
        let d = self.position.len();
        let l = DMatrixView::from_slice(&self.factor, d, d);
        (l * l.transpose() * self.log_scale.exp())
            .as_slice()
            .to_vec()
    }
    /// Whether the running covariance has replaced C0.
    pub fn adapted(&self) -> bool {
        self.adapted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::integrated_time;
    use crate::model::quadrature::integrate;
    use crate::model::PriorSpec;
    use crate::model::{Funnel, Gaussian, LogDensity, Prior};
    use crate::seed::StreamKey;

    fn key(seed: u64) -> StreamKey {
        StreamKey::of_seed(seed)
    }

    fn with_prior(spec: PriorSpec, likelihood: Box<dyn LogDensity>) -> Posterior {
        Posterior::new(Prior::from_spec(&spec).unwrap(), likelihood, None)
    }

    /// A likelihood under a uniform prior on [−50, 50]^d.
    fn uniform(likelihood: Box<dyn LogDensity>, d: usize) -> Posterior {
        let spec = PriorSpec::Uniform {
            low: vec![-50.0; d],
            high: vec![50.0; d],
        };
        with_prior(spec, likelihood)
    }

    fn gaussian(mean: &[f64], cov: &[Vec<f64>]) -> Posterior {
        uniform(Box::new(Gaussian::new(mean, cov).unwrap()), mean.len())
    }

    /// The 4-D Gaussian of the tests: sds 0.5 to 3, correlations up to 0.8
    /// (condition number of the correlation matrix ~30).
    fn correlated_gaussian() -> (Vec<f64>, Vec<Vec<f64>>) {
        let mean = vec![1.0, -2.0, 0.5, 3.0];
        let sd = [1.0, 0.5, 2.0, 3.0];
        let rho = [
            [1.0, 0.8, 0.3, -0.5],
            [0.8, 1.0, 0.1, -0.4],
            [0.3, 0.1, 1.0, 0.6],
            [-0.5, -0.4, 0.6, 1.0],
        ];
        let cov = (0..4)
            .map(|i| (0..4).map(|j| rho[i][j] * sd[i] * sd[j]).collect())
            .collect();
        (mean, cov)
    }

    /// A likelihood given by a closure, for NaN and failure tests.
    struct Likelihood<F>(usize, F);

    impl<F: Fn(&[f64]) -> Result<f64, EvalError> + Send + Sync> LogDensity for Likelihood<F> {
        fn dim(&self) -> usize {
            self.0
        }
        fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
            (self.1)(x)
        }
    }

    fn likelihood(
        d: usize,
        f: impl Fn(&[f64]) -> Result<f64, EvalError> + Send + Sync + 'static,
    ) -> Posterior {
        uniform(Box::new(Likelihood(d, f)), d)
    }

    /// A chain started at a draw from the prior (from stream 1000 + c), with
    /// stream c: the caller owns both, as the executor will.
    fn start(p: &Posterior, s: &MetropolisSettings, seed: u64, c: u64) -> Chain {
        let mut x0 = vec![0.0; p.dim()];
        p.prior().sample(&mut key(seed).stream(1000 + c), &mut x0);
        Chain::start(p, s, x0, key(seed).stream(c)).unwrap()
    }

    /// One chain after burn-in: its kept positions (row-major) and the
    /// proposals it accepted after burn-in.
    struct Kept {
        draws: Vec<f64>,
        accepted: u64,
    }

    fn sample(
        p: &Posterior,
        s: &MetropolisSettings,
        seed: u64,
        chains: u64,
        kept: usize,
    ) -> Vec<Kept> {
        (0..chains)
            .map(|c| {
                let mut chain = start(p, s, seed, c);
                for _ in 0..s.burn {
                    chain.step(p, s).unwrap();
                }
                let before = chain.accepted();
                let mut draws = Vec::with_capacity(kept * p.dim());
                for _ in 0..kept {
                    chain.step(p, s).unwrap();
                    draws.extend_from_slice(chain.position());
                }
                Kept {
                    draws,
                    accepted: chain.accepted() - before,
                }
            })
            .collect()
    }

    /// The per-chain series of a statistic of the position.
    fn series(chains: &[Kept], d: usize, f: impl Fn(&[f64]) -> f64) -> Vec<Vec<f64>> {
        chains
            .iter()
            .map(|k| k.draws.chunks(d).map(&f).collect())
            .collect()
    }

    /// Mean of a statistic over every draw of every chain, with its Monte
    /// Carlo standard error sd/√ESS: ESS = draws/τ, τ the integrated
    /// autocorrelation time of the statistic's own series (emcee's
    /// estimator, the chains' autocorrelation functions averaged).
    #[derive(Debug)]
    struct Estimate {
        mean: f64,
        se: f64,
        ess: f64,
    }

    fn estimate(series: &[Vec<f64>]) -> Estimate {
        let all: Vec<f64> = series.iter().flatten().copied().collect();
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let ess = n / integrated_time(series).max(1.0);
        Estimate {
            mean,
            se: (var / ess).sqrt(),
            ess,
        }
    }

    /// (estimate − truth) in standard errors.
    fn z(e: &Estimate, truth: f64) -> f64 {
        (e.mean - truth) / e.se
    }

    #[test]
    fn pause_and_resume_through_json_is_bit_identical() {
        // t0 = 50: windows end at 50 and 270 (90% of 300), λ alone after
        // that, frozen from 300. The pause at 200 falls inside the second
        // window, after one adoption and before the next: every part of the
        // adaptation state matters.
        let p = gaussian(
            &[0.0, 1.0, -1.0],
            &[
                vec![1.0, 0.5, 0.0],
                vec![0.5, 2.0, 0.3],
                vec![0.0, 0.3, 0.5],
            ],
        );
        let s = MetropolisSettings {
            burn: 300,
            adapt_after: Some(50),
            ..Default::default()
        };
        let trace = |c: &mut Chain, steps: usize| {
            (0..steps)
                .map(|_| {
                    c.step(&p, &s).unwrap();
                    (c.position().to_vec(), c.log_prob().to_bits(), c.accepted())
                })
                .collect::<Vec<_>>()
        };
        let mut straight = start(&p, &s, 4, 0);
        let expected = trace(&mut straight, 500);

        let mut first = start(&p, &s, 4, 0);
        let mut got = trace(&mut first, 200);
        assert_eq!((first.window_start, first.window_end), (50, 270));
        let json = serde_json::to_string(&first).unwrap();
        drop(first);
        let mut resumed: Chain = serde_json::from_str(&json).unwrap();
        got.extend(trace(&mut resumed, 300));

        assert_eq!(got, expected);
        assert_eq!(resumed, straight);
        assert_eq!(
            serde_json::to_string(&resumed).unwrap(),
            serde_json::to_string(&straight).unwrap()
        );
        assert_eq!(
            (
                resumed.iteration(),
                resumed.evaluations(),
                resumed.nan_count()
            ),
            (500, 501, 0)
        );
        assert!(resumed.adapted() && resumed.accepted() > 0);
    }

    #[test]
    fn recovers_a_correlated_gaussian() {
        let (mean, cov) = correlated_gaussian();
        let p = gaussian(&mean, &cov);
        let s = MetropolisSettings {
            burn: 2000,
            ..Default::default()
        };
        let kept = 20_000;
        let chains = sample(&p, &s, 11, 4, kept);
        for (c, k) in chains.iter().enumerate() {
            let rate = k.accepted as f64 / kept as f64;
            eprintln!("gaussian chain {c}: acceptance after burn-in {rate:.3}");
            assert!(
                (0.15..=0.45).contains(&rate),
                "chain {c}: acceptance {rate}"
            );
        }
        // Each mean, and each entry of the covariance as the mean of
        // (x_i − μ_i)(x_j − μ_j), within 5 of its own standard errors (the
        // ESS of the products is estimated like that of the coordinates).
        for i in 0..4 {
            let e = estimate(&series(&chains, 4, |x| x[i]));
            eprintln!("gaussian mean[{i}]: {e:?}, z {:.2}", z(&e, mean[i]));
            assert!(
                z(&e, mean[i]).abs() < 5.0,
                "mean[{i}]: {e:?} vs {}",
                mean[i]
            );
            // Efficiency, against regressions: τ ≈ 15 here; random-walk
            // Metropolis at its best on a 4-D Gaussian has τ ≈ 3.3 d ≈ 13
            // (Gelman, Roberts & Gilks 1996).
            assert!(e.ess > 2000.0, "mean[{i}]: {e:?}");
            for j in 0..=i {
                let e = estimate(&series(&chains, 4, |x| (x[i] - mean[i]) * (x[j] - mean[j])));
                eprintln!("gaussian cov[{i}][{j}]: {e:?}, z {:.2}", z(&e, cov[i][j]));
                assert!(
                    z(&e, cov[i][j]).abs() < 5.0,
                    "cov[{i}][{j}]: {e:?} vs {}",
                    cov[i][j]
                );
            }
        }
    }

    /// Neal's funnel (v ~ N(0, σ²), x_i | v ~ N(0, eᵛ), i = 1..n) times an
    /// independent N(0, s²) prior on every parameter: integrating x out,
    /// p(v) ∝ N(v; 0, σ²) N(v; 0, s²) (eᵛ + s²)^(−n/2), and x_i | v ~
    /// N(0, (e^−v + s^−2)^−1). Expectations over v by quadrature.
    struct FunnelTruth {
        sigma: f64,
        s: f64,
        n: f64,
    }

    impl FunnelTruth {
        /// The marginal of v has sd < σ: ±20 holds all of it.
        fn unnormalised(&self, v: f64) -> f64 {
            let precision = self.sigma.powi(-2) + self.s.powi(-2);
            (-0.5 * v * v * precision - 0.5 * self.n * (v.exp() + self.s * self.s).ln()).exp()
        }
        fn integral(&self, f: impl Fn(f64) -> f64) -> f64 {
            integrate(-20.0, 20.0, 40_000, |v| f(v) * self.unnormalised(v))
        }
        fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
            self.integral(f) / self.integral(|_| 1.0)
        }
        fn density(&self, v: f64) -> f64 {
            self.unnormalised(v) / self.integral(|_| 1.0)
        }
        /// By bisection on the distribution function, to 10⁻⁶.
        fn quantile(&self, p: f64) -> f64 {
            let (mut lo, mut hi) = (-20.0, 20.0);
            while hi - lo > 1e-6 {
                let mid = 0.5 * (lo + hi);
                if self.expect(|v| f64::from(v <= mid)) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        }
    }

    #[test]
    fn explores_neals_funnel() {
        let (sigma, s, d) = (1.5, 5.0, 3);
        let p = with_prior(
            PriorSpec::Normal {
                mean: vec![0.0; d],
                sd: vec![s; d],
            },
            Box::new(Funnel::new(d, sigma).unwrap()),
        );
        let truth = FunnelTruth {
            sigma,
            s,
            n: (d - 1) as f64,
        };
        let settings = MetropolisSettings {
            burn: 5000,
            ..Default::default()
        };
        let kept = 50_000;
        let chains = sample(&p, &settings, 21, 4, kept);
        for (c, k) in chains.iter().enumerate() {
            let rate = k.accepted as f64 / kept as f64;
            eprintln!("funnel chain {c}: acceptance after burn-in {rate:.3}");
            assert!((0.1..=0.5).contains(&rate), "chain {c}: acceptance {rate}");
        }
        let check = |name: &str, e: Estimate, truth: f64| {
            eprintln!(
                "funnel {name}: {e:?}, truth {truth:.4}, z {:.2}",
                z(&e, truth)
            );
            assert!(z(&e, truth).abs() < 5.0, "{name}: {e:?} vs {truth}");
            assert!(e.ess > 1000.0, "{name}: {e:?}");
        };
        let v_mean = truth.expect(|v| v);
        check("E[v]", estimate(&series(&chains, d, |x| x[0])), v_mean);
        for i in 1..d {
            check("E[x]", estimate(&series(&chains, d, |x| x[i])), 0.0);
        }
        // E[x₁²] = E[(e^−v + s^−2)^−1] weighs the mouth of the funnel.
        let x2 = truth.expect(|v| 1.0 / ((-v).exp() + s.powi(-2)));
        check("E[x1²]", estimate(&series(&chains, d, |x| x[1] * x[1])), x2);
        // The 5% and 95% quantiles of v (not ±1.645σ: the N(0, 5²) prior on
        // x cuts the mouth, which moves them to about −2.42 and +2.07).
        // The empirical distribution function at the true quantile q is
        // the mean of 1{v ≤ q}, within 5 of its standard errors; the
        // empirical quantile is then within 5 se/p(q) of q (delta method).
        let mut v: Vec<f64> = chains
            .iter()
            .flat_map(|k| k.draws.chunks(d).map(|x| x[0]))
            .collect();
        v.sort_by(f64::total_cmp);
        for prob in [0.05, 0.95] {
            let q = truth.quantile(prob);
            let e = estimate(&series(&chains, d, |x| f64::from(x[0] <= q)));
            let tolerance = 5.0 * e.se / truth.density(q);
            let q_hat = v[(prob * v.len() as f64) as usize];
            eprintln!(
                "funnel q{prob}: {q_hat:.4} vs {q:.4} ± {:.4}",
                tolerance / 5.0
            );
            check("F(q)", e, prob);
            assert!((q_hat - q).abs() < tolerance, "q{prob}: {q_hat} vs {q}");
        }
    }

    #[test]
    fn the_proposal_is_frozen_after_burn_in() {
        let (mean, cov) = correlated_gaussian();
        let p = gaussian(&mean, &cov);
        let s = MetropolisSettings {
            burn: 1000,
            ..Default::default()
        };
        let mut chain = start(&p, &s, 3, 0);
        let initial = chain.proposal_covariance();
        for _ in 0..s.burn {
            chain.step(&p, &s).unwrap();
        }
        let (frozen, scale) = (chain.proposal_covariance(), chain.proposal_scale());
        assert!(
            chain.adapted() && frozen != initial,
            "burn-in adapted nothing"
        );
        for _ in 0..2000 {
            chain.step(&p, &s).unwrap();
            assert_eq!(chain.proposal_covariance(), frozen);
            assert_eq!(chain.proposal_scale().to_bits(), scale.to_bits());
        }
        // The frozen proposal is λ s_d (Σ + ε D): near s_d × the target's
        // covariance, diagonal within a factor 3 here.
        let s_d = 2.38f64.powi(2) / 4.0;
        for i in 0..4 {
            let ratio = frozen[i * 5] / (s_d * cov[i][i]);
            assert!((1.0 / 3.0..3.0).contains(&ratio), "var[{i}]: {ratio}");
        }
    }

    #[test]
    fn adaptation_windows_double_and_the_last_is_stretched() {
        let s = MetropolisSettings {
            burn: 2000,
            ..Default::default()
        };
        let (last, mut ends, mut start) = (s.covariance_end(), vec![], 0);
        let mut end = window_end(0, s.adapt_after(4), last);
        while end < last {
            ends.push(end);
            (start, end) = (end, window_end(end, 2 * (end - start), last));
        }
        ends.push(end);
        assert_eq!(ends, [100, 300, 700, 1800]);
        // Too short a burn-in for two windows: one, to 90%.
        assert_eq!(window_end(0, 100, 250), 250);
    }

    #[test]
    fn running_covariance_matches_the_two_pass_formula() {
        let mut rng = key(5).stream(0);
        let d = 3;
        let xs: Vec<Vec<f64>> = (0..50)
            .map(|_| {
                (0..d)
                    .map(|i| (i + 1) as f64 * rng.sample::<f64, _>(StandardNormal) + 10.0)
                    .collect()
            })
            .collect();
        let mut h = History::new(d);
        let mut delta = vec![0.0; d];
        for x in &xs {
            h.push(x, &mut delta);
        }
        let n = xs.len() as f64;
        let m: Vec<f64> = (0..d)
            .map(|i| xs.iter().map(|x| x[i]).sum::<f64>() / n)
            .collect();
        let got = h.proposal_covariance(1.0, &[0.0; 3]);
        let s_d = 2.38f64.powi(2) / d as f64;
        for i in 0..d {
            assert!((h.mean[i] - m[i]).abs() < 1e-12);
            for j in 0..d {
                let c = xs
                    .iter()
                    .map(|x| (x[i] - m[i]) * (x[j] - m[j]))
                    .sum::<f64>()
                    / (n - 1.0);
                assert!((got[(i, j)] / s_d - c).abs() < 1e-10 * (1.0 + c.abs()));
            }
        }
        // Shrinkage scales the off-diagonal only.
        let half = h.proposal_covariance(0.5, &[0.0; 3]);
        assert_eq!(half[(0, 0)], got[(0, 0)]);
        assert!((half[(1, 0)] - 0.5 * got[(1, 0)]).abs() < 1e-12);
    }

    #[test]
    fn factorisation_adds_jitter_or_gives_up() {
        // Not positive definite by rounding: factorised with jitter.
        let singular = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0 - 1e-15]);
        let l = factorise(singular, &[1.0, 1.0]).unwrap();
        assert!(l.iter().all(|v| v.is_finite()) && l[2] == 0.0);
        // Indefinite beyond any jitter tried, or not finite: nothing.
        let indefinite = DMatrix::from_row_slice(2, 2, &[1.0, 3.0, 3.0, 1.0]);
        assert!(factorise(indefinite, &[1e-3, 1e-3]).is_none());
        let nan = DMatrix::from_row_slice(2, 2, &[1.0, f64::NAN, f64::NAN, 1.0]);
        assert!(factorise(nan, &[1.0, 1.0]).is_none());
    }

    #[test]
    fn nan_is_counted_and_never_accepted() {
        let p = likelihood(2, |x| {
            Ok(if x[0] > 0.6 {
                f64::NAN
            } else {
                -0.5 * (x[0] * x[0] + x[1] * x[1])
            })
        });
        let s = MetropolisSettings {
            burn: 300,
            ..Default::default()
        };
        let mut chain = Chain::start(&p, &s, vec![-0.5, -0.5], key(1).stream(0)).unwrap();
        for _ in 0..2000 {
            chain.step(&p, &s).unwrap();
            assert!(chain.position()[0] <= 0.6, "a NaN proposal was accepted");
            assert!(chain.log_prob().is_finite() && chain.best().1.is_finite());
        }
        assert!(chain.nan_count() > 100, "{}", chain.nan_count());
        assert_eq!(chain.evaluations(), 2001);
        assert!(chain.accepted() > 200);
        assert!(chain.best().0[0] <= 0.6);
    }

    #[test]
    fn a_failing_evaluation_reports_its_parameters() {
        let p = likelihood(2, |x| {
            if x[0] > 1.0 {
                Err(EvalError("solver diverged".into()))
            } else {
                Ok(-0.5 * (x[0] * x[0] + x[1] * x[1]))
            }
        });
        let s = MetropolisSettings::default();
        let mut chain = Chain::start(&p, &s, vec![0.0, 0.0], key(2).stream(0)).unwrap();
        let err = (0..10_000)
            .find_map(|_| chain.step(&p, &s).err())
            .expect("the chain never proposed x₀ > 1");
        let message = err.to_string();
        match err {
            ChainError::Evaluation { params, cause } => {
                assert!(params[0] > 1.0, "{params:?}");
                assert_eq!(cause.0, "solver diverged");
                assert!(message.contains(&format!("{params:?}")), "{message}");
            }
            e => panic!("{e}"),
        }
        // At the start too, with the start's parameters.
        let err = Chain::start(&p, &s, vec![2.0, 0.5], key(2).stream(0)).unwrap_err();
        assert!(
            matches!(&err, ChainError::Evaluation { params, .. } if params == &[2.0, 0.5]),
            "{err}"
        );
        // +∞ is no density: an error, not a position that can never be left.
        let p = likelihood(2, |x| Ok(if x[0] > 1.0 { f64::INFINITY } else { 0.0 }));
        let mut chain = Chain::start(&p, &s, vec![0.0, 0.0], key(2).stream(0)).unwrap();
        let err = (0..10_000).find_map(|_| chain.step(&p, &s).err()).unwrap();
        assert!(err.to_string().contains("+∞"), "{err}");
    }

    #[test]
    fn bad_starts_and_settings_are_errors_not_panics() {
        let p = gaussian(&[0.0, 0.0], &[vec![1.0, 0.0], vec![0.0, 1.0]]);
        let s = MetropolisSettings::default();
        let start = |x0: Vec<f64>, s: &MetropolisSettings| {
            Chain::start(&p, s, x0, key(0).stream(0)).unwrap_err()
        };
        // Outside the prior, or NaN: −∞.
        assert!(matches!(
            start(vec![60.0, 0.0], &s),
            ChainError::NoFiniteStart { params } if params == [60.0, 0.0]
        ));
        assert!(matches!(
            start(vec![f64::NAN, 0.0], &s),
            ChainError::NoFiniteStart { .. }
        ));
        assert!(matches!(
            start(vec![0.0], &s),
            ChainError::Invalid { field, .. } if field == "start"
        ));
        let wrong = MetropolisSettings {
            initial_sd: Some(vec![1.0, 0.0]),
            ..Default::default()
        };
        assert!(matches!(
            start(vec![0.0, 0.0], &wrong),
            ChainError::Invalid { field, .. } if field == "initial_sd[1]"
        ));
        // (A prior too wide for its sd to be a number is refused by the
        // prior itself: its width must be finite.)
        assert!(Prior::from_spec(&PriorSpec::Uniform {
            low: vec![-1e308],
            high: vec![1e308],
        })
        .is_err());
        // A chain stepped with another posterior's dimension.
        let one = with_prior(
            PriorSpec::Uniform {
                low: vec![-1.0],
                high: vec![1.0],
            },
            Box::new(Likelihood(1, |_: &[f64]| Ok(0.0))),
        );
        let mut chain = Chain::start(&p, &s, vec![0.0, 0.0], key(0).stream(0)).unwrap();
        assert!(matches!(
            chain.step(&one, &s),
            Err(ChainError::Invalid { .. })
        ));
    }

    #[test]
    fn a_chain_that_never_moves_keeps_a_valid_proposal() {
        // Only the start has positive density: no window has a move.
        let p = likelihood(2, |x| {
            Ok(if x == [0.0, 0.0] {
                0.0
            } else {
                f64::NEG_INFINITY
            })
        });
        let s = MetropolisSettings {
            burn: 500,
            ..Default::default()
        };
        let mut chain = Chain::start(&p, &s, vec![0.0, 0.0], key(0).stream(0)).unwrap();
        let c0 = chain.proposal_covariance();
        for _ in 0..1000 {
            chain.step(&p, &s).unwrap();
        }
        assert_eq!((chain.accepted(), chain.position()), (0, &[0.0, 0.0][..]));
        assert!(!chain.adapted());
        // C0 kept, λ driven down toward acceptance 0.234 but bounded.
        assert!(chain.proposal_covariance().iter().all(|v| v.is_finite()));
        assert!(chain.proposal_scale() < 1.0 && chain.proposal_scale() > 0.0);
        assert_eq!(c0[1], 0.0);
        // Serialisable: every float finite.
        let json = serde_json::to_string(&chain).unwrap();
        assert_eq!(serde_json::from_str::<Chain>(&json).unwrap(), chain);
    }

    #[test]
    fn settings_take_defaults_and_reject_unknown_keys() {
        let s: MetropolisSettings = serde_json::from_str(r#"{"burn": 50}"#).unwrap();
        assert_eq!(
            s,
            MetropolisSettings {
                burn: 50,
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<MetropolisSettings>(r#"{"brun": 50}"#).is_err());
        let back: MetropolisSettings =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    /// The standard errors above are honest: over many seeds, (estimate −
    /// truth)/se should be ~N(0, 1). Slow (~15 s), so not run by default:
    /// `cargo test --release --lib calibration -- --ignored --nocapture`.
    #[test]
    #[ignore = "slow: many seeds"]
    fn calibration_of_the_standard_errors() {
        let summarise = |name: &str, zs: &[f64]| {
            let n = zs.len() as f64;
            let mean_sq = zs.iter().map(|z| z * z).sum::<f64>() / n;
            let beyond2 = zs.iter().filter(|z| z.abs() > 2.0).count();
            let max = zs.iter().fold(0.0f64, |a, z| a.max(z.abs()));
            eprintln!("{name}: mean z² {mean_sq:.3}, |z| > 2: {beyond2}/{n}, max |z| {max:.2}");
            assert!(mean_sq < 1.5 && max < 5.0, "{name}");
        };
        let (mean, cov) = correlated_gaussian();
        let p = gaussian(&mean, &cov);
        let s = MetropolisSettings {
            burn: 2000,
            ..Default::default()
        };
        let mut zs = vec![Vec::new(); 8];
        for seed in 100..300 {
            let chains = sample(&p, &s, seed, 4, 20_000);
            for i in 0..4 {
                zs[i].push(z(&estimate(&series(&chains, 4, |x| x[i])), mean[i]));
                let sq = estimate(&series(&chains, 4, |x| (x[i] - mean[i]).powi(2)));
                zs[4 + i].push(z(&sq, cov[i][i]));
            }
        }
        for (k, z) in zs.iter().enumerate() {
            summarise(&format!("gaussian {} {}", ["mean", "var"][k / 4], k % 4), z);
        }

        let (sigma, sd, d) = (1.5, 5.0, 3);
        let p = with_prior(
            PriorSpec::Normal {
                mean: vec![0.0; d],
                sd: vec![sd; d],
            },
            Box::new(Funnel::new(d, sigma).unwrap()),
        );
        let truth = FunnelTruth {
            sigma,
            s: sd,
            n: (d - 1) as f64,
        };
        let (v_mean, q05, q95) = (
            truth.expect(|v| v),
            truth.quantile(0.05),
            truth.quantile(0.95),
        );
        let s = MetropolisSettings {
            burn: 5000,
            ..Default::default()
        };
        let mut zs = vec![Vec::new(); 4];
        for seed in 100..200 {
            let chains = sample(&p, &s, seed, 4, 50_000);
            zs[0].push(z(&estimate(&series(&chains, d, |x| x[0])), v_mean));
            zs[1].push(z(&estimate(&series(&chains, d, |x| x[1])), 0.0));
            zs[2].push(z(
                &estimate(&series(&chains, d, |x| f64::from(x[0] <= q05))),
                0.05,
            ));
            zs[3].push(z(
                &estimate(&series(&chains, d, |x| f64::from(x[0] <= q95))),
                0.95,
            ));
        }
        for (name, z) in ["E[v]", "E[x1]", "F(q0.05)", "F(q0.95)"].iter().zip(&zs) {
            summarise(&format!("funnel {name}"), z);
        }
    }
}
