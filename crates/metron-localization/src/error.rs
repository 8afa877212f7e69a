//! What the localisation functions refuse.

/// Inputs that cannot be localised or scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LocalizationError {
    /// A map or output size with a zero side.
    #[error("{what}: a size with a zero side ({rows} x {cols})")]
    EmptySize {
        /// What the size is of.
        what: &'static str,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// A map holding NaN or an infinity.
    #[error("{what}: the map holds a non-finite value at ({row}, {col})")]
    NonFinite {
        /// What the map is.
        what: &'static str,
        /// Row of the first such value.
        row: usize,
        /// Column of the first such value.
        col: usize,
    },
    /// An image with no ground-truth box, or no predicted class.
    #[error("image {image}: {why}")]
    BadImage {
        /// Position of the image in the evaluation.
        image: usize,
        /// What is missing.
        why: String,
    },
    /// A `--mode` the original does not have.
    #[error("unknown WGOL mode `{0}` (spa, spa+sa, sos, sos+sa_v2, sos+sa_v3)")]
    UnknownMode(String),
    /// Tensors whose shapes do not fit together.
    #[error("{what}: {why}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// What was expected and what came.
        why: String,
    },
    /// A class label outside `0..classes`.
    #[error("{what}: label {label} of sample {sample} is outside 0..{classes}")]
    Label {
        /// Which input.
        what: &'static str,
        /// Position in the batch.
        sample: usize,
        /// The label.
        label: i64,
        /// Number of classes.
        classes: usize,
    },
}

/// The crate's result type.
pub type Result<T, E = LocalizationError> = std::result::Result<T, E>;
