//! Vision Transformers in timm's (and DINO's) layout: patch embedding, CLS token, learned
//! position embedding, pre-norm blocks, final LayerNorm (eps 1e-6).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use metron_ops::{conv2d_forward, layer_norm_forward, self_attention};

use crate::{BackboneError, Result};

/// The epsilon of every LayerNorm in timm's and DINO's ViTs (and SAIG's).
pub(crate) const LN_EPSILON: f64 = 1e-6;

/// Configuration of [`VisionTransformer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitConfig {
    /// Token width `D` (384 for ViT-S, 768 for ViT-B).
    pub embed_dim: usize,
    /// Number of transformer blocks (12).
    pub depth: usize,
    /// Attention heads per block; must divide `embed_dim`.
    pub heads: usize,
    /// Side of the square patches in pixels (16): the patch embedding's kernel and stride.
    pub patch_size: usize,
    /// Input height and width the position embedding is laid out for.
    pub image_size: [usize; 2],
    /// Hidden width of the MLP as a multiple of `embed_dim` (4 in ViT).
    pub mlp_ratio: usize,
}

impl VitConfig {
    /// ViT-S/16 (DINO's `vit_small`): 384-d, 12 blocks, 6 heads.
    pub fn vit_small_patch16(image_size: usize) -> Self {
        VitConfig {
            embed_dim: 384,
            depth: 12,
            heads: 6,
            patch_size: 16,
            image_size: [image_size, image_size],
            mlp_ratio: 4,
        }
    }

    /// ViT-B/16 (DINO's `vit_base`): 768-d, 12 blocks, 12 heads.
    pub fn vit_base_patch16(image_size: usize) -> Self {
        VitConfig {
            embed_dim: 768,
            depth: 12,
            heads: 12,
            patch_size: 16,
            image_size: [image_size, image_size],
            mlp_ratio: 4,
        }
    }

    /// Patches along height and width.
    pub fn grid(&self) -> [usize; 2] {
        [
            self.image_size[0] / self.patch_size,
            self.image_size[1] / self.patch_size,
        ]
    }

    /// Builds the network with random weights (zero CLS token and position embedding); load a
    /// checkpoint next. Heads not dividing `embed_dim`, a zero patch size or an image smaller
    /// than one patch are an [`BackboneError::InvalidConfig`].
    pub fn init(&self, device: &Device) -> Result<VisionTransformer> {
        let d = self.embed_dim;
        if self.heads == 0 || !d.is_multiple_of(self.heads) || self.patch_size == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "ViT needs heads dividing embed_dim and a positive patch size, got {self:?}"
            )));
        }
        let [gh, gw] = self.grid();
        if gh == 0 || gw == 0 {
            return Err(BackboneError::InvalidConfig(format!(
                "image size {:?} is smaller than one {}-pixel patch",
                self.image_size, self.patch_size
            )));
        }
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(LN_EPSILON)
                .init(device)
        };
        let zeros = |shape: [usize; 3]| Param::from_tensor(Tensor::<3>::zeros(shape, device));
        Ok(VisionTransformer {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([3, d], [self.patch_size, self.patch_size])
                    .with_stride([self.patch_size, self.patch_size])
                    .init(device),
            },
            cls_token: zeros([1, 1, d]),
            pos_embed: zeros([1, 1 + gh * gw, d]),
            blocks: (0..self.depth)
                .map(|_| VitBlock {
                    norm1: ln(),
                    attn: Attention {
                        qkv: LinearConfig::new(d, 3 * d).init(device),
                        proj: LinearConfig::new(d, d).init(device),
                        heads: self.heads,
                    },
                    norm2: ln(),
                    mlp: Mlp {
                        fc1: LinearConfig::new(d, self.mlp_ratio * d).init(device),
                        act: Gelu::new(),
                        fc2: LinearConfig::new(self.mlp_ratio * d, d).init(device),
                    },
                })
                .collect(),
            norm: ln(),
            grid: [gh, gw],
            position_resize: PositionResize::default(),
        })
    }
}

/// Patch embedding (timm's `PatchEmbed`): one token per non-overlapping patch.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// Convolution with kernel and stride `patch_size`, 3 -> `embed_dim` channels.
    pub proj: Conv2d,
}

