//! A terminal progress bar for the metrics crate's [`Progress`] callback.

use indicatif::{ProgressBar, ProgressStyle};
use metron_metrics::Progress;

/// Draws on stderr (nothing when stderr is not a terminal, or when `quiet`).
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(total: usize, what: &str, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total as u64)
        };
        let style = ProgressStyle::with_template(
            "{msg} {bar:30} {pos}/{len} [{elapsed_precise}, {per_sec}, ETA {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(what.to_string());
        Bar(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn advance(&self, queries: usize) {
        self.0.inc(queries as u64);
    }
}
