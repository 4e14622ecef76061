//! Test chains from a tiny generator of their own (xorshift64 and
//! Box–Muller), so that frozen results never move with a crate's streams.

/// Uniforms in (0, 1) from xorshift64 seeded with `seed` (not 0).
pub(super) fn uniforms(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A standard normal from two uniforms (Box–Muller, the cosine branch).
pub(super) fn normal(uniform: &mut impl FnMut() -> f64) -> f64 {
    let (u, v) = (uniform(), uniform());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
