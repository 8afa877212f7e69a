//! Miners pick which tuples a loss sees: (anchor, positive, negative) triplets for triplet
//! losses, positive and negative pairs for pair losses.
//!
//! The contract is pytorch-metric-learning's: a [`Miner`] gets a batch's embeddings and labels
//! (and optionally a reference set's; here as the detached `[N, M]` matrix of the loss's own
//! distance, read on the host) and returns index lists; a tuple loss given a miner
//! (`TripletMarginLoss::with_miner`, `MultiSimilarityLoss::with_miner`) uses only those
//! tuples. Lists stay O(N M) long at most: no O(N^3) list of triplets is ever built. "All
//! triplets" and pytorch-metric-learning's semi-hard selection are not lists at all: the loss
//! evaluates them on the host in O(N^2) memory (see [`crate::TripletMarginLoss`]).

use crate::Distance;

/// What a miner sees: the detached distance (or similarity) matrix between the batch and the
/// reference set, and both label lists.
#[derive(Debug, Clone, Copy)]
pub struct MinerInput<'a> {
    /// Row-major `[labels.len(), ref_labels.len()]`.
    pub matrix: &'a [f32],
    /// Labels of the batch (the anchors): one per row of `matrix`.
    pub labels: &'a [i64],
    /// Labels of the reference set: one per column of `matrix`.
    pub ref_labels: &'a [i64],
    /// What `matrix` holds; [`Distance::is_similarity`] says whether larger means closer.
    pub distance: Distance,
    /// The reference set is the batch itself: item i is never its own positive.
    pub same_set: bool,
}

impl MinerInput<'_> {
    fn row(&self, a: usize) -> &[f32] {
        let m = self.ref_labels.len();
        &self.matrix[a * m..(a + 1) * m]
    }

    fn is_positive(&self, a: usize, j: usize) -> bool {
        self.labels[a] == self.ref_labels[j] && !(self.same_set && a == j)
    }

    fn is_negative(&self, a: usize, j: usize) -> bool {
        self.labels[a] != self.ref_labels[j]
    }
}

/// Positive pairs `(anchors_pos[k], positives[k])` and negative pairs `(anchors_neg[k],
/// negatives[k])` (pytorch-metric-learning's `(a1, p, a2, n)`); the second index is into the
/// reference set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs {
    /// Batch index of each positive pair's anchor.
    pub anchors_pos: Vec<usize>,
    /// Reference index of each positive pair's positive (same length as `anchors_pos`).
    pub positives: Vec<usize>,
    /// Batch index of each negative pair's anchor.
    pub anchors_neg: Vec<usize>,
    /// Reference index of each negative pair's negative (same length as `anchors_neg`).
    pub negatives: Vec<usize>,
}

/// What a miner returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tuples {
    /// Positive and negative pairs (pair miners such as [`MultiSimilarityMiner`]).
    Pairs(Pairs),
    /// (anchor, positive, negative) triplets (triplet miners such as [`BatchHardMiner`]).
    Triplets(Triplets),
}

impl Tuples {
    /// Triplets as they are; pairs as every (positive pair, negative pair) sharing an anchor
    /// (pytorch-metric-learning's `convert_to_triplets`).
    pub fn into_triplets(self) -> Triplets {
        match self {
            Tuples::Triplets(t) => t,
            Tuples::Pairs(p) => {
                // Negatives grouped by anchor: the work is the output's size, not the product
                // of the two pair lists.
                let mut negatives: std::collections::HashMap<usize, Vec<usize>> =
                    std::collections::HashMap::new();
                for (&a, &n) in p.anchors_neg.iter().zip(&p.negatives) {
                    negatives.entry(a).or_default().push(n);
                }
                let mut t = Triplets::default();
                for (&a, &pos) in p.anchors_pos.iter().zip(&p.positives) {
                    for &n in negatives.get(&a).into_iter().flatten() {
                        t.push(a, pos, n);
                    }
                }
                t
            }
        }
    }

