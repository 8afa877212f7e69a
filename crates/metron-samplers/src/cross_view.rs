//! VIGOR-style batches of cross-view pairs in which no satellite image appears twice.

use std::collections::VecDeque;

use rand::seq::SliceRandom as _;

use crate::error::SamplerError;
use crate::sampler::{BatchSampler, epoch_rng};

const NAME: &str = "CrossViewPairSampler";

/// Batches of pair indices (panoramas, in VIGOR) such that no two pairs in a batch involve a
/// common satellite image, so that no in-batch negative is in fact a positive or semi-positive
/// of the anchor.
///
/// # Semantics
///
/// Pair `i` involves the satellite indices `satellites[i]` (its positive, plus semi-positives
/// when those must not serve as negatives either). An epoch: shuffle the pair indices into a
/// pool; fill each batch by scanning the pool from the front and taking every pair that shares
/// no satellite with the pairs already taken, until the batch holds `batch_size` pairs; pairs
/// scanned but not taken stay at the front of the pool, in order, and are tried first for the
/// next batch. Within a batch, pairs keep their pool order.
///
/// The number of batches is fixed so that [`BatchSampler::batches_per_epoch`] is exact: a
/// batch is emitted only when the greedy fill is guaranteed to succeed whatever the shuffle.
/// While a batch holds `j` pairs, at most `D_j` pool pairs conflict with it, `D_j` being the sum
/// of the `j` largest conflict degrees (the number of other pairs sharing a satellite with a
/// pair), so a pool of at least `batch_size + D_{batch_size - 1}` pairs always fills a batch.
/// The epoch therefore has `T = min(floor(N / batch_size), floor((N - batch_size - D) /
/// batch_size) + 1)` batches (`D = D_{batch_size - 1}`), which is `floor(N / batch_size)`
/// whenever no two pairs share a satellite. The pairs left in the pool after `T` batches (the
/// final partial batch of VIGOR's drop-last, plus about `D / batch_size` batches' worth when
/// satellites are shared) are in no batch this epoch; which pairs those are changes with every
/// shuffle.
#[derive(Debug, Clone)]
pub struct CrossViewPairSampler {
    /// Per pair, its distinct satellites renumbered densely.
    satellites: Vec<Vec<usize>>,
    n_satellites: usize,
    batch_size: usize,
    batches: usize,
    seed: u64,
}

