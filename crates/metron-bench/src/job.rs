//! What one benchmark measures: the job, its size, and who it is compared with.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::flops;

/// The metric of an exact kNN search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnnMetric {
    /// Cosine similarity on unit vectors (faiss `IndexFlatIP`).
    Cosine,
    /// Squared Euclidean distance (faiss `IndexFlatL2`).
    L2,
}

/// A backbone family at the size its paper trains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// ResNet-50 (CGD).
    Resnet50,
    /// ResNeXt-50 32x4d.
    Resnext50,
    /// VGG-16's convolutional trunk (WGOL).
    Vgg16,
    /// ViT-S/16.
    VitS16,
    /// ViT-B/16 (Smooth-AP's DINO backbone).
    VitB16,
    /// SAIG-S (cross-view geo-localisation).
    SaigS,
}

impl Model {
    /// Every family, in report order.
    pub const ALL: [Model; 6] = [
        Model::Resnet50,
        Model::Resnext50,
        Model::Vgg16,
        Model::VitS16,
        Model::VitB16,
        Model::SaigS,
    ];

    /// The name `peer.py --model` takes.
    pub fn name(self) -> &'static str {
        match self {
            Model::Resnet50 => "resnet50",
            Model::Resnext50 => "resnext50",
            Model::Vgg16 => "vgg16",
            Model::VitS16 => "vit_s16",
            Model::VitB16 => "vit_b16",
            Model::SaigS => "saig_s",
        }
    }

    /// The input its paper trains at: 224 x 224, or SAIG's 128 x 512 ground panoramas.
    pub fn paper_input(self) -> [usize; 2] {
        match self {
            Model::SaigS => [128, 512],
            _ => [224, 224],
        }
    }

    /// Whether the model has attention layers (whose PyTorch peer can use a fused kernel).
    pub fn has_attention(self) -> bool {
        matches!(self, Model::VitS16 | Model::VitB16 | Model::SaigS)
    }
}

/// Inference (no autodiff, evaluation-mode normalisation) or one training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Forward in evaluation mode, without gradients.
    Infer,
    /// Forward in training mode, then backward of the mean of the features (no optimizer
    /// update: that is one elementwise pass over the weights on either side).
    Train,
}

/// The batch losses timed forward + backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    /// Triplet margin loss (margin 0.05) on the batch-hard triplets.
    BatchHardTriplet,
    /// Multi-Similarity loss with its defaults, all pairs.
    MultiSimilarity,
    /// NT-Xent at temperature 0.07.
    Ntxent,
    /// Smooth-AP (tau 0.01, 4 samples per class).
    SmoothAp,
}

impl LossName {
    /// Every loss, in report order.
    pub const ALL: [LossName; 4] = [
        LossName::BatchHardTriplet,
        LossName::MultiSimilarity,
        LossName::Ntxent,
        LossName::SmoothAp,
    ];

    /// The name `peer.py --loss` takes.
    pub fn name(self) -> &'static str {
        match self {
            LossName::BatchHardTriplet => "batch_hard_triplet",
            LossName::MultiSimilarity => "multi_similarity",
            LossName::Ntxent => "ntxent",
            LossName::SmoothAp => "smooth_ap",
        }
    }
}

/// One job at one size, run the same way by metron and by each peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Exact self-kNN (top `k`, each row's own hit excluded) of `n` random unit vectors.
    Knn {
        /// Rows (queries = gallery).
        n: usize,
        /// Dimension.
        dim: usize,
        /// Neighbours per row.
        k: usize,
        /// Similarity.
        metric: KnnMetric,
        /// The `.npy` both sides read (written by the suite).
        data: PathBuf,
    },
    /// A batch loss, forward + backward, on `n` unit rows of `dim`, 4 per class.
    Loss {
        /// Which loss.
        loss: LossName,
        /// Batch size.
        n: usize,
        /// Embedding dimension.
        dim: usize,
    },
    /// A backbone's inference or training step on random images.
    Backbone {
        /// Which network.
        model: Model,
        /// Inference or training step.
        mode: Mode,
        /// Images per batch.
        batch: usize,
        /// Input height and width.
        input: [usize; 2],
    },
    /// One epoch of the image pipeline: JPEG decode, random resized crop to 224, flip,
    /// normalise, batches of 64, decoded on all cores.
    Data {
        /// The JPEGs (written by the suite).
        images: PathBuf,
        /// How many there are.
        count: usize,
    },
    /// `cargo run --release --example cgd` end to end (Omniglot): metron only.
    Cgd {
        /// The built example binary.
        binary: PathBuf,
    },
}

