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