/// Multi-head self-attention with a fused qkv projection (timm's `Attention`).
#[derive(Module, Debug)]
pub struct Attention {
    /// Fused query, key and value projection, `D -> 3 D`.
    pub qkv: Linear,
    /// Output projection, `D -> D`.
    pub proj: Linear,
    /// Number of heads; each attends over `D / heads` channels.
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    /// # Shapes
    /// - `x`: `[B, T, D]` -> `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.proj
            .forward(self_attention(self.qkv.forward(x), self.heads))
    }
}

/// The feed-forward part of a [`VitBlock`] (timm's `Mlp`): `fc2(gelu(fc1(x)))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion, `D -> mlp_ratio * D`.
    pub fc1: Linear,
    /// Burn's GELU; kept for the module layout, the forward pass uses
    /// `metron_ops::gelu` (exact gradient, one fused pass on the CPU) instead.
    pub act: Gelu,
    /// Projection back, `mlp_ratio * D -> D`.
    pub fc2: Linear,
}

/// Pre-norm block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct VitBlock {
    /// LayerNorm before attention (eps 1e-6).
    pub norm1: LayerNorm,
    /// Multi-head self-attention.
    pub attn: Attention,
    /// LayerNorm before the MLP (eps 1e-6).
    pub norm2: LayerNorm,
    /// The feed-forward network.
    pub mlp: Mlp,
}

impl VitBlock {
    /// `keep`: the per-sample scale of each residual branch (attention, MLP) under drop path,
    /// `[B, 1, 1]`; `None` keeps both branches whole.
    fn forward(&self, x: Tensor<3>, keep: Option<[Tensor<3>; 2]>) -> Tensor<3> {
        let [keep_attn, keep_mlp] = match keep {
            Some([a, m]) => [Some(a), Some(m)],
            None => [None, None],
        };
        let scale = |y: Tensor<3>, k: Option<Tensor<3>>| match k {
            Some(k) => y * k,
            None => y,
        };
        let norm1 = layer_norm_forward(&self.norm1, x.clone(), LN_EPSILON);
        let x = x + scale(self.attn.forward(norm1), keep_attn);
        // `mlp.act` is Burn's GELU; its exact-gradient twin runs instead (see
        // `metron_ops::gelu`: Burn's backward is the tanh approximation's on wgpu/cuda).
        let y = self
            .mlp
            .fc2
            .forward(metron_ops::gelu(self.mlp.fc1.forward(layer_norm_forward(
                &self.norm2,
                x.clone(),
                LN_EPSILON,
            ))));
        x + scale(y, keep_mlp)
    }
}

/// Stochastic depth for one training forward pass (timm's `DropPath`, as DINO trains its
/// ViTs): each residual branch of block `i` is dropped for a whole sample with probability
/// `rate * i / (depth - 1)` (timm's linear ramp from 0) and scaled by `1 / (1 - p)` when kept.
///
/// The draws come from one seed per sample (a loader's per-image stream), not from a global
/// generator, so a run is the same whatever else shares the process and a resumed run draws
/// what the uninterrupted one would have.
#[derive(Debug, Clone, PartialEq)]
pub struct DropPath {
    /// The last block's drop probability, in `[0, 1)` (DINO / Smooth-AP's ViT: 0.1).
    pub rate: f64,
    /// One seed per sample of the batch.
    pub seeds: Vec<u64>,
}

impl DropPath {
    /// Drop probability of block `block` of `depth`.
    pub fn block_rate(&self, block: usize, depth: usize) -> f64 {
        if depth <= 1 {
            return 0.0;
        }
        self.rate * block as f64 / (depth - 1) as f64
    }

    /// Whether sample `sample` keeps branch `branch` (0 attention, 1 MLP) of block `block`.
    pub fn keeps(&self, sample: usize, block: usize, branch: usize, depth: usize) -> bool {
        let p = self.block_rate(block, depth);
        let stream = (block * 2 + branch + 1) as u64;
        let bits = metron_core::split_seed(self.seeds[sample], stream);
        let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
        u >= p
    }

