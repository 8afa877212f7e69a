//! Optimisation pieces shared by the reproduced systems: SAM / adaptive SAM / ASAM around
//! any Burn optimizer, the systems' learning-rate schedules, and global-norm gradient
//! clipping.

#![warn(missing_docs)]

mod clip;
mod params;
mod sam;
mod schedule;

pub use clip::clip_grad_norm;
pub use params::param_paths;
pub use sam::{Perturbation, Sam, SamConfig, SamVariant};
pub use schedule::{MultiStep, WarmupCosine};
