/// Result alias of metron-metrics.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can be wrong with the input of an evaluation. Messages name the set ("query",
/// "gallery"), the row and the sizes involved, so that a CLI can print them as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A set that must have rows (query, gallery, labels to cluster) has none.
    #[error("the {set} set is empty")]
    EmptySet {
        /// Which set is empty ("query", "gallery", "labels").
        set: &'static str,
    },

    /// A requested K exceeds the number of gallery items a query can retrieve.
    #[error("K = {k} is larger than the {available} gallery items a query can retrieve")]
    KTooLarge {
        /// The offending K (the largest one asked for).
        k: usize,
        /// Gallery items per query: the gallery size, less one in self-retrieval.
        available: usize,
    },

    /// A K of 0 was requested.
    #[error("K must be at least 1")]
    KZero,

    /// A sharded search whose shards do not fit together (count, overlap, query sets).
    #[error("sharded search: {0}")]
    Shards(String),

    /// Query and gallery embeddings have different numbers of columns.
    #[error("query embeddings have dimension {query} but gallery embeddings have {gallery}")]
    DimensionMismatch {
        /// Embedding dimension of the query set.
        query: usize,
        /// Embedding dimension of the gallery set.
        gallery: usize,
    },

    /// The number of labels differs from the number of rows they label.
    #[error("{set}: {labels} labels for {rows} embedding rows")]
    LabelCount {
        /// Which labels ("query", "gallery", "cluster assignment").
        set: &'static str,
        /// How many labels were given.
        labels: usize,
        /// How many rows there are (the label count expected).
        rows: usize,
    },

    /// An embedding holds a NaN or an infinity (the first one found is reported).
    #[error("{set}: row {row}, column {col} is {value}; NaN/Inf embeddings cannot be ranked")]
    NonFinite {
        /// The set holding the value ("query" or "gallery").
        set: &'static str,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value itself (NaN or an infinity).
        value: f64,
    },

    /// An embedding is all zeros, so it has no cosine similarity.
    #[error("{set}: row {row} has zero norm, so its cosine similarity is undefined")]
    ZeroNorm {
        /// The set holding the row ("query" or "gallery").
        set: &'static str,
        /// Index of the zero row.
        row: usize,
    },

    /// Any other argument out of range or inconsistent; the message says which and why.
    #[error("{0}")]
    InvalidArgument(String),

    /// The accelerated scoring path failed (e.g. reading scores back from the device); the
    /// message is the backend's error.
    #[error("device computation failed: {0}")]
    Device(String),
}
