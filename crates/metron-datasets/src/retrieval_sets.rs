//! The deep-metric-learning retrieval benchmarks in their distributed layouts: CUB-200-2011,
//! Cars196, Stanford Online Products and In-shop Clothes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::mat::{MatData, parse_mat};
use crate::table::{Item, class_names, read_table, split_from};
use crate::{Dataset, DatasetError, Result};

pub(crate) fn require_root(root: &Path, env: &str) -> Result<()> {
    if root.is_dir() {
        Ok(())
    } else {
        Err(DatasetError::MissingRoot {
            path: root.to_path_buf(),
            env: env.into(),
        })
    }
}

/// CUB-200-2011 for retrieval (CGD / AntiMetric): classes 1-100 train, 101-200 test (the
/// official image split is not used). Reads `images.txt`, `image_class_labels.txt` and
/// `bounding_boxes.txt` (`x y w h`, kept as `[x, y, x + w, y + h]`); class names from
/// `classes.txt`.
pub fn read_cub(root: &Path) -> Result<Dataset> {
    require_root(root, "METRON_CUB_ROOT")?;
    let images_txt = root.join("images.txt");
    let labels_txt = root.join("image_class_labels.txt");
    let boxes_txt = root.join("bounding_boxes.txt");
    let classes_txt = root.join("classes.txt");
    let mut names: HashMap<u32, String> = HashMap::new();
    for r in read_table(&classes_txt, 0, 2)? {
        names.insert(r.parse(&classes_txt, 0, "class_id")?, r.fields[1].clone());
    }
    let mut paths: HashMap<u64, (usize, PathBuf)> = HashMap::new();
    for r in read_table(&images_txt, 0, 2)? {
        let id: u64 = r.parse(&images_txt, 0, "image_id")?;
        paths.insert(id, (r.line, root.join("images").join(&r.fields[1])));
    }
    let mut boxes: HashMap<u64, [f32; 4]> = HashMap::new();
    for r in read_table(&boxes_txt, 0, 5)? {
        let id: u64 = r.parse(&boxes_txt, 0, "image_id")?;
        let v: Vec<f32> = (1..5)
            .map(|i| r.parse(&boxes_txt, i, ["", "x", "y", "width", "height"][i]))
            .collect::<Result<_>>()?;
        boxes.insert(id, [v[0], v[1], v[0] + v[2], v[1] + v[3]]);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for r in read_table(&labels_txt, 0, 2)? {
        let id: u64 = r.parse(&labels_txt, 0, "image_id")?;
        let class: u32 = r.parse(&labels_txt, 1, "class_id")?;
        let line_err = |what: String| DatasetError::Line {
            path: labels_txt.clone(),
            line: r.line,
            what,
        };
        if !(1..=200).contains(&class) {
            return Err(line_err(format!("class_id {class} is outside 1..200")));
        }
        let Some((_, path)) = paths.get(&id) else {
            return Err(line_err(format!("image_id {id} is not in images.txt")));
        };
        let name = names
            .get(&class)
            .ok_or_else(|| line_err(format!("class_id {class} is not in classes.txt")))?;
        let item = (path.clone(), name.clone(), boxes.get(&id).copied());
        if class <= 100 { &mut train } else { &mut test }.push(item);
    }
    let split = |name: &str, items: Vec<_>| {
        let classes = class_names(items.iter().map(|i: &Item| &i.1));
        split_from(name, items, &classes)
    };
    Ok(Dataset {
        name: "cub".into(),
        splits: vec![split("train", train), split("test", test)],
    })
}

/// Cars196 (Stanford Cars) for retrieval (CGD / AntiMetric): `<root>/cars_annos.mat`, images
/// under `<root>/car_ims/`. Classes 1-98 train, 99-196 test (the file's own `test` flag, the
/// official classification split, is not used); boxes are the file's `bbox_x1, y1, x2, y2`.
pub fn read_cars196(root: &Path) -> Result<Dataset> {
    require_root(root, "METRON_CARS196_ROOT")?;
    let path = root.join("cars_annos.mat");
    let bytes = std::fs::read(&path).map_err(|e| DatasetError::io(&path, e))?;
    parse_cars196(root, &bytes)
}

/// [`read_cars196`] on the bytes of `cars_annos.mat` (errors name `<root>/cars_annos.mat`).
///
/// The `annotations` struct array gives each image's `relative_im_path`, box and `class`
/// (1..196). Classes are named by the `class_names` cell array where the file has one (the
/// distributed file does), else by their zero-padded number, so either way sorted names keep
/// one label per class.
pub fn parse_cars196(root: &Path, mat: &[u8]) -> Result<Dataset> {
    let path = root.join("cars_annos.mat");
    let file = parse_mat(&path, mat)?;
    let fail = |what: String| DatasetError::Layout {
        path: path.clone(),
        what,
    };
    let ann = file
        .get("annotations")
        .ok_or_else(|| fail("no variable 'annotations'".into()))?;
    let MatData::Struct { fields, .. } = &ann.data else {
        return Err(fail(format!(
            "'annotations' is a {}, expected a struct array",
            ann.class_name()
        )));
    };
    const NUMBERS: [&str; 5] = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class"];
    if let Some(missing) = std::iter::once("relative_im_path")
        .chain(NUMBERS)
        .find(|f| !fields.iter().any(|g| g == f))
    {
        return Err(fail(format!("'annotations' has no field '{missing}'")));
    }
    let names = match file.get("class_names") {
        None => None,
        Some(c) => {
            let names = c.strings().ok_or_else(|| {
                fail(format!(
                    "'class_names' is a {}, expected a cell array of strings",
                    c.class_name()
                ))
            })?;
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = names.iter().find(|n| !seen.insert(*n)) {
                return Err(fail(format!("'class_names' lists '{dup}' twice")));
            }
            Some(names)
        }
    };
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for i in 0..ann.numel() {
        let at = |f: &str| format!("annotations({}).{f}", i + 1);
        let field = |f: &str| {
            ann.field(i, f)
                .ok_or_else(|| fail(format!("{} is missing", at(f))))
        };
        let rel = field("relative_im_path")?
            .string()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                fail(format!(
                    "{} is not a non-empty string",
                    at("relative_im_path")
                ))
            })?;
        let mut v = [0.0f64; 5];
        for (k, f) in NUMBERS.iter().enumerate() {
            v[k] = field(f)?
                .scalar()
                .filter(|x| x.is_finite())
                .ok_or_else(|| fail(format!("{} is not a finite number", at(f))))?;
        }
        let class = v[4];
        if class.fract() != 0.0 || !(1.0..=196.0).contains(&class) {
            return Err(fail(format!("{} = {class} is outside 1..196", at("class"))));
        }
        let class = class as usize;
        let bbox = [v[0] as f32, v[1] as f32, v[2] as f32, v[3] as f32];
        if bbox[2] < bbox[0] || bbox[3] < bbox[1] {
            return Err(fail(format!(
                "annotations({}): box {bbox:?} has x2 < x1 or y2 < y1",
                i + 1
            )));
        }
        let name = match &names {
            Some(n) => n.get(class - 1).cloned().ok_or_else(|| {
                fail(format!(
                    "{} = {class} but 'class_names' has only {} entries",
                    at("class"),
                    n.len()
                ))
            })?,
            None => format!("{class:03}"),
        };
        let item = (root.join(rel), name, Some(bbox));
        if class <= 98 { &mut train } else { &mut test }.push(item);
    }
    let split = |name: &str, items: Vec<Item>, which: &str| {
        if items.is_empty() {
            return Err(fail(format!(
                "no images of classes {which} (the {name} split)"
            )));
        }
        let classes = class_names(items.iter().map(|i| &i.1));
        Ok(split_from(name, items, &classes))
    };
    Ok(Dataset {
        name: "cars196".into(),
        splits: vec![
            split("train", train, "1-98")?,
            split("test", test, "99-196")?,
        ],
    })
}

