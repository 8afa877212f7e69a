//! Training-mode batch normalisation with a one-pass-per-direction kernel on the CPU backend.
//!
//! Burn 0.22's flex backend computes a training batch norm from generic tensor ops: the
//! statistics through `swap_dims(0, 1)` + `reshape` (a transposed copy of the activation, twice
//! forward and twice backward) and the normalisation and its gradient through a dozen
//! element-wise passes. In a ResNet-50 step those copies and passes were a quarter of the
//! time. [`batch_norm_forward`] is `BatchNorm::forward` with, on flex with autodiff, one op
//! that reads the activation twice forward and twice backward. Everywhere else it is
//! `BatchNorm::forward` itself.

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// Which batch variance a training step folds into `running_var`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunningVariance {
    /// The unbiased variance, `n / (n - 1)` times the biased one over the `n` values per
    /// channel: PyTorch's `BatchNorm`, and so every published recipe and checkpoint.
    #[default]
    Unbiased,
    /// The biased variance, as Burn's own `BatchNorm::forward` does.
    Biased,
}

/// `bn.forward(x)` with PyTorch's running-variance update ([`RunningVariance::Unbiased`]),
/// and the fused training kernel on flex (see the module documentation). Normalisation itself
/// always uses the biased batch variance, as in every framework.
///
/// # Shapes
/// - `x`: `[B, C, ...]` -> `[B, C, ...]`
pub fn batch_norm_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    forward(bn, x, false, RunningVariance::Unbiased)
}

/// [`batch_norm_forward`] with the running-variance rule given.
pub fn batch_norm_forward_with<const D: usize>(
    bn: &BatchNorm,
    x: Tensor<D>,
    running_variance: RunningVariance,
) -> Tensor<D> {
    forward(bn, x, false, running_variance)
}

/// `relu(bn.forward(x))` as one op on flex under autodiff (the ReLU's mask is applied inside
/// the batch norm's passes, saving two passes over the activation each way); otherwise exactly
/// that composition. PyTorch's running-variance update.
///
/// # Shapes
/// - `x`: `[B, C, ...]` -> `[B, C, ...]`
pub fn batch_norm_relu_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    forward(bn, x, true, RunningVariance::Unbiased)
}

/// [`batch_norm_relu_forward`] with the running-variance rule given.
pub fn batch_norm_relu_forward_with<const D: usize>(
    bn: &BatchNorm,
    x: Tensor<D>,
    running_variance: RunningVariance,
) -> Tensor<D> {
    forward(bn, x, true, running_variance)
}

thread_local! {
    static RUNNING_UPDATES_PAUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the running statistics of every BatchNorm that goes through this module left
/// untouched: training-mode layers still normalise with batch statistics. SAM's second
/// (perturbed) pass runs under it, as davda54/sam recommends, so that each batch enters the
/// running statistics once. Applies to the calling thread, and is restored even if `f` panics.
pub fn without_running_stat_updates<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            RUNNING_UPDATES_PAUSED.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(RUNNING_UPDATES_PAUSED.with(|p| p.replace(true)));
    f()
}

fn forward<const D: usize>(
    bn: &BatchNorm,
    x: Tensor<D>,
    relu: bool,
    rule: RunningVariance,
) -> Tensor<D> {
    // Burn's condition for batch statistics: a frozen layer (or inference) uses the running
    // ones and updates nothing.
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        let y = bn.forward(x);
        return if relu {
            burn::tensor::activation::relu(y)
        } else {
            y
        };
    }
    let dims = x.dims();
    let per_channel = dims.iter().product::<usize>() / dims.get(1).copied().unwrap_or(1).max(1);
    #[cfg(feature = "flex")]
    if let Some((output, mean, variance)) =
        fused::batch_norm_train(&x, &bn.gamma.val(), &bn.beta.val(), bn.epsilon, relu)
    {
        update_running(bn, mean, variance, per_channel, rule);
        return output;
    }
    let result =
        burn::tensor::module::batch_norm_train(x, bn.gamma.val(), bn.beta.val(), bn.epsilon);
    update_running(bn, result.mean, result.variance, per_channel, rule);
    if relu {
        burn::tensor::activation::relu(result.output)
    } else {
        result.output
    }
}

