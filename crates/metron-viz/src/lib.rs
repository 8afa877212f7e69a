//! The pictures a training run writes, drawn pixel by pixel: line plots of per-epoch curves
//! ("loss per epoch", "Recall@1 per epoch") and retrieval grids (each query beside its top-K
//! results, framed green for a hit and red for a miss).
//!
//! Only `image` is needed (for PNG/JPEG decoding, resizing and PNG encoding): axes, ticks,
//! legends and text are drawn here with a built-in 5x7 bitmap font, so the crate pulls in no
//! plotting stack and no font files, and its output is the same on every machine. Files are
//! written atomically (encoded in memory, then `metron_core::atomic_write`).
//!
//! ```no_run
//! use metron_viz::{LinePlot, Series, save_line_plots};
//! let loss = LinePlot::new("loss per epoch", "epoch", "loss")
//!     .with_series(Series::per_epoch("train", &[1.9, 1.2, 0.8, 0.7]));
//! let recall = LinePlot::new("Recall@1 per epoch", "epoch", "Recall@1")
//!     .with_series(Series::per_epoch("test", &[0.41, 0.55, 0.61, 0.63]));
//! save_line_plots("curves.png".as_ref(), &[loss, recall], 640, 400)?;
//! # Ok::<(), metron_viz::VizError>(())
//! ```

#![warn(missing_docs)]

mod bar_chart;
mod colour;
mod draw;
mod error;
mod font;
mod grid;
mod line_plot;
mod png;
mod size;
mod ticks;

pub use bar_chart::{Bar, BarChart, render_bar_chart, save_bar_chart};
pub use colour::Palette;
pub use draw::{fill_rect, frame};
pub use error::{Result, VizError};
pub use font::{draw_text, text_height, text_width};
pub use grid::{
    GridImage, GridLayout, GridRow, MIN_THUMB, Match, UNJUDGED_CAPTION, render_retrieval_grid,
    render_retrieval_grid_captioned, save_retrieval_grid, save_retrieval_grid_captioned,
};
pub use line_plot::{LinePlot, Series, render_line_plots, save_line_plots};
pub use png::{encode_png, save_png};
pub use size::MAX_PIXELS;
pub use ticks::nice_ticks;
