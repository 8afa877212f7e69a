//! `metron polar`: a folder of aerial images -> their polar transforms, the "polar aerial"
//! files that SAFA and SAIG train on for CVUSA and CVACT ([`PolarTransform`]).
//!
//! Outputs keep their input's path relative to `--input`, as PNG. Each is written atomically,
//! and existing outputs are skipped unless `--overwrite`, so an interrupted run resumes where
//! it stopped. An image that cannot be read or decoded does not stop the run: the others are
//! still written, and the failed ones are listed on stderr at the end with a non-zero exit, so
//! a rerun retries exactly those.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::Args;
use rayon::prelude::*;

use metron_datasets::PolarTransform;

use super::CliError;
use super::progress::Bar;

/// Arguments of `metron polar`: input and output folders and the transform's geometry.
#[derive(Debug, Clone, Args)]
pub struct PolarArgs {
    /// Folder of aerial images, searched recursively for .png, .jpg and .jpeg files.
    #[arg(long, value_name = "DIR")]
    pub input: PathBuf,
    /// Output folder: each image at its path relative to --input, as .png (created if absent;
    /// not searched for inputs when it lies inside --input).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Output size HEIGHTxWIDTH (SAFA and SAIG: 128x512 for CVUSA and CVACT).
    #[arg(long, value_name = "HxW", default_value = "128x512", value_parser = parse_size)]
    pub size: [u32; 2],
    /// Centre ROW,COL in input pixels (default: rows/2,cols/2 of each image).
    #[arg(long, value_name = "ROW,COL", value_parser = parse_center)]
    pub center: Option<[f64; 2]>,
    /// Radius in input pixels that the panorama covers; its top row is at radius*(H-1)/H
    /// (default: half the image's shorter side).
    #[arg(long, value_name = "R")]
    pub radius: Option<f64>,
    /// Replace existing outputs (by default they are kept and skipped).
    #[arg(long)]
    pub overwrite: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `HEIGHTxWIDTH`, e.g. `128x512`.
fn parse_size(s: &str) -> Result<[u32; 2], String> {
    let bad = || format!("'{s}': expected HEIGHTxWIDTH with positive integers, e.g. 128x512");
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    if h == 0 || w == 0 {
        return Err(bad());
    }
    Ok([h, w])
}

/// Parses `ROW,COL`, e.g. `375,375.5`.
fn parse_center(s: &str) -> Result<[f64; 2], String> {
    let bad = || format!("'{s}': expected ROW,COL in pixels, e.g. 375,375");
    let (r, c) = s.split_once(',').ok_or_else(bad)?;
    let r: f64 = r.trim().parse().map_err(|_| bad())?;
    let c: f64 = c.trim().parse().map_err(|_| bad())?;
    Ok([r, c])
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// The images under `root`, as sorted paths relative to it. `skip` (a canonical path) is not
/// entered: the output folder when it lies inside the input, whose PNGs are not inputs.
/// Symbolic links are followed; a folder reached twice is read once.
fn find_images(root: &Path, skip: &Path) -> Result<Vec<PathBuf>, CliError> {
    let unreadable = |path: &Path, e: std::io::Error| {
        CliError::Usage(format!("{}: cannot read the folder: {e}", path.display()))
    };
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let canonical = fs::canonicalize(&dir).map_err(|e| unreadable(&dir, e))?;
        if canonical == skip || !seen.insert(canonical) {
            continue;
        }
        for entry in fs::read_dir(&dir).map_err(|e| unreadable(&dir, e))? {
            let path = entry.map_err(|e| unreadable(&dir, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_image(&path) {
                // A dangling link with an image name is kept: reading it reports it.
                let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                found.push(rel);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Runs `metron polar`; returns the one-line summary.
pub fn run(args: &PolarArgs) -> Result<String, CliError> {
    let usage = |e: metron_datasets::DatasetError| CliError::Usage(e.to_string());
    let [height, width] = args.size;
    let mut transform = PolarTransform::new(height, width);
    if let Some(c) = args.center {
        transform = transform.with_center(c);
    }
    if let Some(r) = args.radius {
        transform = transform.with_radius(r);
    }
    transform.validate().map_err(usage)?;

    if !args.input.is_dir() {
        return Err(CliError::Usage(format!(
            "--input {}: no such folder",
            args.input.display()
        )));
    }
    fs::create_dir_all(&args.output).map_err(|source| CliError::Write {
        path: args.output.clone(),
        source,
    })?;
    let output = fs::canonicalize(&args.output).map_err(|source| CliError::Write {
        path: args.output.clone(),
        source,
    })?;
    let input = fs::canonicalize(&args.input)
        .map_err(|e| CliError::Usage(format!("--input {}: {e}", args.input.display())))?;
    // Writing into the input folder would replace PNG inputs by their own transforms.
    if input == output {
        return Err(CliError::Usage(format!(
            "--output {} is the --input folder: choose another",
            args.output.display()
        )));
    }

    let images = find_images(&args.input, &output)?;
    // a.jpg and a.png would both become a.png: refuse rather than let one silently win.
    let mut targets: HashMap<PathBuf, &Path> = HashMap::new();
    for rel in &images {
        if let Some(other) = targets.insert(rel.with_extension("png"), rel) {
            return Err(CliError::Usage(format!(
                "{} and {} would both be written to {}",
                args.input.join(other).display(),
                args.input.join(rel).display(),
                args.output.join(rel.with_extension("png")).display()
            )));
        }
    }

    let (todo, existing): (Vec<&PathBuf>, Vec<&PathBuf>) = images
        .iter()
        .partition(|rel| args.overwrite || !args.output.join(rel.with_extension("png")).exists());
    let bar = Bar::new(todo.len(), "polar", args.quiet);
    let failed = Mutex::new(Vec::new());
    todo.par_iter().for_each(|rel| {
        let src = args.input.join(rel);
        let dst = args.output.join(rel.with_extension("png"));
        let result = transform
            .apply_file(&src)
            .map_err(|e| e.to_string())
            .and_then(|img| {
                if let Some(parent) = dst.parent() {
                    fs::create_dir_all(parent).map_err(|e| {
                        format!("{}: cannot create the folder: {e}", parent.display())
                    })?;
                }
                metron_viz::save_png(&dst, &img).map_err(|e| e.to_string())
            });
        if let Err(why) = result {
            failed.lock().unwrap_or_else(|p| p.into_inner()).push(why);
        }
        bar.inc(1);
    });
    bar.finish();

    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    let written = todo.len() - failed.len();
    let summary = format!(
        "{written} written, {} skipped (already there), {} failed, of {} images in {}",
        existing.len(),
        failed.len(),
        images.len(),
        args.input.display()
    );
    if failed.is_empty() {
        return Ok(format!("{summary} -> {}", args.output.display()));
    }
    failed.sort();
    for why in &failed {
        eprintln!("{why}");
    }
    Err(CliError::Usage(format!(
        "{summary}: the failed images are listed above; a rerun retries only them"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_centres_parse() {
        assert_eq!(parse_size("128x512"), Ok([128, 512]));
        assert_eq!(parse_size("4X8"), Ok([4, 8]));
        for bad in ["128", "0x512", "128x", "ax3", "-1x4"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_center("375,375.5"), Ok([375.0, 375.5]));
        assert!(parse_center("375").is_err());
        assert!(parse_center("a,1").is_err());
    }

    #[test]
    fn image_extensions_are_matched_without_case() {
        assert!(is_image(Path::new("a/b.PNG")));
        assert!(is_image(Path::new("b.jpeg")));
        assert!(!is_image(Path::new("b.txt")));
        assert!(!is_image(Path::new("png")));
    }
}
