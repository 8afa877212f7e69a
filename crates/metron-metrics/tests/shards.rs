//! A gallery split into shards and merged gives exactly the unsharded neighbours (indices and
//! values, ties to the lower index included), for every similarity, in self-retrieval and
//! query/gallery search, however the shards run.

use metron_metrics::{
    Blocking, Error, KnnOptions, NoProgress, ShardRunner, Similarity, knn_shard, knn_sharded,
    knn_with_progress, merge_shards, shard_ranges,
};
use ndarray::Array2;

/// Deterministic values with exact duplicates (rows 3k and 3k + 1 are equal) so ties occur.
fn data(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let mut a = Array2::from_shape_fn((n, d), |_| next());
    for r in (0..n.saturating_sub(1)).step_by(3) {
        let row = a.row(r).to_owned();
        a.row_mut(r + 1).assign(&row);
    }
    a
}

#[test]
fn sharded_search_equals_the_unsharded_one() {
    let query = data(37, 8, 1);
    let gallery = data(53, 8, 2);
    for similarity in [
        Similarity::Cosine,
        Similarity::InnerProduct,
        Similarity::SquaredL2,
    ] {
        // Gallery blocks of 4 rows: shards of whole blocks scan the unsharded search's tiles.
        let options = KnnOptions::new(similarity).with_blocking(Blocking {
            block_queries: 8,
            block_gallery: 4,
        });
        for (g, k) in [(Some(gallery.view()), 7), (None, 6)] {
            let want = knn_with_progress(query.view(), g, k, &options, &NoProgress).unwrap();
            // 1 shard; shards larger and smaller than k; one block per shard (10).
            for shards in [1, 2, 3, 5, 10] {
                for runner in [ShardRunner::Sequential, ShardRunner::CpuPools(1)] {
                    let got =
                        knn_sharded(query.view(), g, k, shards, &runner, &options, &NoProgress)
                            .unwrap();
                    assert_eq!(
                        got,
                        want,
                        "{similarity:?}, gallery {}, {shards} shards, {runner:?}",
                        g.is_some()
                    );
                }
            }
            // More shards than blocks: unaligned shards, the same neighbours, values to
            // rounding (their GEMM tiles differ).
            let n = g.map_or(query.nrows(), |g| g.nrows());
            let got = knn_sharded(
                query.view(),
                g,
                k,
                n,
                &ShardRunner::Sequential,
                &options,
                &NoProgress,
            )
            .unwrap();
            assert_eq!(got.indices, want.indices, "{similarity:?}");
            for (a, b) in got.values.iter().zip(&want.values) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

#[test]
fn parts_from_separate_runs_merge_in_any_order() {
    let x = data(40, 5, 3);
    let options = KnnOptions::new(Similarity::Cosine).with_blocking(Blocking {
        block_queries: 16,
        block_gallery: 10,
    });
    let want = knn_with_progress(x.view(), None, 4, &options, &NoProgress).unwrap();
    let mut parts: Vec<_> = shard_ranges(40, 4, options.blocking.block_gallery)
        .unwrap()
        .into_iter()
        .map(|r| knn_shard(x.view(), None, r, 4, &options, &NoProgress).unwrap())
        .collect();
    parts.reverse();
    assert_eq!(merge_shards(&parts, 4).unwrap(), want);
    // A self-retrieval shard never lists a query as its own neighbour.
    for p in &parts {
        for q in 0..40 {
            assert!(!p.indices[q * p.k..(q + 1) * p.k].contains(&q));
        }
    }
}

#[test]
fn shards_that_do_not_fit_are_errors() {
    let x = data(10, 3, 4);
    let options = KnnOptions::new(Similarity::InnerProduct);
    assert!(matches!(shard_ranges(10, 0, 1), Err(Error::Shards(_))));
    assert!(matches!(shard_ranges(10, 11, 1), Err(Error::Shards(_))));
    assert_eq!(shard_ranges(10, 3, 1).unwrap(), vec![0..4, 4..7, 7..10]);
    // Aligned on blocks of 3 rows (4 blocks): 2 + 1 + 1 blocks, the last one short.
    assert_eq!(shard_ranges(10, 3, 3).unwrap(), vec![0..6, 6..9, 9..10]);
    // Fewer blocks than shards: near-equal shards.
    assert_eq!(shard_ranges(10, 3, 8).unwrap(), vec![0..4, 4..7, 7..10]);
    let a = knn_shard(x.view(), None, 0..6, 6, &options, &NoProgress).unwrap();
    let b = knn_shard(x.view(), None, 5..10, 3, &options, &NoProgress).unwrap();
    assert!(matches!(
        merge_shards(&[a.clone(), b], 3),
        Err(Error::Shards(_))
    ));
    // Only rows 0..6 merged: query 0 has 5 candidates, fewer than 6.
    assert!(matches!(
        merge_shards(&[a], 6),
        Err(Error::KTooLarge { k: 6, available: 5 })
    ));
    // A part read back from a file with a NaN score is refused, not sorted.
    let mut bad = knn_shard(x.view(), None, 0..10, 3, &options, &NoProgress).unwrap();
    bad.scores[4] = f32::NAN;
    assert!(matches!(merge_shards(&[bad], 3), Err(Error::Shards(_))));
    // K larger than the whole gallery is refused before any shard runs.
    let err = knn_sharded(
        x.view(),
        None,
        10,
        2,
        &ShardRunner::Sequential,
        &options,
        &NoProgress,
    );
    assert!(matches!(
        err,
        Err(Error::KTooLarge {
            k: 10,
            available: 9
        })
    ));
}

#[test]
fn a_sharded_evaluation_reports_the_same_numbers() {
    use metron_metrics::{RetrievalConfig, evaluate_retrieval};
    let x = data(90, 6, 5);
    let labels: Vec<i64> = (0..90).map(|i| (i % 4) as i64).collect();
    let g = data(61, 6, 6);
    let gl: Vec<i64> = (0..61).map(|i| (i % 4) as i64).collect();
    for similarity in [Similarity::Cosine, Similarity::SquaredL2] {
        let one = RetrievalConfig {
            similarity,
            clustering_seed: None,
            blocking: Blocking {
                block_queries: 16,
                block_gallery: 8,
            },
            ..Default::default()
        };
        // Unchunked, and chunks of 7 queries (R = 22 in self-retrieval; chunks sum in another
        // order, so each is compared with the unsharded run of the same chunks).
        for max_neighbors in [1 << 22, 7 * 22] {
            let one = RetrievalConfig {
                max_neighbors,
                ..one.clone()
            };
            for shards in [2, 3, 7] {
                let sharded = RetrievalConfig {
                    shards,
                    ..one.clone()
                };
                let a = evaluate_retrieval(x.view(), &labels, None, &one, &NoProgress).unwrap();
                let b = evaluate_retrieval(x.view(), &labels, None, &sharded, &NoProgress).unwrap();
                assert_eq!(a, b, "{similarity:?} self, {shards} shards");
                let gallery = Some((g.view(), gl.as_slice()));
                let a = evaluate_retrieval(x.view(), &labels, gallery, &one, &NoProgress).unwrap();
                let b =
                    evaluate_retrieval(x.view(), &labels, gallery, &sharded, &NoProgress).unwrap();
                assert_eq!(a, b, "{similarity:?} gallery, {shards} shards");
            }
        }
    }
}
