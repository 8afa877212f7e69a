//! WGOL's structure-aware self-attention (spec s. 2.1, `ScaledDotProductAttention`): attention
//! over the locations of a feature map whose logits are biased by the structure (edge) code.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

/// Configuration of [`StructureAttention`]; defaults are the original's at d_model 512.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StructureAttentionConfig {
    /// Channels in and out (512 for VGG-16's conv5).
    pub d_model: usize,
    /// Heads (`sa_head`, 8).
    pub heads: usize,
    /// Query/key/value width **per head** (`sa_neu_num`, 512: the projections are
    /// `d_model -> heads * head_dim`, 4096 wide in the original).
    pub head_dim: usize,
    /// Dropout on the attention weights (0.1).
    pub dropout: f64,
    /// Weight of the edge code added to the logits (`sa_edge_weight`, 1).
    pub edge_weight: f64,
}

impl StructureAttentionConfig {
    /// The original's attention over `d_model` channels: 8 heads of width `d_model`.
    pub fn new(d_model: usize) -> Self {
        StructureAttentionConfig {
            d_model,
            heads: 8,
            head_dim: d_model,
            dropout: 0.1,
            edge_weight: 1.0,
        }
    }

    /// The module, initialised as the original: weights N(0, 0.001^2), biases 0.
    pub fn init(&self, device: &Device) -> StructureAttention {
        let inner = self.heads * self.head_dim;
        let linear = |i: usize, o: usize| {
            let mut l = LinearConfig::new(i, o)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.001,
                })
                .init(device);
            l.bias = Some(Param::from_tensor(Tensor::zeros([o], device)));
            l
        };
        StructureAttention {
            fc_q: linear(self.d_model, inner),
            fc_k: linear(self.d_model, inner),
            fc_v: linear(self.d_model, inner),
            fc_o: linear(inner, self.d_model),
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: self.heads,
            head_dim: self.head_dim,
            edge_weight: self.edge_weight,
        }
    }
}

/// Multi-head self-attention over a feature map's locations, logits
/// `q k^T / sqrt(head_dim) + edge_weight E`, **no residual and no normalisation** (the output
/// replaces the features).
#[derive(Module, Debug)]
pub struct StructureAttention {
    /// Queries, `d_model -> heads * head_dim`.
    pub fc_q: Linear,
    /// Keys.
    pub fc_k: Linear,
    /// Values.
    pub fc_v: Linear,
    /// Output, `heads * head_dim -> d_model`.
    pub fc_o: Linear,
    /// Dropout on the attention weights (active only under autodiff).
    pub dropout: Dropout,
    /// Heads.
    #[module(skip)]
    pub heads: usize,
    /// Width per head.
    #[module(skip)]
    pub head_dim: usize,
    /// Weight of the edge code.
    #[module(skip)]
    pub edge_weight: f64,
}

impl StructureAttention {
    /// Attends over the `h w` locations of `features`; `edge` (`[B, hw, hw]`, query rows,
    /// key columns) is added to every head's logits.
    ///
    /// # Shapes
    /// - `features`: `[B, d_model, h, w]`, `edge`: `[B, h w, h w]` -> `[B, d_model, h, w]`
    pub fn forward(&self, features: Tensor<4>, edge: Option<Tensor<3>>) -> Tensor<4> {
        let [b, c, h, w] = features.dims();
        let n = h * w;
        let (heads, dk) = (self.heads, self.head_dim);
        let tokens = features.reshape([b, c, n]).swap_dims(1, 2); // [B, n, C]
        let split = |l: &Linear| {
            l.forward(tokens.clone())
                .reshape([b, n, heads, dk])
                .swap_dims(1, 2) // [B, H, n, dk]
        };
        let (q, k, v) = (split(&self.fc_q), split(&self.fc_k), split(&self.fc_v));
        let mut logits = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (dk as f64).sqrt());
        if let Some(e) = edge {
            logits = logits + e.mul_scalar(self.edge_weight).reshape([b, 1, n, n]);
        }
        let weights = self.dropout.forward(softmax(logits, 3));
        let out = weights
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, heads * dk]);
        self.fc_o.forward(out).swap_dims(1, 2).reshape([b, c, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_initialisation_and_edge_bias() {
        let device = Device::flex();
        let mut config = StructureAttentionConfig::new(4);
        config.heads = 2;
        config.dropout = 0.0;
        let sa =
            metron_core::seeded_init(&device, 1, || Ok::<_, ()>(config.init(&device))).unwrap();
        assert_eq!(sa.fc_q.weight.dims(), [4, 8]);
        assert_eq!(sa.fc_o.weight.dims(), [8, 4]);
        let w = sa
            .fc_k
            .weight
            .val()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(w.iter().all(|v| v.abs() < 0.01));
        let x = Tensor::<4>::ones([2, 4, 3, 2], &device);
        assert_eq!(sa.forward(x.clone(), None).dims(), [2, 4, 3, 2]);
        // With all-equal features the values are equal at every location, so the output
        // does not depend on the attention weights: an edge bias changes nothing.
        let e = Tensor::<1, burn::tensor::Int>::arange(0..72, &device)
            .float()
            .reshape([2, 6, 6])
            .mul_scalar(0.1);
        let a = sa
            .forward(x.clone(), None)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let b = sa
            .forward(x, Some(e))
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