    /// Pairs as they are; triplets as their (a, p) and (a, n) pairs (`convert_to_pairs`).
    pub fn into_pairs(self) -> Pairs {
        match self {
            Tuples::Pairs(p) => p,
            Tuples::Triplets(t) => Pairs {
                anchors_pos: t.anchors.clone(),
                positives: t.positives,
                anchors_neg: t.anchors,
                negatives: t.negatives,
            },
        }
    }
}

/// Picks the tuples a loss uses from a batch (pytorch-metric-learning's `BaseMiner.mine`).
pub trait Miner: std::fmt::Debug + Send + Sync {
    /// The tuples to use from `input`: anchors index the batch (rows of the matrix), positives
    /// and negatives the reference set (its columns).
    fn mine(&self, input: &MinerInput<'_>) -> Tuples;
}

/// Triplets as three parallel index lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triplets {
    /// Batch index of each triplet's anchor.
    pub anchors: Vec<usize>,
    /// Reference index of each triplet's positive (same label as the anchor).
    pub positives: Vec<usize>,
    /// Reference index of each triplet's negative (another label).
    pub negatives: Vec<usize>,
}

impl Triplets {
    /// Number of triplets.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there is no triplet.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub(crate) fn push(&mut self, a: usize, p: usize, n: usize) {
        self.anchors.push(a);
        self.positives.push(p);
        self.negatives.push(n);
    }
}

/// Which triplets a [`crate::TripletMarginLoss`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TripletSelection {
    /// Every valid triplet (pytorch-metric-learning's default without a miner; Hermans et
    /// al.'s "batch all" when paired with the mean-over-non-zero reducer).
    #[default]
    All,
    /// For each anchor, its farthest positive and closest negative.
    BatchHard,
    /// pytorch-metric-learning's `TripletMarginMiner(margin, type_of_triplets="semihard")`:
    /// every valid triplet whose negative is farther than the positive but by at most
    /// `margin`, `0 < d(a, n) - d(a, p) <= margin` (for similarities, `0 < s(a, p) - s(a, n)
    /// <= margin`). `margin` is the miner's, independent of the loss's.
    SemiHard {
        /// Largest `d(a, n) - d(a, p)` (or `s(a, p) - s(a, n)`) a kept triplet may have
        /// (PML's miner default 0.2).
        margin: f64,
    },
    /// FaceNet's semi-hard rule as in TensorFlow's `triplet_semihard_loss`: one triplet per
    /// positive pair (a, p), with the closest negative farther than p, or the farthest
    /// negative when none is.
    FaceNetSemiHard,
}

/// Every valid triplet: same label for (a, p) with a != p, another label for n. Only for
/// callers who need the list; the losses evaluate this case densely.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchAllMiner;

/// For each anchor with at least one positive and one negative: the hardest positive and the
/// hardest negative (pytorch-metric-learning's `BatchHardMiner`). With
/// [`BatchHardMiner::every_anchor`], CGD's rule instead: every anchor yields a triplet, the
/// anchor itself standing in for a missing positive (distance 0) and the hardest positive for
/// a missing negative (the term is then the margin, with no gradient).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchHardMiner {
    /// CGD's rule: every anchor yields a triplet, even without a positive or a negative
    /// (default `false`, pytorch-metric-learning's rule).
    pub every_anchor: bool,
}

impl BatchHardMiner {
    /// pytorch-metric-learning's `BatchHardMiner`: anchors lacking a positive or a negative
    /// are skipped.
    pub fn new() -> Self {
        BatchHardMiner::default()
    }

    /// CGD's variant (see the type's documentation).
    pub fn every_anchor() -> Self {
        BatchHardMiner { every_anchor: true }
    }
}

/// pytorch-metric-learning's `MultiSimilarityMiner(epsilon)` (Wang et al. 2019): for
/// similarities, a positive pair is kept when `s(a, p) - epsilon < max_n s(a, n)`, a negative
/// pair when `s(a, n) + epsilon > min_p s(a, p)` (mirrored for distances). An anchor without
/// negatives keeps no positive pair, one without positives no negative pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiSimilarityMiner {
    /// Slack around the hardest opposite pair within which a pair is kept (PML default 0.1).
    pub epsilon: f64,
}

