//! The list files of weakly-supervised object localisation (WGOL / SPA, inherited from the
//! SPG / DANet code): CUB-200-2011 and ILSVRC 2012 as classification splits whose evaluation
//! images carry their ground-truth boxes.
//!
//! Labels are the lists' own 0-based integers, since a classifier head is indexed by them: the
//! classes are `000`, `001`, ... (all of them in both splits, present or not), so a sample's
//! label is exactly the number its list gives.

use std::collections::HashMap;
use std::path::Path;

use crate::retrieval_sets::require_root;
use crate::table::{Row, parse_table};
use crate::{Dataset, DatasetError, Result, Sample, Split};

/// Which WGOL dataset, with its fixed layout under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgolSet {
    /// `list/train.txt`, `list/test.txt`, `list/test_boxes.txt`; images under `images/`;
    /// 200 classes; splits `train` and `test`.
    Cub,
    /// `list/train_list.txt`, `list/val_list.txt`, `list/val_bboxes.txt`; training images under
    /// `img_train/`, validation images under `img_val/`; 1000 classes; splits `train`, `val`.
    Ilsvrc,
}

impl WgolSet {
    fn classes(self) -> usize {
        match self {
            WgolSet::Cub => 200,
            WgolSet::Ilsvrc => 1000,
        }
    }

    /// Appended to a listed path that has no `.` anywhere (the original's test).
    fn extension(self) -> &'static str {
        match self {
            WgolSet::Cub => ".jpg",
            WgolSet::Ilsvrc => ".JPEG",
        }
    }

    fn files(self) -> [&'static str; 3] {
        match self {
            WgolSet::Cub => ["list/train.txt", "list/test.txt", "list/test_boxes.txt"],
            WgolSet::Ilsvrc => [
                "list/train_list.txt",
                "list/val_list.txt",
                "list/val_bboxes.txt",
            ],
        }
    }

    /// Image folders of the training and the evaluation split.
    fn dirs(self) -> [&'static str; 2] {
        match self {
            WgolSet::Cub => ["images", "images"],
            WgolSet::Ilsvrc => ["img_train", "img_val"],
        }
    }

    fn splits(self) -> [&'static str; 2] {
        match self {
            WgolSet::Cub => ["train", "test"],
            WgolSet::Ilsvrc => ["train", "val"],
        }
    }

    fn env(self) -> &'static str {
        match self {
            WgolSet::Cub => "METRON_CUB_ROOT",
            WgolSet::Ilsvrc => "METRON_ILSVRC_ROOT",
        }
    }
}

/// A classification dataset whose evaluation images carry every ground-truth box.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalizationDataset {
    /// Splits `train` and `test` (CUB) or `val` (ILSVRC). Evaluation samples hold their first
    /// box in [`Sample::bbox`]; training samples none.
    pub dataset: Dataset,
    /// `boxes[i]`: every box `[x1, y1, x2, y2]` of evaluation sample i (ILSVRC images may
    /// have several; localisation counts the best-overlapping one).
    pub boxes: Vec<Vec<[f32; 4]>>,
}

/// Reads the WGOL lists of `set` under `root` (layout in [`WgolSet`]).
pub fn read_wgol(root: &Path, set: WgolSet) -> Result<LocalizationDataset> {
    require_root(root, set.env())?;
    let texts = set
        .files()
        .map(|f| {
            let path = root.join(f);
            std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))
        })
        .into_iter()
        .collect::<Result<Vec<String>>>()?;
    parse_wgol(root, set, [&texts[0], &texts[1], &texts[2]])
}

