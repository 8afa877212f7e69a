//! Layer normalisation over the last dimension as one pass each way on the CPU backend.
//!
//! Burn 0.22's autodiff backend derives a LayerNorm's backward pass from its composition
//! (mean, subtract, square, mean, sqrt, divide, scale, shift): eight tracked ops, each
//! keeping its own full-size intermediate until the backward pass. Here the forward pass
//! keeps the input and two numbers per row (mean and 1 / std), and the backward pass is one
//! parallel sweep over the rows.

use burn::nn::LayerNorm;
use burn::tensor::Tensor;

/// `ln.forward(x)` for a LayerNorm built with `epsilon` (Burn keeps a LayerNorm's epsilon
/// private, so the caller, who configured it, passes it again): the fused kernel on flex in
/// f32, Burn's `layer_norm` elsewhere.
///
/// # Shapes
/// - `x`: `[..., d]` with `d` the LayerNorm's width -> same
pub fn layer_norm_forward<const D: usize>(ln: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    let gamma = ln.gamma.val();
    let beta = ln.beta.as_ref().map(|b| b.val());
    #[cfg(feature = "flex")]
    if let Some(y) = fused::layer_norm(&x, &gamma, beta.as_ref(), epsilon) {
        return y;
    }
    burn::tensor::module::layer_norm(x, gamma, beta, epsilon)
}

#[cfg(feature = "flex")]
mod fused {
    use burn::backend::Flex;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::tensor::{DType, Tensor, TensorData};
    use rayon::prelude::*;

    use crate::flex::{
        FlexAutodiffTensor, autodiff_tensor, count_fused, float_tensor, from_autodiff_tensor,
        from_float_tensor,
    };
    use crate::vector_math::{Kernel, centred_squares, dot, sum, vectorised};

    /// Rows per parallel task.
    const ROWS_PER_TASK: usize = 32;

    pub(super) fn layer_norm<const D: usize>(
        x: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: Option<&Tensor<1>>,
        epsilon: f64,
    ) -> Option<Tensor<D>> {
        let d = gamma.dims()[0];
        // A zero width is left to Burn's op (it has no rows to normalise).
        if x.dtype() != DType::F32 || gamma.dtype() != DType::F32 || x.dims()[D - 1] != d || d == 0
        {
            return None;
        }
        if let Some(x) = float_tensor(x) {
            let gamma = float_tensor(gamma)?;
            let beta = match beta {
                Some(b) => Some(float_tensor(b)?),
                None => None,
            };
            let (y, _, _) = forward(&x, &gamma, beta.as_ref(), epsilon);
            count_fused("layer_norm");
            return Some(from_float_tensor(y));
        }
        let (x, context) = autodiff_tensor(x)?;
        let (gamma, _) = autodiff_tensor(gamma)?;
        let beta = match beta {
            Some(b) => Some(autodiff_tensor(b)?.0),
            None => None,
        };
        count_fused("layer_norm");
        Some(from_autodiff_tensor(
            tracked(x, gamma, beta, epsilon),
            context,
        ))
    }

