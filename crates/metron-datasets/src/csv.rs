//! The generic CSV format for a user's own data (open-metric-learning's convention):
//! a header, then `path,label,split[,is_query,is_gallery][,x1,y1,x2,y2]` per line, columns
//! found by their header names (in any order; other columns are ignored; the box may also be
//! spelled `x_1,y_1,x_2,y_2` as OML does, and a row without a box leaves all four empty).
//! Paths are relative to the CSV's folder unless
//! absolute; labels are any strings (class names); splits any names (`train`,
//! `validation`, ...).
//!
//! With `is_query,is_gallery` (booleans: `True`/`False`, `true`/`false`, `1`/`0`; empty means
//! false, as pandas writes for training rows), the flagged rows also form two extra splits,
//! `query` and `gallery`, after the others, sharing one class list so their labels compare
//! directly (as In-shop's do). A row may be both; it stays in its own split too.

use std::collections::BTreeMap;
use std::path::Path;

use crate::table::{Item, class_names, split_from};
use crate::{Dataset, DatasetError, Result};

/// Reads a dataset CSV.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
    parse_csv(path, &text)
}

/// [`read_csv`] on the text of the CSV at `path` (which names it in errors and anchors
/// relative image paths).
pub fn parse_csv(path: &Path, text: &str) -> Result<Dataset> {
    let base = path.parent().unwrap_or(Path::new("."));
    let err = |line: usize, what: String| DatasetError::Line {
        path: path.to_path_buf(),
        line,
        what,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(err(
            1,
            "empty file: expected a header path,label,split".into(),
        ));
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(pc), Some(lc), Some(sc)) = (col("path"), col("label"), col("split")) else {
        return Err(err(
            1,
            format!("the header must name path, label and split columns, got '{header}'"),
        ));
    };
    let corner = |plain: &str, oml: &str| col(plain).or_else(|| col(oml));
    let bbox_cols = match (
        corner("x1", "x_1"),
        corner("y1", "y_1"),
        corner("x2", "x_2"),
        corner("y2", "y_2"),
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
        (None, None, None, None) => None,
        _ => return Err(err(1, "a box needs all of x1, y1, x2, y2".into())),
    };
    let flag_cols = match (col("is_query"), col("is_gallery")) {
        (Some(q), Some(g)) => Some([q, g]),
        (None, None) => None,
        _ => return Err(err(1, "is_query and is_gallery come together".into())),
    };
    // split -> rows of (path, class name, box)
    let mut rows: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    let (mut query, mut gallery): (Vec<Item>, Vec<Item>) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let n = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(err(
                n,
                format!("{} fields, the header has {}", fields.len(), columns.len()),
            ));
        }
        let rel = fields[pc];
        if rel.is_empty() {
            return Err(err(n, "empty path".into()));
        }
        let p = Path::new(rel);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        let bbox = match bbox_cols {
            // A row without a box leaves all four empty (pandas' NaN).
            Some(cols) if cols.iter().all(|&c| fields[c].is_empty()) => None,
            Some(cols) => {
                let mut b = [0.0f32; 4];
                for (k, &c) in cols.iter().enumerate() {
                    b[k] = fields[c]
                        .parse()
                        .ok()
                        .filter(|v: &f32| v.is_finite())
                        .ok_or_else(|| {
                            err(
                                n,
                                format!("{} = '{}' is not a number", columns[c], fields[c]),
                            )
                        })?;
                }
                if b[2] < b[0] || b[3] < b[1] {
                    return Err(err(n, format!("box {b:?} has x2 < x1 or y2 < y1")));
                }
                Some(b)
            }
            None => None,
        };
        let split = fields[sc];
        if flag_cols.is_some() && (split == "query" || split == "gallery") {
            return Err(err(
                n,
                format!("split '{split}' clashes with the split is_query/is_gallery derive"),
            ));
        }
        let item = (p, fields[lc].to_string(), bbox);
        if let Some(cols) = flag_cols {
            let mut flag = [false; 2];
            for (k, &c) in cols.iter().enumerate() {
                flag[k] = match fields[c] {
                    "True" | "true" | "TRUE" | "1" | "1.0" => true,
                    "False" | "false" | "FALSE" | "0" | "0.0" | "" => false,
                    other => {
                        return Err(err(
                            n,
                            format!("{} = '{other}' is not a boolean", columns[c]),
                        ));
                    }
                };
            }
            if flag[0] {
                query.push(item.clone());
            }
            if flag[1] {
                gallery.push(item.clone());
            }
        }
        rows.entry(split.to_string()).or_default().push(item);
    }
    if rows.is_empty() {
        return Err(err(2, "no samples after the header".into()));
    }
    let mut splits: Vec<_> = rows
        .into_iter()
        .map(|(name, rows)| {
            let classes = class_names(rows.iter().map(|r| &r.1));
            split_from(&name, rows, &classes)
        })
        .collect();
    if flag_cols.is_some() {
        for (name, items) in [("query", &query), ("gallery", &gallery)] {
            if items.is_empty() {
                return Err(DatasetError::Layout {
                    path: path.to_path_buf(),
                    what: format!("is_query/is_gallery given, but no row is a {name}"),
                });
            }
        }
        let shared = class_names(query.iter().chain(&gallery).map(|i| &i.1));
        splits.push(split_from("query", query, &shared));
        splits.push(split_from("gallery", gallery, &shared));
    }
    Ok(Dataset {
        name: path.display().to_string(),
        splits,
    })
}
