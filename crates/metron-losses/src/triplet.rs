//! pytorch-metric-learning's `TripletMarginLoss`, with its selections and any [`Miner`]; CGD's
//! batch-hard triplet is one configuration of it ([`TripletMarginLoss::cgd`]).

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData};

use crate::batch::{check_batch, zero_like_loss};
use crate::miner::{
    BatchHardMiner, FaceNetSemiHardMiner, Miner, MinerInput, TripletSelection, Triplets,
};
use crate::{Distance, LossError, Reducer, Result};

/// `relu(d(a, p) - d(a, n) + margin)` over selected triplets, reduced.
///
/// Defaults follow pytorch-metric-learning: Euclidean distance of L2-normalised embeddings,
/// margin 0.05, all triplets, mean over non-zero terms. With a miner
/// ([`TripletMarginLoss::with_miner`]) the loss uses the miner's tuples (pairs become every
/// positive and negative pair sharing an anchor) instead of `selection`.
#[derive(Debug, Clone)]
pub struct TripletMarginLoss {
    /// Margin added to `d(a, p) - d(a, n)` before the hinge (PML default 0.05).
    pub margin: f64,
    /// How embeddings are compared (default normalised Euclidean distance).
    pub distance: Distance,
    /// Which triplets enter the loss when no miner is set (default all).
    pub selection: TripletSelection,
    /// How the triplet terms become one scalar (default mean over non-zero terms).
    pub reducer: Reducer,
    /// Miner whose tuples replace `selection`; `None` by default.
    pub miner: Option<Arc<dyn Miner>>,
}

