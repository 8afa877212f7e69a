//! WGOL localisation lists (CUB and ILSVRC) on miniature copies of their layout.

use std::path::Path;

use metron_datasets::*;

#[path = "support/files.rs"]
mod files;
use files::write;

fn cub(root: &Path) {
    write(
        root,
        "list/train.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg 0\n200.Common_Yellowthroat/Common_Yellowthroat_0003_190521.jpg 199\n",
    );
    write(
        root,
        "list/test.txt",
        "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg 1\n001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0\n",
    );
    write(
        root,
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0 60.0 27.0 325.0 304.0\n002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg 1 71 112 240 108\n",
    );
}

#[test]
fn cub_lists_keep_their_labels_and_inclusive_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    cub(r);
    let loc = read_wgol(r, WgolSet::Cub).unwrap();
    let ds = &loc.dataset;
    assert_eq!(ds.name, "cub-wgol");
    let train = ds.split("train").unwrap();
    assert_eq!(train.classes.len(), 200);
    assert_eq!(
        (&train.classes[0][..], &train.classes[199][..]),
        ("000", "199")
    );
    assert_eq!(
        train.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        [0, 199]
    );
    assert_eq!(
        train.samples[1].path,
        r.join("images/200.Common_Yellowthroat/Common_Yellowthroat_0003_190521.jpg")
    );
    assert_eq!(train.samples[0].bbox, None);
    let test = ds.split("test").unwrap();
    assert_eq!(test.classes, train.classes);
    assert_eq!(test.samples[0].label, 1);
    // x y w h = 71 112 240 108 -> (71, 112, 71 + 240 - 1, 112 + 108 - 1).
    assert_eq!(test.samples[0].bbox, Some([71.0, 112.0, 310.0, 219.0]));
    assert_eq!(loc.boxes[0], [[71.0, 112.0, 310.0, 219.0]]);
    assert_eq!(loc.boxes[1], [[60.0, 27.0, 384.0, 330.0]]);
}

#[test]
fn cub_bad_lists_name_file_and_line() {
    let check = |rel: &str, content: &str, needle: &str| {
        let dir = tempfile::tempdir().unwrap();
        cub(dir.path());
        write(dir.path(), rel, content);
        let e = read_wgol(dir.path(), WgolSet::Cub).unwrap_err().to_string();
        assert!(e.contains(needle), "{rel}: {needle}: {e}");
    };
    check(
        "list/train.txt",
        "a.jpg 0\nb.jpg\n",
        "list/train.txt:2: 1 fields, expected 2",
    );
    check(
        "list/train.txt",
        "a.jpg 0 1\n",
        "list/train.txt:1: 3 fields, expected 2",
    );
    check(
        "list/train.txt",
        "a.jpg x\n",
        "list/train.txt:1: label = 'x' is not a valid number",
    );
    check(
        "list/train.txt",
        "a.jpg 200\n",
        "list/train.txt:1: label 200 is outside 0..199",
    );
    check(
        "list/train.txt",
        "a.jpg -1\n",
        "label = '-1' is not a valid number",
    );
    check("list/test.txt", "\n", "list/test.txt: lists no images");
    check(
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0 60 27 325\n",
        "list/test_boxes.txt:1: 5 fields, expected 6",
    );
    check(
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0 60 27 w 304\n",
        "list/test_boxes.txt:1: width = 'w' is not a valid number",
    );
    check(
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0 60 27 0 304\n",
        "list/test_boxes.txt:1: width 0 and height 304 must be positive",
    );
    check(
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0 60 NaN 1 1\n",
        "list/test_boxes.txt:1: y = 'NaN' is not finite",
    );
    check(
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 0 60 27 325 304\n",
        "list/test_boxes.txt: no box for '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg' (test.txt line 1)",
    );
    check(
        "list/test_boxes.txt",
        "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg 5 60 27 325 304\n002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg 1 71 112 240 108\n",
        "list/test_boxes.txt:1: label 5, but the list gives '001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg' label 0",
    );
    let dir = tempfile::tempdir().unwrap();
    cub(dir.path());
    std::fs::remove_file(dir.path().join("list/test_boxes.txt")).unwrap();
    let e = read_wgol(dir.path(), WgolSet::Cub).unwrap_err();
    assert!(
        matches!(e, DatasetError::Io { .. }) && e.to_string().contains("test_boxes.txt"),
        "{e}"
    );
    assert!(matches!(
        read_wgol(&dir.path().join("absent"), WgolSet::Cub),
        Err(DatasetError::MissingRoot { .. })
    ));
}

