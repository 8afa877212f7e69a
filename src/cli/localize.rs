//! `metron localize`: a WGOL checkpoint and one's own images -> classes and boxes
//! (`--out boxes.json`), and a picture of the maps (`--picture`).

use std::path::PathBuf;

use clap::Args;

use crate::systems::wgol::{
    MapKind, chosen_thresholds, load_wgol_checkpoint, localize, write_localisation_picture,
};

use super::CliError;
use super::output::refuse_existing_file;

/// Arguments of `metron localize`.
#[derive(Debug, Clone, Args)]
pub struct LocalizeArgs {
    /// A checkpoint of a WGOL run (`RUN/<network>/checkpoints/best.ckpt` or `last.ckpt`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Images (PNG or JPEG).
    #[arg(long = "image", required = true, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Write the results to this JSON file (an array, one object per image: `top5` classes
    /// with probabilities, `boxes` by map with threshold and `[x1, y1, x2, y2]` in the
    /// image's pixels), instead of printing them.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also draw each image with the maps of its best class and their boxes to this PNG.
    #[arg(long)]
    pub picture: Option<PathBuf>,
    /// One threshold for every map (default: those the run chose, per map).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// The side images are resized to (default: the run's evaluation size, stored in the
    /// checkpoint).
    #[arg(long)]
    pub size: Option<u32>,
    /// Replace existing --out / --picture files.
    #[arg(long)]
    pub force: bool,
    /// Where the model runs: cpu, wgpu, tch, tch:cuda:N or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `metron localize`; returns the text to print (the JSON when there is no --out).
pub fn run(args: &LocalizeArgs) -> Result<String, CliError> {
    for path in args.out.iter().chain(&args.picture) {
        refuse_existing_file(path, args.force)?;
    }
    let device = metron_core::parse_device(&args.device)?;
    let (model, state) = load_wgol_checkpoint(&args.checkpoint, &device)?;
    let side = match (args.size, &state.eval_pipeline) {
        (Some(s), _) => s,
        (None, Some(p)) => p.size[0],
        (None, None) => {
            return Err(CliError::Usage(format!(
                "{} does not record its input size: give --size (the canvas or --loc-size of \
                 its run)",
                args.checkpoint.display()
            )));
        }
    };
    let mut thresholds = chosen_thresholds(&state);
    if let Some(t) = args.threshold {
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(CliError::Usage(format!(
                "--threshold must be in [0, 1], got {t}"
            )));
        }
        for kind in [MapKind::Cam, MapKind::Spa, MapKind::Sos] {
            thresholds.insert(kind, t);
        }
    }
    if thresholds.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no chosen thresholds (it was never evaluated): give --threshold",
            args.checkpoint.display()
        )));
    }
    let (results, shown) = localize(&model, &args.images, side, &thresholds, &device, args.quiet)?;
    if let Some(path) = &args.picture {
        let sos = model.net.sos.is_some().then_some(shown.as_slice());
        write_localisation_picture(path, &shown, sos, &thresholds, false)?;
    }
    let json = serde_json::to_string_pretty(&results).expect("plain values");
    match &args.out {
        Some(path) => {
            metron_core::atomic_write(path, format!("{json}\n").as_bytes())?;
            Ok(format!(
                "{} images localised: {}",
                results.len(),
                path.display()
            ))
        }
        None => Ok(json),
    }
}
