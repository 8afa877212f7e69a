//! Gradient clipping by the global L2 norm over all parameters, as `torch.nn.utils.clip_grad_norm_`
//! (Burn's own `GradientClipping::Norm` clips each parameter separately).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::params::scaled_grad_norm;

/// Scales every gradient by `max_norm / (total_norm + 1e-6)` when the joint L2 norm exceeds
/// `max_norm` (PyTorch's formula); returns the clipped gradients and the norm before clipping.
pub fn clip_grad_norm<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, f64) {
    let total = scaled_grad_norm(module, &grads, &|_, _| None);
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        struct Scale<'a> {
            grads: &'a mut GradientsParams,
            coef: f64,
        }
        impl ModuleVisitor for Scale<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = self.grads.remove::<D>(param.id) {
                    self.grads.register::<D>(param.id, g.mul_scalar(self.coef));
                }
            }
        }
        module.visit(&mut Scale {
            grads: &mut grads,
            coef,
        });
    }
    (grads, total)
}
