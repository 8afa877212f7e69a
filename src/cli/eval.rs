//! `metron eval`: retrieval metrics of an embedding file, and cross-view geo-localisation
//! metrics (CVUSA/CVACT, VIGOR) of ground and aerial embedding files.

use std::path::{Path, PathBuf};

use clap::Args;
use metron_core::Embeddings;
use metron_core::NpyElement;
use metron_metrics::{
    Compute, CrossViewReport, Real, RetrievalConfig, RetrievalReport, cvusa_recall,
    evaluate_retrieval, vigor_recall,
};
use ndarray::{Array2, ArrayView2};

use super::CliError;
use super::common::{
    WithPrecision, in_common_precision, parse_compute, parse_similarity, read_finite,
};
use super::progress::Bar;

/// Arguments of `metron eval`: embedding and label files and the metrics to compute.
///
/// Two modes: class-label retrieval (`--labels`, optionally `--gallery` with
/// `--gallery-labels`), and cross-view geo-localisation (`--cross-view`: ground embeddings
/// against aerial ones, paired by row or through `--vigor-labels`).
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Query embeddings (`.npy` f32/f64 [N, d], or `.safetensors`). Without --gallery every
    /// item queries all the others (self-retrieval). With --cross-view: the ground images.
    #[arg(long, visible_alias = "query")]
    pub embeddings: PathBuf,
    /// Labels of --embeddings: `.npy` of any integer type, or a text file, one per line.
    #[arg(long, required_unless_present = "cross_view")]
    pub labels: Option<PathBuf>,
    /// Gallery embeddings, for query/gallery protocols such as In-shop (then --gallery-labels
    /// is required). With --cross-view: the aerial (satellite) images.
    #[arg(long)]
    pub gallery: Option<PathBuf>,
    /// Labels of --gallery.
    #[arg(long, requires = "gallery")]
    pub gallery_labels: Option<PathBuf>,
    /// Similarity: cosine, ip (inner product) or l2 (squared Euclidean).
    #[arg(long, default_value = "cosine")]
    pub metric: String,
    /// The K of Recall@K, comma-separated [default: 1,2,4,8; with --cross-view 1,5,10].
    // An Option rather than a clap default: the two modes have different defaults.
    #[arg(long, value_delimiter = ',')]
    pub k: Option<Vec<usize>>,
    /// Cross-view geo-localisation as SAIG evaluates it: --embeddings holds the ground
    /// images, --gallery the aerial ones, and ground row i matches aerial row i
    /// (CVUSA/CVACT) unless --vigor-labels says otherwise. Scores are inner products of
    /// L2-normalised rows (the files are normalised here). Reports Recall@K and top-1%
    /// recall.
    // Class labels, clustering and the similarity choice have no meaning in this protocol;
    // clap rejects them instead of silently ignoring them.
    #[arg(
        long,
        requires = "gallery",
        conflicts_with_all = ["labels", "gallery_labels", "metric", "map", "no_clustering", "seed"]
    )]
    pub cross_view: bool,
    /// VIGOR protocol for --cross-view: one line per ground row, `positive semi1 semi2 semi3`
    /// as whitespace-separated 0-based rows of --gallery (or an integer `.npy` [N, k]). Adds
    /// the hit rate (semi-positives left out); in Recall@K semi-positives count as misses.
    #[arg(long, requires = "cross_view")]
    pub vigor_labels: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also compute mAP over the full ranking (two more passes over the gallery).
    #[arg(long)]
    pub map: bool,
    /// Skip k-means, NMI and AMI.
    #[arg(long)]
    pub no_clustering: bool,
    /// Search the gallery in this many shards of whole 1024-row blocks, merged exactly (the
    /// same report; see `metron knn --shards`).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Seed of the k-means behind NMI and AMI.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the similarity GEMMs run: cpu (plain CPU code, the fastest on a CPU), wgpu,
    /// tch, tch:cuda:N or cuda:N (a Burn device; ranking stays on the host).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The Ks of class-label retrieval when `--k` is not given (CGD / Smooth-AP report these).
