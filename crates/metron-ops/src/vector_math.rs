//! `exp` and the standard normal CDF in straight-line f32 arithmetic, so that loops over
//! them vectorise (libm's `expf` / `erff` are scalar calls: in a ViT step they were 15 % of
//! the time), and [`vectorised`], which compiles a loop for the widest SIMD the CPU has.
//!
//! Accuracy, checked against f64 references in the tests: `exp` within 2 ulp on
//! `[-87, 88]`; `normal_cdf` within 1e-7 absolute everywhere, and 1e-5 relative in the lower
//! tail down to -6 (Phi = 1e-9; the rounding of `x^2` makes it 2e-5 at -12), where libm's
//! `1 + erf` loses all digits below -5.

/// A loop to compile for the CPU's widest vector extension: `run` must be
/// `#[inline(always)]`, as must everything it calls, so that it is compiled inside
/// [`vectorised`]'s target-feature function (a closure would not be: LLVM leaves a large one
/// out of line, compiled for the baseline x86-64, with `floor` a libm call).
pub(crate) trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

struct Dispatch<K>(K);

impl<K: Kernel> pulp::WithSimd for Dispatch<K> {
    type Output = K::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> K::Output {
        self.0.run()
    }
}

/// Runs `kernel` compiled for AVX-512 here (AVX2 or SSE elsewhere, chosen at run time), so
/// that its loops over the functions of this module vectorise.
#[inline]
pub(crate) fn vectorised<K: Kernel>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(Dispatch(kernel))
}

/// An element-wise function; `apply` must be `#[inline(always)]` (see [`Kernel`]).
pub(crate) trait Elementwise: Copy + Sync {
    fn apply(self, x: f32) -> f32;
}

/// A function of two equally placed elements; `apply` must be `#[inline(always)]`.
pub(crate) trait Pairwise: Copy + Sync {
    fn apply(self, a: f32, b: f32) -> f32;
}

/// Elements per parallel task of the element-wise maps: large enough that a task is worth
/// scheduling, small enough that two cores share a ViT-sized activation evenly.
const CHUNK: usize = 1 << 14;

struct MapChunk<'a, E> {
    x: &'a [f32],
    out: &'a mut [f32],
    op: E,
}

impl<E: Elementwise> Kernel for MapChunk<'_, E> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for (o, &x) in self.out.iter_mut().zip(self.x) {
            *o = self.op.apply(x);
        }
    }
}

struct Map2Chunk<'a, P> {
    a: &'a [f32],
    b: &'a [f32],
    out: &'a mut [f32],
    op: P,
}

impl<P: Pairwise> Kernel for Map2Chunk<'_, P> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for ((o, &a), &b) in self.out.iter_mut().zip(self.a).zip(self.b) {
            *o = self.op.apply(a, b);
        }
    }
}

/// `op` applied to every element, vectorised, in parallel chunks.
pub(crate) fn map<E: Elementwise>(x: &[f32], op: E) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| vectorised(MapChunk { x, out, op }));
    out
}

/// `op` applied to every pair of elements of two equally long slices, as [`map`].
pub(crate) fn map2<P: Pairwise>(a: &[f32], b: &[f32], op: P) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(a.len(), b.len());
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(out, (a, b))| vectorised(Map2Chunk { a, b, out, op }));
    out
}

const LANES: usize = 16;

/// Adds up 16 lanes of partial sums (kept apart so that the loop filling them vectorises: a
/// single running f32 sum fixes the order of additions).
#[inline(always)]
fn total(acc: [f32; LANES]) -> f32 {
    let mut t = 0.0f32;
    for v in acc {
        t += v;
    }
    t
}

/// `sum a_i b_i`.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += ca[k] * cb[k];
        }
    }
    let mut t = total(acc);
    for (a, b) in ra.iter().zip(rb) {
        t += a * b;
    }
    t
}

/// `sum (x_i - c)^2`.
#[inline(always)]
pub(crate) fn centred_squares(x: &[f32], c: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for k in 0..LANES {
            acc[k] += (ch[k] - c) * (ch[k] - c);
        }
    }
    let mut t = total(acc);
    for &v in rest {
        t += (v - c) * (v - c);
    }
    t
}

