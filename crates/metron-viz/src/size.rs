//! Size checks done before allocating, so a wrong argument is an error, not an abort.

use crate::{Result, VizError};

/// Largest picture this crate allocates: 64 megapixels (192 MB of RGB), far above any
/// training plot or retrieval grid, far below what would take a machine down.
pub const MAX_PIXELS: u64 = 1 << 26;

/// `extent` as a `u32`, or an error naming `what`.
pub(crate) fn checked_extent(extent: u64, what: &str) -> Result<u32> {
    u32::try_from(extent)
        .map_err(|_| VizError::InvalidArgument(format!("{what} of {extent} pixels is too large")))
}

/// Rejects empty pictures and pictures above [`MAX_PIXELS`].
pub(crate) fn check_pixels(width: u32, height: u32) -> Result<()> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(VizError::InvalidArgument(format!(
            "a {width}x{height} picture has no pixels"
        )));
    }
    if pixels > MAX_PIXELS {
        return Err(VizError::InvalidArgument(format!(
            "a {width}x{height} picture has {pixels} pixels, more than the {MAX_PIXELS} allowed"
        )));
    }
    Ok(())
}
