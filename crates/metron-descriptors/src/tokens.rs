//! Heads over token sequences `[B, N, C]` (ViT-style backbones): GAP and SAIG's SMD.

use burn::module::Module;
use burn::nn::{Gelu, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::l2_normalize;

/// Global average pooling over tokens, L2-normalised (SAIG's GAP head).
#[derive(Module, Debug, Default)]
pub struct Gap;

impl Gap {
    /// # Shapes
    /// - `tokens`: `[B, N, C]` -> `[B, C]`
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, c] = tokens.dims();
        l2_normalize(tokens.mean_dim(1).reshape([b, c]))
    }
}

/// SAIG's spatial-mixing descriptor (`MixerHead_Branch`): mixes along the token axis only,
/// `Linear(N, 4N) -> GELU -> Linear(4N, N) -> Linear(N, 8)` applied to every channel's token
/// vector, i.e. 8 learned spatial projections per channel, flattened to `8 C` and
/// L2-normalised. No residual, no norm.
#[derive(Module, Debug)]
pub struct Smd {
    /// Token mixing `N -> 4N`.
    pub mix1: Linear,
    /// SAIG's GELU. Kept for the module's structure; `forward` runs the exact-gradient
    /// `metron_ops::gelu` in its place.
    pub act: Gelu,
    /// Token mixing back `4N -> N`.
    pub mix2: Linear,
    /// The `N -> projections` spatial projections.
    pub project: Linear,
}

/// Configuration of [`Smd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmdConfig {
    /// Number of tokens N (256 for CVUSA/CVACT; (H/16)(W/16) for VIGOR).
    pub tokens: usize,
    /// Output projections per channel (8 in SAIG).
    pub projections: usize,
}

impl SmdConfig {
    /// SAIG's SMD (8 projections per channel) over `tokens` tokens.
    pub fn new(tokens: usize) -> Self {
        SmdConfig {
            tokens,
            projections: 8,
        }
    }

    /// The head, its Linears initialised on `device`.
    pub fn init(&self, device: &Device) -> Smd {
        let n = self.tokens;
        Smd {
            mix1: LinearConfig::new(n, 4 * n).init(device),
            act: Gelu::new(),
            mix2: LinearConfig::new(4 * n, n).init(device),
            project: LinearConfig::new(n, self.projections).init(device),
        }
    }
}

impl Smd {
    /// # Shapes
    /// - `tokens`: `[B, N, C]` -> `[B, projections * C]`, rows of unit norm, laid out as
    ///   projection-major (`[B, projections, C]` flattened), as SAIG's code.
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, c] = tokens.dims();
        let x = tokens.swap_dims(1, 2); // [B, C, N]
        // `act` is Burn's GELU; its exact-gradient twin runs instead (see
        // `metron_ops::gelu`: Burn's backward is the tanh approximation's on wgpu/cuda).
        let x = self.mix2.forward(metron_ops::gelu(self.mix1.forward(x)));
        let x = self.project.forward(x); // [B, C, 8]
        let k = x.dims()[2];
        l2_normalize(x.swap_dims(1, 2).reshape([b, k * c]))
    }
}
