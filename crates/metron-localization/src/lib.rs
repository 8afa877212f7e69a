//! Weakly supervised object localisation (`../shared/specs/seed-systems.md` s. 2.7): a class
//! activation or structure map becomes a box ([`box_from_map`]), boxes are compared with the
//! +1-pixel IoU of the original evaluation ([`PixelBox::iou`]), and images are counted into
//! Top-1 / Top-5 / GT-known localisation accuracy ([`LocalizationCounts`]).
//!
//! | item | what it is |
//! |---|---|
//! | [`PixelBox`] | inclusive pixel corners, area `(x2 - x1 + 1)(y2 - y1 + 1)` |
//! | [`box_from_map`] | min-max normalise, bilinear resize (OpenCV's), threshold, union box |
//! | [`LocalizationCounts`] | classification and localisation accuracy over images |

#![warn(missing_docs)]

mod boxes;
mod error;
mod map;
mod metrics;

pub use boxes::PixelBox;
pub use error::{LocalizationError, Result};
pub use map::{box_from_map, min_max_normalize, resize_bilinear};
pub use metrics::{ImageOutcome, LocalizationCounts};