impl Job {
    /// A stable key naming the job and its size (not its files), used to match a job with
    /// the same one in the previous report.
    pub fn key(&self) -> String {
        match self {
            Job::Knn {
                n, dim, k, metric, ..
            } => format!("knn/{}/n{n}/d{dim}/k{k}", metric_name(*metric)),
            Job::Loss { loss, n, dim } => format!("loss/{}/n{n}/d{dim}", loss.name()),
            Job::Backbone {
                model,
                mode,
                batch,
                input,
            } => format!(
                "{}/{}/b{batch}/{}x{}",
                model.name(),
                mode_name(*mode),
                input[0],
                input[1]
            ),
            Job::Data { count, .. } => format!("data/jpeg-rrc224/{count}"),
            Job::Cgd { .. } => "cgd/omniglot/end-to-end".to_string(),
        }
    }

    /// A short human description for the report's table.
    pub fn describe(&self) -> String {
        match self {
            Job::Knn {
                n, dim, k, metric, ..
            } => format!(
                "exact kNN, {} , N = {n}, d = {dim}, top {k}",
                metric_name(*metric)
            )
            .replace(" ,", ","),
            Job::Loss { loss, n, dim } => format!("{} fwd+bwd, {n} x {dim}", loss.name()),
            Job::Backbone {
                model,
                mode,
                batch,
                input,
            } => format!(
                "{} {}, batch {batch}, {} x {}",
                model.name(),
                match mode {
                    Mode::Infer => "inference",
                    Mode::Train => "training step",
                },
                input[0],
                input[1]
            ),
            Job::Data { count, .. } => {
                format!("JPEG decode + RandomResizedCrop 224 + flip, epoch of {count}")
            }
            Job::Cgd { .. } => "cgd example end to end (Omniglot, defaults)".to_string(),
        }
    }

    /// Floating-point operations of one repetition, where the job is GEMM-bound and the count
    /// is exact enough to compare with the cores' peak (kNN, backbones).
    pub fn flops(&self) -> Option<f64> {
        match self {
            Job::Knn { n, dim, .. } => Some(2.0 * (*n as f64) * (*n as f64) * (*dim as f64)),
            Job::Backbone {
                model,
                mode,
                batch,
                input,
            } => {
                let forward = flops::forward_macs(*model, *input) * 2.0 * *batch as f64;
                Some(match mode {
                    Mode::Infer => forward,
                    // Backward does two GEMMs per forward GEMM (input and weight gradients).
                    Mode::Train => 3.0 * forward,
                })
            }
            _ => None,
        }
    }

    /// The peers this job is compared with.
    pub fn peers(&self, cpu_has_avx512: bool) -> Vec<Peer> {
        match self {
            Job::Knn { metric, .. } => {
                let name = match metric {
                    KnnMetric::Cosine => "faiss IndexFlatIP",
                    KnnMetric::L2 => "faiss IndexFlatL2",
                };
                let mut peers = vec![Peer::new("faiss", name, "faiss")];
                // faiss-cpu's bundled OpenBLAS may not know the CPU and fall back to generic
                // kernels; its AVX-512 kernels are the fair comparison, and the
                // as-installed one is what a user gets.
                if cpu_has_avx512 {
                    peers.push(
                        Peer::new(
                            "faiss",
                            &format!("{name}, OpenBLAS SkylakeX kernels"),
                            "faiss avx512",
                        )
                        .with_env("OPENBLAS_CORETYPE", "SkylakeX"),
                    );
                }
                peers
            }
            Job::Loss { loss, .. } => vec![
                Peer::new(
                    "pml",
                    &format!("pytorch-metric-learning {}", loss.name()),
                    "pml",
                ),
                match loss {
                    LossName::SmoothAp => Peer::new(
                        "torch",
                        "the original Smooth-AP code (PyTorch)",
                        "original code",
                    ),
                    _ => Peer::new("torch", "plain PyTorch, vectorised", "plain torch"),
                },
            ],
            Job::Backbone { model, .. } => {
                let lib = match model {
                    Model::VitS16 | Model::VitB16 => "timm",
                    Model::SaigS => "PyTorch transcription",
                    _ => "torchvision",
                };
                let mut peers = vec![Peer::new(
                    "torch",
                    &format!("PyTorch eager ({lib})"),
                    "torch",
                )];
                if model.has_attention() {
                    peers.push(
                        Peer::new(
                            "torch",
                            &format!("PyTorch eager ({lib}), fused attention off"),
                            "torch unfused",
                        )
                        .with_arg("--no-fused-attn"),
                    );
                }
                peers
            }
            Job::Data { .. } => vec![Peer::new(
                "torchvision",
                "torchvision DataLoader",
                "torchvision",
            )],
            Job::Cgd { .. } => Vec::new(),
        }
    }

