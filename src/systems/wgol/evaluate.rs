//! Localisation evaluation on canvases: the network's class scores and maps, boxes from the
//! CAM, SPA (structure-guided) and SOS maps over the original's threshold sweep, the threshold
//! chosen on validation canvases, Top-1 / Top-5 / GT-known localisation on the test canvases.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use ndarray::{Array2, Array3, s};

use metron_datasets::LoadBatch;
use metron_localization::{
    ImageOutcome, LocalizationCounts, Phase, PixelBox, WgolNet, class_scores, min_max_normalize,
    resize_bilinear, sos_probability_map, structure_guided_map, union_box,
};
use metron_train::{Bar, EvalOutcome, Evaluation, batch_images};

use super::canvas::Canvas;
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

/// The network's predictions for every canvas of `source`, `batch_size` at a time.
pub fn predict(
    net: &WgolNet,
    source: &CanvasSource,
    batch_size: usize,
    device: &Device,
    bar: Option<&Bar>,
) -> metron_train::Result<Vec<Prediction>> {
    let n = source.len();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size.max(1)).min(n)).collect();
        let batch = source.load(&idx, &vec![0; idx.len()])?;
        let o = net.forward(batch_images(&batch.images, device), Phase::Test);
        let [b, k, h, w] = o.cls_maps.dims();
        let scores = to_vec(class_scores(o.cls_maps.clone()));
        let maps = to_vec(relu(o.cls_maps));
        let sos = o.sos_maps.map(to_vec);
        let structure = o.structure.map(to_vec);
        let n2 = (h * w) * (h * w);
        for i in 0..b {
            let sc = scores[i * k..(i + 1) * k].to_vec();
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| sc[b].total_cmp(&sc[a]).then(a.cmp(&b)));
            order.truncate(5);
            out.push(Prediction {
                scores: sc,
                top5: order,
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
            });
        }
        if let Some(bar) = bar {
            bar.inc(idx.len());
        }
    }
    Ok(out)
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

/// Counts for every threshold: boxes of `kind` for the top-5 classes (the same box for all
/// of them for SOS) and for the ground-truth class.
pub fn sweep(
    kind: MapKind,
    predictions: &[Prediction],
    canvases: &[Canvas],
    thresholds: &[f32],
) -> Option<Vec<LocalizationCounts>> {
    let mut counts = vec![LocalizationCounts::default(); thresholds.len()];
    for (i, (p, c)) in predictions.iter().zip(canvases).enumerate() {
        let (w, h) = c.image.dimensions();
        let out = [h as usize, w as usize];
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
            full_map(kind, p, c.label, out)?
        };
        for (t, &th) in thresholds.iter().enumerate() {
            let boxes: Vec<PixelBox> = if agnostic {
                vec![union_box(top_maps[0].view(), th); p.top5.len()]
            } else {
                top_maps.iter().map(|m| union_box(m.view(), th)).collect()
            };
            counts[t]
                .add(
                    i,
                    &ImageOutcome {
                        gt_class: c.label,
                        gt_boxes: vec![c.gt_box],
                        top_classes: p.top5.clone(),
                        boxes,
                        gt_known_box: union_box(gt_map.view(), th),
                    },
                )
                .ok()?;
        }
    }
    Some(counts)
}

/// Counts of one box rule for every canvas (the baselines: a box that ignores the network,
/// scored with the network's classes).
pub fn counts_of_boxes(
    predictions: &[Prediction],
    canvases: &[Canvas],
    box_of: impl Fn(&Canvas) -> PixelBox,
) -> LocalizationCounts {
    let mut counts = LocalizationCounts::default();
    for (i, (p, c)) in predictions.iter().zip(canvases).enumerate() {
        let b = box_of(c);
        counts
            .add(
                i,
                &ImageOutcome {
                    gt_class: c.label,
                    gt_boxes: vec![c.gt_box],
                    top_classes: p.top5.clone(),
                    boxes: vec![b; p.top5.len()],
                    gt_known_box: b,
                },
            )
            .expect("one box and classes per canvas");
    }
    counts
}

/// The evaluation of a WGOL run: thresholds chosen per map on `validation` (best GT-known
/// localisation, the smaller threshold on ties), scored on `test`.
#[derive(Debug, Clone)]
pub struct LocalizationEvaluation {
    /// Canvases that pick each map's threshold (training drawers, other placements).
    pub validation: Arc<Vec<Canvas>>,
    /// Canvases that are scored (other drawers).
    pub test: Arc<Vec<Canvas>>,
    /// The sweep.
    pub thresholds: Vec<f32>,
    /// Canvases per forward pass.
    pub batch_size: usize,
    /// The metric that picks the best epoch (e.g. `sos_top1_loc`).
    pub primary: String,
}

/// One map's result: the chosen threshold and the test counts at it.
#[derive(Debug, Clone, PartialEq)]
pub struct MapResult {
    /// Threshold chosen on the validation canvases.
    pub threshold: f32,
    /// GT-known localisation on the validation canvases at that threshold.
    pub validation_gt_known: f64,
    /// Test counts at that threshold.
    pub test: LocalizationCounts,
}

impl LocalizationEvaluation {
    /// Every available map's result, and the test predictions.
    pub fn results(
        &self,
        net: &WgolNet,
        device: &Device,
        quiet: bool,
    ) -> metron_train::Result<(BTreeMap<MapKind, MapResult>, Vec<Prediction>)> {
        // Without autodiff: an autodiff forward pass keeps its graph, gigabytes over a set.
        let net = &net.valid();
        let device = &device.clone().inner();
        let bar = Bar::new(self.validation.len() + self.test.len(), "localising", quiet);
        let val = predict(
            net,
            &CanvasSource::Fixed(self.validation.clone()),
            self.batch_size,
            device,
            Some(&bar),
        )?;
        let test = predict(
            net,
            &CanvasSource::Fixed(self.test.clone()),
            self.batch_size,
            device,
            Some(&bar),
        )?;
        bar.finish();
        let mut out = BTreeMap::new();
        for kind in [MapKind::Cam, MapKind::Spa, MapKind::Sos] {
            let (Some(v), Some(t)) = (
                sweep(kind, &val, &self.validation, &self.thresholds),
                sweep(kind, &test, &self.test, &self.thresholds),
            ) else {
                continue;
            };
            let mut best = 0;
            for i in 1..v.len() {
                if v[i].gt_known_loc() > v[best].gt_known_loc() {
                    best = i;
                }
            }
            out.insert(
                kind,
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