impl Default for MultiSimilarityMiner {
    fn default() -> Self {
        MultiSimilarityMiner { epsilon: 0.1 }
    }
}

impl MultiSimilarityMiner {
    /// A miner with the given `epsilon`.
    pub fn new(epsilon: f64) -> Self {
        MultiSimilarityMiner { epsilon }
    }
}

impl Miner for MultiSimilarityMiner {
    fn mine(&self, input: &MinerInput<'_>) -> Tuples {
        let sim = input.distance.is_similarity();
        let eps = self.epsilon;
        let mut pairs = Pairs::default();
        for a in 0..input.labels.len() {
            let row = input.row(a);
            let pos: Vec<usize> = (0..row.len())
                .filter(|&j| input.is_positive(a, j))
                .collect();
            let neg: Vec<usize> = (0..row.len())
                .filter(|&j| input.is_negative(a, j))
                .collect();
            let value = |j: usize| f64::from(row[j]);
            // The closest negative and the farthest positive, in the matrix's own sense.
            let closest_neg =
                neg.iter()
                    .map(|&j| value(j))
                    .reduce(if sim { f64::max } else { f64::min });
            let farthest_pos =
                pos.iter()
                    .map(|&j| value(j))
                    .reduce(if sim { f64::min } else { f64::max });
            if let Some(limit) = closest_neg {
                for &p in &pos {
                    let hard = if sim {
                        value(p) - eps < limit
                    } else {
                        value(p) + eps > limit
                    };
                    if hard {
                        pairs.anchors_pos.push(a);
                        pairs.positives.push(p);
                    }
                }
            }
            if let Some(limit) = farthest_pos {
                for &n in &neg {
                    let hard = if sim {
                        value(n) + eps > limit
                    } else {
                        value(n) - eps < limit
                    };
                    if hard {
                        pairs.anchors_neg.push(a);
                        pairs.negatives.push(n);
                    }
                }
            }
        }
        Tuples::Pairs(pairs)
    }
}

/// See [`TripletSelection::FaceNetSemiHard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FaceNetSemiHardMiner;

/// `d` is row-major `[n, n]`; `closer(a, b)` says whether value a is closer than b.
fn closer(distance: Distance) -> impl Fn(f32, f32) -> bool {
    let sim = distance.is_similarity();
    move |a, b| if sim { a > b } else { a < b }
}

impl BatchAllMiner {
    /// Every valid triplet of a batch against itself.
    pub fn all_triplets(&self, labels: &[i64]) -> Triplets {
        let n = labels.len();
        let mut t = Triplets::default();
        for a in 0..n {
            for p in (0..n).filter(|&p| p != a && labels[p] == labels[a]) {
                for m in (0..n).filter(|&m| labels[m] != labels[a]) {
                    t.push(a, p, m);
                }
            }
        }
        t
    }
}

impl Miner for BatchAllMiner {
    fn mine(&self, input: &MinerInput<'_>) -> Tuples {
        let m = input.ref_labels.len();
        let mut t = Triplets::default();
        for a in 0..input.labels.len() {
            for p in (0..m).filter(|&p| input.is_positive(a, p)) {
                for n in (0..m).filter(|&n| input.is_negative(a, n)) {
                    t.push(a, p, n);
                }
            }
        }
        Tuples::Triplets(t)
    }
}

impl Miner for BatchHardMiner {
    fn mine(&self, input: &MinerInput<'_>) -> Tuples {
        let closer = closer(input.distance);
        let mut t = Triplets::default();
        for a in 0..input.labels.len() {
            let row = input.row(a);
            let mut hardest_pos: Option<usize> = None;
            let mut hardest_neg: Option<usize> = None;
            for j in 0..row.len() {
                if input.is_positive(a, j) {
                    // Farthest positive; the first one wins ties, as torch.max does.
                    if hardest_pos.is_none_or(|p| closer(row[p], row[j])) {
                        hardest_pos = Some(j);
                    }
                } else if input.is_negative(a, j)
                    && hardest_neg.is_none_or(|m| closer(row[j], row[m]))
                {
                    hardest_neg = Some(j);
                }
            }
            match (hardest_pos, hardest_neg) {
                (Some(p), Some(m)) => t.push(a, p, m),
                (p, m) if self.every_anchor && input.same_set => {
                    let p = p.unwrap_or(a);
                    t.push(a, p, m.unwrap_or(p));
                }
                _ => {}
            }
        }
        Tuples::Triplets(t)
    }
}

