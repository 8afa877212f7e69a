//! Omniglot in its original layout: `<subset>/<Alphabet>/characterNN/<image>_<drawer>.png`.
//!
//! A character is identified by (alphabet, character), not by subset: the small background
//! subsets repeat Greek and Latin with byte-identical files, which are merged (a file name seen
//! twice for one character is kept once). Classes are split disjointly: in sorted
//! `Alphabet/characterNN` order, the first half trains and the second half tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Dataset, DatasetError, Result, Sample, Split};

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DatasetError::io(dir, e))?
        .map(|e| {
            e.map(|e| e.path())
                .map_err(|err| DatasetError::io(dir, err))
        })
        .collect::<Result<_>>()?;
    out.sort();
    Ok(out)
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads Omniglot under `root` (any number of subset folders).
pub fn read_omniglot(root: &Path) -> Result<Dataset> {
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot {
            path: root.to_path_buf(),
            env: "METRON_OMNIGLOT_ROOT".into(),
        });
    }
    // class key -> file name -> path (first subset wins for duplicated files)
    let mut classes: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for subset in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        for alphabet in sorted_entries(&subset)?.into_iter().filter(|p| p.is_dir()) {
            for character in sorted_entries(&alphabet)?
                .into_iter()
                .filter(|p| p.is_dir())
            {
                let key = format!("{}/{}", name(&alphabet), name(&character));
                let files: Vec<PathBuf> = sorted_entries(&character)?
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
                    .collect();
                if files.is_empty() {
                    return Err(DatasetError::Layout {
                        path: character,
                        what: "a character folder without .png images".into(),
                    });
                }
                let entry = classes.entry(key).or_default();
                for f in files {
                    entry.entry(name(&f)).or_insert(f);
                }
            }
        }
    }
    if classes.is_empty() {
        return Err(DatasetError::Layout {
            path: root.to_path_buf(),
            what: "no <subset>/<Alphabet>/characterNN/*.png found".into(),
        });
    }
    let keys: Vec<&String> = classes.keys().collect();
    let half = keys.len().div_ceil(2);
    let split = |name: &str, range: std::ops::Range<usize>| {
        let names: Vec<String> = keys[range.clone()].iter().map(|k| k.to_string()).collect();
        let samples = names
            .iter()
            .enumerate()
            .flat_map(|(label, k)| {
                classes[k].values().map(move |path| Sample {
                    path: path.clone(),
                    label,
                    bbox: None,
                })
            })
            .collect();
        Split {
            name: name.into(),
            samples,
            classes: names,
        }
    };
    Ok(Dataset {
        name: "omniglot".into(),
        splits: vec![split("train", 0..half), split("test", half..keys.len())],
    })
}
