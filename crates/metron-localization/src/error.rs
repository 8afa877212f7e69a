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
}

/// The crate's result type.
pub type Result<T, E = LocalizationError> = std::result::Result<T, E>;
