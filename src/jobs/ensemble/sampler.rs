//! Affine-invariant ensemble MCMC (Goodman & Weare 2010; emcee's algorithm):
//! the sampler itself, which knows nothing of MPI, files or tasks.
//!
//! The ensemble is split into two fixed halves; each iteration updates the
//! first half against the second, then the second against the first. Within
//! a half every walker's proposal is independent of the others, so a half is
//! evaluated in parallel on the current rayon pool. Each walker owns its
//! random stream, keyed by (seed, state, replicate, walker), so the samples do
//! not depend on the number of threads or on which thread ran which walker.

use std::ops::Range;

use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::moves::{choose, Move, WeightedMove};
use crate::model::{BatchScratch, EvalError, Posterior};
use crate::seed::{Stream, StreamKey};

/// Index of the ensemble-level stream of a task (the choice of move);
/// walkers' indices stay far below.
const ENSEMBLE_STREAM: u64 = u64::MAX;
use crate::spec::Init;

/// Stop an ensemble once its chain after burn-in is longer than
/// `tau_lengths` × τ for every parameter and τ changed by less than
/// `tau_change` (relative) since the previous check, checked every
/// `check_every` steps; at most `max_steps`. Each ensemble (state and
/// replicate) decides for itself, from its own chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TauStop {
    pub check_every: usize,
    pub max_steps: usize,
    pub tau_lengths: f64,
    pub tau_change: f64,
}

/// Settings of one ensemble (one state), resolved and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSettings {
    pub walkers: usize,
    /// Iterations performed.
    pub steps: usize,
    /// Iterations discarded in summaries (all are stored).
    pub burn: usize,
    /// Store every `thin`-th iteration.
    pub thin: usize,
    pub moves: Vec<WeightedMove>,
    pub init: Init,
    /// Stop once converged (then `steps` is the most it may run).
    pub stop: Option<TauStop>,
}

impl EnsembleSettings {
    /// Rows of the stored chain: iterations thin, 2·thin, …, ≤ steps.
    pub fn stored_rows(&self) -> usize {
        self.steps / self.thin
    }

    /// Stored rows that fall in the burn-in.
    pub fn burn_rows(&self) -> usize {
        self.burn / self.thin
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("evaluation failed for walker {walker} at parameters {params:?}: {cause}")]
    Evaluation {
        walker: usize,
        params: Vec<f64>,
        cause: EvalError,
    },
    #[error(
        "all {walkers} walkers start at log-probability −∞ (zero prior or likelihood); \
         choose an init inside the posterior's support"
    )]
    NoFiniteStart { walkers: usize },
    #[error("{0}")]
    Stopped(String),
}

/// One half of the ensemble, as handed to [`WalkerShare::exchange`].
pub struct HalfView<'a> {
    /// The walker indices of this half.
    pub walkers: Range<usize>,
    /// Positions of these walkers, row-major.
    pub positions: &'a mut [f64],
    pub log_prob: &'a mut [f64],
    /// Accepted proposals per walker, cumulative.
    pub accepted: &'a mut [u64],
}

