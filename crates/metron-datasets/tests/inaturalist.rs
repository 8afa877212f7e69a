//! iNaturalist 2018 readers on miniature copies of the competition JSON and Smooth-AP's lists.

use std::path::Path;

use metron_datasets::*;

#[path = "support/files.rs"]
mod files;
use files::write;

const CATEGORIES: &str = r#"[{"id": 7477, "name": "Quercus alba", "supercategory": "Plantae", "kingdom": "Plantae"},
 {"id": 12, "name": "Apis mellifera", "supercategory": "Insecta"},
 {"id": 3, "name": "Bufo bufo", "supercategory": "Amphibia"}]"#;

fn coco(images: &str, annotations: &str) -> String {
    format!(
        r#"{{"info": {{"year": 2018}}, "images": [{images}],
 "annotations": [{annotations}],
 "categories": {CATEGORIES}}}"#
    )
}

fn json_root(root: &Path) {
    write(
        root,
        "train2018.json",
        &coco(
            r#"{"id": 10, "file_name": "train_val2018/Plantae/7477/aa.jpg", "width": 800, "height": 600},
               {"id": 11, "file_name": "train_val2018/Insecta/12/bb.jpg"},
               {"id": 12, "file_name": "train_val2018/Plantae/7477/cc.jpg"}"#,
            r#"{"id": 1, "image_id": 11, "category_id": 12},
               {"id": 2, "image_id": 10, "category_id": 7477},
               {"id": 3, "image_id": 12, "category_id": 7477}"#,
        ),
    );
    write(
        root,
        "val2018.json",
        &coco(
            r#"{"id": 99, "file_name": "train_val2018/Amphibia/3/dd.jpg"}"#,
            r#"{"id": 5, "image_id": 99, "category_id": 3}"#,
        ),
    );
}

#[test]
fn json_images_in_file_order_with_a_shared_class_list() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    json_root(r);
    let ds = read_inaturalist_json(r).unwrap();
    let train = ds.split("train").unwrap();
    let val = ds.split("val").unwrap();
    // Sorted "<supercategory>/<id>": Amphibia/3, Insecta/12, Plantae/7477.
    assert_eq!(train.classes, ["Amphibia/3", "Insecta/12", "Plantae/7477"]);
    assert_eq!(val.classes, train.classes);
    let got: Vec<(std::path::PathBuf, usize)> = train
        .samples
        .iter()
        .map(|s| (s.path.clone(), s.label))
        .collect();
    assert_eq!(
        got,
        [
            (r.join("train_val2018/Plantae/7477/aa.jpg"), 2),
            (r.join("train_val2018/Insecta/12/bb.jpg"), 1),
            (r.join("train_val2018/Plantae/7477/cc.jpg"), 2),
        ]
    );
    assert_eq!(train.classes_present(), 2);
    assert_eq!(val.samples[0].label, 0);
    assert_eq!(val.samples[0].bbox, None);
}

