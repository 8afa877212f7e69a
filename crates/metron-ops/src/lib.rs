//! metron's kernels: operations written for speed on the CPU backend (Burn's flex), each with
//! its own autodiff node, and Burn's own op on every other backend, in f64 and for the cases a
//! kernel does not cover, so callers use one function everywhere.
//!
//! - [`conv2d_forward`]: im2col + GEMM convolution (forward, weight and input gradients);
//! - [`batch_norm_forward`] / [`batch_norm_relu_forward`]: training-mode
//!   BatchNorm in two passes each way, the following ReLU fused in, with PyTorch's running
//!   statistics ([`RunningVariance`]).
//!
//! The `flex` feature (default) brings the kernels; without it every function is Burn's op.

#![warn(missing_docs)]

mod batch_norm;
mod conv;
#[cfg(feature = "flex")]
mod flex;

pub use batch_norm::{
    RunningVariance, batch_norm_forward, batch_norm_forward_with, batch_norm_relu_forward,
    batch_norm_relu_forward_with, without_running_stat_updates,
};
pub use conv::{conv2d, conv2d_forward};
