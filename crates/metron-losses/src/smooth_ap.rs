//! Smooth-AP (Brown et al. 2020) with the original code's semantics.

use burn::tensor::{Int, Tensor, TensorData};

use crate::batch::{check_batch, float_mask};
use crate::{LossError, Result};

/// `1 - mean_i AP_i`, where AP_i is computed from sigmoid-smoothed ranks over a batch laid out
/// as `classes x samples_per_class` contiguous blocks.
///
/// With `include_query` (the original code, and the default) the query counts among its own
/// positives and in every rank's sum; without it the query is left out of both, which is the
/// textbook definition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothApLoss {
    /// The sigmoid temperature tau (0.01 in the paper).
    pub temperature: f64,
    /// Rows per class block: the batch is `classes x samples_per_class` contiguous rows, one
    /// block per class (at least 2 without `include_query`).
    pub samples_per_class: usize,
    /// Count the query among its own positives and in its ranks (the original code, default
    /// `true`); `false` gives the textbook AP.
    pub include_query: bool,
}

impl SmoothApLoss {
    /// Blocks of `samples_per_class`, tau 0.01, query included (the original code's setup).
    pub fn new(samples_per_class: usize) -> Self {
        SmoothApLoss {
            temperature: 0.01,
            samples_per_class,
            include_query: true,
        }
    }

    /// The query-excluding variant.
    pub fn excluding_query(mut self) -> Self {
        self.include_query = false;
        self
    }

    fn check_layout(&self, labels: &[i64]) -> Result<()> {
        let what = "SmoothApLoss";
        let g = self.samples_per_class;
        let n = labels.len();
        let min = if self.include_query { 1 } else { 2 };
        if g < min || !n.is_multiple_of(g) {
            return Err(LossError::BatchLayout {
                what,
                why: format!(
                    "a batch of {n} does not divide into classes of {g} samples (at least {min})"
                ),
            });
        }
        for (b, block) in labels.chunks(g).enumerate() {
            if let Some(k) = block.iter().position(|&l| l != block[0]) {
                return Err(LossError::BatchLayout {
                    what,
                    why: format!(
                        "the batch must be class-contiguous: row {} has label {} inside the block of label {} (rows {}..{})",
                        b * g + k,
                        block[k],
                        block[0],
                        b * g,
                        b * g + g
                    ),
                });
            }
        }
        let mut firsts: Vec<i64> = labels.chunks(g).map(|b| b[0]).collect();
        firsts.sort_unstable();
        if let Some(w) = firsts.windows(2).find(|w| w[0] == w[1]) {
            return Err(LossError::BatchLayout {
                what,
                why: format!("label {} fills more than one block of {g}", w[0]),
            });
        }
        Ok(())
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]` (the original expects L2-normalised rows; similarity is the
    ///   raw inner product), `labels`: `[N]`, class-contiguous -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("SmoothApLoss", &embeddings, Some(labels))?;
        self.check_layout(labels)?;
        let n = labels.len();
        let g = self.samples_per_class;
        let tau = self.temperature;
        // sigma_tau(x) = 1 / (1 + exp(clamp(-x / tau, -50, 50)))
        let sigma = |x: Tensor<3>| {
            x.mul_scalar(-1.0 / tau)
                .clamp(-50.0, 50.0)
                .exp()
                .add_scalar(1.0)
                .recip()
        };
        let device = embeddings.device();
        let s = embeddings.clone().matmul(embeddings.clone().transpose());
        // Only the items k of query i's own class enter its AP, so only those ranks are
        // needed: s_pos[i, c] = s(i, k) for the c-th item k of i's block. This makes the
        // loss O(N^2 g) instead of the original code's O(N^3).
        let block: Vec<i64> = (0..n)
            .flat_map(|i| (0..g).map(move |c| ((i / g) * g + c) as i64))
            .collect();
        let block = Tensor::<2, Int>::from_data(TensorData::new(block, [n, g]), &device);
        let s_pos = s.clone().gather(1, block);
        // rank over the whole batch: j outranks k if s_ij > s_ik (smoothly).
        let all = sigma(s.clone().reshape([n, 1, n]) - s_pos.clone().reshape([n, g, 1]));
        // rank within the class block.
        let pos = sigma(s_pos.clone().reshape([n, 1, g]) - s_pos.clone().reshape([n, g, 1]));
        // Both sums include j = k, whose term is sigma(0) = 1/2 exactly (with zero net
        // gradient): the "1 +" of each rank becomes "+ 1/2".
        let mut rank_all = all.sum_dim(2).reshape([n, g]).add_scalar(0.5);
        let mut rank_pos = pos.sum_dim(2).reshape([n, g]).add_scalar(0.5);
        let include = self.include_query;
        if !include {
            // Take the query itself (j = i, inside its own block) out of both ranks.
            let eye = float_mask(n, n, &embeddings, |a, b| a == b);
            let s_self = (s * eye).sum_dim(1);
            let own = sigma((s_self - s_pos).reshape([n, g, 1])).reshape([n, g]);
            rank_all = rank_all - own.clone();
            rank_pos = rank_pos - own;
        }
        // Items k whose precision enters query i's AP: i's class, i itself unless excluded.
        let positives = float_mask(n, g, &embeddings, |i, c| include || c != i % g);
        let per_query = if include { g } else { g - 1 } as f64;
        let ap = (rank_pos / rank_all * positives)
            .sum()
            .mul_scalar(1.0 / (per_query * n as f64));
        Ok(ap.neg().add_scalar(1.0))
    }
}
