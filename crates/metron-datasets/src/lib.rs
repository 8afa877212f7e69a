//! Dataset readers in the datasets' native layouts, the `datasets.toml` registry with expected
//! counts, and image decoding. (So far: Omniglot, CUB-200-2011, SOP, In-shop, MNIST / Fashion-MNIST, CVUSA, VIGOR and a generic CSV.)

mod cross_view;
mod csv;
mod error;
mod idx;
mod image_io;
mod omniglot;
mod registry;
mod retrieval_sets;
mod sample;
mod table;

pub use cross_view::{PairSplit, VigorPanorama, VigorSplit, read_cvusa, read_vigor};
pub use csv::read_csv;
pub use error::{DatasetError, Result};
pub use idx::{IdxDataset, IdxSplit, read_idx, read_idx_dataset};
pub use image_io::{DecodedImage, load_image};
pub use omniglot::read_omniglot;
pub use registry::{CountMismatch, DatasetEntry, ExpectedCounts, Registry, check_counts};
pub use retrieval_sets::{read_cub, read_inshop, read_sop};
pub use sample::{Dataset, Sample, Split};