    fn scales(&self, block: usize, depth: usize, device: &Device) -> Option<[Tensor<3>; 2]> {
        let p = self.block_rate(block, depth);
        if p <= 0.0 {
            return None;
        }
        let b = self.seeds.len();
        Some([0, 1].map(|branch| {
            let v: Vec<f32> = (0..b)
                .map(|s| {
                    if self.keeps(s, block, branch, depth) {
                        (1.0 / (1.0 - p)) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [b, 1, 1]), device)
        }))
    }
}

/// A ViT returning its token sequence.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// Splits the image into patch tokens.
    pub patch_embed: PatchEmbed,
    /// The learned CLS token, `[1, 1, D]`.
    pub cls_token: Param<Tensor<3>>,
    /// Learned position embedding, `[1, 1 + grid_h * grid_w, D]`, CLS entry first.
    pub pos_embed: Param<Tensor<3>>,
    /// The pre-norm transformer blocks.
    pub blocks: Vec<VitBlock>,
    /// Final LayerNorm on all tokens (eps 1e-6).
    pub norm: LayerNorm,
    /// Patches along height and width that `pos_embed` is laid out for.
    #[module(skip)]
    pub grid: [usize; 2],
    /// How `tokens` re-grids the position embedding for other input sizes (timm's
    /// anti-aliased bicubic by default; [`PositionResize::DinoBicubic`] reproduces DINO's own
    /// forward pass).
    #[module(skip)]
    pub position_resize: PositionResize,
}

impl VisionTransformer {
    /// All tokens after the final LayerNorm, CLS first.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` with `(H, W)` the configured image size -> `[B, 1 + N, D]`
    pub fn tokens(&self, x: Tensor<4>) -> Tensor<3> {
        self.tokens_with_drop_path(x, None)
    }

    /// [`VisionTransformer::tokens`] with stochastic depth when `drop_path` is given (training).
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]`, `drop_path.seeds`: `B` -> `[B, 1 + N, D]`
    pub fn tokens_with_drop_path(&self, x: Tensor<4>, drop_path: Option<&DropPath>) -> Tensor<3> {
        let p = conv2d_forward(&self.patch_embed.proj, x); // [B, D, gh, gw]
        let [b, d, gh, gw] = p.dims();
        let patches = p.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b, 1, d]);
        // Another input size: the position embedding is re-gridded on the fly (differentiably).
        let pos = self.position_embedding_for([gh, gw]);
        let mut x = Tensor::cat(vec![cls, patches], 1) + pos;
        let depth = self.blocks.len();
        let device = x.device();
        for (i, block) in self.blocks.iter().enumerate() {
            let keep = drop_path.and_then(|dp| dp.scales(i, depth, &device));
            x = block.forward(x, keep);
        }
        layer_norm_forward(&self.norm, x, LN_EPSILON)
    }

    /// The CLS token after the final norm: DINO's (and Smooth-AP's ViT) image descriptor.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, D]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.cls_with_drop_path(x, None)
    }

    /// [`VisionTransformer::forward`] with stochastic depth when `drop_path` is given.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, D]`
    pub fn cls_with_drop_path(&self, x: Tensor<4>, drop_path: Option<&DropPath>) -> Tensor<2> {
        let t = self.tokens_with_drop_path(x, drop_path);
        let [b, _, d] = t.dims();
        t.slice([0..b, 0..1, 0..d]).reshape([b, d])
    }

    /// The position embedding for a `grid` of patches: the stored one, or its patch part
    /// resized with [`VisionTransformer::position_resize`], the CLS entry kept. The resize is
    /// two matrix products, so gradients reach the stored embedding.
    ///
    /// # Shapes
    /// - -> `[1, 1 + gh * gw, D]`
    pub fn position_embedding_for(&self, grid: [usize; 2]) -> Tensor<3> {
        let pos = self.pos_embed.val();
        if grid == self.grid {
            return pos;
        }
        let [_, n, d] = pos.dims();
        let cls = pos.clone().slice([0..1, 0..1, 0..d]);
        let patches = pos.slice([0..1, 1..n, 0..d]);
        let resized = regrid_tokens(patches, self.grid, grid, self.position_resize);
        Tensor::cat(vec![cls, resized], 1)
    }

    /// Stores the position embedding re-gridded for `grid` (timm's resize of a checkpoint
    /// loaded at another image size); `tokens` then needs no resize at that size.
    pub fn resize_position_embedding(mut self, grid: [usize; 2]) -> Self {
        let resized = self.position_embedding_for(grid).detach();
        self.pos_embed = Param::from_tensor(resized);
        self.grid = grid;
        self
    }
}

