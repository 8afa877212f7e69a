//! SAIG-S / SAIG-D (cross-view geo-localisation): a convolutional stem and attention-only
//! transformer blocks (no MLP), no CLS token (`../shared/specs/seed-systems.md` s. 1.1).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, LayerNorm, LayerNormConfig, LinearConfig,
    PaddingConfig2d,
};
use burn::tensor::{Device, Distribution, Tensor};
use metron_ops::{RunningVariance, batch_norm_relu_forward_with};
use metron_ops::{conv2d_forward, layer_norm_forward};

use crate::load::KeyMap;
use crate::vit::{Attention, LN_EPSILON, PositionResize, regrid_tokens};
use crate::{BackboneError, Result};

/// Output channels (as multiples of [`SaigConfig::stem_width`]) and strides of the six 3x3
/// stem convolutions (overall stride 16): 64, 128, 128, 256, 256, 512 in the original.
const STEM: [(usize, usize); 6] = [(1, 2), (2, 2), (2, 1), (4, 2), (4, 1), (8, 2)];

/// Standard deviation of the original's `trunc_normal_` initialisation of the Linears and the
/// position embedding. timm truncates at +-2 in absolute value, i.e. +-100 standard
/// deviations: a plain normal in every practical sense.
const INIT_STD: f64 = 0.02;

/// Key renames for the original SAIG checkpoints (yanghongji2007/SAIG, timm's
/// `VisionTransformer` with `ConvEmbed`: `SAIG_Shallow` / `SAIG_Deep`). The original keeps its
/// stem in one `nn.Sequential` (`patch_embed.conv_stem`: conv, BN, ReLU six times, then the
/// 1x1 projection at index 18); the rest of its keys are metron's already. Its ImageNet
/// classifier `head.*` has no counterpart here: load with
/// `LoadMode::StrictIgnoringUnused(&["head."])`, which still rejects any other stray key.
/// The patterns are anchored at both ends of the index so that `1` cannot match `10`.
pub const SAIG_ORIGINAL_KEYS: KeyMap<'static> = &[
    (r"^patch_embed\.conv_stem\.0\.", "stem.0.conv."),
    (r"^patch_embed\.conv_stem\.1\.", "stem.0.bn."),
    (r"^patch_embed\.conv_stem\.3\.", "stem.1.conv."),
    (r"^patch_embed\.conv_stem\.4\.", "stem.1.bn."),
    (r"^patch_embed\.conv_stem\.6\.", "stem.2.conv."),
    (r"^patch_embed\.conv_stem\.7\.", "stem.2.bn."),
    (r"^patch_embed\.conv_stem\.9\.", "stem.3.conv."),
    (r"^patch_embed\.conv_stem\.10\.", "stem.3.bn."),
    (r"^patch_embed\.conv_stem\.12\.", "stem.4.conv."),
    (r"^patch_embed\.conv_stem\.13\.", "stem.4.bn."),
    (r"^patch_embed\.conv_stem\.15\.", "stem.5.conv."),
    (r"^patch_embed\.conv_stem\.16\.", "stem.5.bn."),
    (r"^patch_embed\.conv_stem\.18\.", "proj."),
];

/// Configuration of [`Saig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaigConfig {
    /// 11 (SAIG-S) or 22 (SAIG-D).
    pub depth: usize,
    /// Token width (384 for both variants).
    pub embed_dim: usize,
    /// Attention heads per block (12); must divide `embed_dim`.
    pub heads: usize,
    /// Input height and width (256 x 256 satellite, 128 x 512 ground for CVUSA).
    pub image_size: [usize; 2],
    /// Channels of the first stem convolution (64); the stem widens to 8x this. Narrower stems
    /// train on a CPU; the original's checkpoints need 64.
    pub stem_width: usize,
}

impl SaigConfig {
    /// SAIG-S: 11 blocks, 384-d, 12 heads, at `image_size` (height, width).
    pub fn saig_s(image_size: [usize; 2]) -> Self {
        SaigConfig {
            depth: 11,
            embed_dim: 384,
            heads: 12,
            image_size,
            stem_width: 64,
        }
    }

    /// SAIG-D: SAIG-S with 22 blocks, at `image_size` (height, width).
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

    /// Builds the network with the original's random initialisation (Linears and position
    /// embedding normal with std 0.02, Linear biases zero, LayerNorms identity, convolutions
    /// PyTorch's default); load a checkpoint next to start from trained weights. Heads not
    /// dividing `embed_dim`, a zero stem width, or an image smaller than 16 x 16, are an
    /// [`BackboneError::InvalidConfig`].
    pub fn init(&self, device: &Device) -> Result<Saig> {
        let d = self.embed_dim;
        let [gh, gw] = self.grid();
        if self.heads == 0
            || !d.is_multiple_of(self.heads)
            || gh == 0
            || gw == 0
            || self.stem_width == 0
        {
            return Err(BackboneError::InvalidConfig(format!(
                "SAIG needs heads dividing embed_dim, a positive stem width and an image of at \
                 least 16 x 16, got {self:?}"
            )));
        }
        let linear = |d_in: usize, d_out: usize| {
            let mut l = LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: INIT_STD,
                })
                .init(device);
            l.bias = l
                .bias
                .map(|_| Param::from_tensor(Tensor::zeros([d_out], device)));
            l
        };
        let mut cin = 3;
        let stem = STEM
            .iter()
            .map(|&(multiple, stride)| {
                let cout = multiple * self.stem_width;
                let conv = Conv2dConfig::new([cin, cout], [3, 3])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device);
                cin = cout;
                StemLayer {
                    conv,
                    bn: BatchNormConfig::new(cout).init(device),
                    running_variance: RunningVariance::Unbiased,
                }
            })
            .collect();
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(LN_EPSILON)
                .init(device)
        };
        Ok(Saig {
            stem,
            proj: Conv2dConfig::new([cin, d], [1, 1]).init(device),
            pos_embed: Param::from_tensor(Tensor::random(
                [1, gh * gw, d],
                Distribution::Normal(0.0, INIT_STD),
                device,
            )),
            blocks: (0..self.depth)
                .map(|_| SaigBlock {
                    norm1: ln(),
                    attn: Attention {
                        qkv: linear(d, 3 * d),
                        proj: linear(d, d),
                        heads: self.heads,
                    },
                })
                .collect(),
            norm: ln(),
            grid: [gh, gw],
        })
    }
}

