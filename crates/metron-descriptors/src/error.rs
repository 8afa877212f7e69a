/// Result alias of metron-descriptors.
pub type Result<T, E = DescriptorError> = std::result::Result<T, E>;

/// Configurations and inputs the descriptor heads refuse.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// A CGD descriptor string is empty, has a letter other than S, M, G, or repeats one.
    #[error(
        "CGD descriptor config '{config}': {why} (letters S = SPoC, M = MAC, G = GeM, each at most once, e.g. \"SG\", \"SMG\")"
    )]
    CgdConfig {
        /// The descriptor string as given.
        config: String,
        /// What is wrong with it: empty, an unknown letter, or a letter repeated.
        why: String,
    },

    /// A CGD head's `feature_dim` is zero or does not split evenly among its descriptors.
    #[error(
        "feature_dim {feature_dim} is not divisible by the {descriptors} descriptors of '{config}'"
    )]
    FeatureDim {
        /// The embedding size asked for.
        feature_dim: usize,
        /// How many descriptors the configuration names.
        descriptors: usize,
        /// The descriptor string, e.g. `"SMG"`.
        config: String,
    },

    /// A tensor passed to a head has the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Which input was checked.
        what: &'static str,
        /// The shape the head expects, e.g. `[B, 4, D]`.
        expected: String,
        /// The shape it got.
        got: Vec<usize>,
    },

    /// Meta-class codes cannot be drawn: a count is zero, there are fewer possible codes than
    /// classes, or every random draw gave two classes the same code.
    #[error("meta-class codes: {0}")]
    MetaCodes(String),
}
