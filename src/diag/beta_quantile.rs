//! Quantiles of the Beta distribution to a few ulps for the large shape
//! parameters that large effective sample sizes give, where statrs's alone
//! are off (ArviZ's MCSE of a quantile picks order statistics with them).
//!
//! statrs's `Beta::inverse_cdf` (AS 109 on its own incomplete beta) is the
//! starting point. Against scipy's (Boost's, within an ulp of the exact
//! value by mpmath) its relative error grows with the shapes: ≤ 5e-12 for
//! ESS ≤ 1e5, 4e-11 at 1e7, 2e-9 at 1e8 (shapes ESS·p + 1, ESS·(1 − p) + 1).
//! Its incomplete beta is off by up to 0.2 near the mean at shapes ~1e7
//! (the continued fraction runs out of iterations), and by 1e-9 elsewhere:
//! ln B(a, b) from three log-gammas of size ~1e8 loses eight digits. So the
//! root is polished here by Newton steps on an incomplete beta whose
//! prefactor x^a (1 − x)^b / B(a, b) is formed without that cancellation
//! (the route Boost takes), and whose continued fraction may run as long as
//! it needs (O(√max(a, b)) terms near the mean). The result is within 4e-15
//! (relative) of scipy's for ESS from 2 to 3e8 (`arviz_fixtures` checks
//! 360 such quantiles); the index ArviZ takes from it, floor or ceil of
//! quantile · draws − 1, then only differs when that lands within about
//! 1e-15 · draws of an integer.

use statrs::distribution::{Beta, ContinuousCDF};

/// The `p` quantile of Beta(a, b), for shapes a, b ≥ 1 and 0 < p < 1.
/// NaN if an argument is NaN or outside that range.
pub(super) fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && a >= 1.0 && b >= 1.0 && a.is_finite() && b.is_finite()) {
        return f64::NAN;
    }
    let start = Beta::new(a, b).map_or(f64::NAN, |d| d.inverse_cdf(p));
    // Keep a bracket so that a poor start or step cannot leave (0, 1).
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut x = if start > 0.0 && start < 1.0 {
        start
    } else {
        a / (a + b)
    };
    for _ in 0..64 {
        let (cdf, density) = cdf_and_density(x, a, b);
        if cdf > p {
            hi = x;
        } else {
            lo = x;
        }
        let mut next = x - (cdf - p) / density;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        let step = (next - x).abs();
        x = next;
        if step <= 2.0 * f64::EPSILON * x || hi - lo <= 2.0 * f64::EPSILON * x {
            break;
        }
    }
    x
}

/// I_x(a, b) and the Beta(a, b) density at 0 < x < 1.
fn cdf_and_density(x: f64, a: f64, b: f64) -> (f64, f64) {
    let prefactor = power_terms(x, a, b);
    let density = prefactor / (x * (1.0 - x));
    // The continued fraction converges fast below the mean and slowly above
    // it; above, the symmetry I_x(a, b) = 1 − I_{1−x}(b, a).
    let cdf = if x < (a + 1.0) / (a + b + 2.0) {
        prefactor * continued_fraction(x, a, b) / a
    } else {
        1.0 - prefactor * continued_fraction(1.0 - x, b, a) / b
    };
    (cdf, density)
}

/// x^a (1 − x)^b / B(a, b), by
/// ln = a·log1pmx(t/a) + b·log1pmx(−t/b) + ½ ln(ab/s) − ½ ln 2π
///      + δ(s) − δ(a) − δ(b),
/// with s = a + b, t = x s − a and δ the remainder of Stirling's formula:
/// every term is O(1) near the mean, where a ln x and ln B(a, b) are O(s).
fn power_terms(x: f64, a: f64, b: f64) -> f64 {
    // s = a + b exactly, as s_hi + s_lo (Knuth's two-sum), and t with one
    // rounding: its size is O(√s) while x s is O(s).
    let s_hi = a + b;
    let b_virtual = s_hi - a;
    let s_lo = (a - (s_hi - b_virtual)) + (b - b_virtual);
    let t = x.mul_add(s_hi, -a) + x * s_lo;
    let log = a * log1pmx(t / a) + b * log1pmx(-t / b) + 0.5 * (a.ln() + b.ln() - s_hi.ln())
        - 0.5 * (2.0 * std::f64::consts::PI).ln()
        + stirling_remainder(s_hi)
        - stirling_remainder(a)
        - stirling_remainder(b);
    log.exp()
}

