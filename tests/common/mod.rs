//! Shared by the end-to-end tests of the `metron` binary.

use std::process::{Command, Output};

/// Runs the `metron` binary built for these tests, from the repository root (where
/// `datasets.toml` is).
pub fn metron(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metron"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run metron")
}
