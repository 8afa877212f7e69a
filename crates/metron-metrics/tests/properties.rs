//! Properties of the kNN engine and the metrics, checked against brute-force references
//! written independently here (full score matrix + sort), on inputs small enough for that.

use metron_metrics::{
    Blocking, Compute, Error, KMeansConfig, KnnOptions, NoProgress, RetrievalConfig, Similarity,
    evaluate_retrieval, kmeans, knn, knn_self, nmi,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.random_range(-1.0..1.0))
}

/// Brute-force neighbours: every score, sorted (closest first, lower index on ties).
fn brute(
    q: &Array2<f64>,
    g: &Array2<f64>,
    sim: Similarity,
    same: bool,
    k: usize,
) -> Vec<Vec<usize>> {
    (0..q.nrows())
        .map(|i| {
            let mut c: Vec<(f64, usize)> = (0..g.nrows())
                .filter(|&j| !(same && i == j))
                .map(|j| {
                    let (a, b) = (q.row(i), g.row(j));
                    let dot = a.dot(&b);
                    let key = match sim {
                        Similarity::InnerProduct => -dot,
                        Similarity::Cosine => -dot / (a.dot(&a).sqrt() * b.dot(&b).sqrt()),
                        Similarity::SquaredL2 => (&a - &b).mapv(|v| v * v).sum(),
                    };
                    (key, j)
                })
                .collect();
            c.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap().then(x.1.cmp(&y.1)));
            c.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect()
}

fn blockings() -> Vec<Blocking> {
    vec![
        Blocking::default(),
        Blocking {
            block_queries: 1,
            block_gallery: 1,
        },
        Blocking {
            block_queries: 7,
            block_gallery: 13,
        },
        Blocking {
            block_queries: 64,
            block_gallery: 5,
        },
    ]
}

#[test]
fn knn_equals_brute_force_for_every_metric_and_blocking() {
    let q = random(37, 9, 1);
    let g = random(53, 9, 2);
    for sim in [
        Similarity::Cosine,
        Similarity::InnerProduct,
        Similarity::SquaredL2,
    ] {
        let want_qg = brute(&q, &g, sim, false, 6);
        let want_self = brute(&g, &g, sim, true, 6);
        for blocking in blockings() {
            let opts = KnnOptions::new(sim).with_blocking(blocking);
            let got = knn(q.view(), g.view(), 6, &opts).unwrap();
            for (i, w) in want_qg.iter().enumerate() {
                assert_eq!(got.row(i), &w[..], "{sim} {blocking:?} query {i}");
            }
            let got = knn_self(g.view(), 6, &opts).unwrap();
            for (i, w) in want_self.iter().enumerate() {
                assert_eq!(got.row(i), &w[..], "{sim} {blocking:?} self {i}");
            }
        }
    }
}

#[test]
fn reported_values_are_the_metric_values() {
    let q = random(5, 4, 3);
    let g = random(8, 4, 4);
    for sim in [
        Similarity::Cosine,
        Similarity::InnerProduct,
        Similarity::SquaredL2,
    ] {
        let nn = knn(q.view(), g.view(), 8, &KnnOptions::new(sim)).unwrap();
        for i in 0..5 {
            for (&j, &v) in nn.row(i).iter().zip(nn.row_values(i)) {
                let (a, b) = (q.row(i), g.row(j));
                let want = match sim {
                    Similarity::InnerProduct => a.dot(&b),
                    Similarity::Cosine => a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt()),
                    Similarity::SquaredL2 => (&a - &b).mapv(|v| v * v).sum(),
                };
                assert!((v - want).abs() < 1e-12, "{sim}: {v} vs {want}");
            }
        }
    }
}

