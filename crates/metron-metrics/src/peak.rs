//! What the kNN scan's GEMM can reach on this CPU: the instruction set the `gemm` crate
//! dispatches to, and the peak f32 rate measured with a register-resident FMA loop (no memory
//! traffic: the ceiling any kernel on these cores is judged against).

#![allow(unsafe_code)]

use std::time::Instant;

/// The widest vector instructions the `gemm` crate runs its f32 kernels with here (it picks
/// them at run time; metron enables its AVX-512 kernels with the `x86-v4` feature).
pub fn gemm_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
        "sse2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// A measured peak f32 rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmaPeak {
    /// Billions of f32 operations per second (an FMA counts 2) over all threads.
    pub gflops: f64,
    /// Threads that ran the loop at once.
    pub threads: usize,
    /// The instructions used (`avx512f` or `avx2+fma`).
    pub isa: &'static str,
}

/// Runs `iterations` rounds of 16 independent 16-wide FMAs (`avx512f`) in registers; returns
/// the operations done. The 16 chains hide the FMA latency, so the loop runs at the FMA
/// units' throughput.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512(iterations: u64) -> (u64, f32) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); 16];
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let mut sum = _mm512_set1_ps(0.0);
    for x in acc {
        sum = _mm512_add_ps(sum, x);
    }
    (iterations * 16 * 16 * 2, _mm512_reduce_add_ps(sum))
}

/// [`fma_loop_avx512`] with 8-wide AVX2 FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iterations: u64) -> (u64, f32) {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut sum = _mm256_set1_ps(0.0);
    for x in acc {
        sum = _mm256_add_ps(sum, x);
    }
    // SAFETY: an 8-lane f32 vector in bits is eight f32 values.
    let out: [f32; 8] = unsafe { std::mem::transmute(sum) };
    (iterations * 12 * 8 * 2, out.iter().sum())
}

/// Measures the peak f32 FMA rate of `threads` threads running at once, each for about
/// `seconds`; `None` on CPUs without AVX2+FMA or AVX-512.
pub fn fma_peak(threads: usize, seconds: f64) -> Option<FmaPeak> {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = match gemm_isa() {
            "avx512f" => "avx512f",
            "avx2+fma" => "avx2+fma",
            _ => return None,
        };
        let run = |iterations: u64| -> (u64, f32) {
            // SAFETY: the instruction set was detected at run time above.
            unsafe {
                if isa == "avx512f" {
                    fma_loop_avx512(iterations)
                } else {
                    fma_loop_avx2(iterations)
                }
            }
        };
        // Calibrate one thread's iteration count to `seconds`.
        let mut iterations = 1u64 << 16;
        loop {
            let t = Instant::now();
            std::hint::black_box(run(iterations));
            let s = t.elapsed().as_secs_f64();
            if s > seconds / 4.0 || iterations > 1 << 40 {
                iterations = ((iterations as f64) * seconds / s.max(1e-9)) as u64;
                break;
            }
            iterations *= 4;
        }
        let threads = threads.max(1);
        let start = Instant::now();
        let ops: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| std::hint::black_box(run(iterations)).0))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        let secs = start.elapsed().as_secs_f64();
        Some(FmaPeak {
            gflops: ops as f64 / secs / 1e9,
            threads,
            isa,
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, seconds);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_a_positive_rate_when_measurable() {
        if let Some(p) = fma_peak(1, 0.02) {
            assert!(p.gflops > 0.1 && p.gflops.is_finite(), "{p:?}");
            assert_eq!(p.isa, gemm_isa());
        }
    }
}