/// How a position embedding is re-gridded for another input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionResize {
    /// `interpolate(size=(h, w), mode="bicubic", align_corners=False)`: cubic kernel
    /// A = -0.75, border taps clamped, output sample `o` read at source coordinate
    /// `(o + 0.5) * input / output - 0.5` (SAIG's load-time `resize_pos_embed`).
    Bicubic,
    /// The same with `antialias=True`, which timm's `resample_abs_pos_embed` uses: PyTorch's
    /// anti-aliased kernel (A = -0.5, widened when shrinking, weights renormalised at borders).
    #[default]
    BicubicAntialias,
    /// DINO's `interpolate_pos_encoding`: the same kernel as [`PositionResize::Bicubic`], but
    /// PyTorch is given `scale_factor = (n + 0.1) / m` (DINO adds 0.1 so that the output size
    /// `floor(m * scale)` cannot round down to `n - 1`) instead of a size. PyTorch then uses
    /// that factor, not `output / input`, to place the samples: output `o` reads source
    /// coordinate `(o + 0.5) * m / (n + 0.1) - 0.5`, a fraction of a pixel away from
    /// `Bicubic`'s, so DINO's weights need this variant to reproduce its tokens.
    /// DINO keeps the stored embedding when the input is square with the stored number of
    /// patches; metron keeps it whenever the patch grid equals the stored one, so a non-square
    /// image with the stored grid (224 x 230 at patch 16) is the one case where DINO resizes
    /// and metron does not.
    DinoBicubic,
}

impl PositionResize {
    /// The `[output, input]` matrix of this 1-D resize.
    pub fn matrix(self, input: usize, output: usize) -> Vec<f64> {
        match self {
            PositionResize::Bicubic => bicubic_matrix(input, output),
            PositionResize::BicubicAntialias => bicubic_antialias_matrix(input, output),
            // PyTorch inverts the given scale factor rather than dividing the sizes: mirror
            // that arithmetic so f64 results agree to the last bits.
            PositionResize::DinoBicubic => bicubic_matrix_with_step(
                input,
                output,
                1.0 / ((output as f64 + 0.1) / input as f64),
            ),
        }
    }
}

/// `tokens` laid out row-major on a `from` grid, re-gridded to `to` with `resize`: two
/// matrix products, so gradients reach `tokens`.
///
/// # Shapes
/// - `tokens`: `[1, from_h * from_w, D]` -> `[1, to_h * to_w, D]`
pub(crate) fn regrid_tokens(
    tokens: Tensor<3>,
    from: [usize; 2],
    to: [usize; 2],
    resize: PositionResize,
) -> Tensor<3> {
    let [_, _, d] = tokens.dims();
    let [gh, gw] = from;
    let [nh, nw] = to;
    let device = tokens.device();
    let dtype = tokens.dtype();
    // [1, N, D] -> [D, gh, gw]
    let planes = tokens
        .reshape([gh * gw, d])
        .transpose()
        .reshape([d, gh, gw]);
    let matrix = |input: usize, output: usize| {
        Tensor::<2>::from_data(
            TensorData::new(resize.matrix(input, output), [output, input]),
            (&device, dtype),
        )
    };
    let rows = matrix(gh, nh).unsqueeze_dim::<3>(0); // [1, nh, gh]
    let cols = matrix(gw, nw).transpose().unsqueeze_dim::<3>(0); // [1, gw, nw]
    rows.matmul(planes)
        .matmul(cols) // [D, nh, nw]
        .reshape([d, nh * nw])
        .transpose()
        .reshape([1, nh * nw, d])
}

