//! Parity with `../shared/oracles/` (float64 references from pytorch-metric-learning,
//! scikit-learn and SAIG's own evaluation definitions), at 1e-6 absolute.

use std::path::PathBuf;

use metron_core::{read_npy_f64, read_npy_i64};
use metron_metrics::{
    Compute, KnnOptions, NoProgress, RetrievalConfig, Similarity, ami, cvusa_recall,
    evaluate_retrieval, knn_self, nmi, vigor_recall,
};
use ndarray::{Array2, Ix1, Ix2};
use serde_json::Value;

fn oracles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles")
}

fn emb(name: &str) -> Array2<f64> {
    read_npy_f64(oracles().join("inputs").join(name))
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap()
}

fn ints(name: &str) -> Vec<i64> {
    read_npy_i64(oracles().join("inputs").join(name))
        .unwrap()
        .into_dimensionality::<Ix1>()
        .unwrap()
        .to_vec()
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(oracles().join(name)).unwrap()).unwrap()
}

fn close(what: &str, got: f64, want: &Value) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number"));
    assert!(
        (got - want).abs() <= 1e-6,
        "{what}: got {got}, oracle {want}"
    );
}

#[test]
fn metrics_json_self_retrieval_squared_l2() {
    let records = json("metrics.json");
    for rec in records.as_array().unwrap() {
        let set = rec["set"].as_str().unwrap();
        let x = emb(&format!("{set}_emb.npy"));
        let labels = ints(&format!("{set}_labels.npy"));
        for compute in [
            Compute::Cpu,
            Compute::Device(metron_core::parse_device("cpu").unwrap()),
        ] {
            let config = RetrievalConfig {
                ks: vec![1, 2, 4, 8],
                similarity: Similarity::SquaredL2,
                compute,
                clustering_seed: None,
                ..Default::default()
            };
            let report = evaluate_retrieval(x.view(), &labels, None, &config, &NoProgress).unwrap();
            let bf = &rec["reference_bruteforce_f64"];
            for (k, v) in &report.recall_at {
                close(
                    &format!("{set} recall@{k}"),
                    *v,
                    &bf[format!("recall_at_{k}")],
                );
            }
            let pml = &rec["pml_AccuracyCalculator"];
            close(
                &format!("{set} P@1"),
                report.precision_at_1,
                &pml["precision_at_1"],
            );
            close(
                &format!("{set} R-precision"),
                report.r_precision,
                &pml["r_precision"],
            );
            close(
                &format!("{set} MAP@R"),
                report.map_at_r,
                &pml["mean_average_precision_at_r"],
            );
        }
    }
}

#[test]
fn metrics_json_top8_neighbours_exact() {
    for set in ["s64_norm", "s64_raw"] {
        let x = emb(&format!("{set}_emb.npy"));
        let want = read_npy_i64(oracles().join(format!("inputs/{set}_top8_idx.npy"))).unwrap();
        let nn = knn_self(x.view(), 8, &KnnOptions::new(Similarity::SquaredL2)).unwrap();
        let got: Vec<i64> = nn.indices.iter().map(|&i| i as i64).collect();
        assert_eq!(got, want.iter().copied().collect::<Vec<_>>(), "{set}");
        // The same neighbours when the data is ranked in f32.
        let x32 = x.mapv(|v| v as f32);
        let nn32 = knn_self(x32.view(), 8, &KnnOptions::new(Similarity::SquaredL2)).unwrap();
        assert_eq!(nn32.indices, nn.indices, "{set} f32");
    }
}

#[test]
fn metrics_json_nmi_ami_from_given_assignment() {
    let records = json("metrics.json");
    for rec in records.as_array().unwrap() {
        let set = rec["set"].as_str().unwrap();
        let labels = ints(&format!("{set}_labels.npy"));
        let given = &rec["nmi_ami_given_assignment"];
        let file = given["assignment"].as_str().unwrap();
        let assign = ints(file.trim_start_matches("inputs/"));
        close(
            &format!("{set} NMI"),
            nmi(&labels, &assign).unwrap(),
            &given["NMI"],
        );
        close(
            &format!("{set} AMI"),
            ami(&labels, &assign).unwrap(),
            &given["AMI"],
        );
    }
}

#[test]
fn crossview_cvusa_and_vigor() {
    let o = json("crossview_cv60.json");
    let sat = emb("cv60_cvusa_sat.npy");
    let grd = emb("cv60_cvusa_grd.npy");
    let want = &o["cvusa"]["values"];
    let r = cvusa_recall(sat.view(), grd.view(), &[1, 5, 10], &Compute::Cpu).unwrap();
    for (k, v) in &r.recall_at {
        close(&format!("cvusa R@{k}"), *v, &want[format!("recall_at_{k}")]);
    }
    assert_eq!(
        r.top1_percent_k as u64,
        want["top1_percent_k"].as_u64().unwrap()
    );
    close(
        "cvusa top1%",
        r.recall_at_top1_percent,
        &want["recall_at_top1_percent"],
    );

    let grd = emb("cv60_vigor_grd.npy");
    let sat = emb("cv60_vigor_sat.npy");
    let labels = read_npy_i64(oracles().join("inputs/cv60_vigor_labels.npy"))
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let want = &o["vigor"]["values"];
    let r = vigor_recall(
        grd.view(),
        sat.view(),
        labels.view(),
        &[1, 5, 10, 100],
        &Compute::Cpu,
    )
    .unwrap();
    for (k, v) in &r.recall_at {
        close(&format!("vigor R@{k}"), *v, &want[format!("recall_at_{k}")]);
    }
    assert_eq!(
        r.top1_percent_k as u64,
        want["top1_percent_k"].as_u64().unwrap()
    );
    close(
        "vigor top1%",
        r.recall_at_top1_percent,
        &want["recall_at_top1_percent"],
    );
    close("vigor hit rate", r.hit_rate.unwrap(), &want["hit_rate"]);
}
