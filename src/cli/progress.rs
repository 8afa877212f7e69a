//! The terminal progress bar, shared with the training loop.

pub use metron_train::Bar;
