//! SAIG-S / SAIG-D (cross-view geo-localisation): a convolutional stem and attention-only
//! transformer blocks (no MLP), no CLS token (`../shared/specs/seed-systems.md` s. 1.1).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::vit::Attention;
use crate::{BackboneError, Result};

/// Output channels and strides of the six 3x3 stem convolutions (overall stride 16).
const STEM: [(usize, usize); 6] = [(64, 2), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)];

/// Configuration of [`Saig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaigConfig {
    /// 11 (SAIG-S) or 22 (SAIG-D).
    pub depth: usize,
    pub embed_dim: usize,
    pub heads: usize,
    /// Input height and width (256 x 256 satellite, 128 x 512 ground for CVUSA).
    pub image_size: [usize; 2],
}

impl SaigConfig {
    pub fn saig_s(image_size: [usize; 2]) -> Self {
        SaigConfig {
            depth: 11,
            embed_dim: 384,
            heads: 12,
            image_size,
        }
    }

    pub fn saig_d(image_size: [usize; 2]) -> Self {
        SaigConfig {
            depth: 22,
            ..Self::saig_s(image_size)
        }
    }

    /// Tokens along height and width.
    pub fn grid(&self) -> [usize; 2] {
        [self.image_size[0] / 16, self.image_size[1] / 16]
    }

    pub fn init(&self, device: &Device) -> Result<Saig> {
        let d = self.embed_dim;
        let [gh, gw] = self.grid();
        if self.heads == 0 || !d.is_multiple_of(self.heads) || gh == 0 || gw == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "SAIG needs heads dividing embed_dim and an image of at least 16 x 16, got {self:?}"
            )));
        }
        let mut cin = 3;
        let stem = STEM
            .iter()
            .map(|&(cout, stride)| {
                let conv = Conv2dConfig::new([cin, cout], [3, 3])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device);
                cin = cout;
                StemLayer {
                    conv,
                    bn: BatchNormConfig::new(cout).init(device),
                }
            })
            .collect();
        let ln = || LayerNormConfig::new(d).with_epsilon(1e-6).init(device);
        Ok(Saig {
            stem,
            proj: Conv2dConfig::new([512, d], [1, 1]).init(device),
            pos_embed: Param::from_tensor(Tensor::zeros([1, gh * gw, d], device)),
            blocks: (0..self.depth)
                .map(|_| SaigBlock {
                    norm1: ln(),
                    attn: Attention {
                        qkv: LinearConfig::new(d, 3 * d).init(device),
                        proj: LinearConfig::new(d, d).init(device),
                        heads: self.heads,
                    },
                })
                .collect(),
            norm: ln(),
        })
    }
}

/// Conv 3x3 (with bias), BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct StemLayer {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// `x + attn(norm1(x))`: the whole block, no MLP.
#[derive(Module, Debug)]
pub struct SaigBlock {
    pub norm1: LayerNorm,
    pub attn: Attention,
}

/// SAIG backbone returning the token sequence `[B, N, 384]` (row-major over the 16x-strided
/// grid), as the GAP / SMD heads expect.
#[derive(Module, Debug)]
pub struct Saig {
    pub stem: Vec<StemLayer>,
    pub proj: Conv2d,
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Vec<SaigBlock>,
    pub norm: LayerNorm,
}

impl Saig {
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` (the configured size) -> `[B, (H/16)(W/16), D]`
    pub fn tokens(&self, x: Tensor<4>) -> Tensor<3> {
        let x = self
            .stem
            .iter()
            .fold(x, |x, l| relu(l.bn.forward(l.conv.forward(x))));
        let p = self.proj.forward(x);
        let [b, d, h, w] = p.dims();
        let mut t = p.reshape([b, d, h * w]).swap_dims(1, 2) + self.pos_embed.val();
        for block in &self.blocks {
            t = t.clone() + block.attn.forward(block.norm1.forward(t));
        }
        self.norm.forward(t)
    }
}
