//! Triplet margin losses: pytorch-metric-learning's `TripletMarginLoss` and CGD's batch-hard
//! triplet.

use burn::tensor::{Int, Tensor, TensorData};

use crate::batch::{LabelPairs, check_batch, zero_like_loss};
use crate::miner::{BatchHardMiner, SemiHardMiner, TripletSelection, Triplets};
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
        let n = labels.len();
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
            TripletSelection::All => {
                let pairs = LabelPairs::new(labels, &embeddings);
                if pairs.num_positive == 0 || pairs.num_negative == 0 {
                    return Ok(zero_like_loss(&embeddings));
                }
                // [a, p, 1] against [a, 1, n]: every triplet at once, O(N^3) floats but no
                // index lists; invalid triplets are masked to 0.
                let ap = d.clone().reshape([n, n, 1]);
                let an = d.reshape([n, 1, n]);
                let valid = pairs.positive.reshape([n, n, 1]) * pairs.negative.reshape([n, 1, n]);
                let terms = (self.distance.margin(ap, an).add_scalar(self.margin)).clamp_min(0.0)
                    * valid.clone();
                self.reducer.reduce(terms, valid)
            }
            TripletSelection::BatchHard => {
                mined(BatchHardMiner.mine(&host_matrix(&d), labels, self.distance))
            }
            TripletSelection::SemiHard => {
                mined(SemiHardMiner.mine(&host_matrix(&d), labels, self.distance))
            }
        })
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
