//! Dataset readers in the datasets' native layouts, the `datasets.toml` registry with expected
//! counts, and image decoding. (So far: Omniglot, CUB-200-2011, Cars196, SOP, In-shop, MNIST /
//! Fashion-MNIST, CVUSA, CVACT, VIGOR, iNaturalist 2018 (JSON and Smooth-AP lists), the WGOL
//! localisation lists of CUB and ILSVRC, a generic CSV, and level-5 MAT-files.)

#![warn(missing_docs)]

mod cross_view;
mod csv;
mod error;
mod idx;
mod image_io;
mod inaturalist;
mod loader;
mod mat;
mod omniglot;
mod polar;
mod registry;
mod retrieval_sets;
mod sample;
mod table;
mod transform;
mod wgol;

pub use cross_view::{
    CvactLayout, PairSplit, VigorPanorama, VigorSplit, parse_cvact, read_cvact, read_cvusa,
    read_vigor,
};
pub use csv::{parse_csv, read_csv};
pub use error::{DatasetError, Result};
pub use idx::{IdxDataset, IdxSplit, read_idx, read_idx_capped, read_idx_dataset};
pub use image_io::{DecodedImage, load_image};
pub use inaturalist::{
    parse_inaturalist_json, parse_inaturalist_list, read_inaturalist_json, read_inaturalist_lists,
};
pub use loader::{
    Batch, BatchLoader, GeneratedImages, ImageBatch, ImageBatches, ImageSource, InMemoryImages,
    LoadBatch, Loader, LoaderConfig, MakeImage, augmentation_seed, decode_batch, load_rgb,
};
pub use mat::{MAX_INFLATED, MatArray, MatData, MatFile, parse_mat, read_mat};
pub use omniglot::read_omniglot;
pub use polar::PolarTransform;
pub use registry::{CountMismatch, DatasetEntry, ExpectedCounts, READERS, Registry, check_counts};
pub use retrieval_sets::{parse_cars196, read_cars196, read_cub, read_inshop, read_sop};
pub use sample::{Dataset, Sample, Split};
pub use transform::{
    CustomTransform, CustomTransformFn, Pipeline, Transform, crop_to_box, rescale_box, ten_crop,
};
pub use wgol::{LocalizationDataset, WgolSet, parse_wgol, read_wgol};
