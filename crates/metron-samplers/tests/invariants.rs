//! Invariants every sampler promises, checked over many seeds, epochs and uneven datasets.

use std::collections::{BTreeMap, HashSet};

use metron_samplers::{
    BatchSampler, ClassContiguousSampler, CoveringMPerClassSampler, CrossViewPairSampler,
    MPerClassSampler,
};
use rand::Rng as _;
use rand::seq::SliceRandom as _;

const SEEDS: u64 = 50;
const EPOCHS: u64 = 4;

/// Labels with uneven class sizes (1 to `max_size`), sparse ids, shuffled positions.
fn uneven_labels(seed: u64, classes: usize, max_size: usize) -> Vec<usize> {
    let mut rng = metron_core::rng_from_seed(seed);
    let mut labels = Vec::new();
    for c in 0..classes {
        let size = rng.random_range(1..=max_size);
        labels.extend(std::iter::repeat_n(c * 7 + 3, size));
    }
    labels.shuffle(&mut rng);
    labels
}

fn class_sizes(labels: &[usize]) -> BTreeMap<usize, usize> {
    let mut sizes = BTreeMap::new();
    for &l in labels {
        *sizes.entry(l).or_insert(0) += 1;
    }
    sizes
}

/// What every sampler promises, for one epoch.
fn check_common(s: &dyn BatchSampler, n: usize, batch_size: usize, epoch: u64) -> Vec<Vec<usize>> {
    let batches = s.epoch(epoch);
    assert_eq!(batches.len(), s.batches_per_epoch(), "epoch {epoch}");
    for batch in &batches {
        assert_eq!(batch.len(), batch_size);
        let distinct: HashSet<usize> = batch.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            batch.len(),
            "index twice in a batch: {batch:?}"
        );
        assert!(
            batch.iter().all(|&i| i < n),
            "index out of range in {batch:?}"
        );
    }
    assert_eq!(batches, s.epoch(epoch), "epoch {epoch} is not reproducible");
    for world in 1..=4 {
        let shards: Vec<Vec<Vec<usize>>> =
            (0..world).map(|rank| s.shard(epoch, rank, world)).collect();
        let total: usize = shards.iter().map(Vec::len).sum();
        assert_eq!(total, batches.len());
        let mut interleaved = Vec::new();
        for step in 0.. {
            if step * world >= batches.len() {
                break;
            }
            for shard in &shards {
                if let Some(b) = shard.get(step) {
                    interleaved.push(b.clone());
                }
            }
        }
        assert_eq!(interleaved, batches, "world {world}: interleave != epoch");
        // Each shard is exactly its rank's positions, so shards are disjoint by position (and
        // by content wherever an epoch repeats no index, which the covering samplers check).
        for (r, shard) in shards.iter().enumerate() {
            let expected: Vec<Vec<usize>> =
                batches.iter().skip(r).step_by(world).cloned().collect();
            assert_eq!(shard, &expected);
        }
    }
    assert!(s.shard(epoch, 0, 0).is_empty());
    assert!(s.shard(epoch, 4, 4).is_empty());
    batches
}

fn assert_epochs_differ(s: &dyn BatchSampler) {
    for e in 0..EPOCHS {
        assert_ne!(
            s.epoch(e),
            s.epoch(e + 1),
            "epochs {e} and {} coincide",
            e + 1
        );
    }
}

fn assert_no_index_twice_in_epoch(batches: &[Vec<usize>]) {
    let mut seen = HashSet::new();
    for &i in batches.iter().flatten() {
        assert!(seen.insert(i), "index {i} twice in one epoch");
    }
}

