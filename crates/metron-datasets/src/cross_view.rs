//! Cross-view geo-localisation datasets: CVUSA, CVACT and VIGOR, in their distributed layouts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::mat::{MatData, parse_mat};
use crate::table::read_table;
use crate::{DatasetError, Result, Sample, Split};

/// Aligned satellite / ground pairs of one split (row i of one matches row i of the other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSplit {
    /// The split's name (`train`, `val`), the prefix of the names [`PairSplit::to_splits`] gives.
    pub name: String,
    /// The satellite (aerial) image of each pair, in pair order.
    pub satellite: Vec<PathBuf>,
    /// The ground-level (street-view) image of each pair, in pair order.
    pub ground: Vec<PathBuf>,
}

impl PairSplit {
    /// The pairs as two retrieval splits, `<name>-ground` (the queries) and `<name>-satellite`
    /// (the gallery), so the registry, `metron datasets check` and the evaluation see them like
    /// any query/gallery dataset: each pair is one class (its location), named by its
    /// zero-padded index, so label i is pair i in both splits and the labels compare directly.
    pub fn to_splits(&self) -> [Split; 2] {
        let n = self.ground.len().min(self.satellite.len());
        let width = n.saturating_sub(1).to_string().len();
        let classes: Vec<String> = (0..n).map(|i| format!("{i:0width$}")).collect();
        let split = |side: &str, paths: &[PathBuf]| Split {
            name: format!("{}-{side}", self.name),
            samples: paths[..n]
                .iter()
                .enumerate()
                .map(|(label, p)| Sample {
                    path: p.clone(),
                    label,
                    bbox: None,
                })
                .collect(),
            classes: classes.clone(),
        };
        [
            split("ground", &self.ground),
            split("satellite", &self.satellite),
        ]
    }
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

/// Which CVACT image folders [`read_cvact`] pairs (SAIG's `--polar` and its non-polar quirk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvactLayout {
    /// Both splits: `polar_streetview1/<id>_grdView.png` with `polar_map1/<id>_satView_polish.png`
    /// (satellite images polar-transformed beforehand, as SAIG's `--polar 1` expects).
    Polar,
    /// Both splits: `streetview/<id>_grdView.jpg` with `satview_polish/<id>_satView_polish.png`
    /// (SAIG's non-polar training layout, used for validation too).
    NonPolar,
    /// SAIG's non-polar code as published: training as [`CvactLayout::NonPolar`], but
    /// validation reads `polar_streetview1/<id>_grdView.png` with
    /// `satview_polish/<id>_satView_polish.jpg`. Kept to reproduce its numbers.
    NonPolarSaigVal,
}

impl CvactLayout {
    fn paths(self, root: &Path, id: &str, val: bool) -> (PathBuf, PathBuf) {
        let (ground, sat) = match (self, val) {
            (CvactLayout::Polar, _) => (
                format!("polar_streetview1/{id}_grdView.png"),
                format!("polar_map1/{id}_satView_polish.png"),
            ),
            (CvactLayout::NonPolarSaigVal, true) => (
                format!("polar_streetview1/{id}_grdView.png"),
                format!("satview_polish/{id}_satView_polish.jpg"),
            ),
            _ => (
                format!("streetview/{id}_grdView.jpg"),
                format!("satview_polish/{id}_satView_polish.png"),
            ),
        };
        (root.join(ground), root.join(sat))
    }
}

/// CVACT (`ANU_data_small`): the splits of `<root>/ACT_data.mat` (SAIG reads it from its
/// working directory; copy it into the root), images laid out as `layout` says.
pub fn read_cvact(root: &Path, layout: CvactLayout) -> Result<Vec<PairSplit>> {
    if !root.is_dir() {
        return Err(DatasetError::MissingRoot {
            path: root.to_path_buf(),
            env: "METRON_CVACT_ROOT".into(),
        });
    }
    let path = root.join("ACT_data.mat");
    let bytes = std::fs::read(&path).map_err(|e| DatasetError::io(&path, e))?;
    parse_cvact(root, &bytes, layout)
}

