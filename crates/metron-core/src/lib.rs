//! metron's shared vocabulary: the error type, run-time device selection, seeding, and
//! embedding / label I/O (`.npy`, `.safetensors`, text label files).
//!
//! Every other metron crate depends on this one; it depends on nothing of metron's.

pub mod device;
pub mod error;
pub mod io;
pub mod seed;
pub mod tensor;

pub use device::{DeviceSpec, parse_device};
pub use error::{Error, Result};
pub use io::{Embeddings, Labels, read_embeddings, read_labels, write_npy};
pub use seed::{rng_from_seed, seeded_init, split_seed};
