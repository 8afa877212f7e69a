//! metron: metric learning and image retrieval on Burn.
//!
//! This facade re-exports the workspace's crates under short names; depend on the individual
//! `metron-*` crates instead to compile less.

#![warn(missing_docs)]

pub use metron_backbones as backbones;
pub use metron_core as core;
pub use metron_datasets as datasets;
pub use metron_descriptors as descriptors;
pub use metron_localization as localization;
pub use metron_losses as losses;
pub use metron_metrics as metrics;
pub use metron_optim as optim;
pub use metron_samplers as samplers;
pub use metron_train as train;
pub use metron_viz as viz;

pub mod cli;
pub mod systems;
