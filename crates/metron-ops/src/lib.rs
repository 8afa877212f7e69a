//! metron's kernels: operations written for speed on the CPU backend (Burn's flex), each with
//! its own autodiff node, and Burn's own op on every other backend, in f64 and for the cases a
//! kernel does not cover, so callers use one function everywhere.
//!
//! - [`conv::conv2d_forward`]: im2col + GEMM convolution (forward, weight and input gradients);
//! - [`batch_norm::batch_norm_forward`] / [`batch_norm::batch_norm_relu_forward`]: training-mode
//!   BatchNorm in two passes each way, the following ReLU fused in, with PyTorch's running
//!   statistics ([`batch_norm::RunningVariance`]).
//!
//! The `flex` feature (default) brings the kernels; without it every function is Burn's op.

pub mod batch_norm;
pub mod conv;
#[cfg(feature = "flex")]
mod flex;