#[test]
fn m_per_class_invariants() {
    for seed in 0..SEEDS {
        let labels = uneven_labels(1000 + seed, 30, 9);
        let sizes = class_sizes(&labels);
        for (batch_size, m) in [(8, 4), (12, 3), (16, 4), (6, 2)] {
            let s = MPerClassSampler::new(&labels, batch_size, m, seed).unwrap();
            assert_eq!(s.batches_per_epoch(), labels.len() / batch_size);
            for e in 0..EPOCHS {
                for batch in check_common(&s, labels.len(), batch_size, e) {
                    let counts = class_sizes(&batch.iter().map(|&i| labels[i]).collect::<Vec<_>>());
                    let mut short = 0;
                    for (class, &count) in &counts {
                        let full = m.min(sizes[class]);
                        assert!(
                            count <= full,
                            "class {class}: {count} > min(m, size) {full}"
                        );
                        if count < full {
                            short += 1;
                        }
                    }
                    // Only the class added last can have been truncated.
                    assert!(short <= 1, "{short} truncated classes in {batch:?}");
                }
            }
            assert_epochs_differ(&s);
        }
    }
}

#[test]
fn class_contiguous_invariants() {
    for seed in 0..SEEDS {
        let labels = uneven_labels(2000 + seed, 25, 14);
        for (batch_size, g) in [(8, 4), (12, 4), (6, 2), (9, 3)] {
            let s = ClassContiguousSampler::new(&labels, batch_size, g, seed).unwrap();
            assert_eq!(s.classes_per_batch(), batch_size / g);
            for e in 0..EPOCHS {
                let batches = check_common(&s, labels.len(), batch_size, e);
                assert_no_index_twice_in_epoch(&batches);
                for batch in &batches {
                    let mut block_labels = Vec::new();
                    for block in batch.chunks(g) {
                        let l = labels[block[0]];
                        assert!(
                            block.iter().all(|&i| labels[i] == l),
                            "mixed block {block:?}"
                        );
                        block_labels.push(l);
                    }
                    let distinct: HashSet<usize> = block_labels.iter().copied().collect();
                    assert_eq!(
                        distinct.len(),
                        block_labels.len(),
                        "class twice in {batch:?}"
                    );
                }
            }
            assert_epochs_differ(&s);
        }
    }
}

#[test]
fn class_contiguous_count_is_order_independent() {
    // Capacities where Smooth-AP's first-in-order rule would vary with the shuffle.
    let mut labels = Vec::new();
    for (class, size) in [(0, 4), (1, 4), (2, 8), (3, 12), (4, 4), (5, 8)] {
        labels.extend(std::iter::repeat_n(class, size));
    }
    for seed in 0..SEEDS {
        let s = ClassContiguousSampler::new(&labels, 12, 4, seed).unwrap();
        // Groups: 1, 1, 2, 3, 1, 2 = 10; T* = 3 (3 classes x 3 rounds <= sum min(a, 3) = 10).
        assert_eq!(s.batches_per_epoch(), 3);
        for e in 0..10 {
            assert_eq!(s.epoch(e).len(), 3);
        }
    }
}

#[test]
fn covering_invariants() {
    for seed in 0..SEEDS {
        let labels = uneven_labels(3000 + seed, 30, 13);
        let n = labels.len();
        let n_classes = class_sizes(&labels).len();
        for (batch_size, m) in [(8, 4), (12, 3), (16, 4), (6, 2), (5, 1)] {
            let s = CoveringMPerClassSampler::new(&labels, batch_size, m, seed).unwrap();
            let bound = n.saturating_sub((m - 1) * n_classes + (batch_size - m));
            assert!(s.samples_per_epoch() >= bound);
            for e in 0..EPOCHS {
                let batches = check_common(&s, n, batch_size, e);
                assert_no_index_twice_in_epoch(&batches);
                let used: usize = batches.iter().map(Vec::len).sum();
                assert_eq!(used, s.samples_per_epoch());
                assert!(used >= bound, "covered {used} < bound {bound} of {n}");
                for batch in &batches {
                    for group in batch.chunks(m) {
                        let l = labels[group[0]];
                        assert!(
                            group.iter().all(|&i| labels[i] == l),
                            "mixed group {group:?}"
                        );
                    }
                }
            }
            assert_epochs_differ(&s);
        }
    }
}