    /// `peer.py`'s arguments for this job (without `--peer`, `--reps` and `--threads`).
    pub fn peer_args(&self) -> Vec<String> {
        let s = |v: &str| v.to_string();
        match self {
            Job::Knn {
                k, metric, data, ..
            } => vec![
                s("--job"),
                s("knn"),
                s("--data"),
                data.display().to_string(),
                s("--k"),
                k.to_string(),
                s("--metric"),
                s(metric_name(*metric)),
            ],
            Job::Loss { loss, n, dim } => vec![
                s("--job"),
                s("loss"),
                s("--loss"),
                s(loss.name()),
                s("--n"),
                n.to_string(),
                s("--dim"),
                dim.to_string(),
            ],
            Job::Backbone {
                model,
                mode,
                batch,
                input,
            } => vec![
                s("--job"),
                s("backbone"),
                s("--model"),
                s(model.name()),
                s("--mode"),
                s(mode_name(*mode)),
                s("--batch"),
                batch.to_string(),
                s("--height"),
                input[0].to_string(),
                s("--width"),
                input[1].to_string(),
            ],
            Job::Data { images, .. } => vec![
                s("--job"),
                s("data"),
                s("--images"),
                images.display().to_string(),
                s("--batch"),
                s("64"),
            ],
            Job::Cgd { .. } => Vec::new(),
        }
    }
}

/// A peer implementation of a job: `peer.py --peer NAME` with extra arguments and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `peer.py --peer` value.
    pub peer: String,
    /// What the report calls it.
    pub label: String,
    /// A few words for the charts (`faiss avx512`, `plain torch`).
    pub short: String,
    /// Extra `peer.py` arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Peer {
    fn new(peer: &str, label: &str, short: &str) -> Self {
        Peer {
            peer: peer.to_string(),
            label: label.to_string(),
            short: short.to_string(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn with_arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }
}

fn metric_name(metric: KnnMetric) -> &'static str {
    match metric {
        KnnMetric::Cosine => "cosine",
        KnnMetric::L2 => "l2",
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Infer => "infer",
        Mode::Train => "train",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_per_size_and_survive_a_json_round_trip() {
        let jobs = [
            Job::Loss {
                loss: LossName::Ntxent,
                n: 384,
                dim: 512,
            },
            Job::Backbone {
                model: Model::VitB16,
                mode: Mode::Train,
                batch: 4,
                input: [224, 224],
            },
            Job::Backbone {
                model: Model::VitB16,
                mode: Mode::Train,
                batch: 8,
                input: [224, 224],
            },
        ];
        let keys: Vec<String> = jobs.iter().map(Job::key).collect();
        assert_eq!(keys[0], "loss/ntxent/n384/d512");
        assert_eq!(keys[1], "vit_b16/train/b4/224x224");
        assert_ne!(keys[1], keys[2]);
        for job in &jobs {
            let back: Job = serde_json::from_str(&serde_json::to_string(job).unwrap()).unwrap();
            assert_eq!(&back, job);
        }
    }

    #[test]
    fn training_counts_three_forward_passes_and_knn_two_n_squared_d() {
        let infer = Job::Backbone {
            model: Model::Resnet50,
            mode: Mode::Infer,
            batch: 2,
            input: [224, 224],
        };
        let train = Job::Backbone {
            model: Model::Resnet50,
            mode: Mode::Train,
            batch: 2,
            input: [224, 224],
        };
        assert_eq!(train.flops().unwrap(), 3.0 * infer.flops().unwrap());
        let knn = Job::Knn {
            n: 1000,
            dim: 64,
            k: 10,
            metric: KnnMetric::Cosine,
            data: PathBuf::new(),
        };
        assert_eq!(knn.flops(), Some(2.0 * 1000.0 * 1000.0 * 64.0));
    }
}