const RETRIEVAL_KS: [usize; 4] = [1, 2, 4, 8];
/// The Ks of cross-view evaluation when `--k` is not given (SAIG's CVUSA/CVACT table).
const CROSS_VIEW_KS: [usize; 3] = [1, 5, 10];

fn read_set(emb_path: &Path, labels_path: &Path) -> Result<(Embeddings, Vec<i64>), CliError> {
    let emb = read_finite(emb_path)?;
    let labels = metron_core::read_labels(labels_path)?;
    if labels.len() != emb.nrows() {
        return Err(CliError::Usage(format!(
            "{}: {} labels, but {} has {} rows",
            labels_path.display(),
            labels.len(),
            emb_path.display(),
            emb.nrows()
        )));
    }
    if emb.nrows() == 0 {
        return Err(CliError::Usage(format!(
            "{}: no embeddings",
            emb_path.display()
        )));
    }
    Ok((emb, labels))
}

struct Evaluation<'a> {
    query_labels: &'a [i64],
    gallery_labels: Option<&'a [i64]>,
    config: &'a RetrievalConfig,
    bar: &'a Bar,
}

impl WithPrecision for Evaluation<'_> {
    type Output = metron_metrics::Result<RetrievalReport>;
    fn run<T: Real + NpyElement>(
        self,
        query: ArrayView2<'_, T>,
        gallery: Option<ArrayView2<'_, T>>,
    ) -> Self::Output {
        let gallery = gallery.zip(self.gallery_labels);
        evaluate_retrieval(query, self.query_labels, gallery, self.config, self.bar)
    }
}

/// Runs the class-label evaluation and returns the report (`--cross-view` is
/// [`evaluate_cross_view`]).
pub fn evaluate(args: &EvalArgs) -> Result<RetrievalReport, CliError> {
    if args.cross_view {
        return Err(CliError::Usage(
            "--cross-view is evaluated by evaluate_cross_view, not evaluate".into(),
        ));
    }
    // clap enforces this for the binary; the check keeps the library entry point honest.
    let Some(labels) = &args.labels else {
        return Err(CliError::Usage(
            "--labels is required (or --cross-view for ground/aerial embeddings)".into(),
        ));
    };
    // Checked before any file is read, so the message is about the flags, not the data.
    if let (Some(g), None) = (&args.gallery, &args.gallery_labels) {
        return Err(CliError::Usage(format!(
            "--gallery {} needs --gallery-labels (or --cross-view for ground/aerial embeddings)",
            g.display()
        )));
    }
    let similarity = parse_similarity(&args.metric)?;
    let compute = parse_compute(&args.device)?;
    let (query, query_labels) = read_set(&args.embeddings, labels)?;
    let gallery = match (&args.gallery, &args.gallery_labels) {
        (Some(g), Some(gl)) => Some(read_set(g, gl)?),
        _ => None,
    };
    let config = RetrievalConfig {
        ks: args.k.clone().unwrap_or_else(|| RETRIEVAL_KS.to_vec()),
        similarity,
        compute,
        clustering_seed: (!args.no_clustering).then_some(args.seed),
        full_map: args.map,
        shards: args.shards,
        ..Default::default()
    };
    let bar = Bar::new(query.nrows(), "kNN", args.quiet || args.json);
    let work = Evaluation {
        query_labels: &query_labels,
        gallery_labels: gallery.as_ref().map(|g| g.1.as_slice()),
        config: &config,
        bar: &bar,
    };
    let report =
        in_common_precision(&query, gallery.as_ref().map(|g| &g.0), work).map_err(|source| {
            CliError::Metrics {
                context: match &args.gallery {
                    Some(g) => format!("{} vs {}", args.embeddings.display(), g.display()),
                    None => args.embeddings.display().to_string(),
                },
                source,
            }
        })?;
    bar.finish();
    Ok(report)
}

/// The JSON object printed by `--json`: metric name -> value.
pub fn report_json(report: &RetrievalReport) -> serde_json::Value {
    serde_json::Value::Object(
        report
            .metrics()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::from(v)))
            .collect(),
    )
}

