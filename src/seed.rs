//! Random streams keyed by what they belong to, never by rank, thread or order.
//!
//! A stream is a Xoshiro256++ generator seeded through SplitMix64 from a hash of
//! (run seed, kind, stage, task, index): the kind's id comes from the registry
//! (`jobs`), the task identity and the index are the kind's (a state and
//! replicate, a chunk; a walker, chain, particle, item or path). The same key
//! gives the same stream on any rank and any thread, which is what makes runs
//! layout-independent, and two kinds or stages never share a stream.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator used everywhere in sampo.
pub type Stream = Xoshiro256PlusPlus;

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of a family of random streams: the run's seed, the kind of work
/// (its id in the registry), the stage, and a task identity the kind
/// chooses (a state and replicate, a chunk); `stream(index)` is the stream
/// of one walker, chain, particle, item or path of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    pub seed: u64,
    pub kind: u64,
    pub stage: u64,
    pub task: u64,
}

impl StreamKey {
    /// The stream of member `index` of this task.
    pub fn stream(&self, index: u64) -> Stream {
        let key = mix(mix(mix(mix(mix(self.seed) ^ self.kind) ^ self.stage) ^ self.task) ^ index);
        Stream::seed_from_u64(key)
    }

    /// The streams of draws that are not part of any run: the spec's
    /// validation, tests. Kind 0 belongs to no kind of work.
    pub fn validation() -> Self {
        Self::of_seed(0)
    }

    /// Kind 0, stage 0, task 0 of `seed`: for tests.
    pub fn of_seed(seed: u64) -> Self {
        Self {
            seed,
            kind: 0,
            stage: 0,
            task: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_every_key_part_and_repeat_exactly() {
        let k = StreamKey {
            seed: 1,
            kind: 1,
            stage: 0,
            task: 0,
        };
        let first = |mut s: Stream| s.next_u64();
        let base = first(k.stream(0));
        assert_eq!(base, first(k.stream(0)));
        assert_ne!(base, first(k.stream(1)));
        assert_ne!(base, first(StreamKey { seed: 2, ..k }.stream(0)));
        assert_ne!(base, first(StreamKey { kind: 2, ..k }.stream(0)));
        assert_ne!(base, first(StreamKey { stage: 1, ..k }.stream(0)));
        assert_ne!(base, first(StreamKey { task: 1, ..k }.stream(0)));
        // Swapping key parts must not collide.
        let a = StreamKey { task: 1, ..k };
        let b = StreamKey { stage: 1, ..k };
        let c = StreamKey {
            kind: 0,
            task: 1,
            ..k
        };
        assert_ne!(first(a.stream(0)), first(b.stream(0)));
        assert_ne!(first(a.stream(0)), first(c.stream(0)));
        assert_ne!(
            first(k.stream(1)),
            first(StreamKey { task: 1, ..k }.stream(0))
        );
    }
}
