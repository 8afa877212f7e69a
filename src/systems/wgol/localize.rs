//! `metron localize`: a trained WGOL checkpoint and a user's own images -> each image's five
//! best classes and the box of every map the network has (CAM, SPA, SOS), in the image's own
//! pixels, with the thresholds the run chose.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;

use metron_localization::{PixelBox, union_box};
use metron_train::{Bar, TrainState, read_checkpoint};

use super::canvas::Canvas;
use super::evaluate::{MapKind, Prediction, full_map, predict_batch};
use super::images::{image_batch, resized};
use super::model::{WgolModel, WgolModelConfig};
use crate::systems::SystemError;

/// A WGOL checkpoint: the network and the run state saved with it.
pub fn load_wgol_checkpoint(
    path: &Path,
    device: &Device,
) -> Result<(WgolModel, TrainState), SystemError> {
    let ck = read_checkpoint(path)?;
    let state: TrainState = ck.state(path)?;
    let kind = state.architecture["kind"].as_str().unwrap_or("?");
    if kind != super::KIND {
        return Err(SystemError::Usage(format!(
            "{}: a '{kind}' checkpoint, not a WGOL one (`metron localize` needs a checkpoint of \
             `--example wgol`)",
            path.display()
        )));
    }
    let config: WgolModelConfig = serde_json::from_value(state.architecture["config"].clone())
        .map_err(|e| {
            SystemError::Usage(format!(
                "{}: the WGOL configuration does not parse: {e}",
                path.display()
            ))
        })?;
    let model = config.init(device)?;
    let model = ck.load_model(model, path)?;
    Ok((model, state))
}

/// The box of one map on one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapBox {
    /// The threshold on the map's `[0, 1]` values.
    pub threshold: f32,
    /// `[x1, y1, x2, y2]`, inclusive, in the image's own pixels.
    #[serde(rename = "box")]
    pub bbox: [i64; 4],
}

/// One class and its probability (softmax of the class scores).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// Class index (the training labels' numbering).
    pub class: usize,
    /// Probability.
    pub probability: f32,
}

/// What `metron localize` says about one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageLocalization {
    /// The image file.
    pub image: PathBuf,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// The five best classes, best first.
    pub top5: Vec<ClassScore>,
    /// The box of each map of the best class (`cam`, `spa`, `sos`), by map name.
    pub boxes: BTreeMap<String, MapBox>,
}

/// The thresholds a run chose: `{map}_threshold` of its last evaluation.
pub fn chosen_thresholds(state: &TrainState) -> BTreeMap<MapKind, f32> {
    let mut out = BTreeMap::new();
    if let Some(r) = state
        .history
        .iter()
        .rev()
        .find(|r| r.test.contains_key("cam_threshold"))
    {
        for kind in [MapKind::Cam, MapKind::Spa, MapKind::Sos] {
            if let Some(t) = r.test.get(&format!("{}_threshold", kind.name())) {
                out.insert(kind, *t as f32);
            }
        }
    }
    out
}

/// `b` in a `side x side` network input mapped to an image of `[w, h]` pixels (inclusive
/// corners: pixel `x` covers `[x, x + 1)` in the input).
pub fn box_in_image(b: &PixelBox, side: u32, [w, h]: [u32; 2]) -> [i64; 4] {
    let sx = f64::from(w) / f64::from(side);
    let sy = f64::from(h) / f64::from(side);
    let lo = |v: i64, s: f64| ((v as f64) * s).floor() as i64;
    let hi =
        |v: i64, s: f64, n: u32| ((((v + 1) as f64) * s).ceil() as i64 - 1).min(i64::from(n) - 1);
    [lo(b.x1, sx), lo(b.y1, sy), hi(b.x2, sx, w), hi(b.y2, sy, h)]
}

/// A resized image and its prediction, for a picture.
pub type Shown = (Canvas, Prediction);

/// Localises every image of `paths` with `model` at input side `side` (images resized to
/// `side x side`, as the run's evaluation), at `thresholds` per map. Returns the results and,
/// for a picture, each resized image with its prediction.
pub fn localize(
    model: &WgolModel,
    paths: &[PathBuf],
    side: u32,
    thresholds: &BTreeMap<MapKind, f32>,
    device: &Device,
    quiet: bool,
) -> Result<(Vec<ImageLocalization>, Vec<Shown>), SystemError> {
    if side == 0 || !side.is_multiple_of(16) {
        return Err(SystemError::Usage(format!(
            "the input side must be a positive multiple of 16 (VGG-16's stride), got {side}"
        )));
    }
    let net = model.net.valid();
    let device = device.clone().inner();
    let bar = Bar::new(paths.len(), "localising", quiet);
    let mut results = Vec::with_capacity(paths.len());
    let mut shown = Vec::with_capacity(paths.len());
    for path in paths {
        let img = metron_datasets::load_rgb(path)?;
        let (w, h) = img.dimensions();
        let resized = resized(&img, side);
        let batch = image_batch(&[&resized], vec![0]);
        let p = predict_batch(&net, &batch, None, 1, &device)
            .pop()
            .expect("one image in, one prediction out");
        let max = p.scores.iter().copied().fold(f32::MIN, f32::max);
        let z: f32 = p.scores.iter().map(|s| (s - max).exp()).sum();
        let top5 = p
            .top5
            .iter()
            .map(|&c| ClassScore {
                class: c,
                probability: (p.scores[c] - max).exp() / z,
            })
            .collect();
        let mut boxes = BTreeMap::new();
        for (kind, &t) in thresholds {
            let class = if *kind == MapKind::Sos { 0 } else { p.top5[0] };
            if let Some(m) = full_map(*kind, &p, class, [side as usize; 2]) {
                let b = union_box(m.view(), t);
                boxes.insert(
                    kind.name().to_string(),
                    MapBox {
                        threshold: t,
                        bbox: box_in_image(&b, side, [w, h]),
                    },
                );
            }
        }
        results.push(ImageLocalization {
            image: path.clone(),
            width: w,
            height: h,
            top5,
            boxes,
        });
        let canvas = Canvas {
            image: resized,
            label: p.top5[0],
            gt_box: PixelBox::new(0, 0, 0, 0),
        };
        shown.push((canvas, p));
        bar.inc(1);
    }
    bar.finish();
    Ok((results, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_scale_back_to_the_image_with_inclusive_corners() {
        // A 32-pixel input of a 64 x 96 image: x doubles, y triples; pixel 31 ends the image.
        let b = PixelBox::new(0, 10, 31, 20);
        assert_eq!(box_in_image(&b, 32, [64, 96]), [0, 30, 63, 62]);
        // Same size: unchanged.
        assert_eq!(box_in_image(&b, 32, [32, 32]), [0, 10, 31, 20]);
    }
}
