//! The workspace's one seeded generator (see `ultracore-rng`).

pub use ultracore_rng::SplitMix64;
