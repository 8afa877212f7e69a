//! `metron knn` with the gallery in shards: in one process (`--shards`) and as separate
//! processes (`--shard I/N`, run at once) merged by `metron knn-merge`, both equal to the
//! unsharded search, indices and values, in f32 and f64, self-retrieval and query/gallery.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array2, ArrayD};

mod common;
use common::metron;

/// Values with exact duplicate rows (2i and 2i + 1) so that ties occur.
fn embeddings(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut a = Array2::from_shape_fn((n, d), |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    });
    for r in (0..n - 1).step_by(2) {
        let row = a.row(r).to_owned();
        a.row_mut(r + 1).assign(&row);
    }
    a
}

fn read(dir: &Path) -> (ArrayD<i64>, ArrayD<f64>) {
    (
        metron_core::read_npy_i64(dir.join("indices.npy")).unwrap(),
        metron_core::read_npy_f64(dir.join("values.npy")).unwrap(),
    )
}

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check(dir: &Path, name: &str, f32_input: bool, gallery: bool, metric: &str) {
    let q = embeddings(150, 12, 1);
    let g = embeddings(230, 12, 2);
    let write = |path: &PathBuf, a: &Array2<f64>| {
        if f32_input {
            metron_core::write_npy(path, &a.mapv(|v| v as f32).view()).unwrap()
        } else {
            metron_core::write_npy(path, &a.view()).unwrap()
        }
    };
    let (qp, gp) = (
        dir.join(format!("{name}_q.npy")),
        dir.join(format!("{name}_g.npy")),
    );
    write(&qp, &q);
    write(&gp, &g);
    let mut base = vec![
        "knn",
        "--embeddings",
        s(&qp),
        "--k",
        "6",
        "--metric",
        metric,
    ];
    base.extend(["--block-gallery", "32", "--quiet"]);
    if gallery {
        base.extend(["--gallery", s(&gp)]);
    }
    let run = |extra: &[&str], out: &Path| {
        let mut a = base.clone();
        a.extend(["--out", s(out)]);
        a.extend(extra);
        metron(&a)
    };
    let full = dir.join(format!("{name}_full"));
    ok(run(&[], &full));
    let want = read(&full);

    let sharded = dir.join(format!("{name}_sharded"));
    ok(run(&["--shards", "3"], &sharded));
    assert_eq!(read(&sharded), want, "{name}: --shards 3");

    // Three processes at once, one shard each, merged in another order.
    let parts: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("{name}_part{i}")))
        .collect();
    let children: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut a = base.clone();
            let spec = format!("{i}/3");
            a.extend(["--out", s(p), "--shard", &spec]);
            Command::new(env!("CARGO_BIN_EXE_metron"))
                .args(&a)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
        })
        .collect();
    for c in children {
        ok(c.unwrap());
    }
    let merged = dir.join(format!("{name}_merged"));
    ok(metron(&[
        "knn-merge",
        "--parts",
        s(&parts[2]),
        s(&parts[0]),
        s(&parts[1]),
        "--out",
        s(&merged),
    ]));
    assert_eq!(read(&merged), want, "{name}: merged parts");
    // The values keep the input's precision.
    let descr = std::fs::read(merged.join("values.npy")).unwrap();
    let header = String::from_utf8_lossy(&descr[..80]).into_owned();
    assert!(
        header.contains(if f32_input { "<f4" } else { "<f8" }),
        "{header}"
    );

    // A missing part, or a part of another search, is refused.
    let err = metron(&[
        "knn-merge",
        "--parts",
        s(&parts[0]),
        s(&parts[2]),
        "--out",
        s(&dir.join(format!("{name}_x"))),
    ]);
    assert_eq!(err.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&err.stderr).contains("shard 1 of 3 is missing"));
}

#[test]
fn sharded_knn_equals_the_unsharded_search() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "self_cos", true, false, "cosine");
    check(dir.path(), "gallery_l2", false, true, "l2");
    check(dir.path(), "gallery_ip", true, true, "ip");
}

#[test]
fn parts_of_different_searches_do_not_merge() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("e.npy");
    metron_core::write_npy(&p, &embeddings(40, 4, 3).mapv(|v| v as f32).view()).unwrap();
    let part = |i: usize, k: &str| {
        let out = dir.path().join(format!("p{i}_{k}"));
        let spec = format!("{i}/2");
        ok(metron(&[
            "knn",
            "--embeddings",
            s(&p),
            "--k",
            k,
            "--shard",
            &spec,
            "--out",
            s(&out),
            "--quiet",
        ]));
        out
    };
    let (a, b) = (part(0, "3"), part(1, "4"));
    let out = metron(&[
        "knn-merge",
        "--parts",
        s(&a),
        s(&b),
        "--out",
        s(&dir.path().join("m")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another search"));
    // A shard.json naming a shard outside its search, or a NaN score, is refused (exit 2).
    let json = a.join("shard.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, text.replace("\"shard\": 0", "\"shard\": 5")).unwrap();
    let out = metron(&[
        "knn-merge",
        "--parts",
        s(&a),
        "--out",
        s(&dir.path().join("m2")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard 5 of 2"));
    let c = part(0, "4");
    let scores = metron_core::read_npy_f64(c.join("scores.npy")).unwrap();
    let mut scores = scores.into_dimensionality::<ndarray::Ix2>().unwrap();
    scores[[3, 1]] = f64::NAN;
    metron_core::write_npy(c.join("scores.npy"), &scores.mapv(|v| v as f32).view()).unwrap();
    let out = metron(&[
        "knn-merge",
        "--parts",
        s(&c),
        s(&b),
        "--out",
        s(&dir.path().join("m3")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("non-finite"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --shard needs --out, and I < N.
    let out = metron(&[
        "knn",
        "--embeddings",
        s(&p),
        "--shard",
        "2/2",
        "--out",
        s(&dir.path().join("z")),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard takes I/N"));
}

#[test]
fn a_sharded_eval_prints_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 rows: three shards of whole 1024-row gallery blocks.
    let e = dir.path().join("e.npy");
    let l = dir.path().join("l.npy");
    metron_core::write_npy(&e, &embeddings(3000, 8, 7).mapv(|v| v as f32).view()).unwrap();
    let labels = ndarray::Array1::from_iter((0..3000).map(|i| (i % 50) as i64));
    metron_core::write_npy(&l, &labels.view()).unwrap();
    let eval = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "--embeddings",
            s(&e),
            "--labels",
            s(&l),
            "--json",
            "--no-clustering",
        ];
        a.extend(extra);
        let out = metron(&a);
        ok(out.clone());
        String::from_utf8(out.stdout).unwrap()
    };
    let one = eval(&[]);
    assert!(one.contains("recall_at_1"), "{one}");
    assert_eq!(eval(&["--shards", "3"]), one);
}

#[test]
fn knn_peak_names_the_kernel_path_and_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let e = dir.path().join("e.npy");
    metron_core::write_npy(&e, &embeddings(300, 16, 9).mapv(|v| v as f32).view()).unwrap();
    let out = metron(&[
        "knn",
        "--embeddings",
        s(&e),
        "--k",
        "3",
        "--quiet",
        "--peak",
    ]);
    ok(out.clone());
    let line = String::from_utf8(out.stdout).unwrap();
    // The rate is printed, with the instruction set the GEMM ran on (timings are not tested).
    assert!(
        line.contains("GFLOP/s") && line.contains("gemm on"),
        "{line}"
    );
}
