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
        env: Some("UNUSED".into()),
        file: None,
        lists: Default::default(),
        splits: [(
            "train".to_string(),
            ExpectedCounts {
                images: Some(5),
                classes: Some(2),
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

#[test]
fn csv_query_gallery_columns_derive_two_splits_with_shared_labels() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("df.csv");
    // open-metric-learning's column order and spellings, plus a column this reader ignores.
    std::fs::write(
        &csv,
        "label,path,split,is_query,is_gallery,x_1,x_2,y_1,y_2,category
         0,imgs/a.jpg,train,,,,,,,cars
         1,imgs/b.jpg,train,,,1,5,2,6,cars
         7,imgs/c.jpg,validation,True,True,,,,,cars
         8,imgs/d.jpg,validation,False,True,,,,,cars
         9,imgs/e.jpg,validation,1,0,,,,,cars
",
    )
    .unwrap();
    let ds = read_csv(&csv).unwrap();
    let names: Vec<&str> = ds.splits.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["train", "validation", "query", "gallery"]);
    let train = ds.split("train").unwrap();
    assert_eq!(train.samples[0].bbox, None);
    assert_eq!(train.samples[1].bbox, Some([1.0, 2.0, 5.0, 6.0]));
    let q = ds.split("query").unwrap();
    let g = ds.split("gallery").unwrap();
    assert_eq!(q.classes, ["7", "8", "9"]);
    assert_eq!(g.classes, q.classes);
    let paths = |s: &Split| {
        s.samples
            .iter()
            .map(|x| {
                (
                    x.path.file_name().unwrap().to_string_lossy().into_owned(),
                    x.label,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths(q),
        [("c.jpg".to_string(), 0), ("e.jpg".to_string(), 2)]
    );
    assert_eq!(
        paths(g),
        [("c.jpg".to_string(), 0), ("d.jpg".to_string(), 1)]
    );
    assert_eq!(ds.split("validation").unwrap().samples.len(), 3);
    let bad = |content: &str, needle: &str| {
        std::fs::write(&csv, content).unwrap();
        let e = read_csv(&csv).unwrap_err().to_string();
        assert!(
            e.contains("df.csv") && e.contains(needle),
            "{content:?}: {e}"
        );
    };
    bad(
        "path,label,split,is_query
a.jpg,1,test,True
",
        "df.csv:1: is_query and is_gallery come together",
    );
    bad(
        "path,label,split,is_query,is_gallery
a.jpg,1,test,True,True
b.jpg,1,test,maybe,True
",
        "df.csv:3: is_query = 'maybe' is not a boolean",
    );
    bad(
        "path,label,split,is_query,is_gallery
a.jpg,1,query,True,False
",
        "df.csv:2: split 'query' clashes",
    );
    bad(
        "path,label,split,is_query,is_gallery
a.jpg,1,test,True,False
",
        "df.csv: is_query/is_gallery given, but no row is a gallery",
    );
    bad(
        "path,label,split,is_query,is_gallery
a.jpg,1,test,True,True
b.jpg,1,test,True
",
        "df.csv:3: 4 fields, the header has 5",
    );
    bad(
        "path,label,split,x_1,y_1,x_2,y_2
a.jpg,1,train,,0,1,1
",
        "df.csv:2: x_1 = '' is not a number",
    );
    bad(
        "path,label,split,x1,y1,x2,y2
a.jpg,1,train,0,0,inf,1
",
        "df.csv:2: x2 = 'inf' is not a number",
    );
    // Rows without flags or boxes in a file that has the columns stay in their split only.
    let ds = parse_csv(
        &dir.path().join("x.csv"),
        "path,label,split,is_query,is_gallery
a.jpg,1,train,,
b.jpg,2,test,true,false
c.jpg,2,test,false,true
",
    )
    .unwrap();
    assert_eq!(
        ds.split("train").unwrap().samples[0].path,
        dir.path().join("a.jpg")
    );
    assert_eq!(ds.split("query").unwrap().samples.len(), 1);
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn datasets_toml_holds_the_published_sizes_of_the_new_datasets() {
    let reg = registry();
    for (name, reader, split, images, classes) in [
        ("cars196", "cars196", "train", 8054, 98),
        ("cars196", "cars196", "test", 8131, 98),
        ("cvusa", "cvusa", "val-ground", 8884, 8884),
        ("cvact", "cvact", "val-ground", 8884, 8884),
        ("cvact", "cvact", "val-satellite", 8884, 8884),
        ("inaturalist", "inaturalist-json", "val", 24426, 8142),
        (
            "inaturalist-smoothap",
            "inaturalist-lists",
            "test",
            136093,
            2452,
        ),
        ("cub-wgol", "wgol-cub", "test", 5794, 200),
        ("ilsvrc-wgol", "wgol-ilsvrc", "val", 50000, 1000),
    ] {
        let e = reg.entry(name).unwrap();
        assert_eq!(e.reader, reader, "{name}");
        assert!(READERS.contains(&e.reader.as_str()), "{name}");
        assert_eq!(
            e.splits[split],
            ExpectedCounts {
                images: Some(images),
                classes: Some(classes)
            },
            "{name} {split}"
        );
    }
    assert_eq!(
        reg.entry("inaturalist-smoothap").unwrap().lists["train"],
        "Inat_dataset_splits/Inaturalist_train_set1.txt"
    );
}

#[test]
fn registry_dispatches_to_the_new_readers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    write(
        &d.join("cars"),
        "cars_annos.mat",
        &std::fs::read(fixtures.join("cars_annos.mat")).unwrap(),
    );
    write(
        &d.join("act"),
        "ACT_data.mat",
        &std::fs::read(fixtures.join("ACT_data.mat")).unwrap(),
    );
    write(
        &d.join("cub"),
        "list/train.txt",
        b"a/x.jpg 3
",
    );
    write(
        &d.join("cub"),
        "list/test.txt",
        b"b/y 7
",
    );
    write(
        &d.join("cub"),
        "list/test_boxes.txt",
        b"b/y 7 1 2 3 4
",
    );
    write(
        &d.join("inat"),
        "l/train.txt",
        b"t/Aves/5/a.jpg
t/Aves/6/b.jpg
",
    );
    write(
        &d.join("inat"),
        "l/test.txt",
        b"t/Fungi/9/c.jpg
",
    );
    let toml = d.join("datasets.toml");
    std::fs::write(
        &toml,
        r#"
[cars]
reader = "cars196"
root = "cars"
env = "METRON_TEST_UNUSED_CARS"
splits.train = { images = 3, classes = 2 }
splits.test = { images = 2, classes = 2 }

[act]
reader = "cvact-saig-val"
root = "act"
env = "METRON_TEST_UNUSED_ACT"
splits.val-ground = { images = 2, classes = 2 }

[wcub]
reader = "wgol-cub"
root = "cub"
env = "METRON_TEST_UNUSED_CUB"
splits.test = { images = 1, classes = 1 }

[inat]
reader = "inaturalist-lists"
root = "inat"
env = "METRON_TEST_UNUSED_INAT"
lists.train = "l/train.txt"
lists.test = "l/test.txt"
splits.train = { images = 2, classes = 2 }

[inat-nolists]
reader = "inaturalist-lists"
root = "inat"
env = "METRON_TEST_UNUSED_INAT"
splits = {}

[odd]
reader = "cvact-sideways"
root = "act"
env = "METRON_TEST_UNUSED_ACT"
splits = {}
"#,
    )
    .unwrap();
    let reg = Registry::load(&toml).unwrap();
    for name in ["cars", "act", "wcub", "inat"] {
        let ds = reg.read(name, None).unwrap();
        assert_eq!(ds.name, name);
        let m = check_counts(&ds, reg.entry(name).unwrap());
        assert!(m.is_empty(), "{name}: {m:?}");
    }
    let act = reg.read("act", None).unwrap();
    let names: Vec<&str> = act.splits.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "train-ground",
            "train-satellite",
            "val-ground",
            "val-satellite"
        ]
    );
    // Pair i is class i in both halves; the SAIG val paths are the published ones.
    let (g, s) = (
        act.split("val-ground").unwrap(),
        act.split("val-satellite").unwrap(),
    );
    assert_eq!(g.classes, ["0", "1"]);
    assert_eq!(g.samples[1].label, 1);
    assert_eq!(s.samples[1].label, 1);
    assert_eq!(
        g.samples[0].path,
        d.join("act/polar_streetview1/Ab12345678901234567890_grdView.png")
    );
    let pairs = reg.read_pairs("act", None).unwrap();
    assert_eq!(pairs[1].satellite[0], s.samples[0].path);
    assert_eq!(
        pairs[1].satellite[1],
        d.join("act/satview_polish/-0EVLG6sbC0JBEVXTCiZqg_satView_polish.jpg")
    );
    let cub = reg.read("wcub", None).unwrap();
    assert_eq!(
        cub.split("test").unwrap().samples[0].path,
        d.join("cub/images/b/y.jpg")
    );
    assert_eq!(
        cub.split("test").unwrap().samples[0].bbox,
        Some([1.0, 2.0, 3.0, 5.0])
    );
    assert_eq!(
        reg.read("inat", None)
            .unwrap()
            .split("test")
            .unwrap()
            .classes,
        ["Fungi/9"]
    );
    let e = reg.read("inat-nolists", None).unwrap_err().to_string();
    assert!(
        e.contains("inat-nolists: the inaturalist-lists reader needs `lists"),
        "{e}"
    );
    let e = reg.read("odd", None).unwrap_err().to_string();
    assert!(
        e.contains("odd: unknown reader 'cvact-sideways'") && e.contains("cvact-polar"),
        "{e}"
    );
    let e = reg.read_pairs("cars", None).unwrap_err().to_string();
    assert!(
        e.contains("reader 'cars196' does not give satellite / ground pairs"),
        "{e}"
    );
    let e = reg.read_pairs("odd", None).unwrap_err().to_string();
    assert!(e.contains("unknown reader 'cvact-sideways'"), "{e}");
}

#[test]
fn pair_splits_become_ground_and_satellite_splits() {
    let p = |s: &str| PathBuf::from(s);
    let pairs = PairSplit {
        name: "val".into(),
        satellite: (0..11).map(|i| p(&format!("s{i}"))).collect(),
        ground: (0..11).map(|i| p(&format!("g{i}"))).collect(),
    };
    let [g, s] = pairs.to_splits();
    assert_eq!(
        (g.name.as_str(), s.name.as_str()),
        ("val-ground", "val-satellite")
    );
    // Zero-padded to two digits, so sorted names keep pair order: label i is pair i.
    assert_eq!(g.classes[..3], ["00", "01", "02"]);
    assert_eq!(g.classes[10], "10");
    assert!(g.samples.iter().enumerate().all(|(i, x)| x.label == i));
    assert_eq!(s.samples[10].path, p("s10"));
    assert_eq!(g.classes_present(), 11);
}
