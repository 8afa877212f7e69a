//! iNaturalist 2018 in its two forms: the competition's COCO-style JSON (`train2018.json`,
//! `val2018.json`), and the plain path lists of the Smooth-AP code, which never parses the
//! JSON and splits by class instead.
//!
//! Both name a class `<supercategory>/<category_id>`, the two directories above each image in
//! `train_val2018/`, which is Smooth-AP's class key; so the same class has the same name under
//! either reader.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::retrieval_sets::require_root;
use crate::table::{Item, class_names, split_from};
use crate::{Dataset, DatasetError, Result, Split};

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    category_id: u64,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: u64,
    #[serde(default)]
    supercategory: Option<String>,
}

/// The competition JSON under `<root>`: splits `train` (`train2018.json`) and `val`
/// (`val2018.json`), image paths `<root>/<file_name>`. Both splits share one class list (the
/// union of the files' categories), since val holds the same species as train.
pub fn read_inaturalist_json(root: &Path) -> Result<Dataset> {
    require_root(root, "METRON_INAT_ROOT")?;
    let mut splits = Vec::new();
    for (name, file) in [("train", "train2018.json"), ("val", "val2018.json")] {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
        splits.push(parse_inaturalist_json(&path, &text, root, name)?);
    }
    let all = class_names(splits.iter().flat_map(|s| &s.classes));
    for split in &mut splits {
        for s in &mut split.samples {
            s.label = all
                .binary_search(&split.classes[s.label])
                .expect("the union holds every class");
        }
        split.classes = all.clone();
    }
    Ok(Dataset {
        name: "inaturalist".into(),
        splits,
    })
}

/// One competition JSON file (`path` names it in errors) as split `split`: every image in
/// file order with the category of its annotation; the classes are all the file's categories.
/// Every image needs exactly one annotation, as in train2018 / val2018 (test2018 has none and
/// is refused).
pub fn parse_inaturalist_json(path: &Path, text: &str, root: &Path, split: &str) -> Result<Split> {
    let coco: CocoFile = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        DatasetError::Line {
            path: path.to_path_buf(),
            line: e.line(),
            what: format!(
                "column {}: {}",
                e.column(),
                full.strip_suffix(&position).unwrap_or(&full)
            ),
        }
    })?;
    let fail = |what: String| DatasetError::Layout {
        path: path.to_path_buf(),
        what,
    };
    let mut category: HashMap<u64, String> = HashMap::new();
    for (k, c) in coco.categories.iter().enumerate() {
        let name = match c.supercategory.as_deref() {
            Some(s) if !s.is_empty() => format!("{s}/{}", c.id),
            _ => c.id.to_string(),
        };
        if category.insert(c.id, name).is_some() {
            return Err(fail(format!("categories[{k}]: id {} appears twice", c.id)));
        }
    }
    let mut image: HashMap<u64, usize> = HashMap::new();
    for (k, im) in coco.images.iter().enumerate() {
        if im.file_name.is_empty() {
            return Err(fail(format!("images[{k}]: empty file_name")));
        }
        if image.insert(im.id, k).is_some() {
            return Err(fail(format!("images[{k}]: id {} appears twice", im.id)));
        }
    }
    if coco.images.is_empty() {
        return Err(fail("no images".into()));
    }
    let mut class_of: Vec<Option<&String>> = vec![None; coco.images.len()];
    for (k, a) in coco.annotations.iter().enumerate() {
        let &i = image.get(&a.image_id).ok_or_else(|| {
            fail(format!(
                "annotations[{k}]: image_id {} is not in images",
                a.image_id
            ))
        })?;
        let c = category.get(&a.category_id).ok_or_else(|| {
            fail(format!(
                "annotations[{k}]: category_id {} is not in categories",
                a.category_id
            ))
        })?;
        if class_of[i].replace(c).is_some() {
            return Err(fail(format!(
                "annotations[{k}]: image {} has a second annotation",
                a.image_id
            )));
        }
    }
    let mut items: Vec<Item> = Vec::with_capacity(coco.images.len());
    for (im, c) in coco.images.iter().zip(&class_of) {
        let c = c.ok_or_else(|| fail(format!("image {} has no annotation", im.id)))?;
        items.push((root.join(&im.file_name), c.clone(), None));
    }
    let classes = class_names(category.values());
    Ok(split_from(split, items, &classes))
}

/// Smooth-AP's path lists: `lists` pairs a split name with its list file (relative to `root`),
/// e.g. `("train", "Inat_dataset_splits/Inaturalist_train_set1.txt")`. The splits are
/// class-disjoint, so each has its own class list.
pub fn read_inaturalist_lists(root: &Path, lists: &[(&str, &Path)]) -> Result<Dataset> {
    require_root(root, "METRON_INAT_ROOT")?;
    if lists.is_empty() {
        return Err(DatasetError::Layout {
            path: root.to_path_buf(),
            what: "no list files given".into(),
        });
    }
    let splits = lists
        .iter()
        .map(|(name, file)| {
            let path = root.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
            parse_inaturalist_list(&path, &text, root, name)
        })
        .collect::<Result<_>>()?;
    Ok(Dataset {
        name: "inaturalist".into(),
        splits,
    })
}

/// One Smooth-AP list (`path` names it in errors): a path per line,
/// `train_val2018/<supercategory>/<category_id>/<file>`, relative to `root`. The class is
/// `<supercategory>/<category_id>` (the id as a plain number, as the JSON reader writes it);
/// the id must be a number and belong to one supercategory.
pub fn parse_inaturalist_list(path: &Path, text: &str, root: &Path, split: &str) -> Result<Split> {
    let err = |line: usize, what: String| DatasetError::Line {
        path: path.to_path_buf(),
        line,
        what,
    };
    let mut items: Vec<Item> = Vec::new();
    let mut super_of: HashMap<u64, String> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let rel = match fields[..] {
            [] => continue,
            [rel] => rel,
            _ => {
                return Err(err(
                    n,
                    format!("{} fields, expected 1 (an image path)", fields.len()),
                ));
            }
        };
        let parts: Vec<&str> = rel.split('/').collect();
        let k = parts.len();
        if k < 3 || parts[k - 3..].iter().any(|p| p.is_empty()) {
            return Err(err(
                n,
                format!("'{rel}' is not <supercategory>/<category_id>/<file>"),
            ));
        }
        let (sup, id) = (parts[k - 3], parts[k - 2]);
        let id_num: u64 = id
            .parse()
            .map_err(|_| err(n, format!("category_id = '{id}' is not a valid number")))?;
        let known = super_of.entry(id_num).or_insert_with(|| sup.to_string());
        if known != sup {
            return Err(err(
                n,
                format!("category {id} is under '{sup}' here but under '{known}' earlier"),
            ));
        }
        items.push((root.join(rel), format!("{sup}/{id_num}"), None));
    }
    if items.is_empty() {
        return Err(DatasetError::Layout {
            path: path.to_path_buf(),
            what: format!("lists no images (the {split} split would be empty)"),
        });
    }
    let classes = class_names(items.iter().map(|i| &i.1));
    Ok(split_from(split, items, &classes))
}