/// A human-readable table, with the setting that produced the numbers on top.
pub fn report_table(report: &RetrievalReport) -> String {
    let mut out = format!(
        "{} queries vs {} gallery items ({}), {} similarity\n",
        report.num_queries,
        report.num_gallery,
        if report.self_retrieval {
            "self-retrieval, query excluded"
        } else {
            "query/gallery"
        },
        report.similarity
    );
    if report.lone_queries > 0 {
        out.push_str(&format!(
            "{} queries have no relevant item: they count as misses in Recall@K and are left \
             out of the other metrics\n",
            report.lone_queries
        ));
    }
    for (name, value) in report.metrics() {
        out.push_str(&format!("{name:<16} {value:.4}\n"));
    }
    out
}

/// `metron eval`: the text to print on stdout.
pub fn run(args: &EvalArgs) -> Result<String, CliError> {
    if args.cross_view {
        let evaluation = evaluate_cross_view(args)?;
        return Ok(if args.json {
            cross_view_json(&evaluation).to_string()
        } else {
            cross_view_table(&evaluation)
        });
    }
    let report = evaluate(args)?;
    Ok(if args.json {
        report_json(&report).to_string()
    } else {
        report_table(&report)
    })
}

// ---------------------------------------------------------------------------------------------
// Cross-view geo-localisation (`--cross-view`)
// ---------------------------------------------------------------------------------------------

/// The cross-view protocol an evaluation followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossViewProtocol {
    /// CVUSA / CVACT: ground row i matches aerial row i.
    Cvusa,
    /// VIGOR: one positive and some semi-positive aerial rows per ground row, from a file.
    Vigor,
}

impl CrossViewProtocol {
    /// The name in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            CrossViewProtocol::Cvusa => "cvusa",
            CrossViewProtocol::Vigor => "vigor",
        }
    }
}

/// A finished `--cross-view` evaluation: the protocol, the set sizes and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossViewEvaluation {
    /// CVUSA/CVACT pairing or VIGOR labels.
    pub protocol: CrossViewProtocol,
    /// Ground images (rows of --embeddings).
    pub queries: usize,
    /// Aerial images (rows of --gallery).
    pub references: usize,
    /// Semi-positives per ground image (VIGOR; 0 for CVUSA/CVACT).
    pub semi_positives: usize,
    /// Recall@K, top-1% recall and, for VIGOR, the hit rate.
    pub report: CrossViewReport,
}

/// Where a VIGOR label value sits, numbered as an editor (text lines) or numpy (`.npy` rows)
/// numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPlace {
    /// 1-based line of a text file.
    Line(usize),
    /// 0-based row of a `.npy` array.
    Row(usize),
}

impl std::fmt::Display for LabelPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelPlace::Line(line) => write!(f, ":{line}"),
            LabelPlace::Row(row) => write!(f, ": row {row}"),
        }
    }
}

