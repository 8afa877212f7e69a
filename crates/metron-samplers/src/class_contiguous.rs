//! Smooth-AP's class-contiguous batches: distinct classes, each a contiguous block of g.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::seq::SliceRandom as _;

use crate::classes::{check_batch_layout, group_by_class};
use crate::error::SamplerError;
use crate::sampler::{BatchSampler, epoch_rng};

const NAME: &str = "ClassContiguousSampler";

/// Batches of `batch_size / g` distinct classes laid out as contiguous blocks of `g` samples,
/// after Smooth-AP's `reshuffle` (Andrew-Brown1/Smooth_AP, `datasets.py`), whose loss reads a
/// batch as consecutive same-class blocks.
///
/// # Semantics
///
/// An epoch: shuffle each class's samples; shuffle the class order once; then build batches
/// one pass at a time, each pass adding one group (the class's next `g` unused samples) from
/// each of `batch_size / g` distinct classes that still have `g` unused samples; stop when fewer
/// than `batch_size / g` classes do; finally shuffle the list of batches. Samples left over (a
/// class's last `< g`, and whatever remains when too few classes are left) are not used this
/// epoch. Inside a batch, blocks follow the shuffled class order.
///
/// One deliberate difference from Smooth-AP: when more classes are eligible than a pass needs,
/// Smooth-AP takes the first ones in the shuffled order, while this sampler takes those with
/// the most full groups left (ties broken by the shuffled order). Smooth-AP's rule makes the
/// number of batches depend on the shuffle (capacities `[1, 1, 2]` groups, two classes per
/// batch: order `[1, 1, 2]` yields one batch, order `[2, 1, 1]` two), which would break
/// [`BatchSampler::batches_per_epoch`]; the most-groups-first rule always yields the largest
/// number of batches any rule can, `T* = max { T : sum_c min(a_c, T) >= k T }` with `a_c` the
/// full groups of class `c` and `k = batch_size / g`, whatever the shuffle. On balanced data
/// the rule also cycles through all classes instead of draining the first `k` together, so
/// the same classes do not keep meeting in the same batches.
#[derive(Debug, Clone)]
pub struct ClassContiguousSampler {
    classes: Vec<Vec<usize>>,
    batch_size: usize,
    g: usize,
    batches: usize,
    seed: u64,
}

impl ClassContiguousSampler {
    /// Smooth-AP's default samples per class.
    pub const DEFAULT_SAMPLES_PER_CLASS: usize = 4;

    /// A sampler over `labels` (the class id of each dataset index; any ids) with
    /// `batch_size / samples_per_class` classes per batch.
    ///
    /// # Semantics
    ///
    /// Refuses an empty dataset, a zero batch size or `samples_per_class`, a batch size that is
    /// not a multiple of `samples_per_class` (Smooth-AP compares the group count with the float
    /// `batch_size / samples_per_class` and would emit nothing), and datasets with fewer than
    /// `batch_size / samples_per_class` classes of at least `samples_per_class` samples, which
    /// cannot fill one batch.
    pub fn new(
        labels: &[usize],
        batch_size: usize,
        samples_per_class: usize,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        let g = samples_per_class;
        check_batch_layout(NAME, labels.len(), batch_size, g)?;
        let classes = group_by_class(labels);
        let k = batch_size / g;
        let capacities: Vec<usize> = classes.iter().map(|c| c.len() / g).collect();
        let eligible = capacities.iter().filter(|&&a| a > 0).count();
        if eligible < k {
            return Err(SamplerError::TooFewClasses {
                sampler: NAME,
                eligible,
                needed: k,
                per_class: g,
            });
        }
        Ok(Self {
            batches: max_rounds(&capacities, k),
            classes,
            batch_size,
            g,
            seed,
        })
    }

    /// Items per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The length of each same-class block.
    pub fn samples_per_class(&self) -> usize {
        self.g
    }

    /// Distinct classes per batch.
    pub fn classes_per_batch(&self) -> usize {
        self.batch_size / self.g
    }
}