#[test]
fn exact_ties_go_to_the_lower_index_and_self_is_excluded_by_index() {
    // Rows 1, 4 and 6 are identical; row 0 is closest to all three equally.
    let mut g = random(9, 3, 5);
    let dup = g.row(1).to_owned();
    g.row_mut(4).assign(&dup);
    g.row_mut(6).assign(&dup);
    for blocking in blockings() {
        let opts = KnnOptions::new(Similarity::SquaredL2).with_blocking(blocking);
        let nn = knn_self(g.view(), 3, &opts).unwrap();
        // A duplicate of row 4 is at distance 0 and is found; row 4 itself is not.
        assert_eq!(nn.row(4)[..2], [1, 6], "{blocking:?}");
        assert_eq!(nn.row_values(4)[..2], [0.0, 0.0]);
        assert_eq!(nn.row(1)[..2], [4, 6]);
        let from_q = knn(
            dup.clone().insert_axis(ndarray::Axis(0)).view(),
            g.view(),
            3,
            &opts,
        )
        .unwrap();
        assert_eq!(from_q.row(0), &[1, 4, 6]);
    }
    // f32 ranks ties the same way.
    let g32 = g.mapv(|v| v as f32);
    let nn = knn_self(g32.view(), 2, &KnnOptions::new(Similarity::Cosine)).unwrap();
    assert_eq!(nn.row(4), &[1, 6]);
}