/// Input files of `--cross-view` that do not fit the protocol. The binary prints the message
/// as one line; every variant names the file(s) and the place.
#[derive(Debug, thiserror::Error)]
pub enum CrossViewInputError {
    /// CVUSA/CVACT pairs rows by index, so both files need the same number of rows.
    #[error(
        "--cross-view pairs ground row i with aerial row i, but {ground} has {ground_rows} rows \
         and {aerial} has {aerial_rows} (give --vigor-labels for unpaired sets)"
    )]
    RowCountMismatch {
        /// The ground embedding file (--embeddings).
        ground: PathBuf,
        /// Its rows.
        ground_rows: usize,
        /// The aerial embedding file (--gallery).
        aerial: PathBuf,
        /// Its rows.
        aerial_rows: usize,
    },
    /// An embedding file with no rows.
    #[error("{path}: no embeddings")]
    Empty {
        /// The empty file.
        path: PathBuf,
    },
    /// An all-zero row has no direction, so it cannot be L2-normalised.
    #[error("{path}: row {row} has zero norm, so it cannot be L2-normalised")]
    ZeroRow {
        /// The embedding file.
        path: PathBuf,
        /// The 0-based row.
        row: usize,
    },
    /// The labels file is not UTF-8 text.
    #[error("{path}:{line}: not valid UTF-8")]
    NotUtf8 {
        /// The labels file.
        path: PathBuf,
        /// The 1-based line where decoding failed.
        line: usize,
    },
    /// A line with no fields before the last non-blank line.
    #[error("{path}:{line}: empty line; expected `positive semi1 semi2 ...` satellite rows")]
    EmptyLine {
        /// The labels file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// A field that is not an integer.
    #[error("{path}:{line}: field {field}: expected a satellite row index, found {found:?}")]
    BadField {
        /// The labels file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The 1-based field (1 = the positive).
        field: usize,
        /// The text found there.
        found: String,
    },
    /// A line with another number of fields than the first one.
    #[error(
        "{path}:{line}: {found} fields, but line 1 has {expected}; every line needs the \
         positive and the same number of semi-positives"
    )]
    FieldCount {
        /// The labels file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// Fields on that line.
        found: usize,
        /// Fields on line 1.
        expected: usize,
    },
    /// A satellite index outside `0..rows` of the aerial file.
    #[error(
        "{path}{place}: field {field}: satellite index {value} is out of range; {aerial} has \
         {rows} rows (indices are 0-based)"
    )]
    IndexOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// The line (text) or row (`.npy`) holding the value.
        place: LabelPlace,
        /// The 1-based field (1 = the positive).
        field: usize,
        /// The value found.
        value: i64,
        /// The aerial embedding file (--gallery).
        aerial: PathBuf,
        /// Its rows.
        rows: usize,
    },
    /// A `.npy` labels array that is not `[N, k]` with k >= 1.
    #[error("{path}: VIGOR labels must be [N, 1 + semi-positives], got shape {shape:?}")]
    LabelShape {
        /// The labels file.
        path: PathBuf,
        /// The shape found.
        shape: Vec<usize>,
    },
    /// One label row per ground image is needed.
    #[error("{path}: {labels} label rows, but {ground} has {ground_rows} rows")]
    LabelRows {
        /// The labels file.
        path: PathBuf,
        /// Its label rows.
        labels: usize,
        /// The ground embedding file (--embeddings).
        ground: PathBuf,
        /// Its rows.
        ground_rows: usize,
    },
}

// The message is all the binary prints; CliError::Usage carries it with the same exit code.
impl From<CrossViewInputError> for CliError {
    fn from(e: CrossViewInputError) -> Self {
        CliError::Usage(e.to_string())
    }
}

/// Reads an embedding file of a cross-view evaluation: finite values (the same check and
/// message as the class-label path), at least one row, every row L2-normalised.
fn read_normalised(path: &Path) -> Result<Embeddings, CliError> {
    let emb = read_finite(path)?;
    if emb.nrows() == 0 {
        return Err(CrossViewInputError::Empty {
            path: path.to_path_buf(),
        }
        .into());
    }
    Ok(match emb {
        Embeddings::F32(mut a) => {
            l2_normalise_rows(&mut a, path)?;
            Embeddings::F32(a)
        }
        Embeddings::F64(mut a) => {
            l2_normalise_rows(&mut a, path)?;
            Embeddings::F64(a)
        }
    })
}

/// Divides every row by its L2 norm, in the file's own precision.
fn l2_normalise_rows<T: Real>(a: &mut Array2<T>, path: &Path) -> Result<(), CrossViewInputError> {
    // Below this the sum of squares may have lost bits to subnormals (f32), and above
    // f32/f64::MAX it is infinite: then the row is first scaled by its largest magnitude.
    let tiny = T::from_f64(1e-30);
    let abs = |x: T| if x < T::ZERO { T::ZERO - x } else { x };
    for (row, mut r) in a.rows_mut().into_iter().enumerate() {
        let sum_sq = r.iter().fold(T::ZERO, |s, &x| s + x * x);
        let norm = if sum_sq.is_finite() && sum_sq >= tiny {
            sum_sq.sqrt()
        } else {
            let max = r
                .iter()
                .fold(T::ZERO, |m, &x| if abs(x) > m { abs(x) } else { m });
            if max == T::ZERO {
                return Err(CrossViewInputError::ZeroRow {
                    path: path.to_path_buf(),
                    row,
                });
            }
            let scaled = r.iter().fold(T::ZERO, |s, &x| {
                let y = x / max;
                s + y * y
            });
            max * scaled.sqrt()
        };
        r.mapv_inplace(|x| x / norm);
    }
    Ok(())
}

