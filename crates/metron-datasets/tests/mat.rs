//! The MAT-file reader and the two readers built on it (Cars196, CVACT): on SciPy-written
//! fixtures (tests/fixtures/make_mat_fixtures.py) and on files from the test writer in
//! tests/support, including corrupt ones.

#[path = "support/mat_writer.rs"]
mod mat_writer;

use std::path::{Path, PathBuf};

use mat_writer::{M, mat_file};
use metron_datasets::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn scipy_cars_fixture_parses_as_written() {
    let f = parse_mat(Path::new("cars_annos.mat"), &fixture("cars_annos.mat")).unwrap();
    let names: Vec<&str> = f.variables.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["annotations", "class_names"]);
    let ann = f.get("annotations").unwrap();
    assert_eq!(ann.dims, [1, 5]);
    let MatData::Struct { fields, values } = &ann.data else {
        panic!("{ann:?}")
    };
    assert_eq!(
        fields,
        &[
            "relative_im_path",
            "bbox_x1",
            "bbox_y1",
            "bbox_x2",
            "bbox_y2",
            "class",
            "test"
        ]
    );
    assert_eq!(values.len(), 35);
    assert_eq!(
        ann.field(4, "relative_im_path").unwrap().string().unwrap(),
        "car_ims/016185.jpg"
    );
    assert_eq!(ann.field(0, "bbox_x2").unwrap().scalar(), Some(853.0));
    assert_eq!(ann.field(4, "bbox_y1").unwrap().scalar(), Some(2.5));
    assert_eq!(ann.field(2, "class").unwrap().scalar(), Some(98.0));
    assert_eq!(ann.field(5, "class"), None);
    assert_eq!(ann.field(0, "nope"), None);
    let cn = f.get("class_names").unwrap().strings().unwrap();
    assert_eq!(cn.len(), 196);
    assert_eq!(
        (&cn[0][..], &cn[1][..], &cn[97][..]),
        ("Zeta Coupe 2012", "Car 002", "Alpha Sedan 2010")
    );
}

#[test]
fn cars196_reads_the_scipy_fixture_split_by_class() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::write(r.join("cars_annos.mat"), fixture("cars_annos.mat")).unwrap();
    let ds = read_cars196(r).unwrap();
    assert_eq!(ds.name, "cars196");
    let train = ds.split("train").unwrap();
    // Classes 1 ("Zeta Coupe 2012") and 98 ("Alpha Sedan 2010"): sorted names put 98 first.
    assert_eq!(train.classes, ["Alpha Sedan 2010", "Zeta Coupe 2012"]);
    let got: Vec<(PathBuf, usize, Option<[f32; 4]>)> = train
        .samples
        .iter()
        .map(|s| (s.path.clone(), s.label, s.bbox))
        .collect();
    assert_eq!(
        got,
        [
            (
                r.join("car_ims/000001.jpg"),
                1,
                Some([112.0, 7.0, 853.0, 717.0])
            ),
            (
                r.join("car_ims/000002.jpg"),
                1,
                Some([48.0, 24.0, 441.0, 202.0])
            ),
            (
                r.join("car_ims/000100.jpg"),
                0,
                Some([5.0, 6.0, 70.0, 80.0])
            ),
        ]
    );
    let test = ds.split("test").unwrap();
    assert_eq!(test.classes, ["Beta Van 2007", "Car 099"]);
    assert_eq!(test.samples.len(), 2);
    assert_eq!(test.samples[0].path, r.join("car_ims/008200.jpg"));
    assert_eq!(test.samples[0].label, 1);
    assert_eq!(test.samples[1].label, 0);
    assert_eq!(test.samples[1].bbox, Some([1.5, 2.5, 30.5, 40.5]));
}