/// The largest number of rounds in which `k` distinct classes each give up one unit, class `c`
/// having `caps[c]` units: `T* = max { T : sum_c min(caps[c], T) >= k T }`.
///
/// Why this is the count `epoch` produces, for any tie-break order:
///
/// * Upper bound: in `T` rounds a class gives at most one unit per round, so at most
///   `min(caps[c], T)`, and the rounds need `k T` units in all.
/// * The most-units-first greedy reaches it. Suppose `sum_c min(a_c, T) >= k T` with `T >= 1`.
///   Then at least `k` classes have a unit (each contributes at most `T` to the sum), so a round
///   is possible; let it take one unit from `k` classes with the most units, leaving `a'`.
///   Chosen classes lose exactly one from `min(a_c, T)` going to `min(a'_c, T - 1)`; a class not
///   chosen loses one only if `a_c >= T`. If no unchosen class has `a_c >= T`, then
///   `sum min(a', T - 1) = sum min(a, T) - k >= k (T - 1)`. If one does, every chosen class has
///   at least as many units, so at least `k + 1` classes have `a_c >= T`, and each contributes
///   `T - 1` to `sum min(a', T - 1)`, which is therefore `>= (k + 1)(T - 1)`. Either way the
///   condition holds for `T - 1` rounds on `a'`, and by induction the greedy completes `T*`
///   rounds; it cannot complete more, by the upper bound, and it stops only when fewer than `k`
///   classes have units left, which happens right after round `T*` or the bound would be beaten.
///
/// So the count depends on the capacities only, never on the shuffles. `f(T) = sum min(a, T) -
/// k T` is concave with `f(0) = 0`, so the feasible `T` form an interval `[0, T*]` and binary
/// search finds its end.
fn max_rounds(caps: &[usize], k: usize) -> usize {
    if k == 0 {
        return 0;
    }
    let feasible = |t: usize| caps.iter().map(|&a| a.min(t)).sum::<usize>() >= k * t;
    let (mut lo, mut hi) = (0, caps.iter().sum::<usize>() / k);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if feasible(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The rounds of the most-units-first greedy, each a list of `k` class indices in `position`
/// order; `position[c]` is class `c`'s place in the shuffled class order and breaks ties.
fn greedy_rounds(caps: &[usize], position: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut heap: BinaryHeap<(usize, Reverse<usize>, usize)> = caps
        .iter()
        .enumerate()
        .filter(|&(_, &a)| a > 0)
        .map(|(c, &a)| (a, Reverse(position[c]), c))
        .collect();
    let mut rounds = Vec::new();
    let mut round = Vec::with_capacity(k);
    while k > 0 && heap.len() >= k {
        round.clear();
        for _ in 0..k {
            if let Some(top) = heap.pop() {
                round.push(top);
            }
        }
        round.sort_unstable_by_key(|&(_, Reverse(pos), _)| pos);
        rounds.push(round.iter().map(|&(_, _, c)| c).collect());
        for &(a, pos, c) in &round {
            if a > 1 {
                heap.push((a - 1, pos, c));
            }
        }
    }
    rounds
}

impl BatchSampler for ClassContiguousSampler {
    fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = epoch_rng(self.seed, epoch);
        let mut pools = self.classes.clone();
        for pool in &mut pools {
            pool.shuffle(&mut rng);
        }
        let mut order: Vec<usize> = (0..pools.len()).collect();
        order.shuffle(&mut rng);
        let mut position = vec![0; pools.len()];
        for (pos, &c) in order.iter().enumerate() {
            position[c] = pos;
        }
        let caps: Vec<usize> = pools.iter().map(|p| p.len() / self.g).collect();
        let mut cursor = vec![0; pools.len()];
        let mut batches: Vec<Vec<usize>> =
            greedy_rounds(&caps, &position, self.classes_per_batch())
                .into_iter()
                .map(|round| {
                    let mut batch = Vec::with_capacity(self.batch_size);
                    for c in round {
                        batch.extend_from_slice(&pools[c][cursor[c]..cursor[c] + self.g]);
                        cursor[c] += self.g;
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
    use std::collections::HashMap;

    /// Smooth-AP's own pass rule (first eligible classes in order), counting batches only.
    fn smooth_ap_rounds(caps_in_order: &[usize], k: usize) -> usize {
        let mut caps = caps_in_order.to_vec();
        let mut rounds = 0;
        loop {
            let mut taken = 0;
            for a in caps.iter_mut() {
                if *a > 0 && taken < k {
                    *a -= 1;
                    taken += 1;
                }
            }
            if taken < k {
                return rounds;
            }
            rounds += 1;
        }
    }

    /// Exhaustive maximum number of rounds, for tiny cases (memoised on the sorted capacities,
    /// which is all the answer depends on).
    fn brute_max(caps: &[usize], k: usize, memo: &mut HashMap<Vec<usize>, usize>) -> usize {
        let mut key = caps.to_vec();
        key.sort_unstable();
        if let Some(&v) = memo.get(&key) {
            return v;
        }
        let n = caps.len();
        let mut best = 0;
        for mask in 0..(1usize << n) {
            let chosen: Vec<usize> = (0..n).filter(|&c| mask >> c & 1 == 1).collect();
            if chosen.len() != k || chosen.iter().any(|&c| caps[c] == 0) {
                continue;
            }
            let mut next = caps.to_vec();
            for &c in &chosen {
                next[c] -= 1;
            }
            best = best.max(1 + brute_max(&next, k, memo));
        }
        memo.insert(key, best);
        best
    }

    #[test]
    fn smooth_ap_rule_is_order_dependent() {
        // The counterexample the type documentation cites.
        assert_eq!(smooth_ap_rounds(&[1, 1, 2], 2), 1);
        assert_eq!(smooth_ap_rounds(&[2, 1, 1], 2), 2);
        assert_eq!(max_rounds(&[1, 1, 2], 2), 2);
        for position in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            assert_eq!(greedy_rounds(&[1, 1, 2], &position, 2).len(), 2);
        }
    }

    #[test]
    fn greedy_reaches_the_formula_and_beats_smooth_ap() {
        let mut rng = metron_core::rng_from_seed(11);
        for _ in 0..2000 {
            let n = rng.random_range(1..7);
            let k = rng.random_range(1..=n);
            let caps: Vec<usize> = (0..n).map(|_| rng.random_range(0..5)).collect();
            let mut position: Vec<usize> = (0..n).collect();
            position.shuffle(&mut rng);
            let want = max_rounds(&caps, k);
            let rounds = greedy_rounds(&caps, &position, k);
            assert_eq!(rounds.len(), want, "caps {caps:?} k {k}");
            for round in &rounds {
                let mut r = round.clone();
                r.dedup();
                assert_eq!(r.len(), k);
            }
            assert_eq!(
                brute_max(&caps, k, &mut HashMap::new()),
                want,
                "caps {caps:?} k {k}"
            );
            let in_order: Vec<usize> = {
                let mut v = vec![0; n];
                for c in 0..n {
                    v[position[c]] = caps[c];
                }
                v
            };
            assert!(smooth_ap_rounds(&in_order, k) <= want);
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        let labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2];
        assert_eq!(
            ClassContiguousSampler::new(&[], 8, 4, 0).unwrap_err(),
            SamplerError::EmptyDataset { sampler: NAME }
        );
        assert_eq!(
            ClassContiguousSampler::new(&labels, 0, 4, 0).unwrap_err(),
            SamplerError::ZeroBatchSize { sampler: NAME }
        );
        assert_eq!(
            ClassContiguousSampler::new(&labels, 8, 0, 0).unwrap_err(),
            SamplerError::ZeroPerClass { sampler: NAME }
        );
        assert_eq!(
            ClassContiguousSampler::new(&labels, 10, 4, 0).unwrap_err(),
            SamplerError::NotDivisible {
                sampler: NAME,
                batch_size: 10,
                per_class: 4
            }
        );
        // Class 2 has only 3 < 4 samples: two eligible classes for three per batch.
        let err = ClassContiguousSampler::new(&labels, 12, 4, 0).unwrap_err();
        assert_eq!(
            err,
            SamplerError::TooFewClasses {
                sampler: NAME,
                eligible: 2,
                needed: 3,
                per_class: 4
            }
        );
        assert!(err.to_string().contains("only 2 classes"));
        assert_eq!(
            ClassContiguousSampler::new(&labels, 8, 4, 0)
                .unwrap()
                .batches_per_epoch(),
            1
        );
    }
}