/// `sum x_i`.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for k in 0..LANES {
            acc[k] += ch[k];
        }
    }
    let mut t = total(acc);
    for &v in rest {
        t += v;
    }
    t
}

/// The largest element (`-inf` for none; NaNs are skipped).
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for k in 0..LANES {
            acc[k] = acc[k].max(ch[k]);
        }
    }
    let mut m = f32::NEG_INFINITY;
    for v in acc.into_iter().chain(rest.iter().copied()) {
        m = m.max(v);
    }
    m
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split into a part whose products with small integers are exact, and the rest.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `e^v`; 0 below -87.33 (where the result would be subnormal), `+inf` above 88.72, NaN
/// for NaN.
#[inline(always)]
pub(crate) fn exp(v: f32) -> f32 {
    // e^v = 2^n e^r with n = round(v log2 e) and |r| <= ln2 / 2.
    let clamped = v.clamp(-87.33, 88.72);
    let n = (clamped * LOG2_E + 0.5).floor();
    let r = clamped - n * LN2_HI - n * LN2_LO;
    // Taylor to r^7: the remainder is below 5e-9 relative for |r| <= 0.347.
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // 2^n for n in [-126, 127], built in the exponent field; 2^128 as 2 * 2^127.
    let (n, twice) = if n > 127.0 { (127.0, 2.0) } else { (n, 1.0) };
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let e = p * scale * twice;
    if v.is_nan() {
        v
    } else if v < -87.33 {
        0.0
    } else if v > 88.72 {
        f32::INFINITY
    } else {
        e
    }
}

/// `erf(z) / z` on `|z| <= 1` as a polynomial in `z^2` (least-squares fit at Chebyshev
/// nodes; 1.3e-9 from erf in exact arithmetic).
const ERF_SMALL: [f32; 7] = [
    std::f32::consts::FRAC_2_SQRT_PI,
    -0.376_126_3,
    0.112_836_26,
    -0.026_855_4,
    0.005_191_218,
    -0.000_803_484_4,
    0.000_079_334_86,
];

/// `ln erfc(z) + z^2` on `1 <= z <= 9.5`, a polynomial in `t = (z - 5.25) / 4.25`
/// (Chebyshev fit; within 4e-7 of it evaluated in f32, so erfc within 4e-7 relative before
/// the rounding of `z^2`). Beyond 9.5 erfc is below 1e-40, under f32's normal range.
const LOG_ERFC_TAIL: [f32; 12] = [
    -2.2479765,
    -0.7825112,
    0.29657573,
    -0.14535004,
    0.0775876,
    -0.04309392,
    0.025054187,
    -0.01362388,
    0.0056324457,
    -0.0036433323,
    0.003762557,
    -0.0015360581,
];

#[inline(always)]
fn horner<const N: usize>(c: &[f32; N], x: f32) -> f32 {
    let mut r = c[N - 1];
    for &k in c[..N - 1].iter().rev() {
        r = r * x + k;
    }
    r
}

/// `Phi(x)`, the standard normal CDF: `(1 + erf(x / sqrt 2)) / 2`, computed from `erfc` in
/// the lower tail so that it keeps its relative accuracy there.
#[inline(always)]
pub(crate) fn normal_cdf(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let small = 0.5 + 0.5 * z * horner(&ERF_SMALL, z * z);
    let t = (a.clamp(1.0, 9.5) - 5.25) * (1.0 / 4.25);
    // erfc(|z|) / 2: the probability beyond |x|.
    let tail = 0.5 * exp(horner(&LOG_ERFC_TAIL, t) - a * a);
    let large = if z > 0.0 { 1.0 - tail } else { tail };
    if a <= 1.0 {
        small
    } else if x.is_nan() {
        x
    } else {
        large
    }
}

