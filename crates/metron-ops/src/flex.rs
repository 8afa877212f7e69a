//! Plumbing for metron's own autodiff ops on the flex (CPU) backend: unwrapping a `Tensor`
//! into flex's autodiff tensor and back.
//!
//! Burn 0.22 erases the backend behind its `Dispatch` type; an op with its own backward pass
//! is written against `Autodiff<Flex>` and reached through the dispatch tensor's public
//! representation (`burn::backend::DispatchTensor`, the route Burn's backend extensions take).

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind, Flex,
    GradientCheckpointingStrategy,
};
use burn::tensor::Tensor;

/// A float tensor of flex's autodiff backend.
pub(crate) type FlexAutodiffTensor = FloatTensor<Autodiff<Flex>>;

/// The flex autodiff tensor behind `t`, with its autodiff context; `None` unless `t` lives on
/// flex with autodiff and without gradient checkpointing (the only strategy metron's ops are
/// written for).
pub(crate) fn autodiff_tensor<const D: usize>(
    t: &Tensor<D>,
) -> Option<(FlexAutodiffTensor, DispatchAutodiffContext)> {
    let t = t.clone().into_dispatch();
    if !matches!(
        t.autodiff,
        DispatchAutodiffContext::Enabled(GradientCheckpointingStrategy::Disabled)
    ) {
        return None;
    }
    match t.kind {
        DispatchTensorKind::Autodiff(inner) => match *inner {
            DispatchTensorKind::Flex(BackendTensor::Autodiff(tensor)) => Some((tensor, t.autodiff)),
            _ => None,
        },
        _ => None,
    }
}

/// The inverse of [`autodiff_tensor`].
pub(crate) fn from_autodiff_tensor<const D: usize>(
    t: FlexAutodiffTensor,
    context: DispatchAutodiffContext,
) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Autodiff(Box::new(DispatchTensorKind::Flex(
            BackendTensor::Autodiff(t),
        ))),
        autodiff: context,
    })
}

/// The plain (no autodiff) flex tensor behind `t`, if that is what it is.
pub(crate) fn float_tensor<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let t = t.clone().into_dispatch();
    if !matches!(t.autodiff, DispatchAutodiffContext::Disabled) {
        return None;
    }
    match t.kind {
        DispatchTensorKind::Flex(BackendTensor::Float(tensor)) => Some(tensor),
        _ => None,
    }
}

/// The inverse of [`float_tensor`].
pub(crate) fn from_float_tensor<const D: usize>(t: FlexTensor) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}

#[cfg(test)]
thread_local! {
    static FUSED_CALLS: std::cell::RefCell<std::collections::HashMap<&'static str, usize>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Records that the fused kernel `op` ran on the calling thread, so that a test can tell its
/// kernel was used rather than Burn's fallback; nothing outside tests.
#[inline]
pub(crate) fn count_fused(op: &'static str) {
    #[cfg(test)]
    FUSED_CALLS.with(|c| *c.borrow_mut().entry(op).or_default() += 1);
    let _ = op;
}

/// How often [`count_fused`] recorded `op` on this thread.
#[cfg(test)]
pub(crate) fn fused_calls(op: &'static str) -> usize {
    FUSED_CALLS.with(|c| c.borrow().get(op).copied().unwrap_or(0))
}