/// [`read_wgol`] on the texts of the three list files in [`WgolSet`]'s order (training list,
/// evaluation list, boxes); errors name the files under `root`.
///
/// Lists hold `relative/path label`. CUB's box file holds `path label x y w h`, kept as
/// `[x, y, x + w - 1, y + h - 1]` (WGOL's inclusive-pixel boxes, unlike the retrieval CUB
/// reader's `x + w`); its label must agree with `test.txt`. ILSVRC's holds
/// `<name>.xml x1 y1 x2 y2 [x1 y1 x2 y2 ...]`, matched to the validation image of the same
/// file stem. Box lines for images the list does not hold are ignored.
pub fn parse_wgol(root: &Path, set: WgolSet, lists: [&str; 3]) -> Result<LocalizationDataset> {
    let paths = set.files().map(|f| root.join(f));
    let classes: Vec<String> = (0..set.classes()).map(|c| format!("{c:03}")).collect();
    let [train_dir, eval_dir] = set.dirs();
    let [train_name, eval_name] = set.splits();
    let train = parse_list(&paths[0], lists[0], set)?;
    let eval = parse_list(&paths[1], lists[1], set)?;
    let boxes_path = &paths[2];
    let line_err = |line: usize, what: String| DatasetError::Line {
        path: boxes_path.clone(),
        line,
        what,
    };
    let mut by_key: HashMap<String, BoxLine> = HashMap::new();
    match set {
        WgolSet::Cub => {
            for r in parse_table(boxes_path, lists[2], 0, Some(6))? {
                let label = parse_label(boxes_path, &r, set)?;
                let v: Vec<f32> = (2..6)
                    .map(|i| coordinate(boxes_path, &r, i, ["x", "y", "width", "height"][i - 2]))
                    .collect::<Result<_>>()?;
                if v[2] <= 0.0 || v[3] <= 0.0 {
                    return Err(line_err(
                        r.line,
                        format!("width {} and height {} must be positive", v[2], v[3]),
                    ));
                }
                let b = [v[0], v[1], v[0] + v[2] - 1.0, v[1] + v[3] - 1.0];
                let key = with_extension(&r.fields[0], set);
                let entry = BoxLine {
                    line: r.line,
                    label: Some(label),
                    boxes: vec![b],
                };
                if by_key.insert(key, entry).is_some() {
                    return Err(line_err(r.line, format!("'{}' listed twice", r.fields[0])));
                }
            }
        }
        WgolSet::Ilsvrc => {
            for r in parse_table(boxes_path, lists[2], 0, None)? {
                let n = r.fields.len();
                if n < 5 || (n - 1) % 4 != 0 {
                    return Err(line_err(
                        r.line,
                        format!("{n} fields, expected a file name then groups of x1 y1 x2 y2"),
                    ));
                }
                let mut boxes = Vec::with_capacity((n - 1) / 4);
                for g in 0..(n - 1) / 4 {
                    let mut b = [0.0f32; 4];
                    for (k, name) in ["x1", "y1", "x2", "y2"].into_iter().enumerate() {
                        b[k] = coordinate(boxes_path, &r, 1 + 4 * g + k, name)?;
                    }
                    if b[2] < b[0] || b[3] < b[1] {
                        return Err(line_err(
                            r.line,
                            format!("box {b:?} has x2 < x1 or y2 < y1"),
                        ));
                    }
                    boxes.push(b);
                }
                let entry = BoxLine {
                    line: r.line,
                    label: None,
                    boxes,
                };
                if by_key.insert(stem(&r.fields[0]), entry).is_some() {
                    return Err(line_err(r.line, format!("'{}' listed twice", r.fields[0])));
                }
            }
        }
    }
    let mut boxes = Vec::with_capacity(eval.len());
    let mut eval_samples = Vec::with_capacity(eval.len());
    for (line, key, label) in eval {
        let lookup = match set {
            WgolSet::Cub => key.clone(),
            WgolSet::Ilsvrc => stem(&key),
        };
        let Some(BoxLine {
            line: box_line,
            label: box_label,
            boxes: b,
        }) = by_key.get(&lookup)
        else {
            return Err(DatasetError::Layout {
                path: boxes_path.clone(),
                what: format!(
                    "no box for '{key}' ({} line {line})",
                    paths[1].file_name().unwrap_or_default().to_string_lossy()
                ),
            });
        };
        if let Some(l) = box_label
            && *l != label
        {
            return Err(line_err(
                *box_line,
                format!("label {l}, but the list gives '{key}' label {label}"),
            ));
        }
        eval_samples.push(Sample {
            path: root.join(eval_dir).join(&key),
            label,
            bbox: b.first().copied(),
        });
        boxes.push(b.clone());
    }
    let train_samples = train
        .into_iter()
        .map(|(_, key, label)| Sample {
            path: root.join(train_dir).join(key),
            label,
            bbox: None,
        })
        .collect();
    let split = |name: &str, samples: Vec<Sample>| Split {
        name: name.into(),
        samples,
        classes: classes.clone(),
    };
    Ok(LocalizationDataset {
        dataset: Dataset {
            name: match set {
                WgolSet::Cub => "cub-wgol".into(),
                WgolSet::Ilsvrc => "ilsvrc-wgol".into(),
            },
            splits: vec![
                split(train_name, train_samples),
                split(eval_name, eval_samples),
            ],
        },
        boxes,
    })
}

/// One line of a box file: its number, the label it repeats (CUB) and its boxes.
struct BoxLine {
    line: usize,
    label: Option<usize>,
    boxes: Vec<[f32; 4]>,
}

/// `(line, path with extension, label)` per entry of a `path label` list.
fn parse_list(path: &Path, text: &str, set: WgolSet) -> Result<Vec<(usize, String, usize)>> {
    let rows = parse_table(path, text, 0, Some(2))?;
    if rows.is_empty() {
        return Err(DatasetError::Layout {
            path: path.to_path_buf(),
            what: "lists no images (the split would be empty)".into(),
        });
    }
    rows.iter()
        .map(|r| {
            let label = parse_label(path, r, set)?;
            Ok((r.line, with_extension(&r.fields[0], set), label))
        })
        .collect()
}

fn parse_label(path: &Path, r: &Row, set: WgolSet) -> Result<usize> {
    let label: usize = r.parse(path, 1, "label")?;
    if label >= set.classes() {
        return Err(DatasetError::Line {
            path: path.to_path_buf(),
            line: r.line,
            what: format!("label {label} is outside 0..{}", set.classes() - 1),
        });
    }
    Ok(label)
}

fn coordinate(path: &Path, r: &Row, i: usize, name: &str) -> Result<f32> {
    let v: f32 = r.parse(path, i, name)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DatasetError::Line {
            path: path.to_path_buf(),
            line: r.line,
            what: format!("{name} = '{}' is not finite", r.fields[i]),
        })
    }
}

fn with_extension(p: &str, set: WgolSet) -> String {
    if p.contains('.') {
        p.to_string()
    } else {
        format!("{p}{}", set.extension())
    }
}

/// File name without folders and without its last extension.
fn stem(p: &str) -> String {
    let name = p.rsplit('/').next().unwrap_or(p);
    match name.rfind('.') {
        Some(i) if i > 0 => name[..i].to_string(),
        _ => name.to_string(),
    }
}