/// `running = (1 - momentum) running + momentum batch`, with the batch variance made unbiased
/// when asked (left biased for a single value per channel, where n - 1 = 0).
fn update_running(
    bn: &BatchNorm,
    mean: Tensor<1>,
    variance: Tensor<1>,
    per_channel: usize,
    rule: RunningVariance,
) {
    if RUNNING_UPDATES_PAUSED.with(|p| p.get()) {
        return;
    }
    let device = mean.device();
    let variance = match rule {
        RunningVariance::Unbiased if per_channel > 1 => {
            variance.mul_scalar(per_channel as f64 / (per_channel - 1) as f64)
        }
        _ => variance,
    };
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(
        (running_mean.mul_scalar(1.0 - bn.momentum) + mean.detach().mul_scalar(bn.momentum))
            .detach(),
    );
    bn.running_var.update(
        (running_var.mul_scalar(1.0 - bn.momentum) + variance.detach().mul_scalar(bn.momentum))
            .detach(),
    );
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

    use crate::flex::{FlexAutodiffTensor, autodiff_tensor, from_autodiff_tensor};

    /// (output, batch mean, biased batch variance), or `None` where Burn's op must run.
    pub(super) fn batch_norm_train<const D: usize>(
        x: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: &Tensor<1>,
        epsilon: f64,
        relu: bool,
    ) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
        if D < 2 || x.dtype() != DType::F32 || gamma.dtype() != DType::F32 {
            return None;
        }
        let device = x.device();
        let (x, context) = autodiff_tensor(x)?;
        let (gamma, _) = autodiff_tensor(gamma)?;
        let (beta, _) = autodiff_tensor(beta)?;
        let (y, mean, variance) = tracked(x, gamma, beta, epsilon, relu);
        let stat = |v: Vec<f32>| {
            let c = v.len();
            Tensor::<1>::from_data(TensorData::new(v, [c]), &device)
        };
        Some((from_autodiff_tensor(y, context), stat(mean), stat(variance)))
    }

    /// `[N, C, S]` view of a contiguous `[N, C, ...]` tensor.
    fn dims(t: &FlexTensor) -> [usize; 3] {
        let shape = t.layout().shape();
        let (n, c) = (shape[0], shape[1]);
        [n, c, shape.num_elements() / (n * c).max(1)]
    }

    /// Per-channel sums of `f(sample plane, channel)`, each plane `S` long, in f64.
    fn per_channel<F>(n: usize, c: usize, f: F) -> Vec<f64>
    where
        F: Fn(usize, usize) -> f64 + Sync,
    {
        (0..c)
            .into_par_iter()
            .map(|ch| (0..n).map(|b| f(b, ch)).sum())
            .collect()
    }

    /// Sums of the two outputs of `f(a_i, b_i)` over a plane, in 16 f32 lanes (which the
    /// compiler vectorises, where one running f32 sum would stay scalar) added up in f64.
    #[inline]
    fn lane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
        const LANES: usize = 16;
        let (mut s0, mut s1) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (ca, cb) in ac.zip(bc) {
            for k in 0..LANES {
                let (u, v) = f(ca[k], cb[k]);
                s0[k] += u;
                s1[k] += v;
            }
        }
        let (mut t0, mut t1) = (
            s0.iter().map(|&v| v as f64).sum::<f64>(),
            s1.iter().map(|&v| v as f64).sum::<f64>(),
        );
        for (&u, &v) in ar.iter().zip(br) {
            let (u, v) = f(u, v);
            t0 += u as f64;
            t1 += v as f64;
        }
        (t0, t1)
    }

    fn statistics(x: &[f32], [n, c, s]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
        let m = (n * s) as f64;
        let plane = |b: usize, ch: usize| &x[(b * c + ch) * s..(b * c + ch + 1) * s];
        let mean = per_channel(n, c, |b, ch| {
            let p = plane(b, ch);
            lane_sums(p, p, |v, _| (v, 0.0)).0
        })
        .into_iter()
        .map(|v| v / m)
        .collect::<Vec<f64>>();
        // Two passes: the centred sum of squares does not cancel catastrophically.
        let variance = per_channel(n, c, |b, ch| {
            let mu = mean[ch] as f32;
            let p = plane(b, ch);
            lane_sums(p, p, |v, _| ((v - mu) * (v - mu), 0.0)).0
        });
        (
            mean.iter().map(|&v| v as f32).collect(),
            variance.iter().map(|&v| (v / m) as f32).collect(),
        )
    }

    fn inv_std(variance: &[f32], epsilon: f64) -> Vec<f32> {
        variance
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect()
    }

    /// Per channel `(scale, shift)` with `y = x scale + shift`; the backward pass recomputes
    /// the ReLU's mask from them, bit for bit as the forward pass decided it.
    fn affine(mean: &[f32], inv_std: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<(f32, f32)> {
        (0..mean.len())
            .map(|ch| {
                let scale = gamma[ch] * inv_std[ch];
                (scale, beta[ch] - mean[ch] * scale)
            })
            .collect()
    }

    fn normalise(x: &[f32], [n, c, s]: [usize; 3], affine: &[(f32, f32)], relu: bool) -> Vec<f32> {
        let mut y = vec![0.0f32; n * c * s];
        y.par_chunks_mut(s.max(1))
            .zip(x.par_chunks(s.max(1)))
            .enumerate()
            .for_each(|(plane, (y, x))| {
                let (scale, shift) = affine[plane % c];
                if relu {
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = (x * scale + shift).max(0.0);
                    }
                } else {
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = x * scale + shift;
                    }
                }
            });
        y
    }

    /// Gradients of the training batch norm: `(dx, dgamma, dbeta)`. With `relu`, `dy` is the
    /// gradient after the ReLU, masked here where the pre-activation `x scale + shift` was not
    /// positive.
    fn gradients(
        x: &[f32],
        dy: &[f32],
        [n, c, s]: [usize; 3],
        mean: &[f32],
        inv_std: &[f32],
        gamma: &[f32],
        relu: Option<&[(f32, f32)]>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        // The gradient reaching the batch norm's output.
        let gate = |ch: usize| {
            let affine = relu.map(|a| a[ch]);
            // Zero where the forward ReLU output 0 (a NaN pre-activation included).
            move |g: f32, v: f32| match affine {
                Some((scale, shift)) if v * scale + shift > 0.0 => g,
                Some(_) => 0.0,
                None => g,
            }
        };
        // One pass for both sums: sum dy, and sum dy * (x - mean) (= sum dy * x_hat / inv_std).
        let (sum_dy, sum_dy_xhat): (Vec<f64>, Vec<f64>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let mu = mean[ch];
                let (mut a, mut b) = (0.0f64, 0.0f64);
                for batch in 0..n {
                    let r = (batch * c + ch) * s..(batch * c + ch + 1) * s;
                    let gated = gate(ch);
                    let (pa, pb) = lane_sums(&dy[r.clone()], &x[r], |g, v| {
                        let g = gated(g, v);
                        (g, g * (v - mu))
                    });
                    a += pa;
                    b += pb;
                }
                (a, b * inv_std[ch] as f64)
            })
            .unzip();
        let m = (n * s) as f64;
        let mut dx = vec![0.0f32; n * c * s];
        dx.par_chunks_mut(s.max(1))
            .enumerate()
            .for_each(|(p, out)| {
                let ch = p % c;
                let r = p * s..(p + 1) * s;
                let is = inv_std[ch] as f64;
                let k = gamma[ch] as f64 * is;
                let mean_dy = sum_dy[ch] / m;
                let proj = sum_dy_xhat[ch] / m;
                let mu = mean[ch] as f64;
                // k (dy - mean_dy - (x - mu) is proj) as one affine map of (dy, x), with the
                // coefficients in f64 and the per-element work in f32.
                let (a, b, c0) = (
                    k as f32,
                    (-k * is * proj) as f32,
                    (k * (mu * is * proj - mean_dy)) as f32,
                );
                let gated = gate(ch);
                for ((o, &g), &v) in out.iter_mut().zip(&dy[r.clone()]).zip(&x[r]) {
                    *o = a * gated(g, v) + b * v + c0;
                }
            });
        (
            dx,
            sum_dy_xhat.iter().map(|&v| v as f32).collect(),
            sum_dy.iter().map(|&v| v as f32).collect(),
        )
    }

    #[derive(Debug)]
    struct BatchNormTrainFused;

    impl Backward<Flex, 3> for BatchNormTrainFused {
        /// Checkpointed input and gamma, the batch mean and 1 / std, and with a ReLU the
        /// forward pass's per-channel affine map.
        type State = (NodeId, NodeId, Vec<f32>, Vec<f32>, Option<Vec<(f32, f32)>>);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            #[cfg(test)]
            super::tests::BACKWARD_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let [node_x, node_gamma, node_beta] = ops.parents;
            let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
            let (x_state, gamma_state, mean, inv_std, relu) = ops.state;
            let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
            let gamma: FlexTensor = checkpointer.retrieve_node_output(gamma_state);
            let (x, gamma, dy) = (x.to_contiguous(), gamma.to_contiguous(), dy.to_contiguous());
            let shape = x.layout().shape().clone();
            let (dx, dgamma, dbeta) = gradients(
                x.storage(),
                dy.storage(),
                dims(&x),
                &mean,
                &inv_std,
                gamma.storage(),
                relu.as_deref(),
            );
            let c = dgamma.len();
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
            }
            if let Some(node) = node_gamma {
                grads
                    .register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dgamma, [c])));
            }
            if let Some(node) = node_beta {
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dbeta, [c])));
            }
        }
    }

    fn tracked(
        x: FlexAutodiffTensor,
        gamma: FlexAutodiffTensor,
        beta: FlexAutodiffTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexAutodiffTensor, Vec<f32>, Vec<f32>) {
        let forward = |x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor| {
            let (x, gamma, beta) = (
                x.to_contiguous(),
                gamma.to_contiguous(),
                beta.to_contiguous(),
            );
            let d = dims(&x);
            let (mean, variance) = statistics(x.storage(), d);
            let inv = inv_std(&variance, epsilon);
            let map = affine(&mean, &inv, gamma.storage(), beta.storage());
            let y = normalise(x.storage(), d, &map, relu);
            let y = FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone()));
            (y, mean, variance, inv, map)
        };
        match BatchNormTrainFused
            .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let (y, mean, variance, inv, map) =
                    forward(x.primitive(), gamma.primitive(), beta.primitive());
                let relu = relu.then_some(map);
                let out = prep.finish((x_state, gamma_state, mean.clone(), inv, relu), y);
                (out, mean, variance)
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, variance, _, _) =
                    forward(x.primitive(), gamma.primitive(), beta.primitive());
                (prep.finish(y), mean, variance)
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::testing::max_rel_diff;

    /// How often the fused backward ran, so that the test can tell it was used.
    pub(super) static BACKWARD_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn check<const D: usize>(shape: [usize; D], relu: bool) {
        let device = Device::flex().autodiff();
        device.seed(3);
        let c = shape[1];
        let gamma = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
        let xs = Tensor::<D>::random(shape, Distribution::Normal(2.0, 3.0), &device);
        let run = |ours: bool| {
            // A fresh layer each time: clones of a module share their running statistics.
            let bn = BatchNorm {
                gamma: Param::from_tensor(gamma.clone()),
                beta: Param::from_tensor(beta.clone()),
                ..BatchNormConfig::new(c).with_momentum(0.2).init(&device)
            };
            let x = xs.clone().require_grad();
            let y = match (ours, relu) {
                (true, false) => batch_norm_forward_with(&bn, x.clone(), RunningVariance::Biased),
                (true, true) => {
                    batch_norm_relu_forward_with(&bn, x.clone(), RunningVariance::Biased)
                }
                (false, false) => bn.forward(x.clone()),
                (false, true) => burn::tensor::activation::relu(bn.forward(x.clone())),
            };
            let grads = (y.clone() * y.clone().cos()).sum().backward();
            (
                y,
                x.grad(&grads).unwrap(),
                bn.gamma.grad(&grads).unwrap(),
                bn.beta.grad(&grads).unwrap(),
                bn.running_mean.value(),
                bn.running_var.value(),
            )
        };
        let before = BACKWARD_CALLS.load(Ordering::SeqCst);
        let ours = run(true);
        assert!(
            BACKWARD_CALLS.load(Ordering::SeqCst) > before,
            "fused path not taken"
        );
        let burns = run(false);
        assert!(
            max_rel_diff(ours.0, burns.0) < 1e-5,
            "{shape:?} relu {relu} output"
        );
        assert!(
            max_rel_diff(ours.1, burns.1) < 1e-4,
            "{shape:?} input gradient"
        );
        assert!(
            max_rel_diff(ours.2, burns.2) < 1e-5,
            "{shape:?} gamma gradient"
        );
        assert!(
            max_rel_diff(ours.3, burns.3) < 1e-5,
            "{shape:?} beta gradient"
        );
        assert!(
            max_rel_diff(ours.4, burns.4) < 1e-5,
            "{shape:?} running mean"
        );
        assert!(
            max_rel_diff(ours.5, burns.5) < 1e-5,
            "{shape:?} running var"
        );
    }

    /// Output, input / gamma / beta gradients and the running statistics equal Burn's own
    /// `BatchNorm::forward` (whose flex kernel is the generic one), for 4-D and 3-D inputs.
    #[test]
    fn matches_burns_batch_norm() {
        check([4, 3, 5, 6], false);
        check([2, 5, 7], false);
    }

    /// The same with the ReLU fused in: about half the outputs are clipped, so a wrong mask
    /// in the backward pass shows in every gradient.
    #[test]
    fn batch_norm_relu_matches_burns_composition() {
        check([4, 3, 5, 6], true);
        check([2, 5, 7], true);
    }

    /// Under `without_running_stat_updates` the output is the same (batch statistics) and the
    /// running statistics stay as they were; outside it they move, by the unbiased variance
    /// (n = 2 x 7 = 14 values per channel: 14/13 times the biased one) or the biased one.
    #[test]
    fn running_updates_pause_and_follow_the_variance_rule() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let x = Tensor::<3>::random([2, 3, 7], Distribution::Normal(1.0, 2.0), &device);
        let fresh = || BatchNormConfig::new(3).init(&device);
        let plain = fresh();
        let y = batch_norm_forward(&plain, x.clone());
        let paused = fresh();
        let y_paused = without_running_stat_updates(|| batch_norm_forward(&paused, x.clone()));
        assert!(max_rel_diff(y_paused, y) < 1e-6);
        assert_eq!(
            paused
                .running_var
                .value_sync()
                .into_data()
                .iter::<f32>()
                .collect::<Vec<_>>(),
            vec![1.0; 3]
        );
        assert_eq!(
            paused
                .running_mean
                .value_sync()
                .into_data()
                .iter::<f32>()
                .collect::<Vec<_>>(),
            vec![0.0; 3]
        );
        let biased = fresh();
        batch_norm_forward_with(&biased, x.clone(), RunningVariance::Biased);
        // running = 0.9 + 0.1 v: the batch variance v is 10 (running - 0.9).
        let v = |bn: &BatchNorm| -> Vec<f64> {
            bn.running_var
                .value_sync()
                .into_data()
                .iter::<f64>()
                .map(|r| (r - 0.9) * 10.0)
                .collect()
        };
        for (u, b) in v(&plain).iter().zip(v(&biased)) {
            assert!((u / b - 14.0 / 13.0).abs() < 1e-4, "{u} vs {b}");
        }
    }
}
