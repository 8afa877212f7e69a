//! MNIST / Fashion-MNIST in their IDX files, gzipped (`.gz`, as distributed) or not.
//!
//! Images are not files here but rows of an in-memory array, so this reader returns arrays
//! rather than [`crate::Sample`]s.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DatasetError, Result};

/// One split of an IDX dataset: `images[i * height * width ..]` is image i (u8, row-major).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxSplit {
    /// Pixel values 0..=255 of every image, `count * height * width` bytes.
    pub images: Vec<u8>,
    /// Class label of each image (0..=9 for MNIST and Fashion-MNIST), `count` of them.
    pub labels: Vec<u8>,
    /// Number of images (and labels).
    pub count: usize,
    /// Image height in pixels (28 for MNIST).
    pub height: usize,
    /// Image width in pixels (28 for MNIST).
    pub width: usize,
}

/// Train (`train-*`) and test (`t10k-*`) splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxDataset {
    /// The training split, from the `train-*` files.
    pub train: IdxSplit,
    /// The test split, from the `t10k-*` files.
    pub test: IdxSplit,
}

/// Reads `<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
pub fn read_idx_dataset(root: &Path) -> Result<IdxDataset> {
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot {
            path: root.to_path_buf(),
            env: "METRON_FASHION_MNIST_ROOT".into(),
        });
    }
    Ok(IdxDataset {
        train: read_split(root, "train")?,
        test: read_split(root, "t10k")?,
    })
}

fn find(root: &Path, stem: &str) -> Result<PathBuf> {
    let plain = root.join(stem);
    let gz = root.join(format!("{stem}.gz"));
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(DatasetError::io(
            gz,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not found (nor without .gz)"),
        ))
    }
}

fn read_split(root: &Path, prefix: &str) -> Result<IdxSplit> {
    let img_path = find(root, &format!("{prefix}-images-idx3-ubyte"))?;
    let lbl_path = find(root, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (dims, images) = read_idx(&img_path)?;
    let (ldims, labels) = read_idx(&lbl_path)?;
    let layout = |path: &Path, what: String| DatasetError::Layout {
        path: path.to_path_buf(),
        what,
    };
    let [count, height, width] = dims[..] else {
        return Err(layout(
            &img_path,
            format!("expected 3 dimensions, found {dims:?}"),
        ));
    };
    let [lcount] = ldims[..] else {
        return Err(layout(
            &lbl_path,
            format!("expected 1 dimension, found {ldims:?}"),
        ));
    };
    if lcount != count {
        return Err(layout(
            &lbl_path,
            format!(
                "{lcount} labels for the {count} images of {}",
                img_path.display()
            ),
        ));
    }
    Ok(IdxSplit {
        images,
        labels,
        count,
        height,
        width,
    })
}

/// Reads one IDX file of unsigned bytes: its dimensions and data. A gzipped file may inflate
/// to at most [`crate::MAX_INFLATED`] bytes (MNIST's largest file is 47 MB): a hostile file
/// cannot exhaust memory.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    read_idx_capped(path, crate::MAX_INFLATED)
}

/// [`read_idx`] with another inflation cap.
pub fn read_idx_capped(path: &Path, max_inflated: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(max_inflated as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| DatasetError::Layout {
                path: path.to_path_buf(),
                what: format!("corrupt gzip stream: {e}"),
            })?;
        if out.len() > max_inflated {
            return Err(DatasetError::Layout {
                path: path.to_path_buf(),
                what: format!("the gzip stream inflates to more than {max_inflated} bytes"),
            });
        }
        out
    } else {
        raw
    };
    let bad = |what: String| DatasetError::Layout {
        path: path.to_path_buf(),
        what,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        )));
    }
    let ndim = usize::from(bytes[3]);
    let header = 4 + 4 * ndim;
    let Some(dim_bytes) = bytes.get(4..header) else {
        return Err(bad(format!(
            "truncated header: {ndim} dimensions announced"
        )));
    };
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let data = &bytes[header..];
    if data.len() != expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} data bytes, found {}",
            data.len()
        )));
    }
    Ok((dims, data.to_vec()))
}
