//! Small tensor helpers every model-side crate needs.

use burn::tensor::Tensor;

/// Rows divided by their L2 norm (norm clamped at 1e-12, as `torch.nn.functional.normalize`).
///
/// # Shapes
/// - `x`: `[N, D]` -> `[N, D]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// GELU, `x Phi(x) = x (1 + erf(x / sqrt 2)) / 2`, composed from `erf` so that its gradient is
/// the exact derivative on every backend.
///
/// Why not `burn::tensor::activation::gelu` (or `burn::nn::Gelu`): in Burn 0.22 its forward is
/// this exact erf form everywhere, but the backward pass falls back to
/// `ActivationOps::gelu_backward`'s default, the derivative of the *tanh approximation*,
/// on every backend that does not override it: wgpu and cuda (CubeCL) do not, flex and tch do.
/// On wgpu that put the gradients of SAIG's SMD head and of a ViT's MLP up to 160 times the
/// parity tolerance away from the CPU's (`tests/backend_parity.rs`). Without autodiff the
/// forward is the same, so the fused kernel is kept there.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !x.is_autodiff() {
        return burn::tensor::activation::gelu(x);
    }
    let cdf = x
        .clone()
        .mul_scalar(core::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0);
    (x * cdf).mul_scalar(0.5)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    /// [`super::gelu`] is GELU, and its gradient the exact derivative `Phi(x) + x phi(x)`, on
    /// every backend compiled in (Burn's own `gelu` fails this on wgpu / cuda: its backward is the
    /// tanh approximation's derivative, off by up to 8.7e-4 at |x| = 2 and by a third of the
    /// value at x = -4).
    #[test]
    fn gelu_gradient_is_the_exact_derivative_on_every_backend() {
        let xs: Vec<f64> = (-40..=40).map(|i| i as f64 * 0.1).collect();
        // erf from its Taylor series in f64 (|z| <= 2.9 here: ~1e-12 after cancellation).
        let erf = |z: f64| -> f64 {
            let mut sum = 0.0f64;
            let mut term = z;
            let mut n = 0.0;
            while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 5.0 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -z * z / n;
                if n > 200.0 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        let want: Vec<f64> = xs
            .iter()
            .map(|&x| {
                let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + x * pdf
            })
            .collect();
        let mut names = vec![];
        if cfg!(feature = "flex") {
            names.push("cpu");
        }
        if cfg!(feature = "wgpu") {
            names.push("wgpu");
        }
        if cfg!(feature = "tch") {
            names.push("tch");
        }
        if cfg!(feature = "cuda") {
            names.push("cuda:0");
        }
        for name in names {
            let device = crate::parse_device(name).unwrap().autodiff();
            let data: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
            let x =
                Tensor::<1>::from_data(TensorData::new(data, [xs.len()]), &device).require_grad();
            let y = super::gelu(x.clone());
            let values: Vec<f32> = y.clone().try_into_vec_as::<f32>().unwrap();
            for (v, x) in values.iter().zip(&xs) {
                let exact = 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2));
                assert!(
                    (*v as f64 - exact).abs() < 1e-5,
                    "{name}: gelu({x}) = {v}, exact {exact}"
                );
            }
            let grads = y.sum().backward();
            let got: Vec<f32> = x.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
            for ((g, w), x) in got.iter().zip(&want).zip(&xs) {
                assert!(
                    (*g as f64 - w).abs() < 1e-5,
                    "{name}: gelu'({x}) = {g}, exact {w}"
                );
            }
        }
    }
}