#[test]
fn cvact_reads_the_scipy_fixture_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::write(r.join("ACT_data.mat"), fixture("ACT_data.mat")).unwrap();
    let (a, b, c, d) = (
        "__-DFIFxvZBCn1873qkqXA",
        "-0EVLG6sbC0JBEVXTCiZqg",
        "zz0AtdXHHtLFbXnXlHRS0w",
        "Ab12345678901234567890",
    );
    let polar = read_cvact(r, CvactLayout::Polar).unwrap();
    assert_eq!(polar.len(), 2);
    assert_eq!(
        (polar[0].name.as_str(), polar[1].name.as_str()),
        ("train", "val")
    );
    // trainInd = [1; 3], valInd = [4; 2] (1-based).
    assert_eq!(
        polar[0].ground,
        [
            r.join(format!("polar_streetview1/{a}_grdView.png")),
            r.join(format!("polar_streetview1/{c}_grdView.png"))
        ]
    );
    assert_eq!(
        polar[1].satellite,
        [
            r.join(format!("polar_map1/{d}_satView_polish.png")),
            r.join(format!("polar_map1/{b}_satView_polish.png"))
        ]
    );
    let plain = read_cvact(r, CvactLayout::NonPolar).unwrap();
    assert_eq!(
        plain[0].ground[1],
        r.join(format!("streetview/{c}_grdView.jpg"))
    );
    assert_eq!(
        plain[1].satellite[0],
        r.join(format!("satview_polish/{d}_satView_polish.png"))
    );
    assert_eq!(
        plain[1].ground[1],
        r.join(format!("streetview/{b}_grdView.jpg"))
    );
    let saig = read_cvact(r, CvactLayout::NonPolarSaigVal).unwrap();
    assert_eq!(saig[0], plain[0]);
    assert_eq!(
        saig[1].ground,
        [
            r.join(format!("polar_streetview1/{d}_grdView.png")),
            r.join(format!("polar_streetview1/{b}_grdView.png"))
        ]
    );
    assert_eq!(
        saig[1].satellite[1],
        r.join(format!("satview_polish/{b}_satView_polish.jpg"))
    );
}

