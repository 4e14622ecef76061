//! Ensemble moves (emcee's StretchMove, DEMove and WalkMove): each proposes a
//! new position for one walker from the walkers of the complementary half.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Move {
    /// Goodman & Weare (2010) stretch: y = c + z (x − c), g(z) ∝ 1/√z on [1/a, a].
    Stretch { a: f64 },
    /// ter Braak (2006) differential evolution, as emcee's DEMove:
    /// y = x + γ (c₁ − c₂), γ = γ₀ (1 + σ N(0, 1)).
    De { gamma0: f64, sigma: f64 },
    /// Goodman & Weare walk, as emcee's WalkMove: a normal step whose
    /// covariance is the sample covariance of `s` complementary walkers.
    Walk { s: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedMove {
    #[serde(flatten)]
    pub kind: Move,
    pub weight: f64,
}

impl Move {
    /// A short label, e.g. `stretch(a=2)`, for `sampo check`.
    pub fn label(&self) -> String {
        match self {
            Move::Stretch { a } => format!("stretch(a={a})"),
            Move::De { gamma0, sigma } => format!("de(gamma0={gamma0:.3}, sigma={sigma})"),
            Move::Walk { s } => format!("walk(s={s})"),
        }
    }

    /// Writes a proposal for the walker at `x` into `out`, using the
    /// complementary walkers `complement` (row-major, `ndim` per walker), and
    /// returns the log of the proposal's Metropolis–Hastings factor.
    pub fn propose<R: Rng + ?Sized>(
        &self,
        x: &[f64],
        complement: &[f64],
        rng: &mut R,
        out: &mut [f64],
    ) -> f64 {
        let ndim = x.len();
        let nc = complement.len() / ndim;
        let walker = |j: usize| &complement[j * ndim..(j + 1) * ndim];
        match *self {
            Move::Stretch { a } => {
                let c = walker(rng.random_range(0..nc));
                let z = stretch_z(a, rng.random::<f64>());
                for ((o, &xi), &ci) in out.iter_mut().zip(x).zip(c) {
                    *o = ci + z * (xi - ci);
                }
                (ndim as f64 - 1.0) * z.ln()
            }
            Move::De { gamma0, sigma } => {
                // An ordered pair of distinct walkers: (c₁ − c₂) and (c₂ − c₁)
                // are equally likely, so the proposal is symmetric.
                let j1 = rng.random_range(0..nc);
                let j2 = (j1 + 1 + rng.random_range(0..nc - 1)) % nc;
                let gamma = gamma0 * (1.0 + sigma * rng.sample::<f64, _>(StandardNormal));
                let (c1, c2) = (walker(j1), walker(j2));
                for (((o, &xi), &a), &b) in out.iter_mut().zip(x).zip(c1).zip(c2) {
                    *o = xi + gamma * (a - b);
                }
                0.0
            }
            Move::Walk { s } => {
                // Partial Fisher–Yates: s distinct complementary walkers.
                let mut chosen: Vec<usize> = (0..nc).collect();
                for k in 0..s {
                    let j = k + rng.random_range(0..nc - k);
                    chosen.swap(k, j);
                }
                let chosen = &chosen[..s];
                // x + Σ_k z_k (c_k − c̄) / √(s − 1) has covariance equal to the
                // sample covariance of the chosen walkers.
                let scale = 1.0 / ((s - 1) as f64).sqrt();
                out.copy_from_slice(x);
                let mut mean = vec![0.0; ndim];
                for &j in chosen {
                    for (m, &cj) in mean.iter_mut().zip(walker(j)) {
                        *m += cj / s as f64;
                    }
                }
                for &j in chosen {
                    let z = scale * rng.sample::<f64, _>(StandardNormal);
                    for ((o, &cj), &m) in out.iter_mut().zip(walker(j)).zip(&mean) {
                        *o += z * (cj - m);
                    }
                }
                0.0
            }
        }
    }
}

/// Inverse-CDF draw of the stretch factor: with u ~ U(0, 1),
/// z = ((a − 1) u + 1)² / a has density g(z) ∝ 1/√z on [1/a, a].
pub fn stretch_z(a: f64, u: f64) -> f64 {
    let t = (a - 1.0) * u + 1.0;
    t * t / a
}

/// Chooses a move by weight from one uniform draw.
pub fn choose(moves: &[WeightedMove], u: f64) -> &Move {
    let total: f64 = moves.iter().map(|m| m.weight).sum();
    let mut target = u * total;
    for m in moves {
        if target < m.weight {
            return &m.kind;
        }
        target -= m.weight;
    }
    &moves[moves.len() - 1].kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{Stream, StreamKey};

    fn rng() -> Stream {
        StreamKey::of_seed(11).stream(0)
    }

    /// g(z) ∝ 1/√z on [1/a, a], normalised.
    fn stretch_density(a: f64, z: f64) -> f64 {
        if (1.0 / a..=a).contains(&z) {
            1.0 / (z.sqrt() * 2.0 * (a.sqrt() - 1.0 / a.sqrt()))
        } else {
            0.0
        }
    }

    #[test]
    fn stretch_density_satisfies_the_detailed_balance_identity() {
        // Goodman & Weare's condition g(1/z) = z g(z), which makes the
        // factor z^(d−1) the right Metropolis–Hastings correction.
        let a = 2.0;
        for k in 1..100 {
            let z = 1.0 / a + (a - 1.0 / a) * k as f64 / 100.0;
            let lhs = stretch_density(a, 1.0 / z);
            let rhs = z * stretch_density(a, z);
            assert!((lhs - rhs).abs() < 1e-12 * rhs, "z = {z}");
        }
    }

    #[test]
    fn stretch_z_draws_follow_g() {
        // The CDF of z at a few points, against the empirical fraction, with
        // a tolerance of 5 binomial standard errors.
        let a = 2.5;
        let n = 200_000;
        let mut r = rng();
        let draws: Vec<f64> = (0..n).map(|_| stretch_z(a, r.random::<f64>())).collect();
        for q in [0.6f64, 1.0, 1.7, 2.2] {
            let cdf = (q.sqrt() - 1.0 / a.sqrt()) / (a.sqrt() - 1.0 / a.sqrt());
            let frac = draws.iter().filter(|&&z| z <= q).count() as f64 / n as f64;
            let se = (cdf * (1.0 - cdf) / n as f64).sqrt();
            assert!((frac - cdf).abs() < 5.0 * se, "q={q}: {frac} vs {cdf}");
        }
        assert!(draws.iter().all(|&z| (1.0 / a..=a).contains(&z)));
    }

    #[test]
    fn stretch_reverse_move_has_the_inverse_factor() {
        // y = c + z (x − c) ⇔ x = c + (1/z)(y − c), and the factors cancel.
        let (x, c) = ([0.3, -1.0, 2.0], [1.0, 0.5, -0.5]);
        let z = 1.7;
        let y: Vec<f64> = x
            .iter()
            .zip(&c)
            .map(|(xi, ci)| ci + z * (xi - ci))
            .collect();
        let back: Vec<f64> = y
            .iter()
            .zip(&c)
            .map(|(yi, ci)| ci + (yi - ci) / z)
            .collect();
        for (b, xi) in back.iter().zip(&x) {
            assert!((b - xi).abs() < 1e-12);
        }
        let d = x.len() as f64;
        assert!(((d - 1.0) * z.ln() + (d - 1.0) * (1.0 / z).ln()).abs() < 1e-15);
    }

    /// Mean and covariance of many proposals from one x.
    fn proposal_moments(m: &Move, x: &[f64], complement: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
        let d = x.len();
        let mut r = rng();
        let mut out = vec![0.0; d];
        let mut sum = vec![0.0; d];
        let mut sq = vec![0.0; d * d];
        for _ in 0..n {
            assert_eq!(m.propose(x, complement, &mut r, &mut out), 0.0);
            for i in 0..d {
                let di = out[i] - x[i];
                sum[i] += di;
                for j in 0..d {
                    sq[i * d + j] += di * (out[j] - x[j]);
                }
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let cov = (0..d * d)
            .map(|k| sq[k] / n as f64 - mean[k / d] * mean[k % d])
            .collect();
        (mean, cov)
    }

    #[test]
    fn de_and_walk_proposals_are_symmetric_with_the_expected_spread() {
        let complement = [0.0, 0.0, 1.0, 0.5, -1.0, 2.0, 0.5, -0.5];
        let x = [0.2, 0.1];
        let n = 200_000;
        // Sample covariance of the four complementary walkers (divisor 3).
        let cm = [0.125, 0.5];
        let mut c = [0.0; 4];
        for w in complement.chunks(2) {
            for i in 0..2 {
                for j in 0..2 {
                    c[i * 2 + j] += (w[i] - cm[i]) * (w[j] - cm[j]) / 3.0;
                }
            }
        }
        let (mean, cov) = proposal_moments(&Move::Walk { s: 4 }, &x, &complement, n);
        for i in 0..2 {
            let se = (c[i * 2 + i] / n as f64).sqrt();
            assert!(mean[i].abs() < 5.0 * se, "walk mean {mean:?}");
        }
        for k in 0..4 {
            assert!(
                (cov[k] - c[k]).abs() < 0.02 * (c[0] + c[3]),
                "walk cov {cov:?} vs {c:?}"
            );
        }
        // DE with σ = 0: displacements γ₀ (c_i − c_j) over ordered pairs i ≠ j;
        // their mean is 0 and their covariance is 2 γ₀² × the sample covariance.
        let g = 0.8;
        let (mean, cov) = proposal_moments(
            &Move::De {
                gamma0: g,
                sigma: 0.0,
            },
            &x,
            &complement,
            n,
        );
        for k in 0..4 {
            let expected = 2.0 * g * g * c[k];
            assert!(
                (cov[k] - expected).abs() < 0.02 * (c[0] + c[3]),
                "de cov {cov:?}"
            );
        }
        for i in 0..2 {
            let se = (2.0 * g * g * c[i * 2 + i] / n as f64).sqrt();
            assert!(mean[i].abs() < 5.0 * se, "de mean {mean:?}");
        }
    }

    #[test]
    fn moves_are_chosen_by_weight() {
        let moves = vec![
            WeightedMove {
                kind: Move::Stretch { a: 2.0 },
                weight: 3.0,
            },
            WeightedMove {
                kind: Move::Walk { s: 2 },
                weight: 1.0,
            },
        ];
        assert_eq!(choose(&moves, 0.0), &moves[0].kind);
        assert_eq!(choose(&moves, 0.74), &moves[0].kind);
        assert_eq!(choose(&moves, 0.76), &moves[1].kind);
        assert_eq!(choose(&moves, 0.999_999), &moves[1].kind);
    }
}
