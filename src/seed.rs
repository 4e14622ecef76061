//! Random streams keyed by what they belong to, never by rank, thread or order.
//!
//! A stream is a Xoshiro256++ generator seeded through SplitMix64 from a hash of
//! (run seed, state, replicate, index). The same key gives the same stream on any
//! rank and any thread, which is what makes runs layout-independent.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator used everywhere in sampo.
pub type Stream = Xoshiro256PlusPlus;

/// Index reserved for the ensemble-level stream of a task (move choice).
pub const ENSEMBLE_STREAM: u64 = u64::MAX;

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Identifies the random streams of one task: a state of one replicate of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskKey {
    pub seed: u64,
    pub state: u64,
    pub replicate: u64,
}

impl TaskKey {
    /// The stream of walker (or chain, or item) `index` of this task.
    pub fn stream(&self, index: u64) -> Stream {
        let key = mix(mix(mix(mix(self.seed) ^ self.state) ^ self.replicate) ^ index);
        Stream::seed_from_u64(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_every_key_part_and_repeat_exactly() {
        let k = TaskKey {
            seed: 1,
            state: 0,
            replicate: 0,
        };
        let first = |mut s: Stream| s.next_u64();
        let base = first(k.stream(0));
        assert_eq!(base, first(k.stream(0)));
        assert_ne!(base, first(k.stream(1)));
        assert_ne!(base, first(TaskKey { seed: 2, ..k }.stream(0)));
        assert_ne!(base, first(TaskKey { state: 1, ..k }.stream(0)));
        assert_ne!(base, first(TaskKey { replicate: 1, ..k }.stream(0)));
        // Swapping key parts must not collide.
        let a = TaskKey {
            seed: 0,
            state: 1,
            replicate: 0,
        };
        let b = TaskKey {
            seed: 0,
            state: 0,
            replicate: 1,
        };
        assert_ne!(first(a.stream(0)), first(b.stream(0)));
    }
}