/// PyTorch's anti-aliased bicubic weights (`_upsample_bicubic2d_aa`).
fn bicubic_antialias_matrix(input: usize, output: usize) -> Vec<f64> {
    const A: f64 = -0.5;
    let filter = |x: f64| {
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * A
        } else {
            0.0
        }
    };
    let scale = input as f64 / output as f64;
    let (support, invscale) = if scale >= 1.0 {
        (2.0 * scale, 1.0 / scale)
    } else {
        (2.0, 1.0)
    };
    let mut m = vec![0.0f64; output * input];
    for o in 0..output {
        let center = scale * (o as f64 + 0.5);
        let lo = ((center - support + 0.5).trunc().max(0.0)) as usize;
        let hi = ((center + support + 0.5).trunc() as usize).min(input);
        let weights: Vec<f64> = (lo..hi)
            .map(|i| filter((i as f64 - center + 0.5) * invscale))
            .collect();
        let total: f64 = weights.iter().sum();
        for (i, w) in (lo..hi).zip(weights) {
            m[o * input + i] = if total != 0.0 { w / total } else { 0.0 };
        }
    }
    m
}

/// The `[output, input]` matrix of the 1-D bicubic resize: row o holds the four cubic
/// weights of output sample o, taps clamped at the border (weights of clamped taps add up).
pub fn bicubic_matrix(input: usize, output: usize) -> Vec<f64> {
    bicubic_matrix_with_step(input, output, input as f64 / output as f64)
}

/// [`bicubic_matrix`] with output sample `o` read at source coordinate
/// `(o + 0.5) * step - 0.5`.
fn bicubic_matrix_with_step(input: usize, output: usize, step: f64) -> Vec<f64> {
    let mut m = vec![0.0f64; output * input];
    for o in 0..output {
        let src = (o as f64 + 0.5) * step - 0.5;
        let base = src.floor();
        for (k, w) in cubic_weights(src - base).into_iter().enumerate() {
            let i = (base + k as f64 - 1.0).clamp(0.0, (input - 1) as f64) as usize;
            m[o * input + i] += w;
        }
    }
    m
}

