//! Terminal progress bars with throughput and ETA, silent with `quiet` or off a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use metron_metrics::Progress;

/// A progress bar on stderr (drawn only when stderr is a terminal and not `quiet`).
#[derive(Debug, Clone)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar of `total` units labelled `what`; the rate is shown per unit (images, queries).
    pub fn new(total: usize, what: &str, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total as u64)
        };
        let style = ProgressStyle::with_template(
            "{prefix} {bar:30} {pos}/{len} [{elapsed_precise}, {per_sec}, ETA {eta}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(what.to_string());
        Bar(bar)
    }

    /// Advances the bar by `n` units.
    pub fn inc(&self, n: usize) {
        self.0.inc(n as u64);
    }

    /// Text after the bar, e.g. the running loss.
    pub fn set_message(&self, msg: String) {
        self.0.set_message(msg);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn advance(&self, queries: usize) {
        self.0.inc(queries as u64);
    }
}
