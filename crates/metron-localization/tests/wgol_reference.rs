//! metron-localization against `tests/oracles/wgol.json`, made by
//! `tests/oracles/make_wgol_oracles.py` from the spec's formulas (NumPy, and PyTorch autograd
//! for the gradients): HSC, the structure map and edge code, the SOS target, the SOS / RA /
//! total losses with their gradients, the self-attention with its gradients, CAM / SCG / SOS
//! boxes over the threshold sweep, and the +1-pixel IoU and localisation counts.
//!
//! Every tensor case runs in f64 (tolerance 1e-9) and in f32 (values at rtol 1e-5, gradients
//! at rtol 1e-4 / atol 1e-6, as the other oracle tests).

use std::path::PathBuf;

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};
use metron_localization::*;
use ndarray::Array2;
use serde_json::Value;

fn oracle() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracles/wgol.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn device() -> Device {
    metron_core::parse_device("cpu").unwrap().autodiff()
}

/// Precision of one run: the dtype and the tolerances (rtol, atol) for values and gradients.
#[derive(Clone, Copy)]
struct Run {
    dtype: DType,
    value: (f64, f64),
    grad: (f64, f64),
}

const RUNS: [Run; 2] = [
    Run {
        dtype: DType::F64,
        value: (1e-9, 1e-12),
        grad: (1e-9, 1e-12),
    },
    Run {
        dtype: DType::F32,
        value: (1e-5, 1e-6),
        grad: (1e-4, 1e-6),
    },
];

fn tensor<const D: usize>(v: &Value, shape: [usize; D], run: Run, device: &Device) -> Tensor<D> {
    let data = floats(v);
    let t = Tensor::<D>::from_data(TensorData::new(data, shape), (device, DType::F64));
    t.cast(run.dtype)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn close(what: &str, got: &[f64], want: &[f64], (rtol, atol): (f64, f64)) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs() + atol,
            "{what}[{k}]: {g} vs reference {w}"
        );
    }
}

#[test]
fn self_correlation_structure_map_and_edge_code() {
    let o = oracle();
    let h = &o["hsc"];
    let shape: [usize; 4] = ints(&h["shape"])
        .iter()
        .map(|&v| v as usize)
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let device = device();
    for run in RUNS {
        let stages: Vec<StructureCorrelation> = ["f4", "f5"]
            .iter()
            .map(|k| self_correlation(tensor(&h[*k], shape, run, &device), &HscConfig::default()))
            .collect();
        for (i, s) in stages.iter().enumerate() {
            let stage = i + 4;
            close(
                &format!("fo{stage}"),
                &values(s.first.clone()),
                &floats(&h[format!("fo{stage}")]),
                run.value,
            );
            close(
                &format!("so{stage}"),
                &values(s.high.clone()),
                &floats(&h[format!("so{stage}")]),
                run.value,
            );
        }
        close(
            "structure",
            &values(structure_map(&stages, 1.0)),
            &floats(&h["structure"]),
            run.value,
        );
        close(
            "edge",
            &values(edge_code(&stages)),
            &floats(&h["edge"]),
            run.value,
        );
    }
}

/// The case's structure map `[2, 9, 9]` and class maps `[2, 4, 3, 3]` with their labels.
fn sos_inputs(o: &Value, run: Run, device: &Device) -> (Tensor<3>, Tensor<4>, Vec<i64>) {
    let s = tensor(&o["hsc"]["structure"], [2, 9, 9], run, device);
    let t = &o["sos_target"];
    let cls = tensor(&t["cls_maps"], [2, 4, 3, 3], run, device);
    (s, cls, ints(&t["labels"]))
}

#[test]
fn sos_targets_are_the_references_ternary_and_binary_masks() {
    let o = oracle();
    let device = device();
    for run in RUNS {
        let (s, cls, labels) = sos_inputs(&o, run, &device);
        for (key, segmentation) in [("tc", Segmentation::Ternary), ("bc", Segmentation::Binary)] {
            let config = SosTargetConfig {
                segmentation,
                ..SosTargetConfig::default()
            };
            let t = sos_target(cls.clone(), &labels, s.clone(), &config).unwrap();
            close(key, &values(t), &floats(&o["sos_target"][key]), run.value);
        }
    }
    // A label past the classes is refused by name.
    let (s, cls, _) = sos_inputs(&o, RUNS[0], &device);
    let err = sos_target(cls, &[1, 4], s, &SosTargetConfig::default()).unwrap_err();
    assert!(err.to_string().contains("label 4 of sample 1"), "{err}");
}

