/// Result alias of metron-losses.
pub type Result<T, E = LossError> = std::result::Result<T, E>;

/// Inputs a loss refuses. A batch that is merely degenerate (no positive pair, one class, one
/// item) is not an error: the loss is 0 and its gradient is 0.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// The number of labels differs from the number of rows of the batch.
    #[error("{what}: {labels} labels for a batch of {rows} rows")]
    LabelCount {
        /// The loss (and input) that refused the batch.
        what: &'static str,
        /// How many labels were given.
        labels: usize,
        /// How many rows the batch has (the label count expected).
        rows: usize,
    },

    /// The batch has no rows.
    #[error("{what}: the batch is empty")]
    EmptyBatch {
        /// The loss that refused the batch.
        what: &'static str,
    },

    /// An input tensor holds a NaN or an infinity.
    #[error("{what}: the input contains NaN or infinite values")]
    NonFinite {
        /// The loss that refused the input.
        what: &'static str,
    },

    /// An input tensor does not have the shape the loss (or its parameters) requires.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// The loss (and input) that refused the tensor.
        what: &'static str,
        /// The expected shape, as text (e.g. `[32, 128]`).
        expected: String,
        /// The tensor's actual dimensions.
        got: Vec<usize>,
    },

    /// A class label is negative or not below the number of classes (logits columns or
    /// proxies).
    #[error("{what}: label {label} at row {row} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The loss that refused the labels.
        what: &'static str,
        /// The offending label.
        label: i64,
        /// Row of the batch that carries it.
        row: usize,
        /// Number of classes; valid labels are `0..classes`.
        classes: usize,
    },

    /// The batch is not laid out as the loss requires (e.g. `SmoothApLoss` wants
    /// class-contiguous blocks of `samples_per_class` rows, one block per class).
    #[error("{what}: {why}")]
    BatchLayout {
        /// The loss that refused the batch.
        what: &'static str,
        /// What is wrong with the layout, naming the sizes, rows or labels at fault.
        why: String,
    },

    /// Any other argument out of range; the message says which and why.
    #[error("{0}")]
    InvalidArgument(String),
}
