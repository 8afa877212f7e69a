//! Whitespace-separated list files, the format of most dataset distributions.

use std::path::Path;

use crate::{DatasetError, Result};

/// A sample before labelling: image path, class name, box.
pub(crate) type Item = (std::path::PathBuf, String, Option<[f32; 4]>);

/// One non-empty line: its 1-based number and its fields.
pub(crate) struct Row {
    pub line: usize,
    pub fields: Vec<String>,
}

impl Row {
    /// Field `i` parsed as `T`, or an error naming the file, line and field.
    pub(crate) fn parse<T: std::str::FromStr>(
        &self,
        path: &Path,
        i: usize,
        name: &str,
    ) -> Result<T> {
        let raw = &self.fields[i];
        raw.parse().map_err(|_| DatasetError::Line {
            path: path.to_path_buf(),
            line: self.line,
            what: format!("{name} = '{raw}' is not a valid number"),
        })
    }
}

/// Reads `path`, skips `skip` leading lines, and checks every remaining non-empty line has
/// exactly `fields` whitespace-separated fields.
pub(crate) fn read_table(path: &Path, skip: usize, fields: usize) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
    parse_table(path, &text, skip, Some(fields))
}

/// [`read_table`] on the text of `path`; with `fields` `None` lines may have any number.
pub(crate) fn parse_table(
    path: &Path,
    text: &str,
    skip: usize,
    fields: Option<usize>,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(skip) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if let Some(want) = fields
            && f.len() != want
        {
            return Err(DatasetError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                what: format!("{} fields, expected {want}", f.len()),
            });
        }
        rows.push(Row {
            line: i + 1,
            fields: f,
        });
    }
    Ok(rows)
}

/// Builds a split from `(path, class name)` pairs, labels dense over `classes` (sorted).
pub(crate) fn split_from(name: &str, items: Vec<Item>, classes: &[String]) -> crate::Split {
    crate::Split {
        name: name.into(),
        samples: items
            .into_iter()
            .map(|(path, class, bbox)| crate::Sample {
                path,
                label: classes.binary_search(&class).expect("class listed"),
                bbox,
            })
            .collect(),
        classes: classes.to_vec(),
    }
}

/// Sorted distinct class names of `items`.
pub(crate) fn class_names<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut c: Vec<String> = items.into_iter().cloned().collect();
    c.sort();
    c.dedup();
    c
}
