//! Seeding: one `u64` seed makes every random choice in metron reproducible.
//!
//! `ChaCha8Rng` is used everywhere because its stream is specified (same seed, same numbers on
//! every platform and in every release of `rand_chacha`), unlike `StdRng`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random number generator metron uses everywhere.
pub type Rng = ChaCha8Rng;

/// A generator whose stream depends only on `seed`.
pub fn rng_from_seed(seed: u64) -> Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Derives an independent seed for a named sub-task (a worker, an epoch, a component) so that
/// adding a consumer of randomness in one place does not shift the numbers seen by another.
///
/// SplitMix64 finaliser over `seed ^ hash(stream)`: cheap, well mixed, and stable forever.
pub fn split_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(rng_from_seed(7), |r, _: u32| Some(r.random()))
            .collect();
        let b: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(rng_from_seed(7), |r, _: u32| Some(r.random()))
            .collect();
        let c: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(rng_from_seed(8), |r, _: u32| Some(r.random()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn split_seed_separates_streams() {
        assert_ne!(split_seed(1, 0), split_seed(1, 1));
        assert_ne!(split_seed(1, 0), split_seed(2, 0));
        assert_eq!(split_seed(3, 4), split_seed(3, 4));
    }
}

/// Serialises seeded initialisations: Burn's initialisers draw from one generator per backend
/// for the whole process, so two threads seeding and initialising at once would interleave
/// their draws.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        // Reading the value runs a lazy parameter's initialiser now, under the lock.
        let _ = param.val();
    }
}

/// Builds a module whose random initial weights depend only on `seed`: seeds `device`, runs
/// `init`, and draws every lazily initialised parameter before returning, all while holding a
/// process-wide lock. (Burn initialises parameters lazily, on first use: without this, weights
/// would be drawn at the first forward pass, from whatever state the generator is in then.)
pub fn seeded_init<M: burn::module::Module, E>(
    device: &burn::tensor::Device,
    seed: u64,
    init: impl FnOnce() -> std::result::Result<M, E>,
) -> std::result::Result<M, E> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = init()?;
    module.visit(&mut Materialize);
    Ok(module)
}

#[cfg(all(test, feature = "flex"))]
mod init_tests {
    use burn::nn::{Linear, LinearConfig};

    fn weights(l: &Linear) -> Vec<f32> {
        l.weight.val().into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn seeded_init_is_reproducible_across_threads() {
        let device = crate::parse_device("cpu").unwrap();
        let make = |seed| {
            super::seeded_init(&device, seed, || {
                Ok::<_, ()>(LinearConfig::new(16, 16).init(&device))
            })
            .unwrap()
        };
        let reference = weights(&make(3));
        // Other threads seeding and drawing meanwhile must not change what seed 3 gives.
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let device = device.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let l = super::seeded_init(&device, 100 + t * 20 + i, || {
                            Ok::<_, ()>(LinearConfig::new(16, 16).init(&device))
                        })
                        .unwrap();
                        let _ = weights(&l);
                    }
                })
            })
            .collect();
        let again: Vec<Vec<f32>> = (0..20).map(|_| weights(&make(3))).collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert!(again.iter().all(|w| *w == reference));
        assert_ne!(weights(&make(4)), reference);
    }
}