/// Reads `--vigor-labels`: a text file (one line per ground row, whitespace-separated
/// satellite rows, positive first) or an integer `.npy` `[N, k]`. Every value is checked
/// against the `aerial_rows` rows of `aerial`.
fn read_vigor_labels(
    path: &Path,
    aerial: &Path,
    aerial_rows: usize,
) -> Result<Array2<i64>, CliError> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (labels, places): (Array2<i64>, fn(usize) -> LabelPlace) = if is_npy {
        let raw = metron_core::read_npy_i64(path)?;
        let shape = raw.shape().to_vec();
        let labels = raw
            .into_dimensionality::<ndarray::Ix2>()
            .ok()
            .filter(|a| a.ncols() > 0)
            .ok_or_else(|| CrossViewInputError::LabelShape {
                path: path.to_path_buf(),
                shape,
            })?;
        (labels, LabelPlace::Row)
    } else {
        (read_vigor_text(path)?, |row| LabelPlace::Line(row + 1))
    };
    for ((row, col), &value) in labels.indexed_iter() {
        if usize::try_from(value).map_or(true, |v| v >= aerial_rows) {
            return Err(CrossViewInputError::IndexOutOfRange {
                path: path.to_path_buf(),
                place: places(row),
                field: col + 1,
                value,
                aerial: aerial.to_path_buf(),
                rows: aerial_rows,
            }
            .into());
        }
    }
    Ok(labels)
}

/// The text form of `--vigor-labels`; blank lines are allowed only at the end (as for
/// `--labels`), a byte-order mark is skipped.
fn read_vigor_text(path: &Path) -> Result<Array2<i64>, CliError> {
    let bytes = std::fs::read(path).map_err(|source| metron_core::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = std::str::from_utf8(body).map_err(|e| CrossViewInputError::NotUtf8 {
        path: path.to_path_buf(),
        line: body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
    })?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let used = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |last| last + 1);
    let mut width = 0;
    let mut values = Vec::new();
    for (i, line) in lines[..used].iter().enumerate() {
        let line_no = i + 1;
        if line.is_empty() {
            return Err(CrossViewInputError::EmptyLine {
                path: path.to_path_buf(),
                line: line_no,
            }
            .into());
        }
        let before = values.len();
        for (f, field) in line.split_whitespace().enumerate() {
            let value = field
                .parse::<i64>()
                .map_err(|_| CrossViewInputError::BadField {
                    path: path.to_path_buf(),
                    line: line_no,
                    field: f + 1,
                    found: field.to_string(),
                })?;
            values.push(value);
        }
        let found = values.len() - before;
        if i == 0 {
            width = found;
        } else if found != width {
            return Err(CrossViewInputError::FieldCount {
                path: path.to_path_buf(),
                line: line_no,
                found,
                expected: width,
            }
            .into());
        }
    }
    Array2::from_shape_vec((used, width), values).map_err(|_| {
        // Unreachable: every line was checked to have `width` fields.
        CliError::Usage(format!("{}: inconsistent label rows", path.display()))
    })
}

struct CrossViewWork<'a> {
    vigor_labels: Option<ArrayView2<'a, i64>>,
    ks: &'a [usize],
    compute: &'a Compute,
}

impl WithPrecision for CrossViewWork<'_> {
    type Output = metron_metrics::Result<CrossViewReport>;
    fn run<T: Real + NpyElement>(
        self,
        ground: ArrayView2<'_, T>,
        aerial: Option<ArrayView2<'_, T>>,
    ) -> Self::Output {
        let Some(aerial) = aerial else {
            return Err(metron_metrics::Error::EmptySet { set: "gallery" });
        };
        match self.vigor_labels {
            Some(labels) => vigor_recall(ground, aerial, labels, self.ks, self.compute),
            None => cvusa_recall(aerial, ground, self.ks, self.compute),
        }
    }
}