/// How the walkers of an ensemble are shared among the processes that hold
/// it. The sampler knows nothing of how the exchange is done (MPI, in sampo).
pub trait WalkerShare {
    /// The walkers of `half` (a range of walker indices) this process updates.
    fn owned(&self, half: Range<usize>) -> Range<usize>;
    /// Called by every process after it has updated its walkers of a half,
    /// with `failed` true when its update failed. On return every process
    /// must hold the whole half as updated by the owners, or an error
    /// ([`SampleError::Stopped`]) if any process failed or the group is
    /// told to stop.
    fn exchange(&mut self, failed: bool, half: HalfView<'_>) -> Result<(), SampleError>;
    /// Gathers `per_walker` words of every walker of `half` from its owner:
    /// `mine` holds this process's owned walkers', `all` receives the half's.
    fn gather_words(
        &mut self,
        half: Range<usize>,
        per_walker: usize,
        mine: &[u64],
        all: &mut [u64],
    );
}

/// Member `member`'s contiguous part of `range` when it is split as evenly
/// as possible among `members` (the first ones get one more when uneven).
pub fn split_range(range: Range<usize>, member: usize, members: usize) -> Range<usize> {
    let (n, m) = (range.len(), members.max(1));
    let at = |k: usize| range.start + k * (n / m) + k.min(n % m);
    at(member)..at(member + 1)
}

/// The ensemble held whole by one process: nothing to exchange.
pub struct Whole;

impl WalkerShare for Whole {
    fn owned(&self, half: Range<usize>) -> Range<usize> {
        half
    }
    fn exchange(&mut self, _: bool, _: HalfView<'_>) -> Result<(), SampleError> {
        Ok(())
    }
    fn gather_words(&mut self, _: Range<usize>, _: usize, mine: &[u64], all: &mut [u64]) {
        all.copy_from_slice(mine);
    }
}

/// Per-walker data that is not a position: its random stream and counters.
/// The counters are this process's since the task (re)started: a snapshot
/// leaves them out.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Walker {
    rng: Stream,
    #[serde(skip)]
    evaluations: u64,
    #[serde(skip)]
    nans: u64,
}

/// Words of a walker's stream state, to move it through a [`WalkerShare`].
const RNG_WORDS: usize = 4;

/// See [`Ensemble::parts`].
struct HalfParts<'a> {
    active: &'a mut [f64],
    complement: &'a [f64],
    log_prob: &'a mut [f64],
    walkers: &'a mut [Walker],
    accepted: &'a mut [u64],
    proposals: &'a mut [f64],
}

/// The whole state of an ensemble, as plain data (serde: it is the heart
/// of the ensemble's snapshot).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ensemble {
    ndim: usize,
    positions: Vec<f64>,
    log_prob: Vec<f64>,
    /// Scratch, sized again on resume.
    #[serde(skip)]
    proposals: Vec<f64>,
    walkers: Vec<Walker>,
    accepted: Vec<u64>,
    ensemble_rng: Stream,
    iteration: usize,
}

impl Ensemble {
    /// Places the walkers (from their own streams) and evaluates them.
    pub fn start(
        posterior: &Posterior,
        settings: &EnsembleSettings,
        key: StreamKey,
    ) -> Result<Self, SampleError> {
        Self::start_shared(posterior, settings, key, &mut Whole)
    }

    /// `start` for an ensemble spread over several processes (see `step_shared`).
    pub fn start_shared(
        posterior: &Posterior,
        settings: &EnsembleSettings,
        key: StreamKey,
        share: &mut dyn WalkerShare,
    ) -> Result<Self, SampleError> {
        let ndim = posterior.dim();
        let n = settings.walkers;
        let mut positions = vec![0.0; n * ndim];
        let mut walkers = Vec::with_capacity(n);
        for (i, x) in positions.chunks_mut(ndim).enumerate() {
            let mut rng = key.stream(i as u64);
            match &settings.init {
                Init::Prior => posterior.prior().sample(&mut rng, x),
                Init::Ball { center, radius } => {
                    for ((xi, c), r) in x.iter_mut().zip(center).zip(radius) {
                        *xi = c + r * rng.sample::<f64, _>(StandardNormal);
                    }
                }
            }
            walkers.push(Walker {
                rng,
                evaluations: 0,
                nans: 0,
            });
        }
        let mut ensemble = Self {
            ndim,
            log_prob: vec![f64::NEG_INFINITY; n],
            proposals: vec![0.0; n * ndim],
            positions,
            walkers,
            accepted: vec![0; n],
            ensemble_rng: key.stream(ENSEMBLE_STREAM),
            iteration: 0,
        };
        ensemble.evaluate_start_shared(posterior, share)?;
        if ensemble.log_prob.iter().all(|&lp| lp == f64::NEG_INFINITY) {
            return Err(SampleError::NoFiniteStart { walkers: n });
        }
        Ok(ensemble)
    }

