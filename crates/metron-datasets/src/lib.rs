//! Dataset readers in the datasets' native layouts, the `datasets.toml` registry with expected
//! counts, and image decoding. (First slice: Omniglot and the generic CSV format.)

mod csv;
mod error;
mod image_io;
mod omniglot;
mod registry;
mod sample;

pub use csv::read_csv;
pub use error::{DatasetError, Result};
pub use image_io::{DecodedImage, load_image};
pub use omniglot::read_omniglot;
pub use registry::{CountMismatch, DatasetEntry, ExpectedCounts, Registry, check_counts};
pub use sample::{Dataset, Sample, Split};