/// Runs `--cross-view`: reads and L2-normalises the ground (--embeddings) and aerial
/// (--gallery) rows, then scores them with the CVUSA/CVACT pairing or the VIGOR labels.
pub fn evaluate_cross_view(args: &EvalArgs) -> Result<CrossViewEvaluation, CliError> {
    let Some(aerial_path) = &args.gallery else {
        return Err(CliError::Usage(
            "--cross-view needs --gallery with the aerial embeddings".into(),
        ));
    };
    let compute = parse_compute(&args.device)?;
    let ground = read_normalised(&args.embeddings)?;
    let aerial = read_normalised(aerial_path)?;
    let labels = match &args.vigor_labels {
        Some(path) => {
            let labels = read_vigor_labels(path, aerial_path, aerial.nrows())?;
            if labels.nrows() != ground.nrows() {
                return Err(CrossViewInputError::LabelRows {
                    path: path.clone(),
                    labels: labels.nrows(),
                    ground: args.embeddings.clone(),
                    ground_rows: ground.nrows(),
                }
                .into());
            }
            Some(labels)
        }
        None => {
            if ground.nrows() != aerial.nrows() {
                return Err(CrossViewInputError::RowCountMismatch {
                    ground: args.embeddings.clone(),
                    ground_rows: ground.nrows(),
                    aerial: aerial_path.clone(),
                    aerial_rows: aerial.nrows(),
                }
                .into());
            }
            None
        }
    };
    let ks = args.k.clone().unwrap_or_else(|| CROSS_VIEW_KS.to_vec());
    let work = CrossViewWork {
        vigor_labels: labels.as_ref().map(|l| l.view()),
        ks: &ks,
        compute: &compute,
    };
    let report =
        in_common_precision(&ground, Some(&aerial), work).map_err(|source| CliError::Metrics {
            context: format!("{} vs {}", args.embeddings.display(), aerial_path.display()),
            source,
        })?;
    Ok(CrossViewEvaluation {
        protocol: if labels.is_some() {
            CrossViewProtocol::Vigor
        } else {
            CrossViewProtocol::Cvusa
        },
        queries: ground.nrows(),
        references: aerial.nrows(),
        semi_positives: labels.as_ref().map_or(0, |l| l.ncols() - 1),
        report,
    })
}

/// The JSON object printed by `--cross-view --json`: `protocol`, `queries`, `references`,
/// `recall_at_K` per K, `top_1_percent`, `top_1_percent_k` and `hit_rate` (null for
/// CVUSA/CVACT); metrics are fractions in [0, 1].
pub fn cross_view_json(e: &CrossViewEvaluation) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("protocol".into(), e.protocol.name().into());
    out.insert("queries".into(), e.queries.into());
    out.insert("references".into(), e.references.into());
    for &(k, recall) in &e.report.recall_at {
        out.insert(format!("recall_at_{k}"), recall.into());
    }
    out.insert(
        "top_1_percent".into(),
        e.report.recall_at_top1_percent.into(),
    );
    out.insert("top_1_percent_k".into(), e.report.top1_percent_k.into());
    out.insert(
        "hit_rate".into(),
        e.report
            .hit_rate
            .map_or(serde_json::Value::Null, serde_json::Value::from),
    );
    serde_json::Value::Object(out)
}

/// A human-readable table of a cross-view evaluation, with the protocol on top.
pub fn cross_view_table(e: &CrossViewEvaluation) -> String {
    let protocol = match e.protocol {
        CrossViewProtocol::Cvusa => "CVUSA/CVACT: ground i matches aerial i".to_string(),
        CrossViewProtocol::Vigor => format!(
            "VIGOR: one positive and {} semi-positives per ground image",
            e.semi_positives
        ),
    };
    let mut out = format!(
        "{} ground queries vs {} aerial references ({protocol}), inner product of \
         L2-normalised rows\n",
        e.queries, e.references
    );
    for &(k, recall) in &e.report.recall_at {
        out.push_str(&format!("{:<16} {recall:.4}\n", format!("recall_at_{k}")));
    }
    out.push_str(&format!(
        "{:<16} {:.4}  (K = {})\n",
        "top_1_percent", e.report.recall_at_top1_percent, e.report.top1_percent_k
    ));
    if let Some(hit) = e.report.hit_rate {
        out.push_str(&format!(
            "{:<16} {hit:.4}  (semi-positives left out)\n",
            "hit_rate"
        ));
    }
    out
}
