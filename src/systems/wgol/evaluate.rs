//! Localisation evaluation on canvases or photographs: the network's class scores (TenCrop
//! optional) and maps, boxes from the CAM, SPA (structure-guided) and SOS maps over the
//! original's threshold sweep, the threshold chosen on validation images, Top-1 / Top-5 /
//! GT-known localisation on the test images, streamed batch by batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};
use ndarray::{Array2, Array3, s};

use metron_datasets::{ImageBatch, LoadBatch};
use metron_localization::{
    ImageOutcome, LocalizationCounts, Phase, PixelBox, WgolNet, class_scores, min_max_normalize,
    resize_bilinear, sos_probability_map, structure_guided_map, union_box,
};
use metron_train::{Bar, EvalOutcome, Evaluation, batch_images};

use super::canvas::Canvas;
use super::images::{EvalImages, image_batch};
use super::model::{CanvasSource, WgolModel};

/// Which map a box comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapKind {
    /// The class activation map of the class (`cls` head).
    Cam,
    /// SPA's structure-guided map: the CAM spread along the structure map (SCG).
    Spa,
    /// SOS's class-agnostic object map.
    Sos,
}

impl MapKind {
    /// Its name in reports (`cam`, `spa`, `sos`).
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Cam => "cam",
            MapKind::Spa => "spa",
            MapKind::Sos => "sos",
        }
    }
}

/// What the network says about one canvas.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Class scores (spatial means of the class maps).
    pub scores: Vec<f32>,
    /// The five best classes, best first.
    pub top5: Vec<usize>,
    /// ReLU'd class maps `[K, h, w]`.
    pub cls_maps: Array3<f32>,
    /// SOS logits `[h, w]` (modes with SOS).
    pub sos: Option<Array2<f32>>,
    /// The structure map `S = S_4 + S_5`, `[h w, h w]`.
    pub structure: Option<Array2<f32>>,
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 after convert")
}

/// The ground truth of one evaluated image.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    /// Its class.
    pub label: usize,
    /// Every ground-truth box, in the pixels of the image the maps are resized to.
    pub boxes: Vec<PixelBox>,
    /// `[height, width]` of that image.
    pub size: [usize; 2],
}

impl Truth {
    /// The truth of a canvas.
    pub fn of_canvas(c: &Canvas) -> Self {
        let (w, h) = c.image.dimensions();
        Truth {
            label: c.label,
            boxes: vec![c.gt_box],
            size: [h as usize, w as usize],
        }
    }
}

/// What an evaluation runs over: fixed canvases, or test photographs read as they are needed.
#[derive(Debug, Clone)]
pub enum LocalizationSet {
    /// Canvases held in memory.
    Canvases(Arc<Vec<Canvas>>),
    /// Photographs with their boxes.
    Images(Arc<EvalImages>),
}

/// A batch of a [`LocalizationSet`] ready for the network.
struct LoadedBatch {
    inputs: ImageBatch,
    /// Ten crops per image, image-major (TenCrop classification), if used.
    crops: Option<ImageBatch>,
    truths: Vec<Truth>,
    /// The images the maps cover, with their first box (for pictures).
    shown: Vec<Canvas>,
}