#[test]
fn covering_keeps_classes_distinct_on_balanced_data() {
    // 20 classes x 12 samples, 4 groups per batch: distinct classes are always available until
    // the very end, and the greedy never needs to repeat.
    let labels: Vec<usize> = (0..240).map(|i| i % 20).collect();
    for seed in 0..SEEDS {
        let s = CoveringMPerClassSampler::new(&labels, 16, 4, seed).unwrap();
        assert_eq!(s.batches_per_epoch(), 15);
        let mut repeats = 0;
        for batch in s.epoch(0) {
            let classes: HashSet<usize> = batch.chunks(4).map(|g| labels[g[0]]).collect();
            repeats += 4 - classes.len();
        }
        // Repeats only where fewer than 4 classes remain, i.e. in the last few batches.
        assert!(repeats <= 6, "{repeats} repeated groups");
    }
}

/// VIGOR-like pairs: satellites on a line; pair i's positive is a random satellite and its
/// semi-positives are up to three neighbours of it.
fn vigor_like(seed: u64, pairs: usize, satellites: usize) -> Vec<Vec<usize>> {
    let mut rng = metron_core::rng_from_seed(seed);
    (0..pairs)
        .map(|_| {
            let pos = rng.random_range(0..satellites);
            let mut sats = vec![pos * 10];
            for _ in 0..rng.random_range(0..=3) {
                let near = (pos + rng.random_range(1..=2)).min(satellites - 1);
                sats.push(near * 10);
            }
            sats
        })
        .collect()
}

#[test]
fn cross_view_never_shares_a_satellite() {
    for seed in 0..SEEDS {
        for (pairs, n_sats, batch_size) in
            [(400, 300, 8), (300, 1000, 16), (500, 200, 4), (64, 64, 1)]
        {
            let sats = vigor_like(4000 + seed, pairs, n_sats);
            let s = CrossViewPairSampler::new(&sats, batch_size, seed).unwrap();
            assert!(s.batches_per_epoch() <= pairs / batch_size);
            assert!(s.batches_per_epoch() > 0);
            for e in 0..EPOCHS {
                let batches = check_common(&s, pairs, batch_size, e);
                assert_no_index_twice_in_epoch(&batches);
                for batch in &batches {
                    let mut seen = HashSet::new();
                    for &p in batch {
                        let own: HashSet<usize> = sats[p].iter().copied().collect();
                        for sat in own {
                            assert!(seen.insert(sat), "satellite {sat} twice in {batch:?}");
                        }
                    }
                }
            }
            assert_epochs_differ(&s);
        }
    }
}

#[test]
fn cross_view_one_to_one_uses_floor_n_over_b() {
    for seed in 0..SEEDS {
        let sats: Vec<Vec<usize>> = (0..250).map(|i| vec![i * 3]).collect();
        let s = CrossViewPairSampler::new(&sats, 32, seed).unwrap();
        assert_eq!(s.batches_per_epoch(), 7);
        assert_eq!(s.epoch(seed).len(), 7);
    }
}

#[test]
fn cgd_epoch_misses_data_on_skewed_classes_covering_does_not() {
    // One big class and many small ones: CGD draws classes uniformly, so the big class's
    // samples are mostly left out of an epoch (pytorch-metric-learning's known complaint).
    let mut labels: Vec<usize> = std::iter::repeat_n(0, 400).collect();
    for c in 1..=100 {
        labels.extend(std::iter::repeat_n(c, 4));
    }
    let n = labels.len();
    let (batch_size, m) = (32, 4);
    let n_classes = 101;
    let bound = n - ((m - 1) * n_classes + (batch_size - m));
    for seed in 0..10 {
        let cgd = MPerClassSampler::new(&labels, batch_size, m, seed).unwrap();
        let visited: HashSet<usize> = cgd.epoch(0).into_iter().flatten().collect();
        let cgd_fraction = visited.len() as f64 / n as f64;
        assert!(cgd_fraction < 0.9, "CGD covered {cgd_fraction}");

        let covering = CoveringMPerClassSampler::new(&labels, batch_size, m, seed).unwrap();
        let visited: HashSet<usize> = covering.epoch(0).into_iter().flatten().collect();
        assert!(visited.len() >= bound);
        assert!(visited.len() as f64 / n as f64 > cgd_fraction);
    }
}
