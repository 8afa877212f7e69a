//! The generic CSV format for a user's own data (open-metric-learning's convention):
//! a header, then `path,label,split[,is_query,is_gallery][,x1,y1,x2,y2]` per line. Paths are
//! relative to the CSV's folder unless absolute; labels are any strings (class names); splits
//! any names (`train`, `validation`, ...).

use std::collections::BTreeMap;
use std::path::Path;

use crate::table::{Item, class_names, split_from};
use crate::{Dataset, DatasetError, Result};

/// Reads a dataset CSV.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
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
    let bbox_cols = match (col("x1"), col("y1"), col("x2"), col("y2")) {
        (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
        (None, None, None, None) => None,
        _ => return Err(err(1, "a box needs all of x1, y1, x2, y2".into())),
    };
    // split -> rows of (path, class name, box)
    let mut rows: BTreeMap<String, Vec<Item>> = BTreeMap::new();
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
            Some(cols) => {
                let mut b = [0.0f32; 4];
                for (k, &c) in cols.iter().enumerate() {
                    b[k] = fields[c].parse().map_err(|_| {
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
        rows.entry(fields[sc].to_string())
            .or_default()
            .push((p, fields[lc].to_string(), bbox));
    }
    if rows.is_empty() {
        return Err(err(2, "no samples after the header".into()));
    }
    let splits = rows
        .into_iter()
        .map(|(name, rows)| {
            let classes = class_names(rows.iter().map(|r| &r.1));
            split_from(&name, rows, &classes)
        })
        .collect();
    Ok(Dataset {
        name: path.display().to_string(),
        splits,
    })
}