#[test]
fn sos_bce_and_ra_losses_with_their_gradients() {
    let o = oracle();
    let device = device();
    for run in RUNS {
        let (s, cls, labels) = sos_inputs(&o, run, &device);
        let target = sos_target(cls.clone(), &labels, s, &SosTargetConfig::default()).unwrap();
        let logits = tensor(&o["sos_bce"]["logits"], [2, 3, 3], run, &device).require_grad();
        let l = sos_bce_loss(logits.clone(), target).unwrap();
        close(
            "bce",
            &values(l.clone()),
            &[o["sos_bce"]["loss"].as_f64().unwrap()],
            run.value,
        );
        let g = l.backward();
        close(
            "bce grad",
            &values(logits.grad(&g).unwrap()),
            &floats(&o["sos_bce"]["grad"]),
            run.grad,
        );

        let cls = cls.require_grad();
        let l = ra_loss(cls.clone(), &labels, &RaLossConfig::default()).unwrap();
        close(
            "ra",
            &values(l.clone()),
            &[o["ra_loss"]["loss"].as_f64().unwrap()],
            run.value,
        );
        let g = l.backward();
        close(
            "ra grad",
            &values(cls.grad(&g).unwrap()),
            &floats(&o["ra_loss"]["grad"]),
            run.grad,
        );
    }
}

#[test]
fn the_total_loss_and_its_gradients_through_both_heads() {
    let o = oracle();
    let w = &o["wgol_loss"];
    let device = device();
    for run in RUNS {
        let (s, cls, labels) = sos_inputs(&o, run, &device);
        let cls = cls.require_grad();
        let sos = tensor(&o["sos_bce"]["logits"], [2, 3, 3], run, &device).require_grad();
        let out = WgolOutput {
            cls_maps: cls.clone(),
            sos_maps: Some(sos.clone()),
            structure: Some(s),
        };
        let loss = WgolLoss {
            config: WgolLossConfig::default(),
        };
        let parts = loss.forward(&out, &labels, true).unwrap();
        close(
            "ce",
            &values(parts.ce),
            &[w["ce"].as_f64().unwrap()],
            run.value,
        );
        close(
            "total",
            &values(parts.total.clone()),
            &[w["total"].as_f64().unwrap()],
            run.value,
        );
        let g = parts.total.backward();
        close(
            "grad cls maps",
            &values(cls.grad(&g).unwrap()),
            &floats(&w["grad_cls_maps"]),
            run.grad,
        );
        close(
            "grad sos maps",
            &values(sos.grad(&g).unwrap()),
            &floats(&w["grad_sos_maps"]),
            run.grad,
        );
        // Before ram_start and without SOS maps, only the cross entropy is left.
        let early = loss
            .forward(
                &WgolOutput {
                    sos_maps: None,
                    ..out
                },
                &labels,
                false,
            )
            .unwrap();
        assert!(early.sos.is_none() && early.ra.is_none());
        close(
            "ce only",
            &values(early.total),
            &[w["ce"].as_f64().unwrap()],
            run.value,
        );
    }
}

#[test]
fn structure_attention_output_and_gradients() {
    let o = oracle();
    let a = &o["attention"];
    let (heads, dk) = (
        a["heads"].as_u64().unwrap() as usize,
        a["head_dim"].as_u64().unwrap() as usize,
    );
    let device = device();
    for run in RUNS {
        let mut config = StructureAttentionConfig::new(4);
        config.heads = heads;
        config.head_dim = dk;
        let mut sa =
            metron_core::seeded_init(&device, 0, || Ok::<_, ()>(config.init(&device))).unwrap();
        // PyTorch's Linear weight is [out, in]; Burn's is [in, out].
        let weight = |key: &str, out: usize, inp: usize| {
            Param::from_tensor(tensor::<2>(&a[key], [out, inp], run, &device).transpose())
        };
        let bias =
            |key: &str, n: usize| Some(Param::from_tensor(tensor::<1>(&a[key], [n], run, &device)));
        let inner = heads * dk;
        sa.fc_q.weight = weight("wq", inner, 4);
        sa.fc_q.bias = bias("bq", inner);
        sa.fc_k.weight = weight("wk", inner, 4);
        sa.fc_k.bias = bias("bk", inner);
        sa.fc_v.weight = weight("wv", inner, 4);
        sa.fc_v.bias = bias("bv", inner);
        sa.fc_o.weight = weight("wo", 4, inner);
        sa.fc_o.bias = bias("bo", 4);
        sa.dropout.prob = 0.0;
        let x = tensor::<4>(&a["x"], [2, 4, 2, 3], run, &device).require_grad();
        let e = tensor::<3>(&a["edge"], [2, 6, 6], run, &device);
        let out = sa.forward(x.clone(), Some(e));
        close(
            "attention out",
            &values(out.clone()),
            &floats(&a["out"]),
            run.value,
        );
        let r = tensor::<4>(&a["r"], [2, 4, 2, 3], run, &device);
        let g = (out * r).sum().backward();
        close(
            "grad x",
            &values(x.grad(&g).unwrap()),
            &floats(&a["grad_x"]),
            run.grad,
        );
        // Burn's weight is the transpose of PyTorch's: so is its gradient.
        let gw = sa.fc_q.weight.grad(&g).unwrap().transpose();
        close("grad fc_q", &values(gw), &floats(&a["grad_wq"]), run.grad);
    }
}