    /// Evaluates the starting positions of the walkers `owned`.
    fn evaluate_start(
        &mut self,
        owned: Range<usize>,
        posterior: &Posterior,
    ) -> Result<(), SampleError> {
        let d = self.ndim;
        let offset = owned.start;
        let positions = &self.positions[owned.start * d..owned.end * d];
        let log_prob = &mut self.log_prob[owned.clone()];
        let walkers = &mut self.walkers[owned];
        let work = |(i, ((x, lp), w)): (usize, ((&[f64], &mut f64), &mut Walker))| {
            *lp = evaluate(posterior, x, w).map_err(|cause| SampleError::Evaluation {
                walker: offset + i,
                params: x.to_vec(),
                cause,
            })?;
            Ok(())
        };
        if rayon::current_num_threads() == 1 {
            positions
                .chunks(d)
                .zip(log_prob.iter_mut())
                .zip(walkers.iter_mut())
                .enumerate()
                .try_for_each(work)
        } else {
            positions
                .par_chunks(d)
                .zip(log_prob.par_iter_mut())
                .zip(walkers.par_iter_mut())
                .enumerate()
                .try_for_each(work)
        }
    }

    /// Evaluates the start half by half, each process its own walkers,
    /// exchanging after each half as `step_shared` does.
    fn evaluate_start_shared(
        &mut self,
        posterior: &Posterior,
        share: &mut dyn WalkerShare,
    ) -> Result<(), SampleError> {
        for half in 0..2 {
            let range = self.half(half);
            let result = self.evaluate_start(share.owned(range.clone()), posterior);
            // The process that failed reports its own error, not the exchange's.
            let exchanged = share.exchange(result.is_err(), self.half_view(range));
            result?;
            exchanged?;
        }
        Ok(())
    }

