/// Result alias of metron-metrics.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can be wrong with the input of an evaluation. Messages name the set ("query",
/// "gallery"), the row and the sizes involved, so that a CLI can print them as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the {set} set is empty")]
    EmptySet { set: &'static str },

    #[error("K = {k} is larger than the {available} gallery items a query can retrieve")]
    KTooLarge { k: usize, available: usize },

    #[error("K must be at least 1")]
    KZero,

    #[error("query embeddings have dimension {query} but gallery embeddings have {gallery}")]
    DimensionMismatch { query: usize, gallery: usize },

    #[error("{set}: {labels} labels for {rows} embedding rows")]
    LabelCount {
        set: &'static str,
        labels: usize,
        rows: usize,
    },

    #[error("{set}: row {row}, column {col} is {value}; NaN/Inf embeddings cannot be ranked")]
    NonFinite {
        set: &'static str,
        row: usize,
        col: usize,
        value: f64,
    },

    #[error("{set}: row {row} has zero norm, so its cosine similarity is undefined")]
    ZeroNorm { set: &'static str, row: usize },

    #[error("{0}")]
    InvalidArgument(String),

    #[error("device computation failed: {0}")]
    Device(String),
}
