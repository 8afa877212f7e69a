//! Smooth-AP (Brown et al. 2020) with the original code's semantics.

use burn::tensor::Tensor;

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
    pub samples_per_class: usize,
    pub include_query: bool,
}

impl SmoothApLoss {
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
        let mask = |f: &dyn Fn(usize, usize) -> bool| float_mask(n, n, &embeddings, f);
        let s = embeddings.clone().matmul(embeddings.clone().transpose());
        // diff[i, k, j] = s_ij - s_ik: does j outrank k for query i?
        let diff = s.clone().reshape([n, 1, n]) - s.reshape([n, n, 1]);
        // sigma_tau(x) = 1 / (1 + exp(clamp(-x / tau, -50, 50)))
        let smooth = diff
            .mul_scalar(1.0 / (-self.temperature))
            .clamp(-50.0, 50.0)
            .exp()
            .add_scalar(1.0)
            .recip();
        let include = self.include_query;
        let blk = |i: usize, j: usize| i / g == j / g;
        // The [i, k, j] masks factor into broadcast 2-D ones: j counts in the rank of k if
        // j != k ([1, k, j]), and j != i when the query is excluded ([i, 1, j]); for the
        // positive rank j must also share i's class ([i, 1, j]).
        let not_self = mask(&|a, b| a != b);
        let mut smooth = smooth * not_self.clone().reshape([1, n, n]);
        if !include {
            smooth = smooth * not_self.reshape([n, 1, n]);
        }
        let same_block = mask(&blk).reshape([n, 1, n]);
        let rank_all = smooth.clone().sum_dim(2).add_scalar(1.0).reshape([n, n]);
        let rank_pos = (smooth * same_block)
            .sum_dim(2)
            .add_scalar(1.0)
            .reshape([n, n]);
        // Items k whose precision enters query i's AP: i's class, i itself unless excluded.
        let positives = mask(&|i, k| blk(i, k) && (include || k != i));
        let per_query = if include { g } else { g - 1 } as f64;
        let ap = (rank_pos / rank_all * positives)
            .sum()
            .mul_scalar(1.0 / (per_query * n as f64));
        Ok(ap.neg().add_scalar(1.0))
    }
}
