//! The one error type of metron-samplers.

/// Inputs a sampler refuses at construction.
///
/// # Semantics
///
/// Every check happens once, in `new`, so that a sampler that exists can always produce the
/// number of batches it promises: `epoch` never fails and never panics. Each message names the
/// sampler and the numbers that made the configuration impossible, because the usual cause is a
/// batch size chosen for another dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplerError {
    /// Nothing to sample from.
    #[error("{sampler}: the dataset is empty")]
    EmptyDataset {
        /// The sampler that refused.
        sampler: &'static str,
    },

    /// A batch of zero items is meaningless.
    #[error("{sampler}: the batch size must be at least 1, got 0")]
    ZeroBatchSize {
        /// The sampler that refused.
        sampler: &'static str,
    },

    /// A class contributing zero samples would make no positives.
    #[error("{sampler}: samples per class must be at least 1, got 0")]
    ZeroPerClass {
        /// The sampler that refused.
        sampler: &'static str,
    },

    /// The batch must be a whole number of per-class groups.
    #[error(
        "{sampler}: batch size {batch_size} is not a multiple of {per_class} samples per class"
    )]
    NotDivisible {
        /// The sampler that refused.
        sampler: &'static str,
        /// The requested batch size.
        batch_size: usize,
        /// The requested samples per class.
        per_class: usize,
    },

    /// Fewer items than one batch.
    #[error("{sampler}: {items} items are fewer than one batch of {batch_size}")]
    FewerItemsThanBatch {
        /// The sampler that refused.
        sampler: &'static str,
        /// How many items the dataset has.
        items: usize,
        /// The requested batch size.
        batch_size: usize,
    },

    /// Even taking every class once, a batch cannot be filled.
    #[error(
        "{sampler}: the {classes} classes offer only {available} samples at up to {per_class} \
         per class, fewer than one batch of {batch_size}"
    )]
    TooFewSamplesPerBatch {
        /// The sampler that refused.
        sampler: &'static str,
        /// How many distinct classes the labels hold.
        classes: usize,
        /// The sum over classes of min(class size, per_class).
        available: usize,
        /// The requested samples per class.
        per_class: usize,
        /// The requested batch size.
        batch_size: usize,
    },

    /// Not enough classes with a full group to put distinct classes in one batch.
    #[error(
        "{sampler}: only {eligible} classes have at least {per_class} samples, but a batch needs \
         {needed} distinct such classes"
    )]
    TooFewClasses {
        /// The sampler that refused.
        sampler: &'static str,
        /// Classes with at least `per_class` samples.
        eligible: usize,
        /// Distinct classes one batch needs.
        needed: usize,
        /// The requested samples per class.
        per_class: usize,
    },

    /// The dataset cuts into fewer same-class groups than one batch holds.
    #[error(
        "{sampler}: the dataset cuts into only {groups} groups of {per_class} same-class samples, \
         but a batch needs {needed}"
    )]
    TooFewGroups {
        /// The sampler that refused.
        sampler: &'static str,
        /// Full groups over all classes.
        groups: usize,
        /// Groups per batch.
        needed: usize,
        /// The requested samples per class.
        per_class: usize,
    },

    /// Pairs share satellites so much that not even one conflict-free batch is guaranteed.
    #[error(
        "{sampler}: {pairs} pairs cannot guarantee one conflict-free batch of {batch_size}; the \
         shared satellites require at least {needed} pairs"
    )]
    ConflictsTooDense {
        /// The sampler that refused.
        sampler: &'static str,
        /// How many pairs the dataset has.
        pairs: usize,
        /// The requested batch size.
        batch_size: usize,
        /// Pairs needed for the guarantee (batch size plus the worst-case blocked pairs).
        needed: usize,
    },
}
