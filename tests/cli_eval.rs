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

// --- `metron eval --cross-view` -------------------------------------------------------------

/// The oracle's expected values for one protocol of `crossview_cv60.json`.
fn cross_view_oracle(protocol: &str) -> Value {
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(oracle("crossview_cv60.json")).unwrap())
            .unwrap();
    all[protocol]["values"].clone()
}

fn assert_close(got: &Value, key: &str, want: f64) {
    let g = got[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {got}"));
    assert!(
        (g - want).abs() <= 1e-5 * want.abs().max(1e-12),
        "{key}: {g} vs oracle {want}"
    );
}

/// Asserts that clap rejected the arguments: exit code 2, `needle` on stderr, no output.
fn usage_rejected(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn cross_view_cvusa_matches_the_oracle() {
    let want = cross_view_oracle("cvusa");
    let grd = oracle("inputs/cv60_cvusa_grd.npy");
    let sat = oracle("inputs/cv60_cvusa_sat.npy");
    // The default Ks in this mode are SAIG's 1, 5, 10.
    let got = json_ok(&[
        "eval",
        "--cross-view",
        "--query",
        p(&grd),
        "--gallery",
        p(&sat),
        "--json",
    ]);
    assert_eq!(got["protocol"], "cvusa");
    assert_eq!(got["queries"], 60);
    assert_eq!(got["references"], 60);
    for key in ["recall_at_1", "recall_at_5", "recall_at_10"] {
        assert_close(&got, key, want[key].as_f64().unwrap());
    }
    assert_close(
        &got,
        "top_1_percent",
        want["recall_at_top1_percent"].as_f64().unwrap(),
    );
    assert_eq!(got["top_1_percent_k"], want["top1_percent_k"]);
    assert!(got["hit_rate"].is_null(), "{got}");
    assert_eq!(got.as_object().unwrap().len(), 9, "{got}");

    // Rows are L2-normalised before scoring: rescaling rows by powers of two (exact, so the
    // normalised rows are bit-identical) changes nothing, though raw inner products would
    // rank differently.
    let dir = tempfile::tempdir().unwrap();
    let scaled = |src: &Path, name: &str| {
        let mut a = metron_core::read_npy_f64(src)
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        for (i, mut row) in a.rows_mut().into_iter().enumerate() {
            row *= 2f64.powi(i as i32 % 7 - 3);
        }
        let out = dir.path().join(name);
        metron_core::write_npy(&out, &a.view()).unwrap();
        out
    };
    let (grd2, sat2) = (scaled(&grd, "grd.npy"), scaled(&sat, "sat.npy"));
    let rescaled = json_ok(&[
        "eval",
        "--cross-view",
        "--embeddings",
        p(&grd2),
        "--gallery",
        p(&sat2),
        "--json",
    ]);
    assert_eq!(rescaled, got);

    let table = metron(&[
        "eval",
        "--cross-view",
        "--query",
        p(&grd),
        "--gallery",
        p(&sat),
    ]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("60 ground queries vs 60 aerial references (CVUSA/CVACT"),
        "{table}"
    );
    assert!(table.contains("recall_at_10     0.7167"), "{table}");
    assert!(
        table.contains("top_1_percent    0.3667  (K = 1)"),
        "{table}"
    );
    assert!(!table.contains("hit_rate"), "{table}");
}

#[test]
fn cross_view_vigor_matches_the_oracle_from_text_and_npy_labels() {
    let want = cross_view_oracle("vigor");
    let grd = oracle("inputs/cv60_vigor_grd.npy");
    let sat = oracle("inputs/cv60_vigor_sat.npy");
    let npy_labels = oracle("inputs/cv60_vigor_labels.npy");
    let labels = metron_core::read_npy_i64(&npy_labels)
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("vigor_labels.txt");
    let body: String = labels
        .rows()
        .into_iter()
        .map(|r| {
            let fields: Vec<String> = r.iter().map(i64::to_string).collect();
            fields.join(" ") + "\n"
        })
        .collect();
    std::fs::write(&text, body).unwrap();

    let run = |labels: &Path| {
        json_ok(&[
            "eval",
            "--cross-view",
            "--embeddings",
            p(&grd),
            "--gallery",
            p(&sat),
            "--vigor-labels",
            p(labels),
            "--k",
            "1,5,10,100",
            "--json",
        ])
    };
    let got = run(&text);
    assert_eq!(got["protocol"], "vigor");
    assert_eq!(got["queries"], 60);
    assert_eq!(got["references"], 200);
    for key in [
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "recall_at_100",
    ] {
        assert_close(&got, key, want[key].as_f64().unwrap());
    }
    assert_close(
        &got,
        "top_1_percent",
        want["recall_at_top1_percent"].as_f64().unwrap(),
    );
    assert_eq!(got["top_1_percent_k"], want["top1_percent_k"]);
    assert_close(&got, "hit_rate", want["hit_rate"].as_f64().unwrap());
    assert_eq!(run(&npy_labels), got);

    let table = metron(&[
        "eval",
        "--cross-view",
        "--embeddings",
        p(&grd),
        "--gallery",
        p(&sat),
        "--vigor-labels",
        p(&text),
    ]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("(VIGOR: one positive and 3 semi-positives"),
        "{table}"
    );
    assert!(
        table.contains("top_1_percent    0.5833  (K = 3)"),
        "{table}"
    );
    assert!(table.contains("hit_rate         0.3667"), "{table}");
    assert!(!table.contains("recall_at_100"), "{table}");
}

#[test]
fn cross_view_bad_input_is_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grd60 = oracle("inputs/cv60_cvusa_grd.npy");
    let sat200 = oracle("inputs/cv60_vigor_sat.npy");
    let cross = |ground: &Path, aerial: &Path, extra: &[&str]| {
        let mut argv = vec![
            "eval",
            "--cross-view",
            "--embeddings",
            p(ground),
            "--gallery",
            p(aerial),
        ];
        argv.extend_from_slice(extra);
        metron(&argv)
    };

    // CVUSA pairs rows: both files and both counts are named.
    let out = cross(&grd60, &sat200, &[]);
    fails_with(&out, "cv60_cvusa_grd.npy has 60 rows");
    fails_with(&out, "cv60_vigor_sat.npy has 200");

    let ground = d.join("ground.npy");
    write_f32(&ground, &array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]);
    let aerial = d.join("aerial.npy");
    write_f32(
        &aerial,
        &array![[1.0, 0.1], [0.1, 1.0], [1.0, 0.9], [-1.0, 0.0]],
    );
    let zero = d.join("zero.npy");
    write_f32(&zero, &array![[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]);
    fails_with(&cross(&zero, &aerial, &[]), "zero.npy: row 1 has zero norm");
    let nan = d.join("nan.npy");
    write_f32(&nan, &array![[1.0, 0.0], [0.0, f32::NAN], [1.0, 1.0]]);
    fails_with(&cross(&nan, &aerial, &[]), "row 1");

    let labels = |name: &str, body: &str| {
        let path = d.join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let vigor = |path: &Path, extra: &[&str]| {
        let mut argv = vec!["--vigor-labels", p(path)];
        argv.extend_from_slice(extra);
        cross(&ground, &aerial, &argv)
    };
    let good = labels("good.txt", "0 2\n1 3\n2 0\n\n");
    let got = vigor(&good, &["--k", "1,4", "--json"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    // Hand-checked on the normalised rows: ground 0 scores aerial 0 highest, ground 1 aerial
    // 1, ground 2 = (1, 1) aerial 2 = (1, .9); those are their positives.
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["recall_at_1"], 1.0, "{got}");
    assert_eq!(got["hit_rate"], 1.0, "{got}");

    fails_with(
        &vigor(&labels("bad.txt", "0 2\n1 x\n2 0\n"), &[]),
        "bad.txt:2: field 2",
    );
    fails_with(
        &vigor(&labels("range.txt", "0 2\n1 3\n4 0\n"), &[]),
        "range.txt:3: field 1: satellite index 4 is out of range",
    );
    fails_with(
        &vigor(&labels("neg.txt", "0 -1\n1 3\n2 0\n"), &[]),
        "aerial.npy has 4 rows",
    );
    fails_with(
        &vigor(&labels("ragged.txt", "0 2\n1 3 2\n2 0\n"), &[]),
        "ragged.txt:2: 3 fields, but line 1 has 2",
    );
    fails_with(
        &vigor(&labels("blank.txt", "0 2\n\n2 0\n"), &[]),
        "blank.txt:2: empty line",
    );
    fails_with(
        &vigor(&labels("short.txt", "0 2\n1 3\n"), &[]),
        "short.txt: 2 label rows, but",
    );
    let npy = d.join("labels3d.npy");
    metron_core::write_npy(&npy, &ndarray::Array3::<i64>::zeros((3, 1, 1)).view()).unwrap();
    fails_with(&vigor(&npy, &[]), "labels3d.npy: VIGOR labels must be");
    fails_with(&vigor(&good, &["--k", "1,5"]), "K = 5");
}

#[test]
fn cross_view_flags_that_do_not_fit_are_rejected() {
    let grd = oracle("inputs/cv60_cvusa_grd.npy");
    let sat = oracle("inputs/cv60_cvusa_sat.npy");
    let labels = oracle("inputs/s64_norm_labels.npy");
    let (g, s, l) = (p(&grd), p(&sat), p(&labels));
    let base = ["eval", "--cross-view", "--embeddings", g, "--gallery", s];
    let with = |extra: &[&str]| {
        let mut argv = base.to_vec();
        argv.extend_from_slice(extra);
        metron(&argv)
    };
    usage_rejected(&with(&["--labels", l]), "--labels");
    usage_rejected(&with(&["--gallery-labels", l]), "--gallery-labels");
    usage_rejected(&with(&["--metric", "l2"]), "--metric");
    usage_rejected(&with(&["--map"]), "--map");
    usage_rejected(
        &metron(&["eval", "--cross-view", "--embeddings", g]),
        "--gallery",
    );
    usage_rejected(
        &metron(&[
            "eval",
            "--embeddings",
            g,
            "--labels",
            l,
            "--vigor-labels",
            l,
        ]),
        "--cross-view",
    );
    usage_rejected(&metron(&["eval", "--embeddings", g]), "--labels");
    // Class-label mode still needs both gallery files.
    fails_with(
        &metron(&["eval", "--embeddings", g, "--labels", l, "--gallery", s]),
        "--gallery-labels",
    );
}