impl LocalizationSet {
    /// Its items.
    pub fn len(&self) -> usize {
        match self {
            LocalizationSet::Canvases(c) => c.len(),
            LocalizationSet::Images(i) => i.len(),
        }
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn load(&self, idx: &[usize]) -> metron_train::Result<LoadedBatch> {
        match self {
            LocalizationSet::Canvases(c) => {
                let batch = CanvasSource::Fixed(c.clone()).load(idx, &vec![0; idx.len()])?;
                let shown: Vec<Canvas> = idx.iter().map(|&i| c[i].clone()).collect();
                Ok(LoadedBatch {
                    inputs: batch.images,
                    crops: None,
                    truths: shown.iter().map(Truth::of_canvas).collect(),
                    shown,
                })
            }
            LocalizationSet::Images(set) => {
                let loaded = idx
                    .iter()
                    .map(|&i| set.load(i))
                    .collect::<metron_datasets::Result<Vec<_>>>()?;
                let labels: Vec<i64> = idx.iter().map(|&i| set.samples[i].label as i64).collect();
                let images: Vec<&image::RgbImage> = loaded.iter().map(|l| &l.image).collect();
                let inputs = image_batch(&images, labels.clone());
                let crops = set.sizes.ten_crop.then(|| {
                    let crops: Vec<&image::RgbImage> =
                        loaded.iter().flat_map(|l| l.crops.iter()).collect();
                    image_batch(&crops, labels.iter().flat_map(|&l| [l; 10]).collect())
                });
                let side = set.sizes.loc as usize;
                let truths: Vec<Truth> = loaded
                    .iter()
                    .zip(&labels)
                    .map(|(l, &label)| Truth {
                        label: label as usize,
                        boxes: l.boxes.clone(),
                        size: [side, side],
                    })
                    .collect();
                let shown = loaded
                    .into_iter()
                    .zip(&truths)
                    .map(|(l, t)| Canvas {
                        image: l.image,
                        label: t.label,
                        gt_box: t
                            .boxes
                            .first()
                            .copied()
                            .unwrap_or(PixelBox::new(0, 0, 0, 0)),
                    })
                    .collect();
                Ok(LoadedBatch {
                    inputs,
                    crops,
                    truths,
                    shown,
                })
            }
        }
    }
}

fn top5_of(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(5);
    order
}

/// The network's predictions for a batch of images (`[B, 3, H, W]`); with `crops`
/// (`[10 B, 3, h, w]`, image-major) the class scores are the mean softmax over each image's
/// ten crops, as the original's TenCrop classification.
pub(crate) fn predict_batch(
    net: &WgolNet,
    inputs: &ImageBatch,
    crops: Option<&ImageBatch>,
    batch_size: usize,
    device: &Device,
) -> Vec<Prediction> {
    let o = net.forward(batch_images(inputs, device), Phase::Test);
    let [b, k, h, w] = o.cls_maps.dims();
    let mut scores = to_vec(class_scores(o.cls_maps.clone()));
    if let Some(crops) = crops {
        let mut probs = Vec::with_capacity(crops.len() * k);
        let per = 3 * crops.shape[2] * crops.shape[3];
        for start in (0..crops.len()).step_by(batch_size.max(1) * 10) {
            let end = (start + batch_size.max(1) * 10).min(crops.len());
            let part = ImageBatch {
                images: crops.images[start * per..end * per].to_vec(),
                shape: [end - start, 3, crops.shape[2], crops.shape[3]],
                labels: crops.labels[start..end].to_vec(),
                indices: (start..end).collect(),
                seeds: vec![0; end - start],
                skipped: Vec::new(),
            };
            let out = net.forward(batch_images(&part, device), Phase::Test);
            probs.extend(to_vec(softmax(class_scores(out.cls_maps), 1)));
        }
        scores = (0..b)
            .flat_map(|i| {
                let probs = &probs;
                (0..k)
                    .map(move |c| (0..10).map(|j| probs[(i * 10 + j) * k + c]).sum::<f32>() / 10.0)
            })
            .collect();
    }
    let maps = to_vec(relu(o.cls_maps));
    let sos = o.sos_maps.map(to_vec);
    let structure = o.structure.map(to_vec);
    let n2 = (h * w) * (h * w);
    (0..b)
        .map(|i| {
            let sc = scores[i * k..(i + 1) * k].to_vec();
            Prediction {
                top5: top5_of(&sc),
                scores: sc,
                cls_maps: Array3::from_shape_vec(
                    (k, h, w),
                    maps[i * k * h * w..(i + 1) * k * h * w].to_vec(),
                )
                .expect("k h w values"),
                sos: sos.as_ref().map(|m| {
                    Array2::from_shape_vec((h, w), m[i * h * w..(i + 1) * h * w].to_vec())
                        .expect("h w values")
                }),
                structure: structure.as_ref().map(|m| {
                    Array2::from_shape_vec((h * w, h * w), m[i * n2..(i + 1) * n2].to_vec())
                        .expect("n n values")
                }),
            }
        })
        .collect()
}

/// The `kind` map of `class` at canvas size `out` (values in [0, 1]; thresholded as they
/// are), or `None` when the network has no such map.
pub fn full_map(
    kind: MapKind,
    p: &Prediction,
    class: usize,
    out: [usize; 2],
) -> Option<Array2<f32>> {
    let cam = p.cls_maps.slice(s![class, .., ..]);
    let m = match kind {
        MapKind::Cam => min_max_normalize(cam).ok()?,
        MapKind::Spa => structure_guided_map(cam, p.structure.as_ref()?.view()).ok()?,
        MapKind::Sos => return sos_probability_map(p.sos.as_ref()?.view(), out).ok(),
    };
    resize_bilinear(m.view(), out).ok()
}

/// Adds image `i` (prediction `p`, truth `t`) to `counts`, one per threshold: boxes of
/// `kind` for the top-5 classes (the same box for all of them for SOS) and for the
/// ground-truth class. `None` when the network has no such map.
fn sweep_add(
    kind: MapKind,
    i: usize,
    p: &Prediction,
    t: &Truth,
    thresholds: &[f32],
    counts: &mut [LocalizationCounts],
) -> Option<()> {
    let out = t.size;
    let agnostic = kind == MapKind::Sos;
    let top_maps: Vec<Array2<f32>> = if agnostic {
        vec![full_map(kind, p, 0, out)?]
    } else {
        p.top5
            .iter()
            .map(|&k| full_map(kind, p, k, out))
            .collect::<Option<_>>()?
    };
    let gt_map = if agnostic {
        top_maps[0].clone()
    } else {
        full_map(kind, p, t.label, out)?
    };
    for (c, &th) in counts.iter_mut().zip(thresholds) {
        let boxes: Vec<PixelBox> = if agnostic {
            vec![union_box(top_maps[0].view(), th); p.top5.len()]
        } else {
            top_maps.iter().map(|m| union_box(m.view(), th)).collect()
        };
        c.add(
            i,
            &ImageOutcome {
                gt_class: t.label,
                gt_boxes: t.boxes.clone(),
                top_classes: p.top5.clone(),
                boxes,
                gt_known_box: union_box(gt_map.view(), th),
            },
        )
        .ok()?;
    }
    Some(())
}

/// Counts of one box rule for every image (the baselines: a box that ignores the network,
/// scored with the network's classes).
pub fn counts_of_boxes(
    top5: &[Vec<usize>],
    truths: &[Truth],
    box_of: impl Fn(&Truth) -> PixelBox,
) -> LocalizationCounts {
    let mut counts = LocalizationCounts::default();
    for (i, (classes, t)) in top5.iter().zip(truths).enumerate() {
        let b = box_of(t);
        counts
            .add(
                i,
                &ImageOutcome {
                    gt_class: t.label,
                    gt_boxes: t.boxes.clone(),
                    top_classes: classes.clone(),
                    boxes: vec![b; classes.len()],
                    gt_known_box: b,
                },
            )
            .expect("one box and classes per image");
    }
    counts
}

/// What one pass over a set leaves: counts per map and threshold, every image's truth and
/// top-5 classes, and the full predictions of the images kept for a picture.
#[derive(Debug, Clone)]
pub struct SetOutcome {
    /// Per available map, the counts at each threshold.
    pub counts: BTreeMap<MapKind, Vec<LocalizationCounts>>,
    /// Every image's ground truth.
    pub truths: Vec<Truth>,
    /// Every image's five best classes.
    pub top5: Vec<Vec<usize>>,
    /// The kept images (as canvases: the image and its first box) and their predictions.
    pub kept: Vec<(Canvas, Prediction)>,
}

/// Image indices spread over a set of `n` for a picture of `rows` rows (consecutive items
/// often share a class).
pub fn picture_indices(n: usize, rows: usize) -> Vec<usize> {
    let rows = rows.min(n);
    let stride = (n / rows.max(1)).max(1);
    (0..rows).map(|r| r * stride).collect()
}

/// One streaming pass of `net` over `set`: class maps never outlive their batch, so memory
/// does not grow with the set (ILSVRC's 50,000 images x 1,000 maps would not fit).
pub fn evaluate_set(
    net: &WgolNet,
    set: &LocalizationSet,
    thresholds: &[f32],
    batch_size: usize,
    keep: &[usize],
    device: &Device,
    bar: Option<&Bar>,
) -> metron_train::Result<SetOutcome> {
    let n = set.len();
    let mut kinds: Option<Vec<MapKind>> = None;
    let mut counts: BTreeMap<MapKind, Vec<LocalizationCounts>> = BTreeMap::new();
    let mut truths = Vec::with_capacity(n);
    let mut top5 = Vec::with_capacity(n);
    let mut kept = Vec::new();
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size.max(1)).min(n)).collect();
        let batch = set.load(&idx)?;
        let predictions =
            predict_batch(net, &batch.inputs, batch.crops.as_ref(), batch_size, device);
        let available = kinds.get_or_insert_with(|| {
            let p = &predictions[0];
            let mut k = vec![MapKind::Cam];
            if p.structure.is_some() {
                k.push(MapKind::Spa);
            }
            if p.sos.is_some() {
                k.push(MapKind::Sos);
            }
            k
        });
        for ((i, p), (t, shown)) in idx
            .iter()
            .zip(predictions)
            .zip(batch.truths.into_iter().zip(batch.shown))
        {
            available.retain(|&kind| {
                let c = counts
                    .entry(kind)
                    .or_insert_with(|| vec![LocalizationCounts::default(); thresholds.len()]);
                sweep_add(kind, *i, &p, &t, thresholds, c).is_some()
            });
            top5.push(p.top5.clone());
            if keep.contains(i) {
                kept.push((shown, p));
            }
            truths.push(t);
        }
        if let Some(bar) = bar {
            bar.inc(idx.len());
        }
    }
    let available = kinds.unwrap_or_default();
    counts.retain(|k, _| available.contains(k));
    Ok(SetOutcome {
        counts,
        truths,
        top5,
        kept,
    })
}

