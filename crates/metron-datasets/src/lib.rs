//! Dataset readers in the datasets' native layouts, the `datasets.toml` registry with expected
//! counts, and image decoding. (So far: Omniglot, CUB-200-2011, SOP, In-shop and a generic CSV.)

mod csv;
mod error;
mod image_io;
mod omniglot;
mod registry;
mod retrieval_sets;
mod sample;
mod table;

pub use csv::read_csv;
pub use error::{DatasetError, Result};
pub use image_io::{DecodedImage, load_image};
pub use omniglot::read_omniglot;
pub use registry::{CountMismatch, DatasetEntry, ExpectedCounts, Registry, check_counts};
pub use retrieval_sets::{read_cub, read_inshop, read_sop};
pub use sample::{Dataset, Sample, Split};
