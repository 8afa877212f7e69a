//! `metron eval` and `metron synth` as a user runs them: exit codes, one-line errors, output.

mod common;
use common::metron;

use std::path::{Path, PathBuf};
use std::process::Output;

use ndarray::{Array1, Array2, array};
use serde_json::Value;

fn oracle(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/oracles")
        .join(name)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs metron, asserts success and parses stdout as JSON.
fn json_ok(args: &[&str]) -> Value {
    let out = metron(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts a clean failure: exit code 2, one line on stderr that contains `needle`, no panic.
fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn json_matches_the_metrics_oracle() {
    let records: Value =
        serde_json::from_str(&std::fs::read_to_string(oracle("metrics.json")).unwrap()).unwrap();
    for rec in records.as_array().unwrap() {
        let set = rec["set"].as_str().unwrap();
        let emb = oracle(&format!("inputs/{set}_emb.npy"));
        let labels = oracle(&format!("inputs/{set}_labels.npy"));
        let got = json_ok(&[
            "eval",
            "--embeddings",
            p(&emb),
            "--labels",
            p(&labels),
            "--metric",
            "l2",
            "--k",
            "1,2,4,8",
            "--json",
        ]);
        let keys: Vec<&str> = got
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in [
            "recall_at_1",
            "recall_at_2",
            "recall_at_4",
            "recall_at_8",
            "precision_at_1",
            "r_precision",
            "map_at_r",
            "nmi",
            "ami",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let bf = &rec["reference_bruteforce_f64"];
        for key in [
            "recall_at_1",
            "recall_at_2",
            "recall_at_4",
            "recall_at_8",
            "r_precision",
        ] {
            let (g, w) = (got[key].as_f64().unwrap(), bf[key].as_f64().unwrap());
            assert!((g - w).abs() < 1e-6, "{set} {key}: {g} vs {w}");
        }
        let (g, w) = (
            got["map_at_r"].as_f64().unwrap(),
            bf["mean_average_precision_at_r"].as_f64().unwrap(),
        );
        assert!((g - w).abs() < 1e-6, "{set} map_at_r: {g} vs {w}");
        for key in ["nmi", "ami"] {
            let v = got[key].as_f64().unwrap();
            assert!(v.is_finite() && v <= 1.0, "{key} = {v}");
        }
    }
}

#[test]
fn text_labels_and_table_output() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    let npy = metron_core::read_npy_i64(oracle("inputs/s64_norm_labels.npy")).unwrap();
    let text: String = npy.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&labels, text).unwrap();
    let emb = oracle("inputs/s64_norm_emb.npy");
    let from_text = metron(&[
        "eval",
        "--embeddings",
        p(&emb),
        "--labels",
        p(&labels),
        "--json",
    ]);
    let npy_labels = oracle("inputs/s64_norm_labels.npy");
    let from_npy = metron(&[
        "eval",
        "--embeddings",
        p(&emb),
        "--labels",
        p(&npy_labels),
        "--json",
    ]);
    assert!(from_text.status.success());
    assert_eq!(from_text.stdout, from_npy.stdout);
    let table = metron(&[
        "eval",
        "--embeddings",
        p(&emb),
        "--labels",
        p(&labels),
        "--quiet",
    ]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("64 queries vs 64 gallery items (self-retrieval"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("recall_at_1 ")),
        "{table}"
    );
}

#[test]
fn query_gallery_mode_finds_the_identical_item() {
    // Gallery = queries, no exclusion: every query's nearest item is itself.
    let emb = oracle("inputs/s64_raw_emb.npy");
    let labels = oracle("inputs/s64_raw_labels.npy");
    let got = json_ok(&[
        "eval",
        "--embeddings",
        p(&emb),
        "--labels",
        p(&labels),
        "--gallery",
        p(&emb),
        "--gallery-labels",
        p(&labels),
        "--k",
        "1",
        "--json",
        "--no-clustering",
    ]);
    assert_eq!(got["recall_at_1"].as_f64(), Some(1.0));
    assert!(got.get("nmi").is_none());
}

#[test]
fn synth_then_eval_round_trip_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        let out = metron(&[
            "synth",
            "--out",
            p(d),
            "--n",
            "300",
            "--dim",
            "16",
            "--classes",
            "10",
            "--noise",
            "0.05",
            "--seed",
            "5",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let read = |d: &Path| std::fs::read(d.join("embeddings.npy")).unwrap();
    assert_eq!(read(&a), read(&b));
    let got = json_ok(&[
        "eval",
        "--embeddings",
        p(&a.join("embeddings.npy")),
        "--labels",
        p(&a.join("labels.npy")),
        "--json",
        "--map",
    ]);
    // Noise of norm 0.05 around centres ~1.4 apart: classes are perfectly separable.
    for key in ["recall_at_1", "map_at_r", "map", "nmi"] {
        assert_eq!(got[key].as_f64(), Some(1.0), "{key}: {got}");
    }

    // Existing outputs are not replaced without --force: synth, then knn.
    let before = read(&a);
    let synth = |extra: &[&str]| {
        let mut argv = vec!["synth", "--out", p(&a), "--n", "50", "--dim", "4"];
        argv.extend_from_slice(extra);
        metron(&argv)
    };
    let out = synth(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(read(&a), before);
    assert!(synth(&["--force"]).status.success());
    assert_ne!(read(&a), before);
    let nn = dir.path().join("nn");
    let emb = a.join("embeddings.npy");
    let knn = |extra: &[&str]| {
        let mut argv = vec![
            "knn",
            "--embeddings",
            p(&emb),
            "--k",
            "3",
            "--out",
            p(&nn),
            "--quiet",
        ];
        argv.extend_from_slice(extra);
        metron(&argv)
    };
    assert!(knn(&[]).status.success());
    let out = knn(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("indices.npy"));
    assert!(knn(&["--force"]).status.success());
}

fn write_f32(path: &Path, a: &Array2<f32>) {
    metron_core::write_npy(path, &a.view()).unwrap();
}

fn write_labels(path: &Path, l: &[i64]) {
    metron_core::write_npy(path, &Array1::from(l.to_vec()).view()).unwrap();
}

#[test]
fn bad_input_is_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let emb = d.join("emb.npy");
    let labels = d.join("labels.npy");
    write_f32(&emb, &array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]);
    write_labels(&labels, &[0, 0, 1]);
    let e = p(&emb);
    let l = p(&labels);

    let missing = d.join("nope.npy");
    fails_with(
        &metron(&["eval", "--embeddings", p(&missing), "--labels", l]),
        "nope.npy",
    );

    let short = d.join("short.npy");
    write_labels(&short, &[0, 1]);
    fails_with(
        &metron(&["eval", "--embeddings", e, "--labels", p(&short)]),
        "2 labels",
    );

    let float_labels = d.join("float_labels.npy");
    write_f32(&float_labels, &array![[0.0], [1.0], [2.0]]);
    fails_with(
        &metron(&["eval", "--embeddings", e, "--labels", p(&float_labels)]),
        "float_labels.npy",
    );

    let nan = d.join("nan.npy");
    write_f32(&nan, &array![[1.0, 0.0], [0.0, f32::NAN], [1.0, 1.0]]);
    fails_with(
        &metron(&["eval", "--embeddings", p(&nan), "--labels", l]),
        "row 1",
    );

    let rank1 = d.join("rank1.npy");
    write_labels(&rank1, &[1, 2, 3]);
    fails_with(
        &metron(&["eval", "--embeddings", p(&rank1), "--labels", l]),
        "rank1.npy",
    );

    let text = d.join("labels.txt");
    std::fs::write(&text, "0\nzero\n1\n").unwrap();
    fails_with(
        &metron(&["eval", "--embeddings", e, "--labels", p(&text)]),
        "labels.txt:2",
    );

    fails_with(
        &metron(&["eval", "--embeddings", e, "--labels", l, "--k", "1,3"]),
        "K = 3",
    );
    fails_with(
        &metron(&[
            "eval",
            "--embeddings",
            e,
            "--labels",
            l,
            "--metric",
            "hamming",
        ]),
        "hamming",
    );
    fails_with(
        &metron(&["eval", "--embeddings", e, "--labels", l, "--device", "tpu"]),
        "tpu",
    );

    let empty = d.join("empty.npy");
    write_f32(&empty, &Array2::zeros((0, 2)));
    let empty_labels = d.join("empty_labels.npy");
    write_labels(&empty_labels, &[]);
    fails_with(
        &metron(&[
            "eval",
            "--embeddings",
            p(&empty),
            "--labels",
            p(&empty_labels),
        ]),
        "no embeddings",
    );

    let zero = d.join("zero.npy");
    write_f32(&zero, &array![[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]);
    fails_with(
        &metron(&["eval", "--embeddings", p(&zero), "--labels", l]),
        "zero norm",
    );

    let corrupt = d.join("corrupt.npy");
    std::fs::write(&corrupt, b"\x93NUMPY\x01\x00garbage").unwrap();
    fails_with(
        &metron(&["eval", "--embeddings", p(&corrupt), "--labels", l]),
        "corrupt.npy",
    );
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn backend_not_compiled_in_names_the_feature() {
    let e = oracle("inputs/s64_norm_emb.npy");
    let l = oracle("inputs/s64_norm_labels.npy");
    fails_with(
        &metron(&[
            "eval",
            "--embeddings",
            p(&e),
            "--labels",
            p(&l),
            "--device",
            "wgpu",
        ]),
        "--features wgpu",
    );
}
