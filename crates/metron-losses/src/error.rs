/// Result alias of metron-losses.
pub type Result<T, E = LossError> = std::result::Result<T, E>;

/// Inputs a loss refuses. A batch that is merely degenerate (no positive pair, one class, one
/// item) is not an error: the loss is 0 and its gradient is 0.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error("{what}: {labels} labels for a batch of {rows} rows")]
    LabelCount {
        what: &'static str,
        labels: usize,
        rows: usize,
    },

    #[error("{what}: the batch is empty")]
    EmptyBatch { what: &'static str },

    #[error("{what}: the input contains NaN or infinite values")]
    NonFinite { what: &'static str },

    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },

    #[error("{what}: label {label} at row {row} is outside 0..{classes}")]
    LabelOutOfRange {
        what: &'static str,
        label: i64,
        row: usize,
        classes: usize,
    },

    #[error("{what}: {why}")]
    BatchLayout { what: &'static str, why: String },

    #[error("{0}")]
    InvalidArgument(String),
}