impl Default for TripletMarginLoss {
    fn default() -> Self {
        TripletMarginLoss {
            margin: 0.05,
            distance: Distance::default(),
            selection: TripletSelection::All,
            reducer: Reducer::MeanNonZero,
            miner: None,
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
    /// The given margin with the other defaults.
    pub fn new(margin: f64) -> Self {
        TripletMarginLoss {
            margin,
            ..Default::default()
        }
    }

    /// Compares embeddings with `distance`.
    pub fn with_distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    /// Uses the triplets `selection` picks (ignored while a miner is set).
    pub fn with_selection(mut self, selection: TripletSelection) -> Self {
        self.selection = selection;
        self
    }

    /// Reduces the triplet terms with `reducer`.
    pub fn with_reducer(mut self, reducer: Reducer) -> Self {
        self.reducer = reducer;
        self
    }

    /// Uses `miner`'s tuples (e.g. `TripletMarginLoss::new(0.1).with_miner(BatchHardMiner::new())`).
    pub fn with_miner(mut self, miner: impl Miner + 'static) -> Self {
        self.miner = Some(Arc::new(miner));
        self
    }

    /// CGD's batch-hard triplet loss: Euclidean distance of the embeddings as given, for each
    /// anchor the farthest positive against the closest negative, averaged over every anchor
    /// ([`BatchHardMiner::every_anchor`]; an anchor without positive counts its own zero
    /// distance, one without negative the margin). CGD's code computes the same with masked
    /// row maxima and minima.
    pub fn cgd(margin: f64) -> Self {
        TripletMarginLoss::new(margin)
            .with_distance(Distance::Euclidean { normalize: false })
            .with_reducer(Reducer::Mean)
            .with_miner(BatchHardMiner::every_anchor())
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("TripletMarginLoss", &embeddings, Some(labels))?;
        let d = self.distance.matrix(embeddings.clone(), embeddings.clone());
        self.loss(d, labels, labels, true, &embeddings)
    }

    /// Anchors from `embeddings`, positives and negatives from a reference set
    /// (pytorch-metric-learning's `ref_emb`, `ref_labels`): e.g. a memory bank or the other view.
    ///
    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]`, `ref_embeddings`: `[M, D]`, `ref_labels`:
    ///   `[M]` -> scalar `[1]`
    pub fn forward_with_reference(
        &self,
        embeddings: Tensor<2>,
        labels: &[i64],
        ref_embeddings: Tensor<2>,
        ref_labels: &[i64],
    ) -> Result<Tensor<1>> {
        check_batch("TripletMarginLoss", &embeddings, Some(labels))?;
        check_batch(
            "TripletMarginLoss reference",
            &ref_embeddings,
            Some(ref_labels),
        )?;
        let [_, dim] = embeddings.dims();
        let [_, ref_dim] = ref_embeddings.dims();
        if dim != ref_dim {
            return Err(LossError::Shape {
                what: "TripletMarginLoss reference",
                expected: format!("[M, {dim}]"),
                got: ref_embeddings.dims().to_vec(),
            });
        }
        let d = self.distance.matrix(embeddings.clone(), ref_embeddings);
        self.loss(d, labels, ref_labels, false, &embeddings)
    }

    fn loss(
        &self,
        d: Tensor<2>,
        labels: &[i64],
        ref_labels: &[i64],
        same_set: bool,
        embeddings: &Tensor<2>,
    ) -> Result<Tensor<1>> {
        let mine = |miner: &dyn Miner| {
            let host = host_matrix(&d);
            miner
                .mine(&MinerInput {
                    matrix: &host,
                    labels,
                    ref_labels,
                    distance: self.distance,
                    same_set,
                })
                .into_triplets()
        };
        let mined = |t: Triplets| -> Tensor<1> {
            if t.is_empty() {
                return zero_like_loss(embeddings);
            }
            let ap = gather_pairs(d.clone(), &t.anchors, &t.positives);
            let an = gather_pairs(d.clone(), &t.anchors, &t.negatives);
            let terms = self
                .distance
                .margin(ap, an)
                .add_scalar(self.margin)
                .clamp_min(0.0);
            match self.reducer {
                // Every listed triplet exists: a plain mean (CGD's arithmetic, to the bit).
                Reducer::Mean => terms.mean(),
                reducer => {
                    let valid = terms.ones_like();
                    reducer.reduce(terms, valid)
                }
            }
        };
        if let Some(miner) = &self.miner {
            return Ok(mined(mine(miner.as_ref())));
        }
        Ok(match self.selection {
            TripletSelection::All => self.dense(d, labels, ref_labels, same_set, None),
            TripletSelection::SemiHard { margin } => {
                self.dense(d, labels, ref_labels, same_set, Some(margin))
            }
            TripletSelection::BatchHard => mined(mine(&BatchHardMiner::new())),
            TripletSelection::FaceNetSemiHard => mined(mine(&FaceNetSemiHardMiner)),
        })
    }

    /// Every valid triplet, or with `semi_hard = Some(m)` those with `0 < margin gap <= m`,
    /// in O(N M) memory whatever N: the loss is piecewise linear in the distance matrix, so its
    /// value and its gradient `dL/dd = G / count` are accumulated on the host, one anchor at a
    /// time, and the graph holds only `sum(G * d)` (an O(N^3) tensor of triplet terms would
    /// need ~14 GB at N = 1000 in f32).
    fn dense(
        &self,
        d: Tensor<2>,
        labels: &[i64],
        ref_labels: &[i64],
        same_set: bool,
        semi_hard: Option<f64>,
    ) -> Tensor<1> {
        let (n, m) = (labels.len(), ref_labels.len());
        let host: Vec<f64> = d.clone().detach().into_data().iter::<f64>().collect();
        let sim = self.distance.is_similarity();
        // Gap between the negative and the positive: how far the triplet is already satisfied.
        let gap = |ap: f64, an: f64| if sim { ap - an } else { an - ap };
        // d(term)/d(d_ap): +1 for distances, -1 for similarities; the negative gets the opposite.
        let slope = if sim { -1.0 } else { 1.0 };
        let mut coefficients = vec![0.0f64; n * m];
        let (mut total, mut active, mut selected) = (0.0f64, 0usize, 0usize);
        for a in 0..n {
            let row = &host[a * m..(a + 1) * m];
            let negatives: Vec<usize> = (0..m).filter(|&j| ref_labels[j] != labels[a]).collect();
            for p in (0..m).filter(|&p| !(same_set && p == a) && ref_labels[p] == labels[a]) {
                for &neg in &negatives {
                    let g = gap(row[p], row[neg]);
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
                        coefficients[a * m + p] += slope;
                        coefficients[a * m + neg] -= slope;
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
            [n, m],
            &d,
        );
        // linear - linear.detach() is 0 with the gradient G / count; the value is the
        // host's f64 sum, free of the cancellation inside sum(G * d).
        let value = crate::batch::float_tensor(vec![total / count], [1, 1], &d).reshape([1]);
        let linear = (d * g).sum();
        linear.clone() - linear.detach() + value
    }
}