/// `phi(x)`, the standard normal density.
#[inline(always)]
pub(crate) fn normal_pdf(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    INV_SQRT_2PI * exp(-0.5 * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erfc in f64 by its continued fraction (z >= 2) or Taylor series of erf (z < 2): an
    /// independent reference, accurate to ~1e-13 relative on the ranges tested.
    fn erfc64(z: f64) -> f64 {
        if z < 0.0 {
            return 2.0 - erfc64(-z);
        }
        if z < 2.0 {
            let (mut sum, mut term, mut n) = (0.0f64, z, 0.0f64);
            while term.abs() > 1e-18 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -z * z / n;
            }
            return 1.0 - sum * 2.0 / std::f64::consts::PI.sqrt();
        }
        // Lentz's evaluation of erfc(z) = exp(-z^2)/sqrt(pi) / (z + 1/2 / (z + 1 / (z + ...))).
        let mut f = z;
        for k in (1..200).rev() {
            f = z + (k as f64 / 2.0) / f;
        }
        (-z * z).exp() / std::f64::consts::PI.sqrt() / f
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64() {
        let mut worst = 0.0f64;
        for i in -870_000..=887_000 {
            let v = i as f32 * 1e-4;
            let want = (v as f64).exp();
            let got = exp(v) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(
            worst < 2.0 * f32::EPSILON as f64,
            "worst relative error {worst}"
        );
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn normal_cdf_matches_erfc_in_f64() {
        let (mut abs_worst, mut tail_worst) = (0.0f64, 0.0f64);
        for i in -120_000..=120_000 {
            let x = i as f32 * 1e-4;
            let want = 0.5 * erfc64(-(x as f64) / std::f64::consts::SQRT_2);
            let got = normal_cdf(x) as f64;
            abs_worst = abs_worst.max((got - want).abs());
            if (-6.0..0.0).contains(&x) {
                tail_worst = tail_worst.max(((got - want) / want).abs());
            }
        }
        assert!(abs_worst < 1e-7, "absolute error {abs_worst}");
        assert!(
            tail_worst < 1e-5,
            "relative error in the lower tail {tail_worst}"
        );
        assert_eq!(normal_cdf(f32::INFINITY), 1.0);
        assert_eq!(normal_cdf(f32::NEG_INFINITY), 0.0);
        assert!(normal_cdf(f32::NAN).is_nan());
    }

    #[test]
    fn normal_pdf_is_the_density() {
        for i in -80..=80 {
            let x = i as f64 * 0.1;
            let want = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let got = normal_pdf(x as f32) as f64;
            assert!(
                (got - want).abs() <= 5e-6 * want + 1e-30,
                "{x}: {got} vs {want}"
            );
        }
    }

    #[derive(Clone, Copy)]
    struct CdfTimesExp;

    impl Elementwise for CdfTimesExp {
        #[inline(always)]
        fn apply(self, x: f32) -> f32 {
            normal_cdf(x) * exp(x)
        }
    }

    /// The dispatched, parallel map computes what the plain loop does, bit for bit.
    #[test]
    fn vectorised_map_matches_the_scalar_loop() {
        let xs: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) * 4e-4).collect();
        let plain: Vec<f32> = xs.iter().map(|&x| CdfTimesExp.apply(x)).collect();
        assert_eq!(plain, map(&xs, CdfTimesExp));
    }

    #[test]
    fn lane_reductions_match_f64() {
        let a: Vec<f32> = (0..1001)
            .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.4)
            .collect();
        let b: Vec<f32> = (0..1001)
            .map(|i| ((i * 53) % 89) as f32 * 0.02 - 0.7)
            .collect();
        let want_dot: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let want_sum: f64 = a.iter().map(|&x| x as f64).sum();
        let want_sq: f64 = a.iter().map(|&x| (x as f64 - 0.3).powi(2)).sum();
        assert!((dot(&a, &b) as f64 - want_dot).abs() < 1e-4);
        assert!((sum(&a) as f64 - want_sum).abs() < 1e-4);
        assert!((centred_squares(&a, 0.3) as f64 - want_sq).abs() < 1e-3);
        let want_max = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max(&a), want_max);
        assert_eq!(
            max(&a[..7]),
            a[..7].iter().copied().fold(f32::NEG_INFINITY, f32::max)
        );
    }
}