/// The evaluation of a WGOL run: thresholds chosen per map on `validation` (best GT-known
/// localisation, the smaller threshold on ties), scored on `test`.
#[derive(Debug, Clone)]
pub struct LocalizationEvaluation {
    /// Images that pick each map's threshold; `None`: the test images themselves (the
    /// original's hand-picked threshold, optimistic, reported as such).
    pub validation: Option<LocalizationSet>,
    /// Images that are scored.
    pub test: LocalizationSet,
    /// The sweep.
    pub thresholds: Vec<f32>,
    /// Images per forward pass.
    pub batch_size: usize,
    /// The metric that picks the best epoch (e.g. `sos_top1_loc`).
    pub primary: String,
    /// Test images whose predictions [`LocalizationEvaluation::results`] keeps (pictures).
    pub keep: Vec<usize>,
}

/// One map's result: the chosen threshold and the test counts at it.
#[derive(Debug, Clone, PartialEq)]
pub struct MapResult {
    /// Threshold chosen on the validation images.
    pub threshold: f32,
    /// GT-known localisation on the validation images at that threshold.
    pub validation_gt_known: f64,
    /// Test counts at that threshold.
    pub test: LocalizationCounts,
}

impl LocalizationEvaluation {
    /// Every available map's result, and the test pass.
    pub fn results(
        &self,
        net: &WgolNet,
        device: &Device,
        quiet: bool,
    ) -> metron_train::Result<(BTreeMap<MapKind, MapResult>, SetOutcome)> {
        // Without autodiff: an autodiff forward pass keeps its graph, gigabytes over a set.
        let net = &net.valid();
        let device = &device.clone().inner();
        let total = self.validation.as_ref().map_or(0, LocalizationSet::len) + self.test.len();
        let bar = Bar::new(total, "localising", quiet);
        let val = match &self.validation {
            Some(v) => Some(evaluate_set(
                net,
                v,
                &self.thresholds,
                self.batch_size,
                &[],
                device,
                Some(&bar),
            )?),
            None => None,
        };
        let test = evaluate_set(
            net,
            &self.test,
            &self.thresholds,
            self.batch_size,
            &self.keep,
            device,
            Some(&bar),
        )?;
        bar.finish();
        let mut out = BTreeMap::new();
        for (kind, t) in &test.counts {
            let Some(v) = val.as_ref().map_or(Some(t), |v| v.counts.get(kind)) else {
                continue;
            };
            let mut best = 0;
            for i in 1..v.len() {
                if v[i].gt_known_loc() > v[best].gt_known_loc() {
                    best = i;
                }
            }
            out.insert(
                *kind,
                MapResult {
                    threshold: self.thresholds[best],
                    validation_gt_known: v[best].gt_known_loc(),
                    test: t[best],
                },
            );
        }
        Ok((out, test))
    }
}

