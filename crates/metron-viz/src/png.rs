//! PNG output: encode in memory, then write atomically, so a crash mid-write never leaves a
//! truncated PNG where a reader (a report, a dashboard) expects a complete one.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use crate::{Result, VizError};

/// Encodes `img` as PNG bytes.
pub fn encode_png(img: &RgbImage) -> std::result::Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )?;
    Ok(bytes)
}

/// Encodes `img` as PNG and writes it to `path` atomically (temp file + rename in the same
/// directory, which must exist).
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    let bytes = encode_png(img).map_err(|e| VizError::Encode {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    metron_core::atomic_write(path, &bytes).map_err(|source| VizError::Write {
        path: path.to_path_buf(),
        source,
    })
}
