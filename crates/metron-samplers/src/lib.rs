//! Batch samplers for metric learning: which dataset indices go into each batch of an epoch.
//!
//! Losses that compare samples inside a batch need the batch to hold several samples of each
//! class (or, for cross-view retrieval, no two pairs that are secretly positives of each other).
//! Every sampler here implements [`BatchSampler`]: an epoch is a deterministic function of the
//! sampler's seed and the epoch number, its length is known up front, and it splits into
//! disjoint per-worker shards.
//!
//! ```
//! use metron_samplers::{BatchSampler, MPerClassSampler};
//! let labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
//! let sampler = MPerClassSampler::new(&labels, 4, 2, 42).unwrap();
//! let epoch = sampler.epoch(0);
//! assert_eq!(epoch.len(), sampler.batches_per_epoch());
//! assert!(epoch.iter().all(|batch| batch.len() == 4));
//! assert_eq!(epoch, sampler.epoch(0));
//! ```
//!
//! | sampler | origin | epoch |
//! |---|---|---|
//! | [`MPerClassSampler`] | CGD | `N / B` independent batches of random classes, up to m each |
//! | [`ClassContiguousSampler`] | Smooth-AP | distinct classes per batch, contiguous blocks of g |
//! | [`CoveringMPerClassSampler`] | metron | one pass over the data in same-class groups of m |
//! | [`CrossViewPairSampler`] | VIGOR | pairs with no satellite shared inside a batch |
//! | [`ShuffleSampler`] | PyTorch `DataLoader(shuffle=True)` | every index once, seeded order |

#![warn(missing_docs)]

mod class_contiguous;
mod classes;
mod covering;
mod cross_view;
mod error;
mod m_per_class;
mod sampler;
mod shuffle;

pub use class_contiguous::ClassContiguousSampler;
pub use covering::CoveringMPerClassSampler;
pub use cross_view::CrossViewPairSampler;
pub use error::SamplerError;
pub use m_per_class::MPerClassSampler;
pub use sampler::BatchSampler;
pub use shuffle::ShuffleSampler;
