//! AntiMetric's meta-class ensemble: every branch classifies into its own coarse "meta
//! classes"; at retrieval time the branches' cosine similarities are averaged.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;

use crate::{DescriptorError, Result, l2_normalize};

/// Balanced meta-class codes: `codes[class][branch]` in `0..meta_classes`, every class's code
/// (its tuple over the branches) distinct, each meta class used `ceil` or `floor` of
/// `classes / meta_classes` times per branch. AntiMetric's `create_id`: per branch,
/// concatenate `ceil(C / M)` random permutations of `0..M`, truncate to C, shuffle; retry the
/// whole draw (up to 10 times) until all codes are distinct. Deterministic in `seed`.
pub fn meta_class_codes(
    classes: usize,
    meta_classes: usize,
    branches: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if classes == 0 || meta_classes == 0 || branches == 0 {
        return Err(DescriptorError::MetaCodes(format!(
            "classes ({classes}), meta classes ({meta_classes}) and branches ({branches}) must be positive"
        )));
    }
    // Fewer distinct codes than classes: no draw can succeed.
    let capacity = (meta_classes as f64).powi(branches.min(64) as i32);
    if capacity < classes as f64 {
        return Err(DescriptorError::MetaCodes(format!(
            "{meta_classes}^{branches} codes cannot tell {classes} classes apart"
        )));
    }
    let mut rng = metron_core::rng_from_seed(seed);
    for _ in 0..10 {
        let mut codes = vec![Vec::with_capacity(branches); classes];
        for _ in 0..branches {
            let mut column: Vec<usize> = Vec::with_capacity(classes + meta_classes);
            while column.len() < classes {
                let mut perm: Vec<usize> = (0..meta_classes).collect();
                perm.shuffle(&mut rng);
                column.extend(perm);
            }
            column.truncate(classes);
            column.shuffle(&mut rng);
            for (code, id) in codes.iter_mut().zip(column) {
                code.push(id);
            }
        }
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() == classes {
            return Ok(codes);
        }
    }
    Err(DescriptorError::MetaCodes(format!(
        "10 random draws of {branches} x {meta_classes} meta classes all gave two of the {classes} classes the same code; use more branches or meta classes"
    )))
}

/// Configuration of [`MetaClassEnsembleHead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaClassEnsembleHeadConfig {
    /// Ensemble branches E, one classifier each.
    pub branches: usize,
    /// Feature size D of each branch.
    pub feature_dim: usize,
    /// Meta classes M each branch classifies into.
    pub meta_classes: usize,
    /// AntiMetric's `--with_fc`: a Linear per branch to the meta-class logits. Without it the
    /// pooled features themselves serve as logits (then `feature_dim >= meta_classes`).
    pub with_fc: bool,
}

impl MetaClassEnsembleHeadConfig {
    /// The head, with one `feature_dim -> meta_classes` Linear per branch when `with_fc`.
    pub fn init(&self, device: &Device) -> MetaClassEnsembleHead {
        MetaClassEnsembleHead {
            classifiers: if self.with_fc {
                (0..self.branches)
                    .map(|_| LinearConfig::new(self.feature_dim, self.meta_classes).init(device))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// Per-branch classifiers over the ensemble's features `[B, E, D]`.
#[derive(Module, Debug)]
pub struct MetaClassEnsembleHead {
    /// One per branch, or none (features are the logits).
    pub classifiers: Vec<Linear>,
}

impl MetaClassEnsembleHead {
    /// Meta-class logits of every branch, for `metron_losses::MetaClassCrossEntropy`.
    ///
    /// # Shapes
    /// - `features`: `[B, E, D]` -> `[B, E, M]` (`M = D` without classifiers)
    pub fn logits(&self, features: Tensor<3>) -> Result<Tensor<3>> {
        let [b, e, d] = features.dims();
        if self.classifiers.is_empty() {
            return Ok(features);
        }
        if self.classifiers.len() != e {
            return Err(DescriptorError::Shape {
                what: "MetaClassEnsembleHead features",
                expected: format!("[B, {}, D]", self.classifiers.len()),
                got: vec![b, e, d],
            });
        }
        let per_branch: Vec<Tensor<3>> = self
            .classifiers
            .iter()
            .enumerate()
            .map(|(i, fc)| {
                let x = features
                    .clone()
                    .slice([0..b, i..i + 1, 0..d])
                    .reshape([b, d]);
                let m = fc.forward(x);
                let classes = m.dims()[1];
                m.reshape([b, 1, classes])
            })
            .collect();
        Ok(Tensor::cat(per_branch, 1))
    }

    /// The retrieval embedding: each branch L2-normalised, concatenated, scaled by
    /// `1/sqrt(E)`. Its inner product is exactly AntiMetric's similarity
    /// `(1/E) sum_e f_e(q) . f_e(g)`, so any inner-product kNN evaluates the ensemble.
    ///
    /// # Shapes
    /// - `features`: `[B, E, D]` -> `[B, E * D]`
    pub fn retrieval_embedding(features: Tensor<3>) -> Tensor<2> {
        let [b, e, d] = features.dims();
        let unit = l2_normalize(features.reshape([b * e, d]));
        unit.reshape([b, e * d]).mul_scalar(1.0 / (e as f64).sqrt())
    }
}
