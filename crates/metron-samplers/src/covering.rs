//! An m-per-class sampler whose epoch visits (almost) every sample exactly once.

use std::collections::{BTreeSet, VecDeque};

use rand::seq::SliceRandom as _;

use crate::classes::{check_batch_layout, group_by_class};
use crate::error::SamplerError;
use crate::sampler::{BatchSampler, epoch_rng};

const NAME: &str = "CoveringMPerClassSampler";

/// Batches of `batch_size / m` same-class groups of `m` samples, where an epoch is one pass
/// over the dataset rather than a number of independent draws.
///
/// # Semantics
///
/// An epoch:
///
/// 1. shuffle each class's samples and cut them into groups of `m`; a class's last group with
///    fewer than `m` samples is dropped for this epoch (merging it would break the "exactly
///    `m` per class" layout losses rely on);
/// 2. shuffle the list of all groups;
/// 3. pack `k = batch_size / m` groups per batch: each slot takes the earliest remaining group
///    (in the shuffled order) whose class is not yet in the batch, so a group whose class is
///    already there is deferred to a later batch, where it comes before groups not yet
///    reached; only when every remaining group's class is already in the batch does a slot
///    take the earliest remaining group anyway (a class then appears twice, as two groups);
/// 4. stop when fewer than `k` groups remain (the final partial batch is dropped), and shuffle
///    the list of batches, so the repeats that deferral pushes to the end of the packing do not
///    all land at the end of the epoch.
///
/// Inside a batch the groups are contiguous blocks of `m` same-class samples. No sample
/// appears twice in an epoch, and with `G = sum_c floor(|c| / m)` full groups an epoch has
/// `floor(G / k)` batches and uses exactly `m k floor(G / k)` samples, which is at least
/// `N - (m - 1) C - (batch_size - m)` for `C` classes (the dropped partial groups, then the
/// partial batch): see [`samples_per_epoch`](Self::samples_per_epoch).
#[derive(Debug, Clone)]
pub struct CoveringMPerClassSampler {
    classes: Vec<Vec<usize>>,
    batch_size: usize,
    m: usize,
    batches: usize,
    seed: u64,
}

impl CoveringMPerClassSampler {
    /// A sampler over `labels` (the class id of each dataset index; any ids).
    ///
    /// # Semantics
    ///
    /// Refuses an empty dataset, a zero `batch_size` or `m`, a `batch_size` that is not a
    /// multiple of `m`, and datasets that cut into fewer than `batch_size / m` full groups
    /// (no batch at all). Fewer classes than groups per batch is accepted: batches then repeat
    /// classes, as step 3 of the type's semantics allows.
    pub fn new(
        labels: &[usize],
        batch_size: usize,
        m: usize,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        check_batch_layout(NAME, labels.len(), batch_size, m)?;
        let classes = group_by_class(labels);
        let groups: usize = classes.iter().map(|c| c.len() / m).sum();
        let k = batch_size / m;
        if groups < k {
            return Err(SamplerError::TooFewGroups {
                sampler: NAME,
                groups,
                needed: k,
                per_class: m,
            });
        }
        Ok(Self {
            batches: groups / k,
            classes,
            batch_size,
            m,
            seed,
        })
    }

    /// Items per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Samples per group (per class per batch, unless a class repeats).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Samples one epoch uses, `batches_per_epoch() * batch_size()`.
    ///
    /// # Semantics
    ///
    /// The same for every epoch and at least `N - (m - 1) C - (batch_size - m)`, the coverage
    /// guarantee: divided by `N` it is the fraction of the dataset an epoch visits.
    pub fn samples_per_epoch(&self) -> usize {
        self.batches * self.batch_size
    }
}

/// Step 3 of the packing: `group_class[i]` is the class of the `i`-th group in the shuffled
/// order; returns `batches` lists of `k` group positions.
///
/// Per class, a queue of its remaining groups' positions; the set orders the classes by their
/// earliest remaining group, so "the earliest group whose class is not in the batch" is the
/// first set entry not in the batch, found after at most `k - 1` skips.
pub(crate) fn pack_groups(
    group_class: &[usize],
    n_classes: usize,
    k: usize,
    batches: usize,
) -> Vec<Vec<usize>> {
    let mut queues: Vec<VecDeque<usize>> = vec![VecDeque::new(); n_classes];
    for (pos, &c) in group_class.iter().enumerate() {
        queues[c].push_back(pos);
    }
    let mut heads: BTreeSet<(usize, usize)> = queues
        .iter()
        .enumerate()
        .filter_map(|(c, q)| q.front().map(|&pos| (pos, c)))
        .collect();
    // in_batch[c] == b + 1 while class c is in batch b.
    let mut in_batch = vec![0usize; n_classes];
    let mut out = Vec::with_capacity(batches);
    for b in 0..batches {
        let mut batch = Vec::with_capacity(k);
        for _ in 0..k {
            let pick = heads
                .iter()
                .find(|&&(_, c)| in_batch[c] != b + 1)
                .or_else(|| heads.first())
                .copied();
            let Some((pos, c)) = pick else {
                break;
            };
            heads.remove(&(pos, c));
            queues[c].pop_front();
            if let Some(&next) = queues[c].front() {
                heads.insert((next, c));
            }
            in_batch[c] = b + 1;
            batch.push(pos);
        }
        out.push(batch);
    }
    out
}