/// PyTorch's cubic convolution kernel (A = -0.75).
fn cubic_weights(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// Bicubic resize of `channels` planes `[from_h, from_w]` to `[to_h, to_w]`, matching
/// `torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`: source coordinate
/// `(dst + 0.5) * in/out - 0.5`, taps clamped at the border. Host-side twin of
/// [`VisionTransformer::position_embedding_for`], from the same [`bicubic_matrix`].
pub fn bicubic_resize(
    planes: &[f32],
    channels: usize,
    from: [usize; 2],
    to: [usize; 2],
) -> Vec<f32> {
    let [ih, iw] = from;
    let [oh, ow] = to;
    let rows = bicubic_matrix(ih, oh);
    let cols = bicubic_matrix(iw, ow);
    let mut out = vec![0.0f32; channels * oh * ow];
    for c in 0..channels {
        let plane = &planes[c * ih * iw..(c + 1) * ih * iw];
        for y in 0..oh {
            for x in 0..ow {
                let mut acc = 0.0f64;
                for r in 0..ih {
                    let wy = rows[y * ih + r];
                    if wy == 0.0 {
                        continue;
                    }
                    for col in 0..iw {
                        acc += wy * cols[x * iw + col] * plane[r * iw + col] as f64;
                    }
                }
                out[c * oh * ow + y * ow + x] = acc as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_rows_are_partitions_of_unity_and_dino_moves_even_same_size_samples() {
        for resize in [
            PositionResize::Bicubic,
            PositionResize::BicubicAntialias,
            PositionResize::DinoBicubic,
        ] {
            for (input, output) in [(4, 6), (4, 3), (14, 16), (5, 5)] {
                let m = resize.matrix(input, output);
                for row in m.chunks(input) {
                    let sum: f64 = row.iter().sum();
                    assert!(
                        (sum - 1.0).abs() < 1e-12,
                        "{resize:?} {input}->{output}: {sum}"
                    );
                }
            }
        }
        // Same size: plain bicubic is the identity; DINO's step 5 / 5.1 shifts output 4 by
        // 4.5 * (1 - 5 / 5.1) = 0.088 of a pixel towards the origin.
        let identity: Vec<f64> = (0..25)
            .map(|k| if k % 6 == 0 { 1.0 } else { 0.0 })
            .collect();
        let plain = PositionResize::Bicubic.matrix(5, 5);
        assert!(
            plain
                .iter()
                .zip(&identity)
                .all(|(a, b)| (a - b).abs() < 1e-12)
        );
        let dino = PositionResize::DinoBicubic.matrix(5, 5);
        let t = 1.0 - 4.5 * (1.0 - 5.0 / 5.1);
        let want = cubic_weights(t);
        // Taps 2, 3, 4 and the clamped 5 (-> 4) of output 4.
        let row = &dino[20..25];
        assert!((row[2] - want[0]).abs() < 1e-12);
        assert!((row[3] - want[1]).abs() < 1e-12);
        assert!((row[4] - (want[2] + want[3])).abs() < 1e-12);
    }

    fn tiny_vit(device: &Device) -> VisionTransformer {
        let config = VitConfig {
            embed_dim: 8,
            depth: 3,
            heads: 2,
            patch_size: 4,
            image_size: [8, 8],
            mlp_ratio: 2,
        };
        metron_core::seeded_init(device, 3, || config.init(device)).unwrap()
    }

    fn local_images(n: usize, device: &Device) -> Tensor<4> {
        // Deterministic noise without Burn's process-wide generator (other tests' seeded init).
        let v: Vec<f32> = (0..n * 3 * 64)
            .map(|i| (metron_core::split_seed(11, i as u64) >> 40) as f32 / (1u64 << 24) as f32)
            .collect();
        Tensor::from_data(TensorData::new(v, [n, 3, 8, 8]), device)
    }

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn drop_path_ramps_linearly_and_keeps_one_minus_p_of_the_branches() {
        let dp = DropPath {
            rate: 0.4,
            seeds: (0..20_000u64).collect(),
        };
        assert_eq!(dp.block_rate(0, 3), 0.0);
        assert!((dp.block_rate(1, 3) - 0.2).abs() < 1e-12);
        assert!((dp.block_rate(2, 3) - 0.4).abs() < 1e-12);
        for (block, p) in [(0, 0.0), (1, 0.2), (2, 0.4)] {
            for branch in [0, 1] {
                let kept = (0..dp.seeds.len())
                    .filter(|&s| dp.keeps(s, block, branch, 3))
                    .count() as f64
                    / dp.seeds.len() as f64;
                // Binomial standard deviation at n = 20000 is at most 0.0035.
                assert!((kept - (1.0 - p)).abs() < 0.015, "block {block}: {kept}");
            }
        }
        // The two branches of a block are drawn independently.
        let both = (0..dp.seeds.len())
            .filter(|&s| !dp.keeps(s, 2, 0, 3) && !dp.keeps(s, 2, 1, 3))
            .count() as f64
            / dp.seeds.len() as f64;
        assert!((both - 0.16).abs() < 0.015, "{both}");
    }

    #[test]
    fn drop_path_at_rate_zero_is_the_plain_forward_and_is_a_function_of_the_seeds() {
        let device = Device::flex();
        let vit = tiny_vit(&device);
        let x = local_images(6, &device);
        let plain = values(vit.tokens(x.clone()));
        let zero = DropPath {
            rate: 0.0,
            seeds: (0..6).collect(),
        };
        assert_eq!(
            values(vit.tokens_with_drop_path(x.clone(), Some(&zero))),
            plain
        );
        let all_dropped =
            |dp: &DropPath, s: usize| (1..3).all(|blk| (0..2).all(|br| !dp.keeps(s, blk, br, 3)));
        // Sample 0 gets the first seed whose later branches are all dropped.
        let probe = DropPath {
            rate: 0.9,
            seeds: (0..1000).collect(),
        };
        let first = (0..1000).find(|&s| all_dropped(&probe, s)).unwrap() as u64;
        let dp = DropPath {
            rate: 0.9,
            seeds: std::iter::once(first).chain(100..105).collect(),
        };
        let a = values(vit.tokens_with_drop_path(x.clone(), Some(&dp)));
        let b = values(vit.tokens_with_drop_path(x.clone(), Some(&dp)));
        assert_eq!(a, b, "the same seeds draw the same masks");
        assert_ne!(a, plain, "rate 0.9 changes some sample");
        // A sample whose later branches are all dropped sees only block 0.
        let per = a.len() / 6;
        let one_block = VisionTransformer {
            blocks: vit.blocks[..1].to_vec(),
            ..vit.clone()
        };
        let want = values(one_block.tokens(x));
        for (g, w) in a[..per].iter().zip(&want[..per]) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