fn array(v: &Value, shape: (usize, usize)) -> Array2<f32> {
    Array2::from_shape_vec(shape, floats(v).iter().map(|&x| x as f32).collect()).unwrap()
}

fn boxes(v: &Value) -> Vec<PixelBox> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let c = ints(b);
            PixelBox::new(c[0], c[1], c[2], c[3])
        })
        .collect()
}

#[test]
fn cam_scg_and_sos_boxes_over_the_threshold_sweep() {
    let o = oracle();
    let b = &o["boxes"];
    let hw = ints(&b["map_hw"]);
    let (h, w) = (hw[0] as usize, hw[1] as usize);
    let out = ints(&b["out_hw"]);
    let out = [out[0] as usize, out[1] as usize];
    let cam = array(&b["cam"], (h, w));
    let s = array(&b["structure"], (h * w, h * w));
    let sos = array(&b["sos"], (h, w));
    let ths = floats(&b["thresholds"]);
    let (want_cam, want_scg, want_sos) = (
        boxes(&b["cam_boxes"]),
        boxes(&b["scg_boxes"]),
        boxes(&b["sos_boxes"]),
    );
    for (i, &t) in ths.iter().enumerate() {
        let t = t as f32;
        assert_eq!(
            box_from_map(cam.view(), out, t).unwrap(),
            want_cam[i],
            "CAM at {t}"
        );
        assert_eq!(
            box_from_structure_map(cam.view(), s.view(), out, t).unwrap(),
            want_scg[i],
            "SCG at {t}"
        );
        assert_eq!(
            box_from_sos_map(sos.view(), out, t).unwrap(),
            want_sos[i],
            "SOS at {t}"
        );
    }
    let flat = Array2::from_elem((h, w), 2.0f32);
    assert_eq!(
        box_from_map(flat.view(), out, 0.1).unwrap(),
        boxes(&Value::Array(vec![b["constant_map_box"].clone()]))[0]
    );
    let empty = Array2::from_elem((h, w), -20.0f32);
    assert_eq!(
        box_from_sos_map(empty.view(), out, 0.5).unwrap(),
        PixelBox::NO_FOREGROUND
    );
    assert_eq!(
        PixelBox::NO_FOREGROUND,
        boxes(&Value::Array(vec![b["empty_sos_box"].clone()]))[0]
    );
    // A structure map of the wrong size is refused.
    let small = Array2::<f32>::zeros((4, 4));
    assert!(box_from_structure_map(cam.view(), small.view(), out, 0.2).is_err());
}

#[test]
fn iou_and_localisation_counts_on_multi_box_images() {
    let o = oracle();
    let m = &o["metrics"];
    let mut counts = LocalizationCounts::default();
    for (i, (im, ious)) in m["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(m["gt_known_ious"].as_array().unwrap())
        .enumerate()
    {
        let gt_boxes = boxes(&im["gt_boxes"]);
        let gt_known = boxes(&Value::Array(vec![im["gt_known"].clone()]))[0];
        let got: Vec<f64> = gt_boxes.iter().map(|g| gt_known.iou(g)).collect();
        close(&format!("iou {i}"), &got, &floats(ious), (1e-12, 0.0));
        counts
            .add(
                i,
                &ImageOutcome {
                    gt_class: im["gt_class"].as_u64().unwrap() as usize,
                    gt_boxes,
                    top_classes: ints(&im["top"]).iter().map(|&c| c as usize).collect(),
                    boxes: boxes(&im["boxes"]),
                    gt_known_box: gt_known,
                },
            )
            .unwrap();
    }
    let want = &m["counts"];
    let get = |k: &str| want[k].as_u64().unwrap() as usize;
    let miss = |k: &str| m["misses"][k].as_u64().unwrap() as usize;
    assert_eq!(
        counts,
        LocalizationCounts {
            images: m["images"].as_array().unwrap().len(),
            top1_cls: get("top1_cls"),
            top5_cls: get("top5_cls"),
            top1_loc: get("top1_loc"),
            top5_loc: get("top5_loc"),
            gt_known_loc: get("gt_known_loc"),
            errors: ErrorBreakdown {
                class_wrong: miss("class_wrong"),
                multi_instance: miss("multi_instance"),
                part: miss("part"),
                more: miss("more"),
                other: miss("other"),
            },
        }
    );
}
