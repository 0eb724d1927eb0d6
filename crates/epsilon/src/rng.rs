//! SplitMix64 (Steele, Lea and Flood 2014), the workspace's one seeded
//! generator: tiny, fast, and bit-identical on every platform, so a seed
//! fixes a training run and a bootstrap exactly. `tools/` scripts
//! implement the same generator where they must draw the same numbers.

pub use ultracore_portfolio::bench::SplitMix64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_sequence() {
        // The first outputs for seed 1234567 of the reference C implementation.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::new(7);
        for n in [1usize, 2, 3, 52, 1000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
    }
}
