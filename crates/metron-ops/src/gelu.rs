//! GELU, `x Phi(x)`, as one element-wise pass each way on the CPU backend.
//!
//! Composed from Burn's ops (`metron_core::gelu`: scale, erf, add, multiply, scale) a GELU
//! reads and writes the activation five times forward and about ten times backward, and
//! flex's erf is libm's scalar `erff` on one core: in a ViT-S training step that was a tenth
//! of the time. Here the forward pass is `x Phi(x)` and the backward pass
//! `dy (Phi(x) + x phi(x))`, each one vectorised pass on all cores.

use burn::tensor::Tensor;

/// The exact (erf) GELU, `x Phi(x)` with `Phi` the standard normal CDF, with its exact
/// gradient `Phi(x) + x phi(x)` on every backend: the fused kernel on flex in f32,
/// `metron_core::gelu` elsewhere.
///
/// # Shapes
/// - `x`: any -> same
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(y) = fused::gelu(&x) {
        return y;
    }
    metron_core::gelu(x)
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

    use crate::flex::{
        FlexAutodiffTensor, autodiff_tensor, count_fused, float_tensor, from_autodiff_tensor,
        from_float_tensor,
    };
    use crate::vector_math::{Elementwise, Pairwise, map, map2, normal_cdf, normal_pdf};

    pub(super) fn gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
        if x.dtype() != DType::F32 {
            return None;
        }
        let y = if let Some(t) = float_tensor(x) {
            from_float_tensor(forward(&t))
        } else {
            let (t, context) = autodiff_tensor(x)?;
            from_autodiff_tensor(tracked(t), context)
        };
        count_fused("gelu");
        Some(y)
    }

    /// `x Phi(x)`.
    #[derive(Clone, Copy)]
    struct Gelu;

    impl Elementwise for Gelu {
        #[inline(always)]
        fn apply(self, x: f32) -> f32 {
            x * normal_cdf(x)
        }
    }

    /// `dy (Phi(x) + x phi(x))` from `(x, dy)`.
    #[derive(Clone, Copy)]
    struct GeluGrad;

    impl Pairwise for GeluGrad {
        #[inline(always)]
        fn apply(self, x: f32, dy: f32) -> f32 {
            dy * (normal_cdf(x) + x * normal_pdf(x))
        }
    }

    fn forward(x: &FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let y = map(x.storage(), Gelu);
        FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone()))
    }

    #[derive(Debug)]
    struct GeluFused;

    impl Backward<Flex, 1> for GeluFused {
        type State = NodeId;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x] = ops.parents;
            let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
            let x: FlexTensor = checkpointer.retrieve_node_output(ops.state);
            let Some(node) = node_x else { return };
            let (x, dy) = (x.to_contiguous(), dy.to_contiguous());
            let dx = map2(x.storage(), dy.storage(), GeluGrad);
            let shape = x.layout().shape().clone();
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
        }
    }

    fn tracked(x: FlexAutodiffTensor) -> FlexAutodiffTensor {
        match GeluFused
            .prepare::<NoCheckpointing>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                let y = forward(x.primitive());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive())),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::testing::max_rel_diff;

    /// Values and input gradients equal the composition of Burn's ops
    /// (`metron_core::gelu`, libm's erf), with and without autodiff.
    #[test]
    fn matches_the_composed_gelu() {
        let device = Device::flex().autodiff();
        device.seed(7);
        let xs = Tensor::<3>::random([3, 50, 400], Distribution::Normal(0.0, 3.0), &device);
        let run = |fused: bool| {
            let x = xs.clone().require_grad();
            let y = if fused {
                let before = crate::flex::fused_calls("gelu");
                let y = gelu(x.clone());
                assert_eq!(
                    crate::flex::fused_calls("gelu"),
                    before + 1,
                    "fused path not taken"
                );
                y
            } else {
                metron_core::gelu(x.clone())
            };
            let grads = (y.clone() * y.clone().sin()).sum().backward();
            (y, x.grad(&grads).unwrap())
        };
        let (ours, burns) = (run(true), run(false));
        assert!(max_rel_diff(ours.0, burns.0) < 1e-6, "values");
        assert!(max_rel_diff(ours.1, burns.1) < 1e-5, "gradients");
        let plain = xs.clone().inner();
        let before = crate::flex::fused_calls("gelu");
        let _ = gelu(plain.clone());
        assert_eq!(
            crate::flex::fused_calls("gelu"),
            before + 1,
            "fused path not taken"
        );
        assert!(
            max_rel_diff(gelu(plain.clone()), metron_core::gelu(plain)) < 1e-6,
            "inference values"
        );
    }
}
