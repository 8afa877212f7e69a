//! `metron datasets list|check` end to end.

mod common;
use common::metron;

use serde_json::Value;

#[test]
fn check_real_omniglot_passes_and_lists() {
    let out = metron(&["datasets", "check", "omniglot", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["splits"]["train"]["images"], 2420);
    assert_eq!(v["splits"]["test"]["classes"], 121);
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    let list = String::from_utf8(metron(&["datasets", "list"]).stdout).unwrap();
    assert!(
        list.contains("omniglot") && list.contains("2420 images"),
        "{list}"
    );
}

#[test]
fn check_reports_every_broken_file_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = image::GrayImage::from_pixel(4, 4, image::Luma([7u8]));
    ok.save(d.join("good.png")).unwrap();
    std::fs::write(d.join("broken.png"), b"\x89PNG\r\n\x1a\ngarbage").unwrap();
    std::fs::write(
        d.join("data.csv"),
        "path,label,split\ngood.png,a,train\nbroken.png,b,train\nmissing.png,b,train\n",
    )
    .unwrap();
    let registry = d.join("datasets.toml");
    std::fs::write(
        &registry,
        format!(
            "[mine]\nreader = \"csv\"\nroot = \"{}\"\nenv = \"MINE_ROOT\"\nfile = \"data.csv\"\nsplits.train = {{ images = 3, classes = 3 }}\n",
            d.display()
        ),
    )
    .unwrap();
    let out = metron(&[
        "datasets",
        "check",
        "mine",
        "--registry",
        registry.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("broken.png") && e.contains("decode")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("missing.png")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("2 classes found, 3 expected")),
        "{errors:?}"
    );
    let out = metron(&[
        "datasets",
        "check",
        "nothing",
        "--registry",
        registry.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dataset 'nothing'"));
}

/// An IDX set (plain, not gzipped) written byte for byte.
fn write_idx_set(root: &std::path::Path) {
    let idx = |dims: &[u32], data: &[u8]| {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    };
    std::fs::create_dir_all(root).unwrap();
    for (name, bytes) in [
        ("train-images-idx3-ubyte", idx(&[3, 2, 2], &[0; 12])),
        ("train-labels-idx1-ubyte", idx(&[3], &[9, 0, 4])),
        ("t10k-images-idx3-ubyte", idx(&[1, 2, 2], &[0; 4])),
        ("t10k-labels-idx1-ubyte", idx(&[1], &[7])),
    ] {
        std::fs::write(root.join(name), bytes).unwrap();
    }
}

#[test]
fn idx_sets_are_checked_like_the_others_and_counts_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    write_idx_set(&dir.path().join("fm"));
    let registry = dir.path().join("datasets.toml");
    // No env; counts for one split only, and the train one wrong on purpose.
    std::fs::write(
        &registry,
        "[fm]\nreader = \"idx\"\nroot = \"fm\"\nsplits.train = { images = 4 }\n",
    )
    .unwrap();
    let reg = registry.to_str().unwrap();
    let out = metron(&["datasets", "--registry", reg, "check", "fm", "--json"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["splits"]["train"]["images"], 3);
    assert_eq!(v["splits"]["test"]["classes"], 1);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .contains("3 images found, 4 expected")
    );
    std::fs::write(&registry, "[fm]\nreader = \"idx\"\nroot = \"fm\"\n").unwrap();
    let out = metron(&["datasets", "--registry", reg, "check", "fm"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The shipped registry has MNIST, Fashion-MNIST and VIGOR entries.
    let list = String::from_utf8(metron(&["datasets", "list"]).stdout).unwrap();
    for name in ["mnist", "fashion-mnist", "vigor", "vigor-cross"] {
        assert!(list.lines().any(|l| l.starts_with(name)), "{name}: {list}");
    }
}
