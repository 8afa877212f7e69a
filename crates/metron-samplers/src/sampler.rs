//! The trait every sampler implements, and the per-epoch random stream they share.

use metron_core::Rng;

/// A source of index batches, one list per epoch, reproducible from a seed.
///
/// # Semantics
///
/// A sampler is a pure function of `(seed, epoch)`: it holds no cursor, so any epoch can be
/// regenerated (resuming a run, checking a worker) without replaying the earlier ones, and every
/// worker of a distributed run computes the same epoch and keeps its own [`shard`]. The epoch's
/// randomness is `rng_from_seed(split_seed(seed, epoch))`, so epochs are independent streams
/// rather than consecutive stretches of one stream.
///
/// [`shard`]: BatchSampler::shard
pub trait BatchSampler {
    /// The batches of one epoch, each a list of dataset indices.
    ///
    /// # Semantics
    ///
    /// Deterministic in `(seed, epoch)`; never panics, because every input that could make it
    /// fail is rejected by the sampler's constructor.
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>>;

    /// How many batches every epoch has, known without generating one.
    ///
    /// # Semantics
    ///
    /// Equals `self.epoch(e).len()` for every `e`, so learning-rate schedules and progress bars
    /// can be sized up front.
    fn batches_per_epoch(&self) -> usize;

    /// The part of `epoch` that worker `rank` of `world` trains on: batches `rank`,
    /// `rank + world`, `rank + 2 world`, ...
    ///
    /// # Semantics
    ///
    /// Shards of one epoch are disjoint, and interleaving them round-robin (rank 0's first
    /// batch, rank 1's first, ..., rank 0's second, ...) gives back `epoch(e)` exactly. Shards may
    /// differ in length by one batch when `world` does not divide `batches_per_epoch()`; callers
    /// that need equal step counts should truncate to the shortest. An impossible layout
    /// (`world == 0` or `rank >= world`) yields an empty list rather than a panic, since a worker
    /// that owns no part of the world has nothing to train on.
    fn shard(&self, epoch: u64, rank: usize, world: usize) -> Vec<Vec<usize>> {
        if world == 0 || rank >= world {
            return Vec::new();
        }
        self.epoch(epoch)
            .into_iter()
            .skip(rank)
            .step_by(world)
            .collect()
    }
}

/// The random stream of one epoch: separate per epoch so that regenerating epoch `e` needs no
/// knowledge of epochs before it.
pub(crate) fn epoch_rng(seed: u64, epoch: u64) -> Rng {
    metron_core::rng_from_seed(metron_core::split_seed(seed, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<Vec<usize>>);

    impl BatchSampler for Fixed {
        fn epoch(&self, _epoch: u64) -> Vec<Vec<usize>> {
            self.0.clone()
        }
        fn batches_per_epoch(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn shard_round_robin_and_degenerate_layouts() {
        let s = Fixed((0..7).map(|i| vec![i]).collect());
        assert_eq!(s.shard(0, 0, 3), vec![vec![0], vec![3], vec![6]]);
        assert_eq!(s.shard(0, 1, 3), vec![vec![1], vec![4]]);
        assert_eq!(s.shard(0, 2, 3), vec![vec![2], vec![5]]);
        assert_eq!(s.shard(0, 0, 1), s.epoch(0));
        assert!(s.shard(0, 0, 0).is_empty());
        assert!(s.shard(0, 3, 3).is_empty());
        assert!(s.shard(0, 9, 3).is_empty());
    }

    #[test]
    fn epoch_streams_differ() {
        use rand::Rng as _;
        let a: u64 = epoch_rng(1, 0).random();
        let b: u64 = epoch_rng(1, 1).random();
        let c: u64 = epoch_rng(1, 0).random();
        assert_ne!(a, b);
        assert_eq!(a, c);
    }
}
