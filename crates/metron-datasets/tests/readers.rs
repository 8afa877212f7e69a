//! Readers on the real Omniglot beside the checkout, and on miniature datasets written here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use metron_datasets::*;

fn registry() -> Registry {
    Registry::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets.toml")).unwrap()
}

#[test]
fn real_omniglot_matches_the_registry_counts() {
    let reg = registry();
    let ds = reg.read("omniglot", None).unwrap();
    let mismatches = check_counts(&ds, reg.entry("omniglot").unwrap());
    assert!(mismatches.is_empty(), "{mismatches:?}");
    let train = ds.split("train").unwrap();
    let test = ds.split("test").unwrap();
    // 242 distinct characters, 20 drawers each, Greek and Latin merged across subsets.
    assert_eq!(train.classes.len() + test.classes.len(), 242);
    let train_classes: HashSet<&String> = train.classes.iter().collect();
    assert!(
        test.classes.iter().all(|c| !train_classes.contains(c)),
        "splits share a class"
    );
    for split in [train, test] {
        let mut per_class = vec![0usize; split.classes.len()];
        split.samples.iter().for_each(|s| per_class[s.label] += 1);
        assert!(
            per_class.iter().all(|&n| n == 20),
            "{}: {per_class:?}",
            split.name
        );
        let names: HashSet<String> = split
            .samples
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    split.classes[s.label],
                    s.path.file_name().unwrap().to_string_lossy()
                )
            })
            .collect();
        assert_eq!(
            names.len(),
            split.samples.len(),
            "{}: a drawing appears twice",
            split.name
        );
    }
    assert!(train.classes.iter().any(|c| c.starts_with("Balinese/")));
    let img = load_image(&train.samples[0].path).unwrap();
    assert_eq!((img.width, img.height), (105, 105));
    assert!(img.data.iter().all(|&v| v == 0.0 || v == 1.0));
    assert!(img.data.contains(&0.0), "no stroke pixels");
    let err = ds.split("validation").unwrap_err().to_string();
    assert!(err.contains("train, test"), "{err}");
}

fn write_png(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::GrayImage::from_fn(8, 8, |x, y| {
        image::Luma([if (x + y) % 3 == 0 { 0 } else { 255 }])
    });
    img.save(path).unwrap();
}

#[test]
fn miniature_omniglot_merges_subsets_and_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for (subset, alphabet, character, files) in [
        (
            "images_background_small1",
            "Latin",
            "character01",
            &["a_01.png", "a_02.png"][..],
        ),
        (
            "images_background_small1",
            "Runic",
            "character01",
            &["b_01.png", "b_02.png"][..],
        ),
        // The same Latin character again in another subset, one new drawing.
        (
            "images_background_small2",
            "Latin",
            "character01",
            &["a_01.png", "a_03.png"][..],
        ),
        (
            "images_background_small2",
            "Latin",
            "character02",
            &["c_01.png"][..],
        ),
    ] {
        for f in files {
            write_png(&r.join(subset).join(alphabet).join(character).join(f));
        }
    }
    std::fs::write(
        r.join("images_background_small1/Runic/character01/notes.txt"),
        "ignored",
    )
    .unwrap();
    let ds = read_omniglot(r).unwrap();
    let all: Vec<(&str, usize)> = ds
        .splits
        .iter()
        .flat_map(|s| {
            s.classes
                .iter()
                .map(|c| c.as_str())
                .zip(std::iter::repeat(0))
        })
        .collect();
    assert_eq!(all.len(), 3);
    // Sorted classes Latin/character01 (3 drawings), Latin/character02 (1) | Runic/character01 (2).
    let train = ds.split("train").unwrap();
    assert_eq!(
        train.classes,
        vec!["Latin/character01", "Latin/character02"]
    );
    assert_eq!(train.samples.len(), 4);
    assert_eq!(ds.split("test").unwrap().samples.len(), 2);
    let entry = DatasetEntry {
        reader: "omniglot".into(),
        root: ".".into(),
        env: "UNUSED".into(),
        file: None,
        splits: [(
            "train".to_string(),
            ExpectedCounts {
                images: 5,
                classes: 2,
            },
        )]
        .into_iter()
        .collect(),
    };
    let m = check_counts(&ds, &entry);
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].to_string(),
        "split 'train': 4 images found, 5 expected"
    );
    // Bad layouts.
    assert!(matches!(
        read_omniglot(&r.join("nope")),
        Err(DatasetError::MissingRoot { .. })
    ));
    std::fs::create_dir_all(r.join("images_background_small2/Latin/character03")).unwrap();
    let err = read_omniglot(r).unwrap_err().to_string();
    assert!(
        err.contains("character03") && err.contains("without .png"),
        "{err}"
    );
}

