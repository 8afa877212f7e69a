//! The Combination of Global Descriptors head (Jun et al., CGD).

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use metron_ops::{RunningVariance, batch_norm_forward_with};

use crate::pooling::{Gem, GemConfig, Mac, Spoc};
use crate::{DescriptorError, Result, l2_normalize};

/// One global descriptor of a CGD head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgdDescriptor {
    /// `S`: SPoC (mean).
    Spoc,
    /// `M`: MAC (max).
    Mac,
    /// `G`: GeM with p = 3, CGD's signed variant.
    Gem,
}

/// Parses a CGD descriptor string such as `"SG"`, `"MG"` or `"SMG"`: each letter of S, M, G
/// at most once, order significant (the first descriptor feeds the auxiliary classifier).
pub fn parse_cgd_config(config: &str) -> Result<Vec<CgdDescriptor>> {
    let bad = |why: String| DescriptorError::CgdConfig {
        config: config.to_string(),
        why,
    };
    if config.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let mut out = Vec::new();
    for ch in config.chars() {
        let d = match ch.to_ascii_uppercase() {
            'S' => CgdDescriptor::Spoc,
            'M' => CgdDescriptor::Mac,
            'G' => CgdDescriptor::Gem,
            other => return Err(bad(format!("unknown letter '{other}'"))),
        };
        if out.contains(&d) {
            return Err(bad(format!("'{ch}' appears twice")));
        }
        out.push(d);
    }
    Ok(out)
}

/// Configuration of [`CgdHead`]; defaults are the paper's (SG, 1536-d, 2048 input channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgdHeadConfig {
    /// The descriptors as CGD letters (see [`parse_cgd_config`]); `"SG"` by default.
    pub descriptors: String,
    /// Size of the final embedding, split evenly among the descriptors; 1536 by default.
    pub feature_dim: usize,
    /// Channels C of the backbone's feature map; 2048 (ResNet-50) by default.
    pub in_channels: usize,
    /// Classes of the auxiliary classifier (the training set's).
    pub num_classes: usize,
}

impl CgdHeadConfig {
    /// The paper's head (SG, 1536-d, 2048 input channels) for `num_classes` training classes.
    pub fn new(num_classes: usize) -> Self {
        CgdHeadConfig {
            descriptors: "SG".into(),
            feature_dim: 1536,
            in_channels: 2048,
            num_classes,
        }
    }

    /// Other descriptors, as CGD letters such as `"SMG"` (checked by [`CgdHeadConfig::init`]).
    pub fn with_descriptors(mut self, descriptors: &str) -> Self {
        self.descriptors = descriptors.to_string();
        self
    }

    /// Another embedding size; it must be divisible by the number of descriptors.
    pub fn with_feature_dim(mut self, feature_dim: usize) -> Self {
        self.feature_dim = feature_dim;
        self
    }

    /// Another backbone channel count C.
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// Checks the descriptor string and that `feature_dim` divides among the descriptors.
    pub fn init(&self, device: &Device) -> Result<CgdHead> {
        let kinds = parse_cgd_config(&self.descriptors)?;
        let n = kinds.len();
        if self.feature_dim == 0 || !self.feature_dim.is_multiple_of(n) {
            return Err(DescriptorError::FeatureDim {
                feature_dim: self.feature_dim,
                descriptors: n,
                config: self.descriptors.clone(),
            });
        }
        let k = self.feature_dim / n;
        Ok(CgdHead {
            projections: (0..n)
                .map(|_| {
                    LinearConfig::new(self.in_channels, k)
                        .with_bias(false)
                        .init(device)
                })
                .collect(),
            gem: GemConfig::cgd().init(device),
            aux_bn: BatchNormConfig::new(self.in_channels).init(device),
            aux_fc: LinearConfig::new(self.in_channels, self.num_classes).init(device),
            kinds,
            running_variance: RunningVariance::Unbiased,
        })
    }
}

/// CGD: every descriptor of the shared map goes through its own bias-free projection to
/// `feature_dim / n` and is L2-normalised; the concatenation is L2-normalised again. The first
/// descriptor's raw vector also feeds an auxiliary BatchNorm + Linear classifier.
#[derive(Module, Debug)]
pub struct CgdHead {
    /// One bias-free `in_channels -> feature_dim / n` projection per descriptor, in `kinds` order.
    pub projections: Vec<Linear>,
    /// The GeM pooling of the `G` descriptor (p = 3, signed; unused without `G`).
    pub gem: Gem,
    /// BatchNorm over the first descriptor's raw vector, before the auxiliary classifier.
    pub aux_bn: BatchNorm,
    /// The auxiliary classifier, `in_channels -> num_classes`.
    pub aux_fc: Linear,
    /// The descriptors, in configuration order (the first feeds the auxiliary classifier).
    #[module(skip)]
    pub kinds: Vec<CgdDescriptor>,
    /// The auxiliary BatchNorm's running-variance rule (PyTorch's unbiased one by default).
    #[module(skip)]
    pub running_variance: RunningVariance,
}

/// What [`CgdHead::forward`] returns.
#[derive(Debug, Clone)]
pub struct CgdOutput {
    /// `[B, feature_dim]`, unit rows: the retrieval embedding.
    pub embedding: Tensor<2>,
    /// `[B, num_classes]`: the auxiliary classifier's logits.
    pub logits: Tensor<2>,
}

impl CgdHead {
    /// # Shapes
    /// - `features`: `[B, in_channels, H, W]` -> embedding `[B, feature_dim]`, logits
    ///   `[B, num_classes]`
    pub fn forward(&self, features: Tensor<4>) -> CgdOutput {
        let raw: Vec<Tensor<2>> = self
            .kinds
            .iter()
            .map(|kind| match kind {
                CgdDescriptor::Spoc => Spoc.forward(features.clone()),
                CgdDescriptor::Mac => Mac.forward(features.clone()),
                CgdDescriptor::Gem => self.gem.forward(features.clone()),
            })
            .collect();
        let logits = self.aux_fc.forward(batch_norm_forward_with(
            &self.aux_bn,
            raw[0].clone(),
            self.running_variance,
        ));
        let parts: Vec<Tensor<2>> = raw
            .into_iter()
            .zip(&self.projections)
            .map(|(d, fc)| l2_normalize(fc.forward(d)))
            .collect();
        CgdOutput {
            embedding: l2_normalize(Tensor::cat(parts, 1)),
            logits,
        }
    }
}
