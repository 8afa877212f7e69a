//! Vision Transformers in timm's (and DINO's) layout: patch embedding, CLS token, learned
//! position embedding, pre-norm blocks, final LayerNorm (eps 1e-6).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use crate::{BackboneError, Result};

/// Configuration of [`VisionTransformer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitConfig {
    pub embed_dim: usize,
    pub depth: usize,
    pub heads: usize,
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
        let ln = || LayerNormConfig::new(d).with_epsilon(1e-6).init(device);
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
        })
    }
}

#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
}

/// Multi-head self-attention with a fused qkv projection (timm's `Attention`).
#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    /// # Shapes
    /// - `x`: `[B, T, D]` -> `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        // [B, T, 3, H, hd] -> [3, B, H, T, hd]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, t, 3, h, hd])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| {
            qkv.clone()
                .slice([i..i + 1, 0..b, 0..h, 0..t, 0..hd])
                .reshape([b, h, t, hd])
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar((hd as f64).powf(-0.5));
        let out = softmax(scores, 3).matmul(v); // [B, H, T, hd]
        self.proj.forward(out.swap_dims(1, 2).reshape([b, t, d]))
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub act: Gelu,
    pub fc2: Linear,
}

/// Pre-norm block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct VitBlock {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
}

impl VitBlock {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x));
        let y = self.mlp.fc2.forward(
            self.mlp
                .act
                .forward(self.mlp.fc1.forward(self.norm2.forward(x.clone()))),
        );
        x + y
    }
}

/// A ViT returning its token sequence.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub patch_embed: PatchEmbed,
    pub cls_token: Param<Tensor<3>>,
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Vec<VitBlock>,
    pub norm: LayerNorm,
    #[module(skip)]
    pub grid: [usize; 2],
}

impl VisionTransformer {
    /// All tokens after the final LayerNorm, CLS first.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` with `(H, W)` the configured image size -> `[B, 1 + N, D]`
    pub fn tokens(&self, x: Tensor<4>) -> Tensor<3> {
        let p = self.patch_embed.proj.forward(x); // [B, D, gh, gw]
        let [b, d, gh, gw] = p.dims();
        assert_eq!(
            [gh, gw],
            self.grid,
            "input patch grid differs from the position embedding's; resize it with resize_position_embedding"
        );
        let patches = p.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b, 1, d]);
        let mut x = Tensor::cat(vec![cls, patches], 1) + self.pos_embed.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.norm.forward(x)
    }

    /// The CLS token after the final norm: DINO's (and Smooth-AP's ViT) image descriptor.
    ///
    /// # Shapes
    /// - `x`: `[B, 3, H, W]` -> `[B, D]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let t = self.tokens(x);
        let [b, _, d] = t.dims();
        t.slice([0..b, 0..1, 0..d]).reshape([b, d])
    }

    /// Re-grids the patch part of the position embedding to `grid` with bicubic interpolation
    /// (PyTorch's `interpolate(mode="bicubic", align_corners=False)`, as timm does when a
    /// checkpoint is loaded at another image size); the CLS entry is kept.
    pub fn resize_position_embedding(mut self, grid: [usize; 2]) -> Self {
        if grid == self.grid {
            return self;
        }
        let pos = self.pos_embed.val();
        let device = pos.device();
        let [_, t, d] = pos.dims();
        let values: Vec<f32> = pos
            .into_data()
            .convert::<f32>()
            .try_into_vec_as::<f32>()
            .expect("float tensor");
        let [gh, gw] = self.grid;
        debug_assert_eq!(t, 1 + gh * gw);
        // [N, D] row-major -> D planes of gh x gw
        let planes: Vec<f32> = (0..d)
            .flat_map(|c| (0..gh * gw).map(move |n| (c, n)))
            .map(|(c, n)| values[(1 + n) * d + c])
            .collect();
        let resized = bicubic_resize(&planes, d, [gh, gw], grid);
        let [nh, nw] = grid;
        let mut out = Vec::with_capacity((1 + nh * nw) * d);
        out.extend_from_slice(&values[..d]);
        for n in 0..nh * nw {
            for c in 0..d {
                out.push(resized[c * nh * nw + n]);
            }
        }
        let tensor = Tensor::<3>::from_data(TensorData::new(out, [1, 1 + nh * nw, d]), &device);
        self.pos_embed = Param::from_tensor(tensor);
        self.grid = grid;
        self
    }
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
/// `(dst + 0.5) * in/out - 0.5`, taps clamped at the border.
pub fn bicubic_resize(
    planes: &[f32],
    channels: usize,
    from: [usize; 2],
    to: [usize; 2],
) -> Vec<f32> {
    let [ih, iw] = from;
    let [oh, ow] = to;
    let taps = |o: usize, input: usize, output: usize| -> ([usize; 4], [f64; 4]) {
        let scale = input as f64 / output as f64;
        let src = (o as f64 + 0.5) * scale - 0.5;
        let base = src.floor();
        let w = cubic_weights(src - base);
        let idx = [-1.0, 0.0, 1.0, 2.0].map(|k| (base + k).clamp(0.0, (input - 1) as f64) as usize);
        (idx, w)
    };
    let rows: Vec<_> = (0..oh).map(|y| taps(y, ih, oh)).collect();
    let cols: Vec<_> = (0..ow).map(|x| taps(x, iw, ow)).collect();
    let mut out = vec![0.0f32; channels * oh * ow];
    for c in 0..channels {
        let plane = &planes[c * ih * iw..(c + 1) * ih * iw];
        for (y, (ry, wy)) in rows.iter().enumerate() {
            for (x, (cx, wx)) in cols.iter().enumerate() {
                let mut acc = 0.0f64;
                for (a, &r) in ry.iter().enumerate() {
                    for (b, &col) in cx.iter().enumerate() {
                        acc += wy[a] * wx[b] * plane[r * iw + col] as f64;
                    }
                }
                out[c * oh * ow + y * ow + x] = acc as f32;
            }
        }
    }
    out
}