/// [`read_cvact`] on the bytes of `ACT_data.mat` (errors name `<root>/ACT_data.mat`).
///
/// `panoIds` (a char matrix, one id per row, or a cell array of strings) names the locations;
/// `trainSet.trainInd` and `valSet.valInd` index it from 1, giving the `train` and `val`
/// splits in that order.
pub fn parse_cvact(root: &Path, mat: &[u8], layout: CvactLayout) -> Result<Vec<PairSplit>> {
    let path = root.join("ACT_data.mat");
    let file = parse_mat(&path, mat)?;
    let fail = |what: String| DatasetError::Layout {
        path: path.clone(),
        what,
    };
    let ids = file
        .get("panoIds")
        .ok_or_else(|| fail("no variable 'panoIds'".into()))?;
    let ids = ids.strings().ok_or_else(|| {
        fail(format!(
            "'panoIds' is a {}, expected a char matrix or a cell array of strings",
            ids.class_name()
        ))
    })?;
    if let Some(k) = ids.iter().position(String::is_empty) {
        return Err(fail(format!("panoIds({}) is empty", k + 1)));
    }
    [
        ("train", "trainSet", "trainInd"),
        ("val", "valSet", "valInd"),
    ]
    .into_iter()
    .map(|(name, set, field)| {
        let var = file
            .get(set)
            .ok_or_else(|| fail(format!("no variable '{set}'")))?;
        if !matches!(var.data, MatData::Struct { .. }) {
            return Err(fail(format!(
                "'{set}' is a {}, expected a struct",
                var.class_name()
            )));
        }
        let index = var
            .field(0, field)
            .ok_or_else(|| fail(format!("'{set}' has no field '{field}'")))?;
        let index = index.numbers().ok_or_else(|| {
            fail(format!(
                "{set}.{field} is a {}, expected numbers",
                index.class_name()
            ))
        })?;
        if index.is_empty() {
            return Err(fail(format!("{set}.{field} is empty (no {name} pairs)")));
        }
        let (mut satellite, mut ground) = (Vec::new(), Vec::new());
        for (k, &v) in index.iter().enumerate() {
            if v.fract() != 0.0 || !(1.0..=ids.len() as f64).contains(&v) {
                return Err(fail(format!(
                    "{set}.{field}({}) = {v} is not an index into panoIds (1..{})",
                    k + 1,
                    ids.len()
                )));
            }
            let (g, s) = layout.paths(root, &ids[v as usize - 1], name == "val");
            ground.push(g);
            satellite.push(s);
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
    /// The panorama image (`<root>/<city>/panorama/<file>`).
    pub path: PathBuf,
    /// `[positive, semi1, semi2, semi3]`, indices into [`VigorSplit::satellites`].
    pub satellites: [usize; 4],
    /// The panorama's pixel offset (the label file's two `delta` values) inside each satellite
    /// image, in the same order as `satellites`.
    pub offsets: [[f32; 2]; 4],
}

/// A VIGOR split: every satellite image of its cities (a running index over the cities'
/// `satellite_list.txt` in order) and the panoramas that query them.
#[derive(Debug, Clone, PartialEq)]
pub struct VigorSplit {
    /// The split's name (`train`, `test`), the prefix of the names [`VigorSplit::to_splits`] gives.
    pub name: String,
    /// Every satellite image of the split's cities; [`VigorPanorama::satellites`] indexes it.
    pub satellites: Vec<PathBuf>,
    /// The split's panoramas (the queries), city by city in label-file order.
    pub panoramas: Vec<VigorPanorama>,
}

impl VigorSplit {
    /// The split as `<name>-ground` (the panoramas) and `<name>-satellite` (every satellite
    /// image), one class per satellite image: a panorama's label is its positive satellite's
    /// (the semi-positives are in [`VigorPanorama::satellites`]).
    pub fn to_splits(&self) -> [Split; 2] {
        let n = self.satellites.len();
        let width = n.saturating_sub(1).to_string().len();
        let classes: Vec<String> = (0..n).map(|i| format!("{i:0width$}")).collect();
        let sample = |path: &PathBuf, label: usize| Sample {
            path: path.clone(),
            label,
            bbox: None,
        };
        [
            Split {
                name: format!("{}-ground", self.name),
                samples: self
                    .panoramas
                    .iter()
                    .map(|p| sample(&p.path, p.satellites[0]))
                    .collect(),
                classes: classes.clone(),
            },
            Split {
                name: format!("{}-satellite", self.name),
                samples: self
                    .satellites
                    .iter()
                    .enumerate()
                    .map(|(i, p)| sample(p, i))
                    .collect(),
                classes,
            },
        ]
    }
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