    /// Normalises the rows of one task, recording each row's mean and 1 / std.
    struct ForwardRows<'a> {
        x: &'a [f32],
        y: &'a mut [f32],
        mean: &'a mut [f32],
        rstd: &'a mut [f32],
        gamma: &'a [f32],
        beta: Option<&'a [f32]>,
        epsilon: f64,
    }

    impl Kernel for ForwardRows<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self) {
            let d = self.gamma.len();
            let rows = self.y.chunks_mut(d).zip(self.x.chunks(d));
            for (r, (y, x)) in rows.enumerate() {
                let mu = sum(x) / d as f32;
                // Two passes: the centred sum of squares does not cancel.
                let var = centred_squares(x, mu) / d as f32;
                let s = (1.0 / (var as f64 + self.epsilon).sqrt()) as f32;
                for ((y, &x), &g) in y.iter_mut().zip(x).zip(self.gamma) {
                    *y = (x - mu) * s * g;
                }
                if let Some(beta) = self.beta {
                    for (y, &b) in y.iter_mut().zip(beta) {
                        *y += b;
                    }
                }
                self.mean[r] = mu;
                self.rstd[r] = s;
            }
        }
    }

    /// The input gradient of one task's rows, and their contributions to the gamma and beta
    /// gradients.
    struct BackwardRows<'a> {
        x: &'a [f32],
        dy: &'a [f32],
        dx: &'a mut [f32],
        mean: &'a [f32],
        rstd: &'a [f32],
        gamma: &'a [f32],
        dgamma: &'a mut [f32],
        dbeta: &'a mut [f32],
        /// Scratch of one row: `dy gamma`.
        g: &'a mut [f32],
    }

    impl Kernel for BackwardRows<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self) {
            let d = self.gamma.len();
            let rows = self
                .dx
                .chunks_mut(d)
                .zip(self.x.chunks(d))
                .zip(self.dy.chunks(d));
            for (r, ((dx, x), dy)) in rows.enumerate() {
                let (mu, s) = (self.mean[r], self.rstd[r]);
                for ((g, &dy), &w) in self.g.iter_mut().zip(dy).zip(self.gamma) {
                    *g = dy * w;
                }
                // With g = dy gamma and xhat = (x - mu) s:
                // dx = s (g - mean(g) - xhat mean(g xhat)), mean(g xhat) = s mean(g x) - s mu mean(g).
                let mean_g = sum(self.g) / d as f32;
                let mean_gx = s * (dot(self.g, x) / d as f32 - mu * mean_g);
                for (((dx, &x), &g), (&dy, (dgamma, dbeta))) in
                    dx.iter_mut().zip(x).zip(self.g.iter()).zip(
                        dy.iter()
                            .zip(self.dgamma.iter_mut().zip(self.dbeta.iter_mut())),
                    )
                {
                    let xhat = (x - mu) * s;
                    *dx = s * (g - mean_g - xhat * mean_gx);
                    *dgamma += dy * xhat;
                    *dbeta += dy;
                }
            }
        }
    }

    /// (output, per-row mean, per-row 1 / std).
    fn forward(
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: Option<&FlexTensor>,
        epsilon: f64,
    ) -> (FlexTensor, Vec<f32>, Vec<f32>) {
        let x = x.to_contiguous();
        let gamma = gamma.to_contiguous();
        let beta = beta.map(|b| b.to_contiguous());
        let (xs, g) = (x.storage::<f32>(), gamma.storage::<f32>());
        let b = beta.as_ref().map(|b| b.storage::<f32>());
        let d = g.len();
        let rows = xs.len() / d.max(1);
        let mut y = vec![0.0f32; xs.len()];
        let mut mean = vec![0.0f32; rows];
        let mut rstd = vec![0.0f32; rows];
        let task = ROWS_PER_TASK * d;
        y.par_chunks_mut(task.max(1))
            .zip(xs.par_chunks(task.max(1)))
            .zip(mean.par_chunks_mut(ROWS_PER_TASK))
            .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
            .for_each(|(((y, x), mean), rstd)| {
                vectorised(ForwardRows {
                    x,
                    y,
                    mean,
                    rstd,
                    gamma: g,
                    beta: b,
                    epsilon,
                })
            });
        let y = FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone()));
        (y, mean, rstd)
    }

    /// `(dx, dgamma, dbeta)` of `y = (x - mean) rstd gamma + beta` per row.
    fn gradients(
        x: &[f32],
        dy: &[f32],
        gamma: &[f32],
        mean: &[f32],
        rstd: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let d = gamma.len();
        let task = ROWS_PER_TASK * d;
        let mut dx = vec![0.0f32; x.len()];
        let zero = || (vec![0.0f32; d], vec![0.0f32; d]);
        let (dgamma, dbeta) = dx
            .par_chunks_mut(task.max(1))
            .zip(x.par_chunks(task.max(1)))
            .zip(dy.par_chunks(task.max(1)))
            .zip(mean.par_chunks(ROWS_PER_TASK))
            .zip(rstd.par_chunks(ROWS_PER_TASK))
            .fold(
                || (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]),
                |(mut dgamma, mut dbeta, mut g), ((((dx, x), dy), mean), rstd)| {
                    vectorised(BackwardRows {
                        x,
                        dy,
                        dx,
                        mean,
                        rstd,
                        gamma,
                        dgamma: &mut dgamma,
                        dbeta: &mut dbeta,
                        g: &mut g,
                    });
                    (dgamma, dbeta, g)
                },
            )
            .map(|(dgamma, dbeta, _)| (dgamma, dbeta))
            .reduce(zero, |(mut ga, mut ba), (gb, bb)| {
                for (a, b) in ga.iter_mut().zip(gb) {
                    *a += b;
                }
                for (a, b) in ba.iter_mut().zip(bb) {
                    *a += b;
                }
                (ga, ba)
            });
        (dx, dgamma, dbeta)
    }

    #[derive(Debug)]
    struct LayerNormFused;

    impl Backward<Flex, 3> for LayerNormFused {
        /// Checkpointed input and gamma, the rows' means and 1 / std, and whether there is a
        /// beta (without one the third parent is gamma again).
        type State = (NodeId, NodeId, Vec<f32>, Vec<f32>, bool);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
            let (x_state, gamma_state, mean, rstd, has_beta) = ops.state;
            let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
            let gamma: FlexTensor = checkpointer.retrieve_node_output(gamma_state);
            let (x, gamma, dy) = (x.to_contiguous(), gamma.to_contiguous(), dy.to_contiguous());
            let (dx, dgamma, dbeta) =
                gradients(x.storage(), dy.storage(), gamma.storage(), &mean, &rstd);
            let d = dgamma.len();
            if let Some(node) = node_x {
                let shape = x.layout().shape().clone();
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
            }
            if let Some(node) = node_gamma {
                grads
                    .register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dgamma, [d])));
            }
            if let Some(node) = node_beta.filter(|_| has_beta) {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dbeta, [d])));
            }
        }
    }

    fn tracked(
        x: FlexAutodiffTensor,
        gamma: FlexAutodiffTensor,
        beta: Option<FlexAutodiffTensor>,
        epsilon: f64,
    ) -> FlexAutodiffTensor {
        let has_beta = beta.is_some();
        let beta_node = beta.as_ref().map(|b| b.node());
        let nodes = match beta_node {
            Some(b) => [x.node(), gamma.node(), b],
            None => [x.node(), gamma.node(), gamma.node()],
        };
        let beta_primitive = beta.as_ref().map(|b| b.primitive());
        match LayerNormFused
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let (y, mean, rstd) =
                    forward(x.primitive(), gamma.primitive(), beta_primitive, epsilon);
                prep.finish((x_state, gamma_state, mean, rstd, has_beta), y)
            }
            OpsKind::UnTracked(prep) => {
                let (y, _, _) = forward(x.primitive(), gamma.primitive(), beta_primitive, epsilon);
                prep.finish(y)
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::{Module, Param};
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::testing::max_rel_diff;

    /// Output and the input, gamma and beta gradients equal Burn's composed LayerNorm, with
    /// and without a beta, on rows whose mean is far from zero (where a one-pass variance
    /// would cancel); and without autodiff, the values.
    #[test]
    fn matches_burns_layer_norm() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let d = 72;
        for bias in [true, false] {
            let mut ln = LayerNormConfig::new(d)
                .with_epsilon(1e-6)
                .with_bias(bias)
                .init(&device);
            ln.gamma =
                Param::from_tensor(Tensor::random([d], Distribution::Normal(1.0, 0.5), &device));
            ln.beta = ln.beta.map(|_| {
                Param::from_tensor(Tensor::random([d], Distribution::Normal(0.0, 0.5), &device))
            });
            let xs = Tensor::<3>::random([3, 41, d], Distribution::Normal(5.0, 2.0), &device);
            let run = |fused: bool| {
                let x = xs.clone().require_grad();
                let y = if fused {
                    let before = crate::flex::fused_calls("layer_norm");
                    let y = layer_norm_forward(&ln, x.clone(), 1e-6);
                    assert_eq!(
                        crate::flex::fused_calls("layer_norm"),
                        before + 1,
                        "fused path not taken"
                    );
                    y
                } else {
                    ln.forward(x.clone())
                };
                let grads = (y.clone() * y.clone().sin()).sum().backward();
                let beta = ln.beta.as_ref().map(|b| b.grad(&grads).unwrap());
                (
                    y,
                    x.grad(&grads).unwrap(),
                    ln.gamma.grad(&grads).unwrap(),
                    beta,
                )
            };
            let (ours, burns) = (run(true), run(false));
            assert!(max_rel_diff(ours.0, burns.0) < 1e-5, "bias {bias}: values");
            assert!(
                max_rel_diff(ours.1, burns.1) < 1e-4,
                "bias {bias}: input gradient"
            );
            assert!(
                max_rel_diff(ours.2, burns.2) < 1e-5,
                "bias {bias}: gamma gradient"
            );
            if let (Some(a), Some(b)) = (ours.3, burns.3) {
                assert!(max_rel_diff(a, b) < 1e-5, "beta gradient");
            }
            let plain = xs.clone().inner();
            let ln_plain = ln.valid();
            let before = crate::flex::fused_calls("layer_norm");
            let _ = layer_norm_forward(&ln_plain, plain.clone(), 1e-6);
            assert_eq!(
                crate::flex::fused_calls("layer_norm"),
                before + 1,
                "fused path not taken"
            );
            assert!(
                max_rel_diff(
                    layer_norm_forward(&ln_plain, plain.clone(), 1e-6),
                    ln_plain.forward(plain)
                ) < 1e-5,
                "bias {bias}: inference values"
            );
        }
    }
}