impl Miner for FaceNetSemiHardMiner {
    fn mine(&self, input: &MinerInput<'_>) -> Tuples {
        let closer = closer(input.distance);
        let mut t = Triplets::default();
        let m = input.ref_labels.len();
        for a in 0..input.labels.len() {
            let row = input.row(a);
            let negatives: Vec<usize> = (0..m).filter(|&j| input.is_negative(a, j)).collect();
            if negatives.is_empty() {
                continue;
            }
            for p in (0..m).filter(|&p| input.is_positive(a, p)) {
                let semi = negatives
                    .iter()
                    .copied()
                    .filter(|&m| closer(row[p], row[m]))
                    .reduce(|best, m| if closer(row[m], row[best]) { m } else { best });
                let m = semi.unwrap_or_else(|| {
                    negatives
                        .iter()
                        .copied()
                        .reduce(|far, m| if closer(row[far], row[m]) { m } else { far })
                        .expect("negatives is not empty")
                });
                t.push(a, p, m);
            }
        }
        Tuples::Triplets(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Points on a line: 0 (a), 1 (a), 3 (b), 10 (a), 12 (b).
    const X: [f32; 5] = [0.0, 1.0, 3.0, 10.0, 12.0];
    const L: [i64; 5] = [0, 0, 1, 0, 1];

    fn mine(miner: &dyn Miner, d: &[f32], labels: &[i64]) -> Triplets {
        miner
            .mine(&MinerInput {
                matrix: d,
                labels,
                ref_labels: labels,
                distance: Distance::default(),
                same_set: true,
            })
            .into_triplets()
    }

    fn dist() -> Vec<f32> {
        let mut d = vec![0.0; 25];
        for i in 0..5 {
            for j in 0..5 {
                d[i * 5 + j] = (X[i] - X[j]).abs();
            }
        }
        d
    }

    #[test]
    fn batch_hard_picks_farthest_positive_and_closest_negative() {
        let t = mine(&BatchHardMiner::new(), &dist(), &L);
        // Anchor 0: positives 1 (1), 3 (10) -> 3; negatives 2 (3), 4 (12) -> 2.
        assert_eq!((t.anchors[0], t.positives[0], t.negatives[0]), (0, 3, 2));
        // Anchor 2: positive 4; negatives 0 (3), 1 (2), 3 (7) -> 1.
        assert_eq!((t.anchors[2], t.positives[2], t.negatives[2]), (2, 4, 1));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn semi_hard_picks_the_closest_negative_beyond_the_positive() {
        let t = mine(&FaceNetSemiHardMiner, &dist(), &L);
        let find = |a, p| {
            (0..t.len())
                .find(|&k| t.anchors[k] == a && t.positives[k] == p)
                .map(|k| t.negatives[k])
        };
        // (0, 1): d_ap = 1; negatives 2 (3), 4 (12): closest beyond 1 is 2.
        assert_eq!(find(0, 1), Some(2));
        // (0, 3): d_ap = 10; only 4 (12) is beyond.
        assert_eq!(find(0, 3), Some(4));
        // (3, 0): d_ap = 10; negatives 2 (7), 4 (2): none beyond -> farthest, 2.
        assert_eq!(find(3, 0), Some(2));
        // One triplet per positive pair: 6 ordered pairs in class 0, 2 in class 1.
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn pairs_become_every_positive_and_negative_sharing_an_anchor() {
        let pairs = Pairs {
            anchors_pos: vec![0, 1, 0],
            positives: vec![2, 3, 4],
            anchors_neg: vec![1, 0, 0, 5],
            negatives: vec![6, 7, 8, 9],
        };
        let t = Tuples::Pairs(pairs).into_triplets();
        // Anchor 0: positives 2, 4 x negatives 7, 8; anchor 1: positive 3 x negative 6;
        // anchor 5 has no positive pair.
        let got: Vec<(usize, usize, usize)> = (0..t.len())
            .map(|k| (t.anchors[k], t.positives[k], t.negatives[k]))
            .collect();
        assert_eq!(
            got,
            vec![(0, 2, 7), (0, 2, 8), (1, 3, 6), (0, 4, 7), (0, 4, 8)]
        );
    }

    #[test]
    fn batch_all_lists_every_valid_triplet() {
        let t = BatchAllMiner.all_triplets(&L);
        assert_eq!(mine(&BatchAllMiner, &dist(), &L), t);
        // Class 0: 6 ordered pairs x 2 negatives; class 1: 2 pairs x 3 negatives.
        assert_eq!(t.len(), 6 * 2 + 2 * 3);
    }

    #[test]
    fn no_negative_or_no_positive_gives_no_triplet() {
        let d = vec![0.0, 1.0, 1.0, 0.0];
        assert!(mine(&BatchHardMiner::new(), &d, &[0, 0]).is_empty());
        assert!(mine(&BatchHardMiner::new(), &d, &[0, 1]).is_empty());
        assert!(mine(&FaceNetSemiHardMiner, &d, &[0, 0]).is_empty());
        // CGD's rule keeps every anchor: the anchor for a missing positive, the hardest
        // positive for a missing negative.
        let t = mine(&BatchHardMiner::every_anchor(), &d, &[0, 1]);
        assert_eq!(
            (t.anchors, t.positives, t.negatives),
            (vec![0, 1], vec![0, 1], vec![1, 0])
        );
        let t = mine(&BatchHardMiner::every_anchor(), &d, &[0, 0]);
        assert_eq!((t.positives, t.negatives), (vec![1, 0], vec![1, 0]));
    }

    /// Cosine similarities on a line of angles: class 0 at 0 and 0.3 rad, class 1 at 0.5 and
    /// 2.0 rad; pytorch-metric-learning's rules by hand.
    #[test]
    fn multi_similarity_keeps_the_pairs_within_epsilon_of_the_boundary() {
        let angles = [0.0f64, 0.3, 0.5, 2.0];
        let labels = [0i64, 0, 1, 1];
        let s: Vec<f32> = (0..16)
            .map(|k| (angles[k / 4] - angles[k % 4]).cos() as f32)
            .collect();
        let p = MultiSimilarityMiner::new(0.1)
            .mine(&MinerInput {
                matrix: &s,
                labels: &labels,
                ref_labels: &labels,
                distance: Distance::Cosine,
                same_set: true,
            })
            .into_pairs();
        // Anchor 0: positive 1 (cos 0.3 = 0.955) vs closest negative 2 (cos 0.5 = 0.878):
        // 0.955 - 0.1 < 0.878, kept. Negative 2 + 0.1 > 0.955, kept; 3 (cos 2 = -0.42) not.
        // Anchor 1: positive 0 (0.955) vs negative 2 (cos 0.2 = 0.980): kept; negative 2 kept.
        // Anchor 2: positive 3 (cos 1.5 = 0.071) vs negative 1 (0.980): kept; negatives 0
        // (0.878) and 1 (0.980) both + 0.1 > 0.071: kept.
        // Anchor 3: positive 2 (0.071) vs negative 1 (cos 1.7 = -0.129): 0.071 - 0.1 <
        // -0.129 fails, dropped; negatives 0 (-0.416) and 1 (-0.129) + 0.1 > 0.071 fail.
        assert_eq!((p.anchors_pos, p.positives), (vec![0, 1, 2], vec![1, 0, 3]));
        assert_eq!(
            (p.anchors_neg, p.negatives),
            (vec![0, 1, 2, 2], vec![2, 2, 0, 1])
        );
    }
}
