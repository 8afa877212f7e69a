//! Miners pick which (anchor, positive, negative) triplets a triplet loss sees.
//!
//! Miners read the detached `[B, B]` distance matrix on the host and return index lists whose
//! length is at most the number of positive pairs: memory stays O(B^2) and no O(B^3) list of
//! triplets is ever built. "All triplets" and pytorch-metric-learning's semi-hard selection are
//! not lists at all: the loss evaluates them on the host in O(B^2) memory (see
//! [`crate::TripletMarginLoss`]).

use crate::Distance;

/// Triplets as three parallel index lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triplets {
    pub anchors: Vec<usize>,
    pub positives: Vec<usize>,
    pub negatives: Vec<usize>,
}

impl Triplets {
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    fn push(&mut self, a: usize, p: usize, n: usize) {
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
    SemiHard { margin: f64 },
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
/// hardest negative.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchHardMiner;

/// See [`TripletSelection::FaceNetSemiHard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FaceNetSemiHardMiner;

/// `d` is row-major `[n, n]`; `closer(a, b)` says whether value a is closer than b.
fn closer(distance: Distance) -> impl Fn(f32, f32) -> bool {
    let sim = distance.is_similarity();
    move |a, b| if sim { a > b } else { a < b }
}

impl BatchAllMiner {
    pub fn mine(&self, labels: &[i64]) -> Triplets {
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

impl BatchHardMiner {
    pub fn mine(&self, d: &[f32], labels: &[i64], distance: Distance) -> Triplets {
        let n = labels.len();
        let closer = closer(distance);
        let mut t = Triplets::default();
        for a in 0..n {
            let row = &d[a * n..(a + 1) * n];
            let mut hardest_pos: Option<usize> = None;
            let mut hardest_neg: Option<usize> = None;
            for j in 0..n {
                if j == a {
                    continue;
                }
                if labels[j] == labels[a] {
                    // Farthest positive; the first one wins ties, as torch.max does.
                    if hardest_pos.is_none_or(|p| closer(row[p], row[j])) {
                        hardest_pos = Some(j);
                    }
                } else if hardest_neg.is_none_or(|m| closer(row[j], row[m])) {
                    hardest_neg = Some(j);
                }
            }
            if let (Some(p), Some(m)) = (hardest_pos, hardest_neg) {
                t.push(a, p, m);
            }
        }
        t
    }
}

impl FaceNetSemiHardMiner {
    pub fn mine(&self, d: &[f32], labels: &[i64], distance: Distance) -> Triplets {
        let n = labels.len();
        let closer = closer(distance);
        let mut t = Triplets::default();
        for a in 0..n {
            let row = &d[a * n..(a + 1) * n];
            let negatives: Vec<usize> = (0..n).filter(|&j| labels[j] != labels[a]).collect();
            if negatives.is_empty() {
                continue;
            }
            for p in (0..n).filter(|&p| p != a && labels[p] == labels[a]) {
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
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Points on a line: 0 (a), 1 (a), 3 (b), 10 (a), 12 (b).
    const X: [f32; 5] = [0.0, 1.0, 3.0, 10.0, 12.0];
    const L: [i64; 5] = [0, 0, 1, 0, 1];

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
        let t = BatchHardMiner.mine(&dist(), &L, Distance::default());
        // Anchor 0: positives 1 (1), 3 (10) -> 3; negatives 2 (3), 4 (12) -> 2.
        assert_eq!((t.anchors[0], t.positives[0], t.negatives[0]), (0, 3, 2));
        // Anchor 2: positive 4; negatives 0 (3), 1 (2), 3 (7) -> 1.
        assert_eq!((t.anchors[2], t.positives[2], t.negatives[2]), (2, 4, 1));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn semi_hard_picks_the_closest_negative_beyond_the_positive() {
        let t = FaceNetSemiHardMiner.mine(&dist(), &L, Distance::default());
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
    fn batch_all_lists_every_valid_triplet() {
        let t = BatchAllMiner.mine(&L);
        // Class 0: 6 ordered pairs x 2 negatives; class 1: 2 pairs x 3 negatives.
        assert_eq!(t.len(), 6 * 2 + 2 * 3);
    }

    #[test]
    fn no_negative_or_no_positive_gives_no_triplet() {
        let d = vec![0.0, 1.0, 1.0, 0.0];
        assert!(
            BatchHardMiner
                .mine(&d, &[0, 0], Distance::default())
                .is_empty()
        );
        assert!(
            BatchHardMiner
                .mine(&d, &[0, 1], Distance::default())
                .is_empty()
        );
        assert!(
            FaceNetSemiHardMiner
                .mine(&d, &[0, 0], Distance::default())
                .is_empty()
        );
    }
}
