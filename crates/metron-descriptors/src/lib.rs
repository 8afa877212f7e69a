//! Global descriptors on Burn: pooling of CNN feature maps (SPoC, MAC, GeM), heads over ViT
//! tokens (GAP, SAIG's SMD), the CGD multi-descriptor head and AntiMetric's meta-class
//! ensemble head.

#![warn(missing_docs)]

mod cgd_head;
mod error;
mod meta_class;
mod pooling;
mod tokens;

pub use cgd_head::{CgdDescriptor, CgdHead, CgdHeadConfig, CgdOutput, parse_cgd_config};
pub use error::{DescriptorError, Result};
pub use meta_class::{MetaClassEnsembleHead, MetaClassEnsembleHeadConfig, meta_class_codes};
pub use pooling::{Gem, GemConfig, GemVariant, Mac, Spoc};
pub use tokens::{Gap, Smd, SmdConfig};

pub use metron_core::l2_normalize;
