//! CUB-200-2011, SOP and In-shop readers on miniature copies of their native layouts.

use std::path::Path;

use metron_datasets::*;

#[path = "support/files.rs"]
mod files;
use files::write;

fn cub(root: &Path) {
    write(
        root,
        "classes.txt",
        "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n101 101.White_Pelican\n",
    );
    write(
        root,
        "images.txt",
        "1 001.Black_footed_Albatross/a.jpg\n2 002.Laysan_Albatross/b.jpg\n3 101.White_Pelican/c.jpg\n4 001.Black_footed_Albatross/d.jpg\n",
    );
    write(root, "image_class_labels.txt", "1 1\n2 2\n3 101\n4 1\n");
    write(
        root,
        "bounding_boxes.txt",
        "1 10.0 20.0 30.0 40.0\n2 0 0 5 5\n3 1.5 2.5 3 4\n4 0 0 1 1\n",
    );
}

#[test]
fn cub_splits_by_class_with_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    cub(r);
    let ds = read_cub(r).unwrap();
    let train = ds.split("train").unwrap();
    assert_eq!(
        train.classes,
        vec!["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    );
    assert_eq!(train.samples.len(), 3);
    assert_eq!(
        train.samples[0].path,
        r.join("images/001.Black_footed_Albatross/a.jpg")
    );
    assert_eq!(train.samples[0].bbox, Some([10.0, 20.0, 40.0, 60.0]));
    assert_eq!(train.samples[2].label, 0);
    let test = ds.split("test").unwrap();
    assert_eq!(test.classes, vec!["101.White_Pelican"]);
    assert_eq!(test.samples[0].bbox, Some([1.5, 2.5, 4.5, 6.5]));
}

#[test]
fn cub_bad_input_names_file_and_line() {
    let check = |rel: &str, content: &str, needle: &str| {
        let dir = tempfile::tempdir().unwrap();
        cub(dir.path());
        write(dir.path(), rel, content);
        let err = read_cub(dir.path()).unwrap_err().to_string();
        assert!(err.contains(rel) && err.contains(needle), "{rel}: {err}");
    };
    check(
        "image_class_labels.txt",
        "1 1\n2\n",
        "image_class_labels.txt:2: 1 fields, expected 2",
    );
    check("image_class_labels.txt", "1 1\n2 x\n", ":2: class_id = 'x'");
    check(
        "image_class_labels.txt",
        "1 1\n2 201\n",
        ":2: class_id 201 is outside 1..200",
    );
    check(
        "image_class_labels.txt",
        "9 1\n",
        ":1: image_id 9 is not in images.txt",
    );
    check("bounding_boxes.txt", "1 0 0 w 5\n", ":1: width = 'w'");
    let dir = tempfile::tempdir().unwrap();
    cub(dir.path());
    std::fs::remove_file(dir.path().join("images.txt")).unwrap();
    let err = read_cub(dir.path()).unwrap_err();
    assert!(
        matches!(err, DatasetError::Io { .. }) && err.to_string().contains("images.txt"),
        "{err}"
    );
    assert!(matches!(
        read_cub(&dir.path().join("none")),
        Err(DatasetError::MissingRoot { .. })
    ));
}

#[test]
fn sop_reads_both_lists() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "Ebay_train.txt",
        "image_id class_id super_class_id path\n1 1 1 bicycle_final/111_0.JPG\n2 1 1 bicycle_final/111_1.JPG\n3 2 1 bicycle_final/222_0.JPG\n",
    );
    write(
        r,
        "Ebay_test.txt",
        "image_id class_id super_class_id path\n4 11319 2 cabinet_final/9_0.JPG\n",
    );
    let ds = read_sop(r).unwrap();
    let train = ds.split("train").unwrap();
    assert_eq!(train.classes, vec!["1", "2"]);
    assert_eq!(train.samples[2].path, r.join("bicycle_final/222_0.JPG"));
    assert_eq!(ds.split("test").unwrap().samples.len(), 1);
    write(r, "Ebay_test.txt", "header\n4 x 2 cabinet_final/9_0.JPG\n");
    let err = read_sop(r).unwrap_err().to_string();
    assert!(
        err.contains("Ebay_test.txt:2") && err.contains("class_id = 'x'"),
        "{err}"
    );
}

#[test]
fn inshop_query_and_gallery_share_labels_and_counts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let rows = "img/WOMEN/a/1.jpg id_01 train\nimg/WOMEN/b/1.jpg id_02 query\nimg/WOMEN/b/2.jpg id_02 gallery\nimg/MEN/c/1.jpg id_03 gallery\n";
    write(
        r,
        "Eval/list_eval_partition.txt",
        &format!("4\nimage_name item_id evaluation_status\n{rows}"),
    );
    let ds = read_inshop(r).unwrap();
    let (q, g) = (ds.split("query").unwrap(), ds.split("gallery").unwrap());
    assert_eq!(q.classes, g.classes);
    assert_eq!(q.classes[q.samples[0].label], g.classes[g.samples[0].label]);
    assert_eq!(q.samples[0].label, g.samples[0].label);
    assert_eq!(g.samples[1].path, r.join("Img/img/MEN/c/1.jpg"));
    assert_eq!(ds.split("train").unwrap().classes, vec!["id_01"]);
    write(
        r,
        "Eval/list_eval_partition.txt",
        &format!("5\nheader\n{rows}"),
    );
    let err = read_inshop(r).unwrap_err().to_string();
    assert!(err.contains("declares 5 images but lists 4"), "{err}");
    write(
        r,
        "Eval/list_eval_partition.txt",
        "1\nheader\nimg/x.jpg id_9 validation\n",
    );
    let err = read_inshop(r).unwrap_err().to_string();
    assert!(
        err.contains("list_eval_partition.txt:3") && err.contains("'validation'"),
        "{err}"
    );
    write(r, "Eval/list_eval_partition.txt", "many\n");
    assert!(
        read_inshop(r)
            .unwrap_err()
            .to_string()
            .contains(":1: the first line")
    );
}

#[test]
fn registry_knows_the_retrieval_sets_and_their_published_sizes() {
    let reg = Registry::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets.toml"),
    )
    .unwrap();
    for (name, split, images, classes) in [
        ("cub", "test", 5924, 100),
        ("sop", "train", 59551, 11318),
        ("inshop", "query", 14218, 3985),
    ] {
        let e = reg.entry(name).unwrap();
        assert_eq!(
            e.splits[split],
            ExpectedCounts {
                images: Some(images),
                classes: Some(classes)
            },
            "{name}"
        );
    }
    // Reading a miniature CUB through the registry reports the count differences.
    let dir = tempfile::tempdir().unwrap();
    cub(dir.path());
    let ds = reg.read("cub", Some(dir.path())).unwrap();
    let m = check_counts(&ds, reg.entry("cub").unwrap());
    assert_eq!(m.len(), 4);
    assert!(
        m.iter()
            .any(|x| x.to_string() == "split 'train': 3 images found, 5864 expected")
    );
}
