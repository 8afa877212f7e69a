//! Cross-view geo-localisation datasets: CVUSA and VIGOR, in their distributed layouts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::table::read_table;
use crate::{DatasetError, Result};

/// Aligned satellite / ground pairs of one split (row i of one matches row i of the other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSplit {
    pub name: String,
    pub satellite: Vec<PathBuf>,
    pub ground: Vec<PathBuf>,
}

/// CVUSA: `splits/train-19zl.csv` and `splits/val-19zl.csv` with lines
/// `sat_path,ground_path,annotation_path` (the third is unused). With `polar`, satellite
/// images are read from the listed `bingmap/19/` paths (a folder of polar-transformed images,
/// as SAIG expects); without, from `bingmap_ori/` (the original aerial images).
pub fn read_cvusa(root: &Path, polar: bool) -> Result<Vec<PairSplit>> {
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot {
            path: root.to_path_buf(),
            env: "METRON_CVUSA_ROOT".into(),
        });
    }
    [("train", "train-19zl.csv"), ("val", "val-19zl.csv")]
        .into_iter()
        .map(|(name, file)| {
            let path = root.join("splits").join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
            let (mut satellite, mut ground) = (Vec::new(), Vec::new());
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let f: Vec<&str> = line.split(',').map(str::trim).collect();
                if f.len() < 2 || f[0].is_empty() || f[1].is_empty() {
                    return Err(DatasetError::Line {
                        path: path.clone(),
                        line: i + 1,
                        what: "expected sat_path,ground_path[,annotation_path]".into(),
                    });
                }
                let sat = if polar {
                    f[0].to_string()
                } else {
                    f[0].replacen("bingmap", "bingmap_ori", 1)
                };
                satellite.push(root.join(sat));
                ground.push(root.join(f[1]));
            }
            Ok(PairSplit {
                name: name.into(),
                satellite,
                ground,
            })
        })
        .collect()
}

/// One VIGOR panorama: its image, the global indices of its positive and three semi-positive
/// satellite images, and the panorama's pixel offset inside each.
#[derive(Debug, Clone, PartialEq)]
pub struct VigorPanorama {
    pub path: PathBuf,
    /// `[positive, semi1, semi2, semi3]`, indices into [`VigorSplit::satellites`].
    pub satellites: [usize; 4],
    pub offsets: [[f32; 2]; 4],
}

/// A VIGOR split: every satellite image of its cities (a running index over the cities'
/// `satellite_list.txt` in order) and the panoramas that query them.
#[derive(Debug, Clone, PartialEq)]
pub struct VigorSplit {
    pub name: String,
    pub satellites: Vec<PathBuf>,
    pub panoramas: Vec<VigorPanorama>,
}

const CITIES: [&str; 4] = ["NewYork", "Seattle", "SanFrancisco", "Chicago"];

/// VIGOR, same-area (every city in both splits; `same_area_balanced_{train,test}.txt`) or
/// cross-area (train NewYork + Seattle, test SanFrancisco + Chicago; `pano_label_balanced.txt`).
pub fn read_vigor(root: &Path, same_area: bool) -> Result<Vec<VigorSplit>> {
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot {
            path: root.to_path_buf(),
            env: "METRON_VIGOR_ROOT".into(),
        });
    }
    let plan: [(&str, &[&str], &str); 2] = if same_area {
        [
            ("train", &CITIES, "same_area_balanced_train.txt"),
            ("test", &CITIES, "same_area_balanced_test.txt"),
        ]
    } else {
        [
            ("train", &CITIES[..2], "pano_label_balanced.txt"),
            ("test", &CITIES[2..], "pano_label_balanced.txt"),
        ]
    };
    plan.into_iter()
        .map(|(name, cities, label_file)| {
            let mut satellites = Vec::new();
            let mut panoramas = Vec::new();
            for city in cities {
                let list = root.join("splits").join(city).join("satellite_list.txt");
                let offset = satellites.len();
                let mut index: HashMap<String, usize> = HashMap::new();
                for r in read_table(&list, 0, 1)? {
                    index.insert(r.fields[0].clone(), offset + index.len());
                    satellites.push(root.join(city).join("satellite").join(&r.fields[0]));
                }
                let labels = root.join("splits").join(city).join(label_file);
                for r in read_table(&labels, 0, 13)? {
                    let mut sats = [0usize; 4];
                    let mut offsets = [[0.0f32; 2]; 4];
                    for k in 0..4 {
                        let name = &r.fields[1 + 3 * k];
                        sats[k] = *index.get(name).ok_or_else(|| DatasetError::Line {
                            path: labels.clone(),
                            line: r.line,
                            what: format!("satellite '{name}' is not in {}", list.display()),
                        })?;
                        offsets[k] = [
                            r.parse(&labels, 2 + 3 * k, "delta")?,
                            r.parse(&labels, 3 + 3 * k, "delta")?,
                        ];
                    }
                    panoramas.push(VigorPanorama {
                        path: root.join(city).join("panorama").join(&r.fields[0]),
                        satellites: sats,
                        offsets,
                    });
                }
            }
            Ok(VigorSplit {
                name: name.into(),
                satellites,
                panoramas,
            })
        })
        .collect()
}
