//! metron's shared vocabulary: the error type, run-time device selection, seeding, and
//! embedding / label I/O (`.npy`, `.safetensors`, text label files).
//!
//! Every other metron crate depends on this one; it depends on nothing of metron's.

#![warn(missing_docs)]

mod device;
mod error;
mod io;
mod seed;
mod tensor;

pub use device::{DEVICE_HELP, DeviceSpec, parse_device};

/// ImageNet's per-channel mean (RGB, of pixels scaled to [0, 1]): the normalisation every
/// ImageNet-pretrained backbone expects. Defined here once for the backbones and datasets.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (see [`IMAGENET_MEAN`]).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
pub use error::{Error, Result};
pub use io::{
    Embeddings, Labels, NpyElement, atomic_write, read_embeddings, read_labels, read_npy_f64,
    read_npy_i64, read_safetensors_tensor, write_npy, write_safetensors,
};
pub use seed::{Rng, rng_from_seed, seeded_init, split_seed};
pub use tensor::{gelu, l2_normalize};
