use std::path::PathBuf;

/// Result alias of metron-viz.
pub type Result<T, E = VizError> = std::result::Result<T, E>;

/// What can stop a picture from being drawn or written. Variants that concern a file name it,
/// so the message alone says which image to look at.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// An input image could not be read from disk (missing, unreadable).
    #[error("{path}: cannot read the image: {source}")]
    Read {
        /// The image file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An input image was read but is not a PNG/JPEG that decodes.
    #[error("{path}: cannot decode the image: {why}")]
    Image {
        /// The image file that failed to decode.
        path: PathBuf,
        /// The decoder's message.
        why: String,
    },

    /// The rendered picture could not be encoded as PNG.
    #[error("{path}: cannot encode the PNG: {why}")]
    Encode {
        /// The PNG file the picture was meant for.
        path: PathBuf,
        /// The encoder's message.
        why: String,
    },

    /// The encoded PNG could not be written (atomically) to its destination.
    #[error("{path}: cannot write the PNG: {}", write_reason(source))]
    Write {
        /// The PNG file that could not be written.
        path: PathBuf,
        /// metron-core's error from the atomic write.
        #[source]
        source: metron_core::Error,
    },

    /// There is nothing to draw (no panels, no grid rows).
    #[error("nothing to draw: {0}")]
    Empty(&'static str),

    /// A size argument is out of range (too small to hold the layout, or too large to
    /// allocate).
    #[error("{0}")]
    InvalidArgument(String),
}

/// metron-core's I/O error already starts with the path; repeating it would read
/// `a.png: cannot write the PNG: a.png: Permission denied`.
fn write_reason(source: &metron_core::Error) -> String {
    match source {
        metron_core::Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