    fn half_view(&mut self, range: Range<usize>) -> HalfView<'_> {
        let d = self.ndim;
        HalfView {
            walkers: range.clone(),
            positions: &mut self.positions[range.start * d..range.end * d],
            log_prob: &mut self.log_prob[range.clone()],
            accepted: &mut self.accepted[range],
        }
    }

    /// One iteration: both halves updated once, with one move chosen for the
    /// whole iteration from the ensemble's own stream.
    pub fn step(
        &mut self,
        posterior: &Posterior,
        settings: &EnsembleSettings,
    ) -> Result<(), SampleError> {
        self.step_shared(posterior, settings, &mut Whole)
    }

    /// One iteration of an ensemble spread over several processes: this one
    /// updates only the walkers `share` gives it in each half, then `share`
    /// exchanges the half with the others. Every process of the group holds
    /// the same ensemble and draws the same move, so all stay in step, and
    /// each walker's stream is only ever advanced by the process owning it:
    /// the samples are those of `step`, bit for bit.
    pub fn step_shared(
        &mut self,
        posterior: &Posterior,
        settings: &EnsembleSettings,
        share: &mut dyn WalkerShare,
    ) -> Result<(), SampleError> {
        // The move borrows `settings`, not the ensemble: no copy is needed.
        let mv = if settings.moves.len() == 1 {
            &settings.moves[0].kind
        } else {
            choose(&settings.moves, self.ensemble_rng.random::<f64>())
        };
        for half in 0..2 {
            let range = self.half(half);
            let owned = share.owned(range.clone());
            let result = self.half_step(half, owned, mv, posterior);
            let exchanged = share.exchange(result.is_err(), self.half_view(range));
            result?;
            exchanged?;
        }
        self.iteration += 1;
        Ok(())
    }

    /// The walker indices of half 0 or 1.
    pub fn half(&self, half: usize) -> Range<usize> {
        let h = self.walkers.len() / 2;
        if half == 0 {
            0..h
        } else {
            h..self.walkers.len()
        }
    }

    /// The slices a half-step updates: the `owned` walkers of half `half`
    /// (positions, log-probabilities, streams, acceptances, proposal
    /// buffers), and the other half's positions, read only.
    fn parts(&mut self, half: usize, owned: Range<usize>) -> HalfParts<'_> {
        let d = self.ndim;
        let range = self.half(half);
        debug_assert!(owned.start >= range.start && owned.end <= range.end);
        let split = self.half(1).start * d;
        let (lo, hi) = self.positions.split_at_mut(split);
        let (active, complement) = if half == 0 { (lo, &*hi) } else { (hi, &*lo) };
        HalfParts {
            active: &mut active[(owned.start - range.start) * d..(owned.end - range.start) * d],
            complement,
            log_prob: &mut self.log_prob[owned.clone()],
            walkers: &mut self.walkers[owned.clone()],
            accepted: &mut self.accepted[owned.clone()],
            proposals: &mut self.proposals[owned.start * d..owned.end * d],
        }
    }

    /// Updates the walkers `owned` (a sub-range of half `half`).
    fn half_step(
        &mut self,
        half: usize,
        owned: Range<usize>,
        mv: &Move,
        posterior: &Posterior,
    ) -> Result<(), SampleError> {
        if posterior.has_batch() {
            return self.half_step_batched(half, owned, mv, posterior);
        }
        let d = self.ndim;
        let offset = owned.start;
        let HalfParts {
            active,
            complement,
            log_prob,
            walkers,
            accepted,
            proposals,
        } = self.parts(half, owned);

        type Item<'a> = (
            usize,
            (
                (((&'a mut [f64], &'a mut f64), &'a mut Walker), &'a mut u64),
                &'a mut [f64],
            ),
        );
        let work = |(i, ((((x, lp), w), acc), y)): Item| {
            let factor = mv.propose(x, complement, &mut w.rng, y);
            let lp_new = evaluate(posterior, y, w).map_err(|source| SampleError::Evaluation {
                walker: offset + i,
                params: y.to_vec(),
                cause: source,
            })?;
            accept(x, lp, acc, w, y, factor, lp_new);
            Ok(())
        };
        if rayon::current_num_threads() == 1 {
            active
                .chunks_mut(d)
                .zip(log_prob.iter_mut())
                .zip(walkers.iter_mut())
                .zip(accepted.iter_mut())
                .zip(proposals.chunks_mut(d))
                .enumerate()
                .try_for_each(work)
        } else {
            active
                .par_chunks_mut(d)
                .zip(log_prob.par_iter_mut())
                .zip(walkers.par_iter_mut())
                .zip(accepted.par_iter_mut())
                .zip(proposals.par_chunks_mut(d))
                .enumerate()
                .try_for_each(work)
        }
    }

    /// As `half_step`, for a likelihood that evaluates batches natively (a
    /// vectorised plugin): every walker proposes, the proposals are
    /// evaluated in one batch per thread, then every walker accepts or not.
    /// Each walker's stream is used in the same order as in `half_step`, and
    /// a batch gives what single calls give, so the samples are the same.
    fn half_step_batched(
        &mut self,
        half: usize,
        owned: Range<usize>,
        mv: &Move,
        posterior: &Posterior,
    ) -> Result<(), SampleError> {
        let d = self.ndim;
        let offset = owned.start;
        let n = owned.len();
        let HalfParts {
            active,
            complement,
            log_prob,
            walkers,
            accepted,
            proposals,
        } = self.parts(half, owned);

        let mut factors = vec![0.0; n];
        active
            .par_chunks(d)
            .zip(walkers.par_iter_mut())
            .zip(proposals.par_chunks_mut(d))
            .zip(factors.par_iter_mut())
            .for_each(|(((x, w), y), f)| *f = mv.propose(x, complement, &mut w.rng, y));

        let per = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let mut lp_new = vec![0.0; n];
        proposals
            .par_chunks(per * d)
            .zip(lp_new.par_chunks_mut(per))
            .enumerate()
            .try_for_each(|(c, (ys, out))| {
                let mut scratch = BatchScratch::default();
                posterior
                    .log_prob_batch(ys, out, &mut scratch)
                    .map_err(|cause| SampleError::Evaluation {
                        walker: offset + c * per,
                        params: ys[..d].to_vec(),
                        cause: EvalError(format!(
                            "{cause} (in a batch of {} walkers from this one)",
                            out.len()
                        )),
                    })
            })?;

        active
            .par_chunks_mut(d)
            .zip(log_prob.par_iter_mut())
            .zip(walkers.par_iter_mut())
            .zip(accepted.par_iter_mut())
            .zip(proposals.par_chunks(d))
            .zip(factors.par_iter().zip(lp_new.par_iter()))
            .for_each(|(((((x, lp), w), acc), y), (&factor, &new))| {
                let new = counted(new, w);
                accept(x, lp, acc, w, y, factor, new);
            });
        Ok(())
    }

    /// Makes a deserialised ensemble ready to step (its scratch).
    pub fn resumed(mut self) -> Self {
        self.proposals = vec![0.0; self.positions.len()];
        self
    }

    /// Brings the streams of every walker to this process from the ones
    /// owning them (a shared ensemble advances each stream only where it is
    /// owned), so that a snapshot taken here is whole. Every process of the
    /// share calls it.
    pub fn gather_streams(&mut self, share: &mut dyn WalkerShare) {
        for half in 0..2 {
            let range = self.half(half);
            let mine: Vec<u64> = self.walkers[share.owned(range.clone())]
                .iter()
                .flat_map(|w| stream_words(&w.rng))
                .collect();
            let mut all = vec![0u64; range.len() * RNG_WORDS];
            share.gather_words(range.clone(), RNG_WORDS, &mine, &mut all);
            for (w, words) in self.walkers[range]
                .iter_mut()
                .zip(all.chunks_exact(RNG_WORDS))
            {
                w.rng = stream_from_words(words);
            }
        }
    }

    pub fn ndim(&self) -> usize {
        self.ndim
    }
    pub fn walkers(&self) -> usize {
        self.walkers.len()
    }
    /// Iterations done so far.
    pub fn iteration(&self) -> usize {
        self.iteration
    }
    /// Walker positions, row-major (walker, parameter).
    pub fn positions(&self) -> &[f64] {
        &self.positions
    }
    pub fn log_prob(&self) -> &[f64] {
        &self.log_prob
    }
    /// Accepted proposals per walker.
    pub fn accepted(&self) -> impl Iterator<Item = u64> + '_ {
        self.accepted.iter().copied()
    }
    /// Log-density evaluations made by this process so far (the starting
    /// ones included); for a shared ensemble, those of the walkers it owns.
    pub fn evaluations(&self) -> u64 {
        self.walkers.iter().map(|w| w.evaluations).sum()
    }
    /// Evaluations that returned NaN (treated as −∞), as `evaluations`.
    pub fn nan_count(&self) -> u64 {
        self.walkers.iter().map(|w| w.nans).sum()
    }
}

