//! Global pooling of `[B, C, H, W]` feature maps into `[B, C]` descriptors: SPoC, MAC, GeM.

use burn::module::{Module, Param};
use burn::tensor::{Device, FloatDType, Tensor};

/// Sum-pooled convolutional features: the mean over H x W (no PCA whitening).
#[derive(Module, Debug, Default)]
pub struct Spoc;

/// Maximum activations of convolutions: the max over H x W.
#[derive(Module, Debug, Default)]
pub struct Mac;

impl Spoc {
    /// # Shapes
    /// - `x`: `[B, C, H, W]` -> `[B, C]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
    }
}

impl Mac {
    /// # Shapes
    /// - `x`: `[B, C, H, W]` -> `[B, C]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).max_dim(2).reshape([b, c])
    }
}

/// How GeM treats values below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GemVariant {
    /// Radenovic et al. (cnnimageretrieval-pytorch): `(mean(clamp(x, eps)^p))^(1/p)`,
    /// eps = 1e-6. Works for any p > 0 and any sign of the input.
    #[default]
    Clamped,
    /// CGD's: `m = mean(x^p)`, output `sign(m) |m|^(1/p)`, no clamp. Needs an integer p (CGD
    /// uses 3) so that `x^p` of negative values is defined.
    Signed,
}

/// Generalised-mean pooling with a fixed or learnable exponent p.
#[derive(Module, Debug)]
pub struct Gem {
    /// The trained exponent `[1]` when created with [`GemConfig::learnable`].
    pub learned_p: Option<Param<Tensor<1>>>,
    /// The fixed exponent (the initial value when learned).
    #[module(skip)]
    pub p: f64,
    /// Lower clamp of the input in the clamped variant (the signed variant ignores it).
    #[module(skip)]
    pub eps: f64,
    /// How values below zero are treated.
    #[module(skip)]
    pub variant: GemVariant,
}

/// Configuration of [`Gem`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemConfig {
    /// The exponent p (the initial value when learnable); p = 1 is average, large p nears max.
    pub p: f64,
    /// Lower clamp of the input in the clamped variant; 1e-6 by default.
    pub eps: f64,
    /// How values below zero are treated; [`GemVariant::Clamped`] by default.
    pub variant: GemVariant,
    /// Whether p becomes a trained parameter; off by default.
    pub learnable: bool,
}

impl GemConfig {
    /// Fixed p, clamped variant (Radenovic et al.; p = 3 is their default).
    pub fn new(p: f64) -> Self {
        GemConfig {
            p,
            eps: 1e-6,
            variant: GemVariant::Clamped,
            learnable: false,
        }
    }

    /// CGD's GeM: p = 3, fixed, signed variant.
    pub fn cgd() -> Self {
        GemConfig {
            p: 3.0,
            eps: 0.0,
            variant: GemVariant::Signed,
            learnable: false,
        }
    }

    /// p becomes a trained parameter (starting at `self.p`).
    pub fn learnable(mut self) -> Self {
        self.learnable = true;
        self
    }

    /// The pooling layer, with a trained p on `device` when `learnable`.
    pub fn init(&self, device: &Device) -> Gem {
        Gem {
            learned_p: self
                .learnable
                .then(|| Param::from_tensor(Tensor::<1>::from_floats([self.p as f32], device))),
            p: self.p,
            eps: self.eps,
            variant: self.variant,
        }
    }
}

impl Gem {
    /// # Shapes
    /// - `x`: `[B, C, H, W]` -> `[B, C]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let x = x.reshape([b, c, h * w]);
        // A learned p follows the input's float type (an f32 parameter on f64 features).
        let dtype = x.dtype();
        let learned = self.learned_p.as_ref().map(|p| {
            let p = p.val();
            if p.dtype() == dtype {
                p
            } else {
                p.cast(FloatDType::from(dtype))
            }
        });
        let mean = match self.variant {
            GemVariant::Clamped => {
                let x = x.clamp_min(self.eps);
                match &learned {
                    Some(p) => x.powf(p.clone().reshape([1, 1, 1]).expand([b, c, h * w])),
                    None => x.powf_scalar(self.p),
                }
            }
            // Integer powers keep the sign of negative activations (x^3 < 0 for x < 0).
            GemVariant::Signed => x.powi_scalar(self.p.round() as i64),
        }
        .mean_dim(2)
        .reshape([b, c]);
        let root = |m: Tensor<2>| match &learned {
            Some(p) => m.powf(p.clone().reshape([1, 1]).expand([b, c]).recip()),
            None => m.powf_scalar(1.0 / self.p),
        };
        match self.variant {
            GemVariant::Clamped => root(mean),
            GemVariant::Signed => mean.clone().sign() * root(mean.abs()),
        }
    }
}