#[test]
fn csv_reader_with_boxes_and_every_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("data.csv");
    std::fs::write(&csv, "path,label,split,x1,y1,x2,y2\nimgs/a.png,cat,train,0,0,4,4\nimgs/b.png,dog,train,1,1,2,3\n/abs/c.png,cat,test,0,0,1,1\n").unwrap();
    let ds = read_csv(&csv).unwrap();
    let train = ds.split("train").unwrap();
    assert_eq!(train.classes, vec!["cat", "dog"]);
    assert_eq!(train.samples[1].label, 1);
    assert_eq!(train.samples[0].path, d.join("imgs/a.png"));
    assert_eq!(train.samples[1].bbox, Some([1.0, 1.0, 2.0, 3.0]));
    assert_eq!(
        ds.split("test").unwrap().samples[0].path,
        PathBuf::from("/abs/c.png")
    );
    let bad = |content: &str, needle: &str| {
        std::fs::write(&csv, content).unwrap();
        let err = read_csv(&csv).unwrap_err().to_string();
        assert!(
            err.contains("data.csv") && err.contains(needle),
            "{content:?}: {err}"
        );
    };
    bad("", "empty file");
    bad("path,label\na.png,1\n", "must name path, label and split");
    bad("path,label,split\n", "no samples");
    bad(
        "path,label,split\na.png,1,train\nb.png,2\n",
        "data.csv:3: 2 fields",
    );
    bad(
        "path,label,split,x1,y1,x2,y2\na.png,1,train,0,zero,1,1\n",
        "data.csv:2: y1 = 'zero'",
    );
    bad(
        "path,label,split,x1,y1\na.png,1,train,0,0\n",
        "needs all of x1, y1, x2, y2",
    );
    bad(
        "path,label,split,x1,y1,x2,y2\na.png,1,train,5,0,1,1\n",
        "x2 < x1",
    );
    bad("path,label,split\n,1,train\n", "data.csv:2: empty path");
    assert!(matches!(
        read_csv(&d.join("missing.csv")),
        Err(DatasetError::Io { .. })
    ));
}

#[test]
fn corrupt_and_missing_images_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = load_image(&bad).unwrap_err();
    assert!(
        matches!(err, DatasetError::Image { .. }) && err.to_string().contains("corrupt.png"),
        "{err}"
    );
    let err = load_image(&dir.path().join("absent.png")).unwrap_err();
    assert!(
        matches!(err, DatasetError::Io { .. }) && err.to_string().contains("absent.png"),
        "{err}"
    );
}

#[test]
fn registry_errors_and_root_override() {
    let reg = registry();
    let err = reg.read("imagenet", None).unwrap_err().to_string();
    assert!(
        err.contains("no dataset 'imagenet'") && err.contains("omniglot"),
        "{err}"
    );
    let err = reg
        .read("omniglot", Some(Path::new("/nonexistent/omniglot")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/omniglot") && err.contains("METRON_OMNIGLOT_ROOT"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("datasets.toml");
    std::fs::write(&toml, "[x]\nreader = \"omniglot\"\n").unwrap();
    let err = Registry::load(&toml).unwrap_err().to_string();
    assert!(
        err.contains("datasets.toml") && err.contains("missing field"),
        "{err}"
    );
}