/// Stanford Online Products: `Ebay_train.txt` / `Ebay_test.txt` (a header line, then
/// `image_id class_id super_class_id path`); the label is the class id.
pub fn read_sop(root: &Path) -> Result<Dataset> {
    require_root(root, "METRON_SOP_ROOT")?;
    let mut splits = Vec::new();
    for (name, file) in [("train", "Ebay_train.txt"), ("test", "Ebay_test.txt")] {
        let path = root.join(file);
        let items: Vec<_> = read_table(&path, 1, 4)?
            .into_iter()
            .map(|r| {
                r.parse::<u64>(&path, 1, "class_id")?;
                Ok((root.join(&r.fields[3]), r.fields[1].clone(), None))
            })
            .collect::<Result<_>>()?;
        let classes = class_names(items.iter().map(|i: &Item| &i.1));
        splits.push(split_from(name, items, &classes));
    }
    Ok(Dataset {
        name: "sop".into(),
        splits,
    })
}

/// In-shop Clothes Retrieval: `Eval/list_eval_partition.txt` (the image count, a header, then
/// `image_name item_id evaluation_status`), images under `Img/`. Labels are item ids; the
/// query and gallery splits share one class list, so their labels compare directly (CGD
/// indexed them separately, correct only because both hold the same items).
pub fn read_inshop(root: &Path) -> Result<Dataset> {
    require_root(root, "METRON_INSHOP_ROOT")?;
    let path = root.join("Eval").join("list_eval_partition.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
    let declared: usize = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| DatasetError::Line {
            path: path.clone(),
            line: 1,
            what: "the first line must be the number of images".into(),
        })?;
    let rows = read_table(&path, 2, 3)?;
    if rows.len() != declared {
        return Err(DatasetError::Layout {
            path: path.clone(),
            what: format!("declares {declared} images but lists {}", rows.len()),
        });
    }
    let mut by_split: HashMap<&str, Vec<Item>> = HashMap::new();
    for r in &rows {
        let split = match r.fields[2].as_str() {
            s @ ("train" | "query" | "gallery") => s,
            other => {
                return Err(DatasetError::Line {
                    path: path.clone(),
                    line: r.line,
                    what: format!("evaluation_status '{other}' is not train, query or gallery"),
                });
            }
        };
        by_split.entry(split).or_default().push((
            root.join("Img").join(&r.fields[0]),
            r.fields[1].clone(),
            None,
        ));
    }
    let mut take = |s: &str| by_split.remove(s).unwrap_or_default();
    let (train, query, gallery) = (take("train"), take("query"), take("gallery"));
    let train_classes = class_names(train.iter().map(|i| &i.1));
    let eval_classes = class_names(query.iter().chain(&gallery).map(|i| &i.1));
    Ok(Dataset {
        name: "inshop".into(),
        splits: vec![
            split_from("train", train, &train_classes),
            split_from("query", query, &eval_classes),
            split_from("gallery", gallery, &eval_classes),
        ],
    })
}
