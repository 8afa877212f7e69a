//! Image decoding into planar float arrays, with errors that name the file.

use std::path::Path;

use crate::{DatasetError, Result};

/// A decoded image: `[3, height, width]` values in [0, 1], RGB (grey images are replicated).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels, planar (all red, then all green, then all blue), each plane row-major.
    pub data: Vec<f32>,
}

/// Decodes `path` (PNG or JPEG). Corrupt or unsupported bytes give [`DatasetError::Image`]
/// naming the file, never a panic.
pub fn load_image(path: &Path) -> Result<DecodedImage> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let img = image::load_from_memory(&bytes).map_err(|e| DatasetError::Image {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut data = vec![0.0f32; 3 * w * h];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            data[c * w * h + i] = f32::from(px[c]) / 255.0;
        }
    }
    Ok(DecodedImage {
        width: w,
        height: h,
        data,
    })
}
