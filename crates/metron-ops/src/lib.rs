//! metron's kernels: operations written for speed on the CPU backend (Burn's flex), each with
//! its own autodiff node, and Burn's own op on every other backend, in f64 and for the cases a
//! kernel does not cover, so callers use one function everywhere.
//!
//! - [`conv2d_forward`]: im2col + GEMM convolution (forward, weight and input gradients);
//! - [`batch_norm_forward`] / [`batch_norm_relu_forward`]: training-mode
//!   BatchNorm in two passes each way, the following ReLU fused in, with PyTorch's running
//!   statistics ([`RunningVariance`]);
//! - [`self_attention`]: multi-head attention from a fused qkv projection, the probabilities
//!   recomputed in the backward pass instead of kept;
//! - [`layer_norm_forward`]: LayerNorm in one pass each way, keeping two numbers per row;
//! - [`gelu`]: the exact GELU with its exact gradient, one vectorised pass each way.
//!
//! A crate that wants the kernels enables `flex` on its own dependency on metron-ops (the
//! default): a dependency declared with `default-features = false` compiles them out, and
//! [`KERNELS`] says which build is running.
//!
//! The `flex` feature (default) brings the kernels; without it every function is Burn's op.

#![warn(missing_docs)]

mod attention;
mod batch_norm;
mod conv;
#[cfg(feature = "flex")]
mod flex;
mod gelu;
#[cfg(feature = "flex")]
mod gemm;
mod layer_norm;
#[cfg(all(test, feature = "flex"))]
mod testing;
#[cfg(feature = "flex")]
mod vector_math;

pub use attention::self_attention;
pub use batch_norm::{
    RunningVariance, batch_norm_forward, batch_norm_forward_with, batch_norm_relu_forward,
    batch_norm_relu_forward_with, without_running_stat_updates,
};
pub use conv::{conv2d, conv2d_forward};
pub use gelu::gelu;
pub use layer_norm::layer_norm_forward;

/// Whether this build carries metron's CPU kernels (the `flex` feature, on by default);
/// without them every function here is Burn's op.
pub const KERNELS: bool = cfg!(feature = "flex");