#[test]
fn device_scan_matches_cpu_scan() {
    let device = metron_core::parse_device("cpu").unwrap();
    let q = random(40, 16, 6).mapv(|v| v as f32);
    let g = random(70, 16, 7).mapv(|v| v as f32);
    for sim in [Similarity::Cosine, Similarity::SquaredL2] {
        let cpu = knn(q.view(), g.view(), 5, &KnnOptions::new(sim)).unwrap();
        let opts = KnnOptions::new(sim)
            .with_compute(Compute::Device(device.clone()))
            .with_blocking(Blocking {
                block_queries: 16,
                block_gallery: 32,
            });
        let dev = knn(q.view(), g.view(), 5, &opts).unwrap();
        assert_eq!(cpu.indices, dev.indices, "{sim}");
        for (a, b) in cpu.values.iter().zip(&dev.values) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{sim}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn bad_input_gives_typed_errors() {
    let g = random(5, 3, 8);
    let opts = KnnOptions::new(Similarity::Cosine);
    assert!(matches!(
        knn_self(g.view(), 5, &opts),
        Err(Error::KTooLarge { k: 5, available: 4 })
    ));
    assert!(matches!(
        knn(g.view(), g.view(), 6, &opts),
        Err(Error::KTooLarge { k: 6, available: 5 })
    ));
    assert!(matches!(knn_self(g.view(), 0, &opts), Err(Error::KZero)));
    let other = random(4, 2, 9);
    assert!(matches!(
        knn(g.view(), other.view(), 1, &opts),
        Err(Error::DimensionMismatch {
            query: 3,
            gallery: 2
        })
    ));
    let mut bad = g.clone();
    bad[[3, 1]] = f64::NAN;
    assert!(matches!(
        knn_self(bad.view(), 1, &opts),
        Err(Error::NonFinite { row: 3, col: 1, .. })
    ));
    let mut zero = g.clone();
    zero.row_mut(2).fill(0.0);
    assert!(matches!(
        knn_self(zero.view(), 1, &opts),
        Err(Error::ZeroNorm { row: 2, .. })
    ));
    let empty = Array2::<f64>::zeros((0, 3));
    assert!(matches!(
        knn_self(empty.view(), 1, &opts),
        Err(Error::EmptySet { .. })
    ));
    let cfg = RetrievalConfig {
        clustering_seed: None,
        ..Default::default()
    };
    assert!(matches!(
        evaluate_retrieval(g.view(), &[0, 1], None, &cfg, &NoProgress),
        Err(Error::LabelCount {
            labels: 2,
            rows: 5,
            ..
        })
    ));
}

/// Brute-force average precision of every query over the full ranking.
fn brute_map(x: &Array2<f64>, labels: &[i64]) -> f64 {
    let order = brute(x, x, Similarity::SquaredL2, true, x.nrows() - 1);
    let mut total = 0.0;
    let mut n = 0;
    for (i, row) in order.iter().enumerate() {
        let r = row.iter().filter(|&&j| labels[j] == labels[i]).count();
        if r == 0 {
            continue;
        }
        let mut hits = 0;
        let mut ap = 0.0;
        for (rank, &j) in row.iter().enumerate() {
            if labels[j] == labels[i] {
                hits += 1;
                ap += hits as f64 / (rank + 1) as f64;
            }
        }
        total += ap / r as f64;
        n += 1;
    }
    total / n as f64
}

#[test]
fn full_map_equals_brute_force_and_handles_lone_queries() {
    let x = random(60, 5, 10);
    // 7 classes of uneven size plus one lone item (label 99).
    let mut labels: Vec<i64> = (0..59).map(|i| (i * i % 7) as i64).collect();
    labels.push(99);
    for blocking in blockings() {
        let cfg = RetrievalConfig {
            ks: vec![1, 3],
            similarity: Similarity::SquaredL2,
            blocking,
            clustering_seed: None,
            full_map: true,
            ..Default::default()
        };
        let r = evaluate_retrieval(x.view(), &labels, None, &cfg, &NoProgress).unwrap();
        let want = brute_map(&x, &labels);
        assert!(
            (r.map.unwrap() - want).abs() < 1e-12,
            "{blocking:?}: {:?} vs {want}",
            r.map
        );
        assert_eq!(r.lone_queries, 1);
    }
}

#[test]
fn recall_hand_computed() {
    // 1-D points: 0, 1, 10, 11, 30 with labels a a b a b.
    let x = Array2::from_shape_vec((5, 1), vec![0.0, 1.0, 10.0, 11.0, 30.0]).unwrap();
    let labels = [0, 0, 1, 0, 1];
    let cfg = RetrievalConfig {
        ks: vec![1, 2],
        similarity: Similarity::SquaredL2,
        clustering_seed: None,
        ..Default::default()
    };
    let r = evaluate_retrieval(x.view(), &labels, None, &cfg, &NoProgress).unwrap();
    // Nearest: 0->1 (hit), 1->0 (hit), 10->11 (miss), 11->10 (miss), 30->11 (miss).
    // Top 2: 10->{11,1}: miss; 11->{10,1}: hit; 30->{11,10}: hit.
    assert_eq!(r.recall_at, vec![(1, 0.4), (2, 0.8)]);
    assert_eq!(r.precision_at_1, 0.4);
    // R per query: 2, 2, 1, 2, 1. Top R: 0->{1,10}, 1->{0,10}, 10->{11}, 11->{10,1},
    // 30->{11}, so R-precision is (1/2 + 1/2 + 0 + 1/2 + 0) / 5.
    assert!((r.r_precision - 0.3).abs() < 1e-12);
    // MAP@R: 0 and 1 hit at rank 1 (1/2 each), 11 hits at rank 2 ((1/2)/2).
    assert!((r.map_at_r - (0.5 + 0.5 + 0.25) / 5.0).abs() < 1e-12);
}

#[test]
fn kmeans_recovers_separated_blobs_and_is_deterministic() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let centers = [[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]];
    let mut labels = Vec::new();
    let x = Array2::from_shape_fn((80, 2), |(i, j)| {
        centers[i % 4][j] + rng.random_range(-1.0..1.0)
    });
    for i in 0..80 {
        labels.push((i % 4) as i64);
    }
    let a = kmeans(x.view(), &KMeansConfig::new(4, 3)).unwrap();
    let b = kmeans(x.view(), &KMeansConfig::new(4, 3)).unwrap();
    assert_eq!(a.assignment, b.assignment);
    // Random init can put two seeds in one blob; with this seed it does not, and Lloyd then
    // finds the blobs exactly.
    assert!((nmi(&labels, &a.assignment).unwrap() - 1.0).abs() < 1e-12);
    assert!(matches!(
        kmeans(x.view(), &KMeansConfig::new(81, 0)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn crossview_ties_count_for_the_query_and_semi_positives_only_affect_hit_rate() {
    use metron_metrics::{cvusa_recall, vigor_recall};
    // Ground i matches satellite i. Satellite 2 duplicates satellite 0, so ground 0 ties with
    // it (not counted). Ground 1 is closer to satellite 0 than to its own satellite.
    let sat = ndarray::array![[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]];
    let grd = ndarray::array![[1.0, 0.0], [0.8, 0.6], [0.0, -1.0], [-1.0, 0.0]];
    let r = cvusa_recall(sat.view(), grd.view(), &[1, 2], &Compute::Cpu).unwrap();
    // Ranks: ground 0 -> 0 (tie with the duplicate), ground 1 -> 2 (sat 0 and 2 at 0.8 beat
    // 0.6), ground 2 -> sat 2 scores 0; sat 3 scores 0 too, sat 1 -1: rank 0; ground 3 -> 0.
    assert_eq!(r.recall_at, vec![(1, 0.75), (2, 0.75)]);
    assert_eq!(r.top1_percent_k, 1);

    // VIGOR: ground 1's positive is satellite 1; satellites 0 and 2 are semi-positives.
    let labels = ndarray::array![[0i64, 3, 3, 3], [1, 0, 2, 2], [2, 3, 3, 3], [3, 0, 0, 0]];
    let v = vigor_recall(grd.view(), sat.view(), labels.view(), &[1], &Compute::Cpu).unwrap();
    assert_eq!(v.recall_at, vec![(1, 0.75)]);
    // With its semi-positives removed nothing beats ground 1's positive: a hit.
    assert_eq!(v.hit_rate, Some(1.0));
}

/// Equal up to the order of the sums (chunks add their sums up separately).
fn same_report(
    a: &metron_metrics::RetrievalReport,
    b: &metron_metrics::RetrievalReport,
    what: &str,
) {
    assert_eq!(a.lone_queries, b.lone_queries, "{what}");
    for ((name, x), (_, y)) in a.metrics().iter().zip(b.metrics()) {
        assert!((x - y).abs() < 1e-12, "{what}: {name} {x} vs {y}");
    }
}

/// With a neighbour budget far below queries x R, evaluation runs in query chunks and gives
/// the same report as one pass, in self-retrieval (exact duplicates included, where the tie
/// rule and the dropping of each query's own row matter) and query -> gallery.
#[test]
fn chunked_evaluation_equals_one_pass_with_bounded_neighbours() {
    let mut x = random(90, 6, 21);
    // Rows 10..20 repeat rows 0..10: exact ties everywhere.
    for i in 10..20 {
        let row = x.row(i - 10).to_owned();
        x.row_mut(i).assign(&row);
    }
    // Three classes of 30: R = 29, so one pass holds 90 x 29 neighbours.
    let labels: Vec<i64> = (0..90).map(|i| (i % 3) as i64).collect();
    for similarity in [Similarity::Cosine, Similarity::SquaredL2] {
        let one = RetrievalConfig {
            similarity,
            clustering_seed: None,
            ..Default::default()
        };
        let chunked = RetrievalConfig {
            max_neighbors: 7 * 29,
            ..one.clone()
        };
        let a = evaluate_retrieval(x.view(), &labels, None, &one, &NoProgress).unwrap();
        let b = evaluate_retrieval(x.view(), &labels, None, &chunked, &NoProgress).unwrap();
        same_report(&a, &b, &format!("{similarity:?} self-retrieval"));
        let g = random(40, 6, 22);
        let gl: Vec<i64> = (0..40).map(|i| (i % 3) as i64).collect();
        let a = evaluate_retrieval(x.view(), &labels, Some((g.view(), &gl)), &one, &NoProgress)
            .unwrap();
        let b = evaluate_retrieval(
            x.view(),
            &labels,
            Some((g.view(), &gl)),
            &chunked,
            &NoProgress,
        )
        .unwrap();
        same_report(&a, &b, &format!("{similarity:?} query -> gallery"));
    }
}