/// Conv 3x3 (with bias), BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct StemLayer {
    /// The 3x3 convolution (stride 1 or 2, padding 1).
    pub conv: Conv2d,
    /// BatchNorm after `conv`.
    pub bn: BatchNorm,
    /// PyTorch's unbiased running variance unless switched ([`Saig::set_running_variance`]).
    #[module(skip)]
    pub running_variance: RunningVariance,
}

/// `x + attn(norm1(x))`: the whole block, no MLP.
#[derive(Module, Debug)]
pub struct SaigBlock {
    /// Pre-attention LayerNorm (eps 1e-6).
    pub norm1: LayerNorm,
    /// Multi-head self-attention over all tokens.
    pub attn: Attention,
}

/// SAIG backbone returning the token sequence `[B, N, 384]` (row-major over the 16x-strided
/// grid), as the GAP / SMD heads expect.
///
/// The original's checkpoints load with [`load_pytorch`](crate::load_pytorch) (or
/// [`load_pytorch_entry`](crate::load_pytorch_entry) with entry `"state_dict"` for the
/// ImageNet-pretrained files, which its training script reads that way), [`SAIG_ORIGINAL_KEYS`]
/// and `LoadMode::StrictIgnoringUnused(&["head."])`, into a model configured for the
/// checkpoint's image size (224 x 224 for the pretrained ones); then
/// [`Saig::resize_position_embedding`] adapts it to the training size.
#[derive(Module, Debug)]
pub struct Saig {
    /// Six conv-BN-ReLU layers, 3 -> 8 x `stem_width` channels (512) at overall stride 16.
    pub stem: Vec<StemLayer>,
    /// 1x1 convolution from the stem's last channels (512) to `embed_dim`: one token per
    /// position.
    pub proj: Conv2d,
    /// Learned position embedding, `[1, grid_h * grid_w, D]` (no CLS entry).
    pub pos_embed: Param<Tensor<3>>,
    /// The attention-only transformer blocks (11 for SAIG-S, 22 for SAIG-D).
    pub blocks: Vec<SaigBlock>,
    /// Final LayerNorm on the tokens (eps 1e-6).
    pub norm: LayerNorm,
    /// Tokens along height and width that `pos_embed` is laid out for.
    #[module(skip)]
    pub grid: [usize; 2],
}

impl Saig {
    /// Switches the stem's BatchNorm running-variance rule (see [`RunningVariance`]).
    pub fn set_running_variance(&mut self, rule: RunningVariance) {
        for layer in &mut self.stem {
            layer.running_variance = rule;
        }
    }

    /// # Shapes
    /// - `x`: `[B, 3, H, W]` with `(H/16, W/16)` equal to [`Saig::grid`] (the configured size,
    ///   or the one set by [`Saig::resize_position_embedding`]) -> `[B, (H/16)(W/16), D]`
    pub fn tokens(&self, x: Tensor<4>) -> Tensor<3> {
        let x = self.stem.iter().fold(x, |x, l| {
            batch_norm_relu_forward_with(&l.bn, conv2d_forward(&l.conv, x), l.running_variance)
        });
        let p = conv2d_forward(&self.proj, x);
        let [b, d, h, w] = p.dims();
        let mut t = p.reshape([b, d, h * w]).swap_dims(1, 2) + self.pos_embed.val();
        for block in &self.blocks {
            t = t.clone()
                + block
                    .attn
                    .forward(layer_norm_forward(&block.norm1, t, LN_EPSILON));
        }
        layer_norm_forward(&self.norm, t, LN_EPSILON)
    }

    /// Stores the position embedding re-gridded for `grid`, as the original's training script
    /// does when it loads the 224 x 224 ImageNet checkpoint for 256 x 256 satellite or
    /// 128 x 512 ground images (`resize_pos_embed`: plain bicubic, [`PositionResize::Bicubic`]).
    ///
    /// The original reads the stored tokens as a square grid; from a square grid this is
    /// exactly its resize. From a non-square one (a checkpoint fine-tuned at 128 x 512) this
    /// resizes from the true grid, where the original would misread the tokens, or fail when
    /// their number is not a square.
    ///
    /// A grid with a zero side is an [`BackboneError::InvalidConfig`].
    pub fn resize_position_embedding(mut self, grid: [usize; 2]) -> Result<Self> {
        if grid[0] == 0 || grid[1] == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "SAIG position grid must be non-empty, got {grid:?}"
            )));
        }
        if grid == self.grid {
            return Ok(self);
        }
        let resized = regrid_tokens(
            self.pos_embed.val(),
            self.grid,
            grid,
            PositionResize::Bicubic,
        )
        .detach();
        self.pos_embed = Param::from_tensor(resized);
        self.grid = grid;
        Ok(self)
    }
}