fn ilsvrc_lists() -> [&'static str; 3] {
    [
        "n01440764/n01440764_10026 0\nn15075141/n15075141_999.JPEG 999\n",
        "ILSVRC2012_val_00000002 970\nILSVRC2012_val_00000001.JPEG 65\n",
        // Sorted by file name, as extract_xml.py writes it; the second image has two boxes.
        "ILSVRC2012_val_00000001.xml 111 108 441 332\nILSVRC2012_val_00000002.xml 0 0 10 20 5 6 7 8\nILSVRC2012_val_00000003.xml 1 1 2 2\n",
    ]
}

#[test]
fn ilsvrc_lists_with_several_boxes_per_image() {
    let root = Path::new("/data/ilsvrc");
    let loc = parse_wgol(root, WgolSet::Ilsvrc, ilsvrc_lists()).unwrap();
    let train = loc.dataset.split("train").unwrap();
    assert_eq!(train.classes.len(), 1000);
    assert_eq!(
        train.samples[0].path,
        root.join("img_train/n01440764/n01440764_10026.JPEG")
    );
    assert_eq!(train.samples[1].label, 999);
    let val = loc.dataset.split("val").unwrap();
    assert_eq!(
        val.samples[0].path,
        root.join("img_val/ILSVRC2012_val_00000002.JPEG")
    );
    assert_eq!(
        val.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        [970, 65]
    );
    assert_eq!(loc.boxes[0], [[0.0, 0.0, 10.0, 20.0], [5.0, 6.0, 7.0, 8.0]]);
    assert_eq!(val.samples[0].bbox, Some([0.0, 0.0, 10.0, 20.0]));
    assert_eq!(loc.boxes[1], [[111.0, 108.0, 441.0, 332.0]]);
}

#[test]
fn ilsvrc_bad_box_lines() {
    let root = Path::new("/data/ilsvrc");
    let check = |index: usize, text: &str, needle: &str| {
        let mut lists = ilsvrc_lists();
        lists[index] = text;
        let e = parse_wgol(root, WgolSet::Ilsvrc, lists)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    };
    check(
        2,
        "ILSVRC2012_val_00000001.xml 1 2 3\n",
        "/data/ilsvrc/list/val_bboxes.txt:1: 4 fields, expected a file name then groups of x1 y1 x2 y2",
    );
    check(
        2,
        "ILSVRC2012_val_00000001.xml 1 2 3 4 5\n",
        "val_bboxes.txt:1: 6 fields",
    );
    check(
        2,
        "ILSVRC2012_val_00000001.xml 1 2 3 4\nILSVRC2012_val_00000002.xml 1 2 3 4 5 6 a 8\n",
        "val_bboxes.txt:2: x2 = 'a' is not a valid number",
    );
    check(
        2,
        "ILSVRC2012_val_00000001.xml 1 2 0 4\n",
        "val_bboxes.txt:1: box [1.0, 2.0, 0.0, 4.0] has x2 < x1 or y2 < y1",
    );
    check(
        2,
        "ILSVRC2012_val_00000001.xml 1 2 3 4\nILSVRC2012_val_00000001.xml 1 2 3 4\n",
        "val_bboxes.txt:2: 'ILSVRC2012_val_00000001.xml' listed twice",
    );
    check(
        2,
        "ILSVRC2012_val_00000001.xml 1 2 3 4\n",
        "no box for 'ILSVRC2012_val_00000002.JPEG' (val_list.txt line 1)",
    );
    check(
        1,
        "ILSVRC2012_val_00000001 1000\n",
        "val_list.txt:1: label 1000 is outside 0..999",
    );
    check(0, "", "train_list.txt: lists no images");
}
