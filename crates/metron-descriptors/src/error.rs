/// Result alias of metron-descriptors.
pub type Result<T, E = DescriptorError> = std::result::Result<T, E>;

/// Configurations and inputs the descriptor heads refuse.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    #[error(
        "CGD descriptor config '{config}': {why} (letters S = SPoC, M = MAC, G = GeM, each at most once, e.g. \"SG\", \"SMG\")"
    )]
    CgdConfig { config: String, why: String },

    #[error(
        "feature_dim {feature_dim} is not divisible by the {descriptors} descriptors of '{config}'"
    )]
    FeatureDim {
        feature_dim: usize,
        descriptors: usize,
        config: String,
    },

    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },

    #[error("meta-class codes: {0}")]
    MetaCodes(String),
}
