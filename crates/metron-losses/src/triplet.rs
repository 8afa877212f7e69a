//! Triplet margin losses: pytorch-metric-learning's `TripletMarginLoss` and CGD's batch-hard
//! triplet.

use burn::tensor::{Int, Tensor, TensorData};

use crate::batch::{LabelPairs, check_batch, zero_like_loss};
use crate::miner::{BatchHardMiner, FaceNetSemiHardMiner, TripletSelection, Triplets};
use crate::{Distance, Reducer, Result};

/// `relu(d(a, p) - d(a, n) + margin)` over selected triplets, reduced.
///
/// Defaults follow pytorch-metric-learning: Euclidean distance of L2-normalised embeddings,
/// margin 0.05, all triplets, mean over non-zero terms.
#[derive(Debug, Clone, PartialEq)]
pub struct TripletMarginLoss {
    pub margin: f64,
    pub distance: Distance,
    pub selection: TripletSelection,
    pub reducer: Reducer,
}

impl Default for TripletMarginLoss {
    fn default() -> Self {
        TripletMarginLoss {
            margin: 0.05,
            distance: Distance::default(),
            selection: TripletSelection::All,
            reducer: Reducer::MeanNonZero,
        }
    }
}

/// Gathers `matrix[rows[k], cols[k]]` for every k, keeping the graph.
pub(crate) fn gather_pairs(matrix: Tensor<2>, rows: &[usize], cols: &[usize]) -> Tensor<1> {
    let [_, n] = matrix.dims();
    let flat: Vec<i64> = rows
        .iter()
        .zip(cols)
        .map(|(&r, &c)| (r * n + c) as i64)
        .collect();
    let device = matrix.device();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len()]), &device);
    matrix.flatten::<1>(0, 1).select(0, idx)
}

/// The detached matrix as a host vector, for miners.
pub(crate) fn host_matrix(m: &Tensor<2>) -> Vec<f32> {
    m.clone()
        .detach()
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor converts to f32")
}

impl TripletMarginLoss {
    pub fn new(margin: f64) -> Self {
        TripletMarginLoss {
            margin,
            ..Default::default()
        }
    }

    pub fn with_distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    pub fn with_selection(mut self, selection: TripletSelection) -> Self {
        self.selection = selection;
        self
    }

    pub fn with_reducer(mut self, reducer: Reducer) -> Self {
        self.reducer = reducer;
        self
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("TripletMarginLoss", &embeddings, Some(labels))?;
        let d = self.distance.matrix(embeddings.clone(), embeddings.clone());
        let mined = |t: Triplets| -> Tensor<1> {
            if t.is_empty() {
                return zero_like_loss(&embeddings);
            }
            let ap = gather_pairs(d.clone(), &t.anchors, &t.positives);
            let an = gather_pairs(d.clone(), &t.anchors, &t.negatives);
            let terms = self
                .distance
                .margin(ap, an)
                .add_scalar(self.margin)
                .clamp_min(0.0);
            let valid = terms.ones_like();
            self.reducer.reduce(terms, valid)
        };
        Ok(match self.selection {
            TripletSelection::All => self.dense(d, labels, None),
            TripletSelection::SemiHard { margin } => self.dense(d, labels, Some(margin)),
            TripletSelection::BatchHard => {
                mined(BatchHardMiner.mine(&host_matrix(&d), labels, self.distance))
            }
            TripletSelection::FaceNetSemiHard => {
                mined(FaceNetSemiHardMiner.mine(&host_matrix(&d), labels, self.distance))
            }
        })
    }

    /// Every valid triplet, or with `semi_hard = Some(m)` those with `0 < margin gap <= m`,
    /// in O(N^2) memory whatever N: the loss is piecewise linear in the distance matrix, so its
    /// value and its gradient `dL/dd = G / count` are accumulated on the host, one anchor at a
    /// time, and the graph holds only `sum(G * d)` (an O(N^3) tensor of triplet terms would
    /// need ~14 GB at N = 1000 in f32).
    fn dense(&self, d: Tensor<2>, labels: &[i64], semi_hard: Option<f64>) -> Tensor<1> {
        let n = labels.len();
        let host: Vec<f64> = d.clone().detach().into_data().iter::<f64>().collect();
        let sim = self.distance.is_similarity();
        // Gap between the negative and the positive: how far the triplet is already satisfied.
        let gap = |ap: f64, an: f64| if sim { ap - an } else { an - ap };
        // d(term)/d(d_ap): +1 for distances, -1 for similarities; the negative gets the opposite.
        let slope = if sim { -1.0 } else { 1.0 };
        let mut coefficients = vec![0.0f64; n * n];
        let (mut total, mut active, mut selected) = (0.0f64, 0usize, 0usize);
        for a in 0..n {
            let row = &host[a * n..(a + 1) * n];
            let negatives: Vec<usize> = (0..n).filter(|&j| labels[j] != labels[a]).collect();
            for p in (0..n).filter(|&p| p != a && labels[p] == labels[a]) {
                for &m in &negatives {
                    let g = gap(row[p], row[m]);
                    if let Some(limit) = semi_hard
                        && !(g > 0.0 && g <= limit)
                    {
                        continue;
                    }
                    selected += 1;
                    let term = self.margin - g;
                    if term > 0.0 {
                        total += term;
                        active += 1;
                        coefficients[a * n + p] += slope;
                        coefficients[a * n + m] -= slope;
                    }
                }
            }
        }
        let count = match self.reducer {
            Reducer::Sum => 1,
            Reducer::Mean => selected.max(1),
            Reducer::MeanNonZero => active.max(1),
        } as f64;
        let g = crate::batch::float_tensor(
            coefficients.iter().map(|c| c / count).collect(),
            [n, n],
            &d,
        );
        // linear - linear.detach() is 0 with the gradient G / count; the value is the
        // host's f64 sum, free of the cancellation inside sum(G * d).
        let value = crate::batch::float_tensor(vec![total / count], [1, 1], &d).reshape([1]);
        let linear = (d * g).sum();
        linear.clone() - linear.detach() + value
    }
}

/// CGD's batch-hard triplet loss (Euclidean distance of the embeddings as given, margin 0.1):
/// for each anchor, the farthest positive (0 if it has none) against the closest negative,
/// `mean_i relu(pos_i - neg_i + m)` over every anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgdBatchHardTripletLoss {
    pub margin: f64,
}

impl Default for CgdBatchHardTripletLoss {
    fn default() -> Self {
        CgdBatchHardTripletLoss { margin: 0.1 }
    }
}

impl CgdBatchHardTripletLoss {
    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("CgdBatchHardTripletLoss", &embeddings, Some(labels))?;
        let n = labels.len();
        let pairs = LabelPairs::new(labels, &embeddings);
        let same = crate::batch::float_mask(n, n, &embeddings, |i, j| labels[i] == labels[j]);
        let d = crate::distance::euclidean(embeddings.clone(), embeddings);
        let hardest_pos = (d.clone() * pairs.positive).max_dim(1);
        // Same-label entries (the anchor included) are pushed past the row's largest distance
        // so that the minimum lands on a negative, as in CGD's code.
        let row_max = d.clone().max_dim(1);
        let hardest_neg = (d + same * row_max).min_dim(1);
        Ok((hardest_pos - hardest_neg)
            .add_scalar(self.margin)
            .clamp_min(0.0)
            .mean())
    }
}