/// ln(1 + u) − u, without the cancellation of the two for small u.
fn log1pmx(u: f64) -> f64 {
    if u.abs() >= 0.25 {
        return u.ln_1p() - u;
    }
    // Σ_{k≥2} (−1)^{k+1} u^k / k; |u| < 1/4 makes 30 terms ample.
    let mut power = u * u;
    let mut sum = 0.0;
    for k in 2..40 {
        let term = power / k as f64;
        sum += if k % 2 == 0 { -term } else { term };
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
        power *= u;
    }
    sum
}

/// δ(z) = ln Γ(z) − (z − ½) ln z + z − ½ ln 2π.
fn stirling_remainder(z: f64) -> f64 {
    if z < 10.0 {
        // Small terms: no cancellation to fear.
        return libm::lgamma(z) - (z - 0.5) * z.ln() + z - 0.5 * (2.0 * std::f64::consts::PI).ln();
    }
    // Stirling's series, B_{2k} / (2k (2k − 1) z^{2k−1}); at z = 10 the
    // next term is below 1e-17.
    const C: [f64; 8] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
        -3617.0 / 122_400.0,
    ];
    let w = 1.0 / (z * z);
    let series = C.iter().rev().fold(0.0, |acc, c| acc * w + c);
    series / z
}

/// How close to 0 Lentz's method lets its terms come.
const TINY: f64 = 1e-300;

/// The continued fraction of I_x(a, b) · a B(a, b) / (x^a (1 − x)^b)
/// (Numerical Recipes' `betacf`, modified Lentz), run to convergence.
fn continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    // Near the mean it takes O(√max(a, b)) terms; the cap only guards
    // against a loop that never ends.
    let cap = 100 + 20 * (a.max(b).sqrt() as usize);
    for m in 1..cap {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        h *= lentz(aa, &mut c, &mut d);
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        let delta = lentz(aa, &mut c, &mut d);
        h *= delta;
        if (delta - 1.0).abs() <= f64::EPSILON {
            break;
        }
    }
    h
}

/// One step of Lentz's method for a continued fraction: folds the
/// coefficient `aa` into `c` and `d` (kept away from 0) and returns the
/// factor d·c that multiplies the fraction's value.
fn lentz(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 + aa * *d;
    if d.abs() < TINY {
        *d = TINY;
    }
    *c = 1.0 + aa / *c;
    if c.abs() < TINY {
        *c = TINY;
    }
    *d = 1.0 / *d;
    *d * *c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy.stats.beta.ppf (Boost's ibeta_inv) at ArviZ's two
    /// probabilities, for shapes ESS·p + 1, ESS·(1 − p) + 1 (the fixture
    /// test checks 360 more).
    #[test]
    fn matches_scipy() {
        let cases = [
            // (p, a, b, scipy)
            (0.1586553, 1.6, 12.4, 0.036518201739771564),
            (0.8413447, 1.6, 12.4, 0.19403242133971155),
            (0.1586553, 400001.0, 7600001.0, 0.049923057294477734),
            (0.8413447, 50000001.0, 50000001.0, 0.5000499999899806),
        ];
        for (p, a, b, want) in cases {
            let got = beta_quantile(p, a, b);
            assert!(
                (got - want).abs() <= 4e-15 * want,
                "{p} {a} {b}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn edges_are_nan() {
        assert!(beta_quantile(f64::NAN, 2.0, 3.0).is_nan());
        assert!(beta_quantile(0.5, f64::NAN, 3.0).is_nan());
        assert!(beta_quantile(0.0, 2.0, 3.0).is_nan());
        assert!(beta_quantile(0.5, 0.5, 3.0).is_nan());
    }

    #[test]
    fn uniform_and_symmetric() {
        assert!((beta_quantile(0.3, 1.0, 1.0) - 0.3).abs() < 1e-15);
        assert!((beta_quantile(0.5, 7.5, 7.5) - 0.5).abs() < 1e-15);
        let (lo, hi) = (beta_quantile(0.2, 3e6, 5e6), beta_quantile(0.8, 5e6, 3e6));
        assert!((lo + hi - 1.0).abs() < 1e-15, "{lo} {hi}");
    }
}