#[test]
fn json_bad_input_names_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let check = |content: &str, needle: &str| {
        json_root(r);
        write(r, "val2018.json", content);
        let e = read_inaturalist_json(r).unwrap_err().to_string();
        assert!(
            e.contains("val2018.json") && e.contains(needle),
            "{needle}: {e}"
        );
    };
    let img = r#"{"id": 1, "file_name": "a/1/x.jpg"}"#;
    let ann = r#"{"image_id": 1, "category_id": 3}"#;
    check(
        &coco(img, r#"{"image_id": 1, "category_id": 4}"#),
        "annotations[0]: category_id 4 is not in categories",
    );
    check(
        &coco(img, r#"{"image_id": 2, "category_id": 3}"#),
        "annotations[0]: image_id 2 is not in images",
    );
    check(
        &coco(img, &format!("{ann}, {ann}")),
        "annotations[1]: image 1 has a second annotation",
    );
    check(&coco(img, ""), "image 1 has no annotation");
    check(
        &coco(&format!("{img}, {img}"), ann),
        "images[1]: id 1 appears twice",
    );
    check(&coco("", ""), "no images");
    check(
        &coco(r#"{"id": 1, "file_name": ""}"#, ann),
        "images[0]: empty file_name",
    );
    check(
        &coco(r#"{"id": "one", "file_name": "a/1/x.jpg"}"#, ann),
        "val2018.json:1: column 48: invalid type: string \"one\", expected u64",
    );
    check(
        "{\"images\": [\n{\"id\": 1}]}",
        "val2018.json:2: column 9: missing field `file_name`",
    );
    check(
        "{\"images\": [",
        "val2018.json:1: column 12: EOF while parsing",
    );
    assert!(matches!(
        read_inaturalist_json(&r.join("absent")),
        Err(DatasetError::MissingRoot { .. })
    ));
    std::fs::remove_file(r.join("train2018.json")).unwrap();
    let e = read_inaturalist_json(r).unwrap_err();
    assert!(
        matches!(e, DatasetError::Io { .. }) && e.to_string().contains("train2018.json"),
        "{e}"
    );
}

#[test]
fn smoothap_lists_label_by_category_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "Inat_dataset_splits/Inaturalist_train_set1.txt",
        "train_val2018/Plantae/7477/aa.jpg\ntrain_val2018/Insecta/12/bb.jpg\r\n\ntrain_val2018/Plantae/7477/cc.jpg\n",
    );
    write(
        r,
        "Inat_dataset_splits/Inaturalist_test_set1.txt",
        "train_val2018/Aves/100/x.jpg\n",
    );
    let ds = read_inaturalist_lists(
        r,
        &[
            (
                "train",
                Path::new("Inat_dataset_splits/Inaturalist_train_set1.txt"),
            ),
            (
                "test",
                Path::new("Inat_dataset_splits/Inaturalist_test_set1.txt"),
            ),
        ],
    )
    .unwrap();
    let train = ds.split("train").unwrap();
    assert_eq!(train.classes, ["Insecta/12", "Plantae/7477"]);
    assert_eq!(
        train.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        [1, 0, 1]
    );
    assert_eq!(
        train.samples[1].path,
        r.join("train_val2018/Insecta/12/bb.jpg")
    );
    let test = ds.split("test").unwrap();
    assert_eq!(test.classes, ["Aves/100"]);
    // The same class has the same name under the JSON reader.
    json_root(r);
    let json = read_inaturalist_json(r).unwrap();
    assert!(
        json.split("train")
            .unwrap()
            .classes
            .contains(&train.classes[1])
    );
}

#[test]
fn smoothap_list_bad_lines() {
    let p = Path::new("/d/list.txt");
    let root = Path::new("/d");
    let check = |text: &str, needle: &str| {
        let e = parse_inaturalist_list(p, text, root, "train")
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    };
    check(
        "a/Plantae/1/x.jpg\na/Plantae/1/y.jpg 3\n",
        "/d/list.txt:2: 2 fields, expected 1",
    );
    check(
        "Plantae/x/y.jpg\n",
        "/d/list.txt:1: category_id = 'x' is not a valid number",
    );
    check(
        "1/y.jpg\n",
        "/d/list.txt:1: '1/y.jpg' is not <supercategory>/<category_id>/<file>",
    );
    check(
        "a/Plantae/1/\n",
        "is not <supercategory>/<category_id>/<file>",
    );
    check(
        "a/Plantae/1/x.jpg\na/Aves/1/y.jpg\n",
        "/d/list.txt:2: category 1 is under 'Aves' here but under 'Plantae' earlier",
    );
    check(
        "\n  \n",
        "/d/list.txt: lists no images (the train split would be empty)",
    );
    // Leading zeros name the same class as the JSON's plain number.
    let s = parse_inaturalist_list(p, "a/Aves/007/x.jpg\n", root, "train").unwrap();
    assert_eq!(s.classes, ["Aves/7"]);
    let dir = tempfile::tempdir().unwrap();
    let e = read_inaturalist_lists(dir.path(), &[("train", Path::new("missing.txt"))]).unwrap_err();
    assert!(
        matches!(e, DatasetError::Io { .. }) && e.to_string().contains("missing.txt"),
        "{e}"
    );
    assert!(matches!(
        read_inaturalist_lists(&dir.path().join("absent"), &[]),
        Err(DatasetError::MissingRoot { .. })
    ));
    assert!(
        read_inaturalist_lists(dir.path(), &[])
            .unwrap_err()
            .to_string()
            .contains("no list files given")
    );
}