/// The flat metrics of [`LocalizationEvaluation::results`]: `top1_cls`, `top5_cls` and per
/// map `{map}_top1_loc`, `{map}_top5_loc`, `{map}_gt_known_loc`, `{map}_threshold`.
pub fn flat_metrics(results: &BTreeMap<MapKind, MapResult>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    if let Some(r) = results.values().next() {
        m.insert("top1_cls".into(), r.test.top1_cls_accuracy());
        m.insert("top5_cls".into(), r.test.top5_cls_accuracy());
    }
    for (kind, r) in results {
        let k = kind.name();
        m.insert(format!("{k}_top1_loc"), r.test.top1_loc());
        m.insert(format!("{k}_top5_loc"), r.test.top5_loc());
        m.insert(format!("{k}_gt_known_loc"), r.test.gt_known_loc());
        m.insert(format!("{k}_threshold"), f64::from(r.threshold));
    }
    m
}

impl Evaluation<WgolModel> for LocalizationEvaluation {
    fn primary_metric(&self) -> &str {
        &self.primary
    }

    fn evaluate(
        &self,
        model: &WgolModel,
        device: &Device,
        quiet: bool,
    ) -> metron_train::Result<EvalOutcome> {
        let (results, _) = self.results(&model.net, device, quiet)?;
        Ok(EvalOutcome {
            metrics: flat_metrics(&results),
            embeddings: None,
            items_skipped: 0,
        })
    }