impl BatchSampler for CoveringMPerClassSampler {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.seed, epoch);
        let mut pools = self.classes.clone();
        // (class, offset of the group in the class's shuffled pool)
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for (c, pool) in pools.iter_mut().enumerate() {
            pool.shuffle(&mut rng);
            groups.extend((0..pool.len() / self.m).map(|g| (c, g * self.m)));
        }
        groups.shuffle(&mut rng);
        let group_class: Vec<usize> = groups.iter().map(|&(c, _)| c).collect();
        let k = self.batch_size / self.m;
        let mut batches: Vec<Vec<usize>> = pack_groups(&group_class, pools.len(), k, self.batches)
            .into_iter()
            .map(|slots| {
                let mut batch = Vec::with_capacity(self.batch_size);
                for pos in slots {
                    let (c, start) = groups[pos];
                    batch.extend_from_slice(&pools[c][start..start + self.m]);
                }
                batch
            })
            .collect();
        batches.shuffle(&mut rng);
        batches
    }

    fn batches_per_epoch(&self) -> usize {
        self.batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn packing_defers_and_repeats_only_when_forced() {
        // Classes: 0 0 1 0 2 ; k = 2.
        let packed = pack_groups(&[0, 0, 1, 0, 2], 3, 2, 2);
        // Batch 0: group 0 (class 0), group 1 deferred, group 2 (class 1).
        // Batch 1: deferred group 1 (class 0), then group 3 (class 0) deferred, group 4.
        assert_eq!(packed, vec![vec![0, 2], vec![1, 4]]);
        // Only class 0 left: forced repeat.
        assert_eq!(
            pack_groups(&[0, 0, 0, 0], 1, 2, 2),
            vec![vec![0, 1], vec![2, 3]]
        );
    }

    #[test]
    fn packing_repeats_a_class_only_when_no_other_remains() {
        let mut rng = metron_core::rng_from_seed(5);
        for _ in 0..300 {
            let n_classes = rng.random_range(1..6);
            let n_groups = rng.random_range(1..40);
            let k = rng.random_range(1..5);
            // Skewed: class 0 is common.
            let classes: Vec<usize> = (0..n_groups)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        0
                    } else {
                        rng.random_range(0..n_classes)
                    }
                })
                .collect();
            let batches = n_groups / k;
            let packed = pack_groups(&classes, n_classes, k, batches);
            let mut seen = vec![false; n_groups];
            for (b, batch) in packed.iter().enumerate() {
                assert_eq!(batch.len(), k);
                for (slot, &pos) in batch.iter().enumerate() {
                    assert!(!seen[pos]);
                    seen[pos] = true;
                    let earlier: Vec<usize> = batch[..slot].iter().map(|&p| classes[p]).collect();
                    if earlier.contains(&classes[pos]) {
                        // Forced: every group not yet placed has a class already in the batch.
                        let placed: Vec<usize> = packed[..b]
                            .iter()
                            .flatten()
                            .chain(&batch[..slot])
                            .copied()
                            .collect();
                        for (q, class) in classes.iter().enumerate() {
                            if !placed.contains(&q) {
                                assert!(earlier.contains(class));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        let labels = [0, 0, 0, 1, 1, 2];
        assert_eq!(
            CoveringMPerClassSampler::new(&[], 4, 2, 0).unwrap_err(),
            SamplerError::EmptyDataset { sampler: NAME }
        );
        assert_eq!(
            CoveringMPerClassSampler::new(&labels, 0, 2, 0).unwrap_err(),
            SamplerError::ZeroBatchSize { sampler: NAME }
        );
        assert_eq!(
            CoveringMPerClassSampler::new(&labels, 4, 0, 0).unwrap_err(),
            SamplerError::ZeroPerClass { sampler: NAME }
        );
        assert_eq!(
            CoveringMPerClassSampler::new(&labels, 3, 2, 0).unwrap_err(),
            SamplerError::NotDivisible {
                sampler: NAME,
                batch_size: 3,
                per_class: 2
            }
        );
        // Groups of 2: class 0 gives 1, class 1 gives 1, class 2 none.
        let err = CoveringMPerClassSampler::new(&labels, 6, 2, 0).unwrap_err();
        assert_eq!(
            err,
            SamplerError::TooFewGroups {
                sampler: NAME,
                groups: 2,
                needed: 3,
                per_class: 2
            }
        );
        assert!(err.to_string().contains("only 2 groups"));
        let s = CoveringMPerClassSampler::new(&labels, 4, 2, 0).unwrap();
        assert_eq!(s.batches_per_epoch(), 1);
        assert_eq!(s.samples_per_epoch(), 4);
    }
}