/// A struct holding every kind of value the reader decodes.
fn everything() -> Vec<(&'static str, M)> {
    vec![
        (
            "s",
            M::structs(vec![
                vec![
                    ("name", M::str("héllo")),
                    (
                        "m",
                        M::Double(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                    ),
                    ("e", M::Empty),
                ],
                vec![
                    ("name", M::str("")),
                    ("m", M::Int32(vec![1, 2], vec![-7, 2_000_000_000])),
                    ("e", M::cell(vec![M::scalar(0.5), M::str("x")])),
                ],
            ]),
        ),
        ("rows", M::char_rows(&["ab", "cdef", ""])),
        ("u8", M::DoubleAsU8(vec![3, 1], vec![0, 7, 255])),
    ]
}

fn check_everything(f: &MatFile) {
    let s = f.get("s").unwrap();
    assert_eq!(s.dims, [1, 2]);
    assert_eq!(s.field(0, "name").unwrap().string().unwrap(), "héllo");
    let m = s.field(0, "m").unwrap();
    assert_eq!(m.dims, [2, 3]);
    assert_eq!(m.numbers().unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let e = s.field(0, "e").unwrap();
    assert_eq!((e.numel(), e.numbers().unwrap().len()), (0, 0));
    assert_eq!(s.field(1, "name").unwrap().string().unwrap(), "");
    assert_eq!(
        s.field(1, "m").unwrap().numbers().unwrap(),
        [-7.0, 2_000_000_000.0]
    );
    let MatData::Cell(items) = &s.field(1, "e").unwrap().data else {
        panic!()
    };
    assert_eq!(items[0].scalar(), Some(0.5));
    assert_eq!(items[1].string().unwrap(), "x");
    assert_eq!(
        f.get("rows").unwrap().strings().unwrap(),
        ["ab", "cdef", ""]
    );
    assert_eq!(
        f.get("rows").unwrap().string(),
        None,
        "3 rows are no single string"
    );
    assert_eq!(f.get("u8").unwrap().numbers().unwrap(), [0.0, 7.0, 255.0]);
}

#[test]
fn both_byte_orders_and_compression_read_alike() {
    for big in [false, true] {
        for compress in [false, true] {
            let bytes = mat_file(&everything(), big, compress);
            let f = parse_mat(Path::new("x.mat"), &bytes)
                .unwrap_or_else(|e| panic!("big {big} compress {compress}: {e}"));
            check_everything(&f);
        }
    }
}

#[test]
fn corrupt_mat_files_give_errors_never_panics() {
    let p = Path::new("bad.mat");
    for bytes in [
        fixture("cars_annos.mat"),
        fixture("ACT_data.mat"),
        mat_file(&everything(), true, false),
    ] {
        // A truncated file is an error unless the cut falls between variables (a valid file
        // with fewer of them) or only removes the last variable's padding.
        let full = parse_mat(p, &bytes).unwrap();
        for cut in 0..bytes.len() {
            if let Ok(f) = parse_mat(p, &bytes[..cut]) {
                let k = f.variables.len();
                assert_eq!(f.variables[..], full.variables[..k], "cut at {cut}");
                assert!(
                    k < full.variables.len() || bytes.len() - cut < 8,
                    "cut at {cut} of {} lost nothing",
                    bytes.len()
                );
            }
        }
        // Every byte set to a few values: any outcome but a panic.
        for i in 0..bytes.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = parse_mat(p, &b);
            }
        }
    }
    let header = |version: [u8; 2], mark: &[u8; 2]| {
        let mut h = vec![b' '; 124];
        h.extend(version);
        h.extend(mark);
        h
    };
    assert!(err_text(parse_mat(p, b"MATLAB")).contains("bad.mat: byte 0: 6 bytes, shorter than"));
    assert!(err_text(parse_mat(p, &header([0, 1], b"XX"))).contains("no IM/MI endian mark"));
    assert!(err_text(parse_mat(p, &header([0, 2], b"IM"))).contains("v7.3 MAT-file (HDF5)"));
    let mut odd = header([0, 1], b"IM");
    odd.extend([9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(
        err_text(parse_mat(p, &odd)).contains("byte 128: top-level element of type 9"),
        "{}",
        err_text(parse_mat(p, &odd))
    );
    let mut long = header([0, 1], b"IM");
    long.extend([14, 0, 0, 0, 0xff, 0, 0, 0, 1, 2, 3]);
    assert!(err_text(parse_mat(p, &long)).contains("declares 255 bytes, only 3 remain"));
    let mut bad_zlib = header([0, 1], b"IM");
    bad_zlib.extend([15, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
    assert!(err_text(parse_mat(p, &bad_zlib)).contains("cannot inflate"));
    // A 2x2 double holding 3 values names the variable.
    let mut short = mat_file(
        &[("v", M::Double(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]))],
        false,
        false,
    );
    short[128 + 4] -= 8; // matrix length
    let last_data_tag = short.len() - 32 - 8;
    short[last_data_tag + 4] = 24; // data bytes: 3 doubles
    short.truncate(short.len() - 8);
    let e = err_text(parse_mat(p, &short));
    assert!(
        e.contains("variable 'v': 3 values for dimensions [2, 2]"),
        "{e}"
    );
    // Nesting beyond the bound.
    let mut deep = M::scalar(1.0);
    for _ in 0..40 {
        deep = M::cell(vec![deep]);
    }
    let e = err_text(parse_mat(p, &mat_file(&[("deep", deep)], false, false)));
    assert!(
        e.contains("variable 'deep'{1}{1}") && e.contains("nested deeper than 32"),
        "{e}"
    );
}

fn car(path: &str, bbox: [f64; 4], class: f64) -> Vec<(&'static str, M)> {
    vec![
        ("relative_im_path", M::str(path)),
        ("bbox_x1", M::scalar(bbox[0])),
        ("bbox_y1", M::scalar(bbox[1])),
        ("bbox_x2", M::scalar(bbox[2])),
        ("bbox_y2", M::scalar(bbox[3])),
        ("class", M::DoubleAsU8(vec![1, 1], vec![class as u8])),
        ("test", M::scalar(0.0)),
    ]
}

fn cars_vars(annotations: Vec<Vec<(&'static str, M)>>) -> Vec<(&'static str, M)> {
    vec![("annotations", M::structs(annotations))]
}

#[test]
fn cars196_without_class_names_uses_padded_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let bytes = mat_file(
        &cars_vars(vec![
            car("car_ims/a.jpg", [1.0, 2.0, 3.0, 4.0], 12.0),
            car("car_ims/b.jpg", [0.0, 0.0, 9.0, 9.0], 3.0),
            car("car_ims/c.jpg", [0.0, 0.0, 9.0, 9.0], 150.0),
        ]),
        true,
        true,
    );
    let ds = parse_cars196(r, &bytes).unwrap();
    let train = ds.split("train").unwrap();
    assert_eq!(train.classes, ["003", "012"]);
    assert_eq!(
        train.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        [1, 0]
    );
    assert_eq!(train.samples[0].bbox, Some([1.0, 2.0, 3.0, 4.0]));
    assert_eq!(ds.split("test").unwrap().classes, ["150"]);
}

#[test]
fn cars196_bad_input_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let good = || {
        vec![
            car("car_ims/a.jpg", [1.0, 2.0, 3.0, 4.0], 1.0),
            car("car_ims/b.jpg", [1.0, 2.0, 3.0, 4.0], 99.0),
        ]
    };
    let check = |vars: Vec<(&'static str, M)>, needle: &str| {
        let e = err_text(parse_cars196(r, &mat_file(&vars, false, false)));
        assert!(
            e.contains("cars_annos.mat") && e.contains(needle),
            "{needle}: {e}"
        );
    };
    check(vec![("other", M::scalar(1.0))], "no variable 'annotations'");
    check(
        vec![("annotations", M::scalar(1.0))],
        "'annotations' is a numeric array, expected a struct array",
    );
    let mut no_class = good();
    for a in &mut no_class {
        a.retain(|(f, _)| *f != "class");
    }
    check(cars_vars(no_class), "'annotations' has no field 'class'");
    let mut v = good();
    v[1][5].1 = M::scalar(197.0);
    check(cars_vars(v), "annotations(2).class = 197 is outside 1..196");
    let mut v = good();
    v[0][5].1 = M::scalar(2.5);
    check(cars_vars(v), "annotations(1).class = 2.5 is outside 1..196");
    let mut v = good();
    v[1][1].1 = M::str("12");
    check(
        cars_vars(v),
        "annotations(2).bbox_x1 is not a finite number",
    );
    let mut v = good();
    v[0][4].1 = M::Empty;
    check(
        cars_vars(v),
        "annotations(1).bbox_y2 is not a finite number",
    );
    let mut v = good();
    v[0][0].1 = M::scalar(3.0);
    check(
        cars_vars(v),
        "annotations(1).relative_im_path is not a non-empty string",
    );
    let mut v = good();
    v[0][3].1 = M::scalar(0.0);
    check(
        cars_vars(v),
        "annotations(1): box [1.0, 2.0, 0.0, 4.0] has x2 < x1",
    );
    let mut vars = cars_vars(good());
    vars.push(("class_names", M::cell(vec![M::str("A"), M::str("B")])));
    check(
        vars,
        "annotations(2).class = 99 but 'class_names' has only 2 entries",
    );
    let mut vars = cars_vars(good());
    vars.push(("class_names", M::cell(vec![M::str("A"), M::str("A")])));
    check(vars, "'class_names' lists 'A' twice");
    let mut vars = cars_vars(good());
    vars.push(("class_names", M::scalar(1.0)));
    check(vars, "'class_names' is a numeric array");
    let mut v = good();
    v.remove(0);
    check(cars_vars(v), "no images of classes 1-98 (the train split)");
    check(
        vec![(
            "annotations",
            M::Struct(vec![0, 0], vec!["class".into()], vec![]),
        )],
        "has no field 'relative_im_path'",
    );
    assert!(matches!(
        read_cars196(&r.join("absent")),
        Err(DatasetError::MissingRoot { .. })
    ));
    let e = read_cars196(r).unwrap_err();
    assert!(
        matches!(e, DatasetError::Io { .. }) && e.to_string().contains("cars_annos.mat"),
        "{e}"
    );
}

fn act(ids: M, train: M, val: M) -> Vec<u8> {
    mat_file(
        &[
            ("panoIds", ids),
            ("trainSet", M::structs(vec![vec![("trainInd", train)]])),
            ("valSet", M::structs(vec![vec![("valInd", val)]])),
        ],
        false,
        true,
    )
}

#[test]
fn cvact_cell_ids_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let ids = || M::cell(vec![M::str("p1"), M::str("p2"), M::str("p3")]);
    let pairs = parse_cvact(
        r,
        &act(ids(), M::column(&[3.0, 1.0]), M::column(&[2.0])),
        CvactLayout::Polar,
    )
    .unwrap();
    assert_eq!(
        pairs[0].ground[0],
        r.join("polar_streetview1/p3_grdView.png")
    );
    assert_eq!(
        pairs[1].satellite,
        [r.join("polar_map1/p2_satView_polish.png")]
    );
    let check = |bytes: Vec<u8>, needle: &str| {
        let e = err_text(parse_cvact(r, &bytes, CvactLayout::NonPolar));
        assert!(
            e.contains("ACT_data.mat") && e.contains(needle),
            "{needle}: {e}"
        );
    };
    check(
        act(ids(), M::column(&[1.0, 4.0]), M::column(&[2.0])),
        "trainSet.trainInd(2) = 4 is not an index into panoIds (1..3)",
    );
    check(
        act(ids(), M::column(&[1.0]), M::column(&[0.0])),
        "valSet.valInd(1) = 0 is not an index",
    );
    check(
        act(ids(), M::column(&[1.5]), M::column(&[1.0])),
        "trainSet.trainInd(1) = 1.5 is not an index",
    );
    check(
        act(ids(), M::column(&[1.0]), M::column(&[])),
        "valSet.valInd is empty (no val pairs)",
    );
    check(
        act(ids(), M::str("1"), M::column(&[1.0])),
        "trainSet.trainInd is a char array, expected numbers",
    );
    check(
        act(M::column(&[1.0]), M::column(&[1.0]), M::column(&[1.0])),
        "'panoIds' is a numeric array, expected a char matrix or a cell array of strings",
    );
    check(
        act(
            M::cell(vec![M::str("p1"), M::str("")]),
            M::column(&[1.0]),
            M::column(&[1.0]),
        ),
        "panoIds(2) is empty",
    );
    check(
        mat_file(
            &[
                ("panoIds", ids()),
                ("trainSet", M::scalar(1.0)),
                ("valSet", M::scalar(1.0)),
            ],
            false,
            false,
        ),
        "'trainSet' is a numeric array, expected a struct",
    );
    check(
        mat_file(
            &[
                ("panoIds", ids()),
                ("trainSet", M::structs(vec![vec![("idx", M::scalar(1.0))]])),
            ],
            false,
            false,
        ),
        "'trainSet' has no field 'trainInd'",
    );
    check(
        mat_file(&[("panoIds", ids())], false, false),
        "no variable 'trainSet'",
    );
    check(
        mat_file(&[("x", M::scalar(1.0))], false, false),
        "no variable 'panoIds'",
    );
    assert!(matches!(
        read_cvact(&r.join("absent"), CvactLayout::Polar),
        Err(DatasetError::MissingRoot { .. })
    ));
    let e = read_cvact(r, CvactLayout::Polar).unwrap_err();
    assert!(
        matches!(e, DatasetError::Io { .. }) && e.to_string().contains("ACT_data.mat"),
        "{e}"
    );
}
