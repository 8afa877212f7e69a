//! The one place this crate calls the `gemm` crate, whose entry point is `unsafe` because it
//! takes raw pointers and strides.

#![allow(unsafe_code)]

use std::any::TypeId;

use ndarray::ArrayView2;

use crate::Real;

/// `dst := alpha * dst + beta * q * g^T` for a row-major `dst` of shape `[m, n]`, with
/// `q: [m, k]` and `g: [n, k]` in any strides. `read_dst = false` ignores `dst`'s old values.
///
/// Single-threaded on purpose: the scan parallelises across query blocks, which scales better
/// than splitting each small tile.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    q: &ArrayView2<'_, T>,
    g: &ArrayView2<'_, T>,
    read_dst: bool,
    alpha: T,
    beta: T,
) {
    assert!(
        TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>(),
        "gemm is only called with f32 or f64"
    );
    assert_eq!(dst.len(), m * n);
    assert_eq!(q.dim(), (m, k));
    assert_eq!(g.dim(), (n, k));
    if m == 0 || n == 0 {
        return;
    }
    let (q_rs, q_cs) = (q.strides()[0], q.strides()[1]);
    let (g_rs, g_cs) = (g.strides()[0], g.strides()[1]);
    // SAFETY: the asserts above fix the extents of every operand; the ArrayViews guarantee
    // that each (row, col) within those extents and strides is a valid element, `dst` is an
    // exclusively borrowed row-major m x n buffer, and T is one of the types gemm supports.
    // The rhs is g^T: its element (kk, j) is g[j, kk], hence rhs_rs = g's column stride and
    // rhs_cs = g's row stride.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            q.as_ptr(),
            q_cs,
            q_rs,
            g.as_ptr(),
            g_rs,
            g_cs,
            alpha,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, s};

    #[test]
    fn matches_naive_product_with_strided_views() {
        let q = Array2::from_shape_fn((7, 5), |(i, j)| (i * 5 + j) as f64 * 0.25 - 3.0);
        let gfull = Array2::from_shape_fn((9, 10), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        // Every other column: a non-contiguous view.
        let g = gfull.slice(s![.., ..;2]);
        let mut dst = vec![1.0f64; 7 * 9];
        super::gemm(7, 9, 5, &mut dst, &q.view(), &g, true, 0.5, 2.0);
        for i in 0..7 {
            for j in 0..9 {
                let dot: f64 = (0..5).map(|kk| q[[i, kk]] * g[[j, kk]]).sum();
                assert!((dst[i * 9 + j] - (0.5 + 2.0 * dot)).abs() < 1e-12);
            }
        }
    }
}