impl CrossViewPairSampler {
    /// A sampler over pairs whose `i`-th entry lists the satellite indices pair `i` involves.
    ///
    /// # Semantics
    ///
    /// Satellite indices are arbitrary ids (only equality matters) and a pair listing one twice
    /// is the same as listing it once; a pair with an empty list conflicts with nothing.
    /// Refuses an empty list of pairs, a zero `batch_size`, fewer pairs than one batch, and
    /// pairs that share satellites so much that even one batch is not guaranteed
    /// (`N < batch_size + D`, see the type). Building costs
    /// `O(sum over satellites of (pairs involving it)^2)` for the conflict degrees.
    pub fn new(
        satellites: &[Vec<usize>],
        batch_size: usize,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        let n = satellites.len();
        if n == 0 {
            return Err(SamplerError::EmptyDataset { sampler: NAME });
        }
        if batch_size == 0 {
            return Err(SamplerError::ZeroBatchSize { sampler: NAME });
        }
        if n < batch_size {
            return Err(SamplerError::FewerItemsThanBatch {
                sampler: NAME,
                items: n,
                batch_size,
            });
        }
        let mut ids: Vec<usize> = satellites.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let dense: Vec<Vec<usize>> = satellites
            .iter()
            .map(|sats| {
                let mut d: Vec<usize> = sats
                    .iter()
                    .filter_map(|s| ids.binary_search(s).ok())
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        let mut degrees = conflict_degrees(&dense, ids.len());
        degrees.sort_unstable_by(|a, b| b.cmp(a));
        let blocked: usize = degrees.iter().take(batch_size - 1).sum();
        let needed = batch_size.saturating_add(blocked);
        if n < needed {
            return Err(SamplerError::ConflictsTooDense {
                sampler: NAME,
                pairs: n,
                batch_size,
                needed,
            });
        }
        let batches = (n / batch_size).min((n - needed) / batch_size + 1);
        Ok(Self {
            satellites: dense,
            n_satellites: ids.len(),
            batch_size,
            batches,
            seed,
        })
    }

    /// Pairs per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// For each pair, how many other pairs share at least one satellite with it.
fn conflict_degrees(satellites: &[Vec<usize>], n_satellites: usize) -> Vec<usize> {
    let mut pairs_of: Vec<Vec<usize>> = vec![Vec::new(); n_satellites];
    for (p, sats) in satellites.iter().enumerate() {
        for &s in sats {
            pairs_of[s].push(p);
        }
    }
    // stamp[q] == p + 1 once q has been counted for p.
    let mut stamp = vec![0usize; satellites.len()];
    satellites
        .iter()
        .enumerate()
        .map(|(p, sats)| {
            stamp[p] = p + 1;
            let mut degree = 0;
            for &s in sats {
                for &q in &pairs_of[s] {
                    if stamp[q] != p + 1 {
                        stamp[q] = p + 1;
                        degree += 1;
                    }
                }
            }
            degree
        })
        .collect()
}

impl BatchSampler for CrossViewPairSampler {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.seed, epoch);
        let mut order: Vec<usize> = (0..self.satellites.len()).collect();
        order.shuffle(&mut rng);
        let mut pool: VecDeque<usize> = order.into();
        // used[s] == b + 1 while satellite s is in batch b.
        let mut used = vec![0usize; self.n_satellites];
        let mut skipped = Vec::new();
        let mut out = Vec::with_capacity(self.batches);
        for b in 0..self.batches {
            let mut batch = Vec::with_capacity(self.batch_size);
            while batch.len() < self.batch_size {
                let Some(p) = pool.pop_front() else {
                    break;
                };
                let sats = &self.satellites[p];
                if sats.iter().all(|&s| used[s] != b + 1) {
                    for &s in sats {
                        used[s] = b + 1;
                    }
                    batch.push(p);
                } else {
                    skipped.push(p);
                }
            }
            for p in skipped.drain(..).rev() {
                pool.push_front(p);
            }
            // The pool-size guarantee in `new` makes a short batch impossible; stopping keeps
            // the invariant (full, conflict-free batches) even if it were not.
            if batch.len() < self.batch_size {
                break;
            }
            out.push(batch);
        }
        out
    }

    fn batches_per_epoch(&self) -> usize {
        self.batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrees_count_distinct_neighbours() {
        // Pairs 0 and 1 share two satellites: one conflict, not two.
        let sats = vec![vec![0, 1], vec![0, 1], vec![2], vec![1, 2]];
        assert_eq!(conflict_degrees(&sats, 3), vec![2, 2, 1, 3]);
    }

    #[test]
    fn disjoint_pairs_give_floor_n_over_b() {
        let sats: Vec<Vec<usize>> = (0..103).map(|i| vec![1000 * i]).collect();
        let s = CrossViewPairSampler::new(&sats, 10, 0).unwrap();
        assert_eq!(s.batches_per_epoch(), 10);
        assert_eq!(s.epoch(0).len(), 10);
    }

    #[test]
    fn shared_satellites_cost_batches() {
        // 40 pairs; pairs 2i and 2i+1 share satellite i: every degree is 1.
        let sats: Vec<Vec<usize>> = (0..40).map(|p| vec![p / 2]).collect();
        let s = CrossViewPairSampler::new(&sats, 8, 0).unwrap();
        // needed = 8 + 7 = 15: batch b guaranteed while 40 - 8 b >= 15, so b <= 3.
        assert_eq!(s.batches_per_epoch(), 4);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert_eq!(
            CrossViewPairSampler::new(&[], 4, 0).unwrap_err(),
            SamplerError::EmptyDataset { sampler: NAME }
        );
        let sats: Vec<Vec<usize>> = (0..6).map(|i| vec![i]).collect();
        assert_eq!(
            CrossViewPairSampler::new(&sats, 0, 0).unwrap_err(),
            SamplerError::ZeroBatchSize { sampler: NAME }
        );
        assert_eq!(
            CrossViewPairSampler::new(&sats, 7, 0).unwrap_err(),
            SamplerError::FewerItemsThanBatch {
                sampler: NAME,
                items: 6,
                batch_size: 7
            }
        );
        // Every pair shares satellite 0: degree 5 each, needed = 3 + 10.
        let star: Vec<Vec<usize>> = (0..6).map(|i| vec![0, i + 1]).collect();
        let err = CrossViewPairSampler::new(&star, 3, 0).unwrap_err();
        assert_eq!(
            err,
            SamplerError::ConflictsTooDense {
                sampler: NAME,
                pairs: 6,
                batch_size: 3,
                needed: 13
            }
        );
        assert!(err.to_string().contains("at least 13 pairs"));
        // Batch size 1 never conflicts.
        assert_eq!(
            CrossViewPairSampler::new(&star, 1, 0)
                .unwrap()
                .batches_per_epoch(),
            6
        );
    }
}