    fn summary(&self, metrics: &BTreeMap<String, f64>) -> String {
        let mut parts = vec![format!(
            "cls {:.2}",
            100.0 * metrics.get("top1_cls").copied().unwrap_or(0.0)
        )];
        for k in ["cam", "spa", "sos"] {
            if let (Some(t), Some(g)) = (
                metrics.get(&format!("{k}_top1_loc")),
                metrics.get(&format!("{k}_gt_known_loc")),
            ) {
                parts.push(format!(
                    "{k} top-1 loc {:.2} gt-known {:.2}",
                    100.0 * t,
                    100.0 * g
                ));
            }
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metron_localization::{WgolMode, WgolNetConfig};

    #[test]
    fn ten_crop_scores_are_the_mean_softmax_over_each_images_crops() {
        let device = metron_core::parse_device("cpu").unwrap();
        let mut config = WgolNetConfig::new(4, WgolMode::Spa);
        config.width_divisor = 16;
        let net =
            metron_core::seeded_init(&device, 2, || Ok::<_, ()>(config.init(&device))).unwrap();
        let images: Vec<image::RgbImage> = (0..2u8)
            .map(|i| {
                image::RgbImage::from_fn(32, 32, |x, y| {
                    image::Rgb([x as u8 * 7, y as u8 * 5 + 40 * i, 90])
                })
            })
            .collect();
        let refs: Vec<&image::RgbImage> = images.iter().collect();
        let inputs = image_batch(&refs, vec![0, 1]);
        let plain = predict_batch(&net, &inputs, None, 4, &device);
        // Ten copies of each image as its crops: the mean of ten equal softmaxes is the
        // softmax of the image's own scores, image by image.
        let crops: Vec<&image::RgbImage> = images.iter().flat_map(|i| [i; 10]).collect();
        let crops = image_batch(&crops, vec![0; 20]);
        let ten = predict_batch(&net, &inputs, Some(&crops), 1, &device);
        for (p, t) in plain.iter().zip(&ten) {
            let max = p.scores.iter().copied().fold(f32::MIN, f32::max);
            let z: f32 = p.scores.iter().map(|s| (s - max).exp()).sum();
            for (s, got) in p.scores.iter().zip(&t.scores) {
                let want = (s - max).exp() / z;
                assert!((got - want).abs() < 1e-5, "{got} vs {want}");
            }
        }
        assert_ne!(plain[0].scores, plain[1].scores);
    }
}