/// A stream's state as words (its serde form is its four state words).
fn stream_words(rng: &Stream) -> [u64; RNG_WORDS] {
    let bytes = postcard::to_stdvec(rng).expect("a stream serialises");
    postcard::from_bytes(&bytes).expect("a stream is four words")
}

fn stream_from_words(words: &[u64]) -> Stream {
    let bytes = postcard::to_stdvec(words).expect("words serialise");
    // A slice is written with its length first; the stream reads the
    // four words after it.
    postcard::from_bytes(&bytes[1..]).expect("four words make a stream")
}

/// Evaluates the posterior, counting the evaluation; NaN counts and becomes −∞.
fn evaluate(posterior: &Posterior, x: &[f64], w: &mut Walker) -> Result<f64, EvalError> {
    Ok(counted(posterior.log_prob(x)?, w))
}

/// Counts an evaluation of walker `w`'s proposal; NaN counts and becomes −∞.
fn counted(lp: f64, w: &mut Walker) -> f64 {
    w.evaluations += 1;
    if lp.is_nan() {
        w.nans += 1;
        return f64::NEG_INFINITY;
    }
    lp
}

/// Moves the walker at `x` to `y` with probability min(1, factor · p(y)/p(x))
/// (`factor` and the log-probabilities in logs), drawing from its stream.
/// −∞ − −∞ is NaN, which compares false, so a walker stuck at −∞ is not moved
/// to another −∞.
fn accept(
    x: &mut [f64],
    lp: &mut f64,
    acc: &mut u64,
    w: &mut Walker,
    y: &[f64],
    factor: f64,
    lp_new: f64,
) {
    if w.rng.random::<f64>().ln() < factor + lp_new - *lp {
        x.copy_from_slice(y);
        *lp = lp_new;
        *acc += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag;
    use crate::model::PriorSpec;
    use crate::model::{Gaussian, LogDensity, Prior};

    fn posterior(likelihood: Box<dyn LogDensity>, d: usize) -> Posterior {
        let prior = Prior::from_spec(&PriorSpec::Uniform {
            low: vec![-50.0; d],
            high: vec![50.0; d],
        })
        .unwrap();
        Posterior::new(prior, likelihood, None)
    }

    fn settings(walkers: usize, steps: usize, moves: Vec<WeightedMove>) -> EnsembleSettings {
        EnsembleSettings {
            walkers,
            steps,
            burn: steps / 5,
            thin: 1,
            moves,
            init: Init::Ball {
                center: vec![0.5, -0.5],
                radius: vec![0.1, 0.1],
            },
            stop: None,
        }
    }

    /// Runs an ensemble, returning the chain (steps × walkers × ndim).
    fn run(p: &Posterior, s: &EnsembleSettings, seed: u64) -> (Ensemble, Vec<f64>) {
        let key = StreamKey::of_seed(seed);
        let mut e = Ensemble::start(p, s, key).unwrap();
        let mut chain = Vec::new();
        for _ in 0..s.steps {
            e.step(p, s).unwrap();
            chain.extend_from_slice(e.positions());
        }
        (e, chain)
    }

    #[test]
    fn a_snapshot_resumes_the_same_samples_and_streams_survive_words() {
        let p = posterior(
            Box::new(Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.3], vec![0.3, 1.0]]).unwrap()),
            2,
        );
        let s = settings(
            16,
            40,
            vec![WeightedMove {
                kind: Move::Stretch { a: 2.0 },
                weight: 1.0,
            }],
        );
        let (straight, _) = run(&p, &s, 3);
        let key = StreamKey::of_seed(3);
        let mut e = Ensemble::start(&p, &s, key).unwrap();
        for _ in 0..17 {
            e.step(&p, &s).unwrap();
        }
        let bytes = postcard::to_stdvec(&e).unwrap();
        let mut resumed = postcard::from_bytes::<Ensemble>(&bytes).unwrap().resumed();
        for _ in 17..40 {
            resumed.step(&p, &s).unwrap();
        }
        let bits = |e: &Ensemble| {
            e.positions()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&straight), bits(&resumed));
        assert_eq!(straight.log_prob(), resumed.log_prob());
        let mut rng = key.stream(5);
        rng.random::<u64>();
        let mut back = stream_from_words(&stream_words(&rng));
        assert_eq!(rng.random::<u64>(), back.random::<u64>());
    }

    #[test]
    fn each_move_recovers_a_correlated_gaussian() {
        let mean = [1.0, -2.0];
        let cov = vec![vec![1.0, 0.6], vec![0.6, 2.0]];
        let p = posterior(Box::new(Gaussian::new(&mean, &cov).unwrap()), 2);
        let moves = [
            Move::Stretch { a: 2.0 },
            Move::De {
                gamma0: 2.38 / 2.0,
                sigma: 1e-5,
            },
            Move::Walk { s: 8 },
        ];
        for mv in moves {
            let s = settings(
                32,
                3000,
                vec![WeightedMove {
                    kind: mv.clone(),
                    weight: 1.0,
                }],
            );
            let (e, chain) = run(&p, &s, 7);
            let acc = e.accepted().sum::<u64>() as f64 / (32.0 * 3000.0);
            assert!(acc > 0.1 && acc < 0.9, "{mv:?}: acceptance {acc}");
            let burn = s.burn * 32 * 2;
            let kept = &chain[burn..];
            for k in 0..2 {
                let sum = diag::ChainSummary::of_param(kept, 32, 2, k);
                let se = sum.mcse();
                assert!(
                    (sum.mean - mean[k]).abs() < 5.0 * se,
                    "{mv:?} param {k}: mean {} ± {se}, expected {}",
                    sum.mean,
                    mean[k]
                );
                let var = cov[k][k];
                assert!(
                    (sum.sd * sum.sd - var).abs() < 0.15 * var,
                    "{mv:?}: sd {}",
                    sum.sd
                );
            }
        }
    }

    #[test]
    fn same_key_same_samples_whatever_the_thread_count() {
        let p = posterior(
            Box::new(Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.3], vec![0.3, 1.0]]).unwrap()),
            2,
        );
        let s = settings(
            16,
            50,
            vec![
                WeightedMove {
                    kind: Move::Stretch { a: 2.0 },
                    weight: 1.0,
                },
                WeightedMove {
                    kind: Move::De {
                        gamma0: 1.2,
                        sigma: 1e-5,
                    },
                    weight: 1.0,
                },
            ],
        );
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let (_, a) = one.install(|| run(&p, &s, 3));
        let (_, b) = two.install(|| run(&p, &s, 3));
        assert_eq!(a, b);
        let (_, c) = two.install(|| run(&p, &s, 4));
        assert_ne!(a, c);
    }

    #[test]
    fn split_range_covers_the_range_in_order() {
        let parts: Vec<_> = (0..3).map(|m| split_range(10..17, m, 3)).collect();
        assert_eq!(parts, vec![10..13, 13..15, 15..17]);
        assert_eq!(split_range(0..2, 2, 3), 2..2);
    }

    /// Positions, log-probabilities and acceptance counts of every walker.
    type Board = std::sync::Arc<std::sync::Mutex<(Vec<f64>, Vec<f64>, Vec<u64>)>>;

    /// A share among threads of one process, through a common board.
    struct ThreadShare {
        member: usize,
        members: usize,
        board: Board,
        barrier: std::sync::Arc<std::sync::Barrier>,
        d: usize,
    }

    impl WalkerShare for ThreadShare {
        fn owned(&self, half: Range<usize>) -> Range<usize> {
            split_range(half, self.member, self.members)
        }
        fn gather_words(&mut self, _: Range<usize>, _: usize, _: &[u64], _: &mut [u64]) {
            unreachable!("the threads of this test never pause")
        }
        fn exchange(&mut self, failed: bool, v: HalfView<'_>) -> Result<(), SampleError> {
            assert!(!failed);
            let d = self.d;
            let mine = self.owned(v.walkers.clone());
            let rel = |r: &Range<usize>| (r.start - v.walkers.start)..(r.end - v.walkers.start);
            {
                let mut b = self.board.lock().unwrap();
                let r = rel(&mine);
                b.0[mine.start * d..mine.end * d]
                    .copy_from_slice(&v.positions[r.start * d..r.end * d]);
                b.1[mine.clone()].copy_from_slice(&v.log_prob[r.clone()]);
                b.2[mine.clone()].copy_from_slice(&v.accepted[r]);
            }
            self.barrier.wait();
            {
                let b = self.board.lock().unwrap();
                let w = v.walkers.clone();
                v.positions.copy_from_slice(&b.0[w.start * d..w.end * d]);
                v.log_prob.copy_from_slice(&b.1[w.clone()]);
                v.accepted.copy_from_slice(&b.2[w]);
            }
            self.barrier.wait();
            Ok(())
        }
    }

    #[test]
    fn a_shared_ensemble_gives_the_samples_of_a_whole_one() {
        use std::sync::{Arc, Barrier, Mutex};
        let p = Arc::new(posterior(
            Box::new(Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.3], vec![0.3, 1.0]]).unwrap()),
            2,
        ));
        let s = Arc::new(settings(
            12,
            40,
            vec![
                WeightedMove {
                    kind: Move::Stretch { a: 2.0 },
                    weight: 1.0,
                },
                WeightedMove {
                    kind: Move::Walk { s: 3 },
                    weight: 1.0,
                },
            ],
        ));
        let (whole, expected) = run(&p, &s, 9);
        let members = 3;
        let board = Arc::new(Mutex::new((vec![0.0; 24], vec![0.0; 12], vec![0; 12])));
        let barrier = Arc::new(Barrier::new(members));
        let handles: Vec<_> = (0..members)
            .map(|member| {
                let (p, s) = (p.clone(), s.clone());
                let mut share = ThreadShare {
                    member,
                    members,
                    board: board.clone(),
                    barrier: barrier.clone(),
                    d: 2,
                };
                std::thread::spawn(move || {
                    let key = StreamKey::of_seed(9);
                    let mut e = Ensemble::start_shared(&p, &s, key, &mut share).unwrap();
                    let mut chain = Vec::new();
                    for _ in 0..s.steps {
                        e.step_shared(&p, &s, &mut share).unwrap();
                        chain.extend_from_slice(e.positions());
                    }
                    (chain, e.evaluations(), e.accepted().collect::<Vec<_>>())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (chain, _, accepted) in &results {
            assert_eq!(chain, &expected);
            assert_eq!(accepted, &whole.accepted().collect::<Vec<_>>());
        }
        let evaluations: u64 = results.iter().map(|r| r.1).sum();
        assert_eq!(evaluations, whole.evaluations());
    }

    #[test]
    fn nan_is_counted_and_rejected() {
        struct NanRight;
        impl LogDensity for NanRight {
            fn dim(&self) -> usize {
                2
            }
            fn log_density(&self, x: &[f64]) -> Result<f64, EvalError> {
                Ok(if x[0] > 0.6 {
                    f64::NAN
                } else {
                    -0.5 * (x[0] * x[0] + x[1] * x[1])
                })
            }
        }
        let p = posterior(Box::new(NanRight), 2);
        let mut s = settings(
            8,
            200,
            vec![WeightedMove {
                kind: Move::Stretch { a: 2.0 },
                weight: 1.0,
            }],
        );
        s.init = Init::Ball {
            center: vec![-0.5, -0.5],
            radius: vec![0.01, 0.01],
        };
        let (e, chain) = run(&p, &s, 1);
        assert!(e.nan_count() > 0);
        assert!(
            chain.chunks(2).all(|x| x[0] <= 0.6),
            "a NaN proposal was accepted"
        );
    }

    #[test]
    fn failing_evaluation_names_walker_and_parameters() {
        struct Fails;
        impl LogDensity for Fails {
            fn dim(&self) -> usize {
                2
            }
            fn log_density(&self, _: &[f64]) -> Result<f64, EvalError> {
                Err(EvalError("solver diverged".into()))
            }
        }
        let p = posterior(Box::new(Fails), 2);
        let s = settings(
            4,
            1,
            vec![WeightedMove {
                kind: Move::Stretch { a: 2.0 },
                weight: 1.0,
            }],
        );
        let key = StreamKey::of_seed(0);
        let err = Ensemble::start(&p, &s, key).unwrap_err().to_string();
        assert!(
            err.contains("walker 0") && err.contains("solver diverged"),
            "{err}"
        );
    }

    #[test]
    fn all_walkers_outside_support_is_an_error() {
        let p = posterior(
            Box::new(Gaussian::new(&[0.0, 0.0], &[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap()),
            2,
        );
        let mut s = settings(
            4,
            1,
            vec![WeightedMove {
                kind: Move::Stretch { a: 2.0 },
                weight: 1.0,
            }],
        );
        s.init = Init::Ball {
            center: vec![100.0, 100.0],
            radius: vec![1e-3, 1e-3],
        };
        let key = StreamKey::of_seed(0);
        assert!(matches!(
            Ensemble::start(&p, &s, key),
            Err(SampleError::NoFiniteStart { walkers: 4 })
        ));
    }
}
