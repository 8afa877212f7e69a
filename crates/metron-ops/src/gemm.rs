//! The one call into the `gemm` crate, shared by metron's kernels.

/// `dst (m x n) (+)= lhs (m x k) rhs (k x n)`, each given by (row stride, column stride);
/// `dst` is overwritten unless `accumulate`.
/// The one call into `gemm`, whose entry point is `unsafe` because it takes raw strided
/// pointers.
#[allow(clippy::too_many_arguments, unsafe_code)]
pub(crate) fn gemm_add(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_strides: [isize; 2],
    lhs: &[f32],
    lhs_strides: [isize; 2],
    rhs: &[f32],
    rhs_strides: [isize; 2],
    parallel: bool,
    accumulate: bool,
) {
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    if m == 0 || n == 0 {
        return;
    }
    // Elements a strided rows x cols view reaches (non-negative strides).
    let span = |rows: usize, cols: usize, [rs, cs]: [isize; 2]| {
        (rows - 1) * rs as usize + (cols - 1) * cs as usize + 1
    };
    if k == 0 {
        if !accumulate {
            dst[..span(m, n, dst_strides)].fill(0.0);
        }
        return;
    }
    // SAFETY: the three slices are at least as long as the strided m x n, m x k and
    // k x n views the callers describe (checked here), and `dst` does not alias the others.
    assert!(dst.len() >= span(m, n, dst_strides));
    assert!(lhs.len() >= span(m, k, lhs_strides));
    assert!(rhs.len() >= span(k, n, rhs_strides));
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides[1],
            dst_strides[0],
            accumulate,
            lhs.as_ptr(),
            lhs_strides[1],
            lhs_strides[0],
            rhs.as_ptr(),
            rhs_strides[1],
            rhs_strides[0],
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
