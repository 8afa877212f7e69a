//! Embedding, label and array I/O: NumPy `.npy`, `.safetensors`, and text label files.
//!
//! Readers never panic on file content: every malformed file becomes a typed [`crate::Error`]
//! naming the file (and the line, for text). Writers are atomic, so an interrupted run never
//! leaves a half-written file where a complete one is expected.

mod atomic;
mod embeddings;
mod labels;
mod npy;
mod safetensors_io;

pub use atomic::atomic_write;
pub use embeddings::{Embeddings, read_embeddings};
pub use labels::{Labels, read_labels};
pub use npy::{NpyElement, read_npy_f64, read_npy_i64, write_npy};
pub use safetensors_io::{read_safetensors_tensor, write_safetensors};
