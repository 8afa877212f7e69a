//! Multi-head self-attention as one op with its own backward pass on the CPU backend.
//!
//! Composed from Burn's ops, a ViT block's attention copies the fused `qkv` projection apart
//! (reshape, permute, three slices), runs the two batched products through copies of their
//! transposed operands, a softmax of four element-wise passes with scalar `expf`, and derives
//! the backward pass through all of them, keeping every intermediate (scores and
//! probabilities, `[B, H, T, T]` each) until then. That made ViT-S 2-3x slower than PyTorch.
//!
//! Here each (sample, head) pair is one task: the products read `q`, `k` and `v` in place from
//! the `qkv` tensor through strides, the softmax is one vectorised pass, and the forward pass
//! keeps only the input and one log-sum-exp per row. The backward pass recomputes the
//! probabilities from them (one `T x T x d` product more, as flash attention does) instead
//! of holding `B H T^2` numbers from the forward pass to the backward one.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

/// `softmax(q k^T / sqrt(d_h)) v` for every head, from a fused query-key-value projection laid
/// out as timm's `Attention` lays it out (the last axis is `[3, heads, d_h]`), with the heads
/// concatenated back as timm's output projection expects. The fused op on flex in f32;
/// the same composition of Burn's ops elsewhere.
///
/// # Shapes
/// - `qkv`: `[B, T, 3 D]` with `heads` dividing `D` -> `[B, T, D]`
///
/// # Panics
/// If the last axis is not a multiple of `3 heads` (a model configuration error, caught when
/// the model is built).
pub fn self_attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, t, three_d] = qkv.dims();
    assert!(
        heads > 0 && three_d.is_multiple_of(3 * heads),
        "qkv width {three_d} is not 3 x a multiple of {heads} heads"
    );
    #[cfg(feature = "flex")]
    if let Some(out) = fused::self_attention(&qkv, heads) {
        return out;
    }
    let d = three_d / 3;
    let hd = d / heads;
    // [B, T, 3, H, hd] -> [3, B, H, T, hd]
    let qkv = qkv.reshape([b, t, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
    let part = |i: usize| {
        qkv.clone()
            .slice([i..i + 1, 0..b, 0..heads, 0..t, 0..hd])
            .reshape([b, heads, t, hd])
    };
    let (q, k, v) = (part(0), part(1), part(2));
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar((hd as f64).powf(-0.5));
    softmax(scores, 3)
        .matmul(v)
        .swap_dims(1, 2)
        .reshape([b, t, d])
}

#[cfg(feature = "flex")]
mod fused {
    use burn::backend::Flex;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::tensor::{DType, Tensor, TensorData};
    use rayon::prelude::*;

    use crate::flex::{
        FlexAutodiffTensor, autodiff_tensor, count_fused, float_tensor, from_autodiff_tensor,
        from_float_tensor,
    };
    use crate::gemm::gemm_add;
    use crate::vector_math::{Kernel, dot, exp, max, sum, vectorised};

    /// The problem's sizes: batch, tokens, heads, head width.
    #[derive(Debug, Clone, Copy)]
    struct Dims {
        b: usize,
        t: usize,
        h: usize,
        hd: usize,
    }

    impl Dims {
        fn d(&self) -> usize {
            self.h * self.hd
        }
        fn scale(&self) -> f32 {
            (self.hd as f32).powf(-0.5)
        }
        /// Offsets of head `head`'s q, k and v columns in sample `sample`'s `[T, 3 D]` block.
        fn offsets(&self, sample: usize, head: usize) -> [usize; 3] {
            let base = sample * self.t * 3 * self.d() + head * self.hd;
            [base, base + self.d(), base + 2 * self.d()]
        }
    }

    pub(super) fn self_attention(qkv: &Tensor<3>, heads: usize) -> Option<Tensor<3>> {
        if qkv.dtype() != DType::F32 {
            return None;
        }
        let [b, t, three_d] = qkv.dims();
        let dims = Dims {
            b,
            t,
            h: heads,
            hd: three_d / 3 / heads,
        };
        if b * t * three_d == 0 {
            return None;
        }
        if let Some(x) = float_tensor(qkv) {
            let x = x.to_contiguous();
            let (out, _) = forward(x.storage(), dims);
            count_fused("attention");
            return Some(from_float_tensor(tensor(out, [b, t, dims.d()])));
        }
        let (x, context) = autodiff_tensor(qkv)?;
        count_fused("attention");
        Some(from_autodiff_tensor(tracked(x, dims), context))
    }

    fn tensor(values: Vec<f32>, shape: [usize; 3]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    /// `q k^T` for one (sample, head) into `scores` (`T x T`, row-major; the softmax applies
    /// the scale).
    fn scores(qkv: &[f32], dims: Dims, [q, k, _]: [usize; 3], scores: &mut [f32]) {
        let (t, w) = (dims.t, 3 * dims.d() as isize);
        gemm_add(
            [t, t, dims.hd],
            scores,
            [t as isize, 1],
            &qkv[q..],
            [w, 1],
            &qkv[k..],
            [1, w],
            false,
            false,
        );
    }

    /// Row-wise softmax of `scale s` in place (rows `t` long), each row's log-sum-exp into
    /// `lse`.
    struct SoftmaxRows<'a> {
        s: &'a mut [f32],
        lse: &'a mut [f32],
        t: usize,
        scale: f32,
    }

    impl Kernel for SoftmaxRows<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self) {
            for (row, lse) in self.s.chunks_mut(self.t).zip(self.lse.iter_mut()) {
                let m = max(row) * self.scale;
                for v in row.iter_mut() {
                    *v = exp(*v * self.scale - m);
                }
                let total = sum(row);
                let inv = 1.0 / total;
                for v in row.iter_mut() {
                    *v *= inv;
                }
                *lse = m + total.ln();
            }
        }
    }

    /// The probabilities again, `exp(scale s - lse)` per row, in place.
    struct ProbabilitiesFromLse<'a> {
        s: &'a mut [f32],
        lse: &'a [f32],
        t: usize,
        scale: f32,
    }

    impl Kernel for ProbabilitiesFromLse<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self) {
            for (row, &l) in self.s.chunks_mut(self.t).zip(self.lse) {
                for v in row.iter_mut() {
                    *v = exp(*v * self.scale - l);
                }
            }
        }
    }

    /// The scores' gradient from the probabilities' one, in place:
    /// `dS = scale P (dP - rowsum(P dP))`.
    struct SoftmaxGrad<'a> {
        dp: &'a mut [f32],
        p: &'a [f32],
        t: usize,
        scale: f32,
    }

    impl Kernel for SoftmaxGrad<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self) {
            for (g, p) in self.dp.chunks_mut(self.t).zip(self.p.chunks(self.t)) {
                let along = dot(g, p);
                for (g, &p) in g.iter_mut().zip(p) {
                    *g = self.scale * p * (*g - along);
                }
            }
        }
    }

    /// The forward pass: `[B, T, D]` output and the `[B, H, T]` log-sum-exps of the rows.
    fn forward(qkv: &[f32], dims: Dims) -> (Vec<f32>, Vec<f32>) {
        let Dims { b, t, h, hd } = dims;
        let per_head: Vec<(Vec<f32>, Vec<f32>)> = (0..b * h)
            .into_par_iter()
            .map(|task| {
                let offsets = dims.offsets(task / h, task % h);
                let mut p = vec![0.0f32; t * t];
                scores(qkv, dims, offsets, &mut p);
                let mut lse = vec![0.0f32; t];
                vectorised(SoftmaxRows {
                    s: &mut p,
                    lse: &mut lse,
                    t,
                    scale: dims.scale(),
                });
                let mut out = vec![0.0f32; t * hd];
                gemm_add(
                    [t, hd, t],
                    &mut out,
                    [hd as isize, 1],
                    &p,
                    [t as isize, 1],
                    &qkv[offsets[2]..],
                    [3 * dims.d() as isize, 1],
                    false,
                    false,
                );
                (out, lse)
            })
            .collect();
        let out = interleave_heads(dims, 1, |task, _| &per_head[task].0);
        let lse = per_head.into_iter().flat_map(|(_, l)| l).collect();
        (out, lse)
    }

    /// The backward pass: `d qkv`, `[B, T, 3 D]`, from the output's gradient `dout`.
    fn backward(qkv: &[f32], dout: &[f32], lse: &[f32], dims: Dims) -> Vec<f32> {
        let Dims { b, t, h, hd } = dims;
        let d = dims.d();
        let (w, scale) = (3 * d as isize, dims.scale());
        // Per (sample, head): dq, dk, dv, each T x hd.
        let per_head: Vec<[Vec<f32>; 3]> = (0..b * h)
            .into_par_iter()
            .map(|task| {
                let (sample, head) = (task / h, task % h);
                let offsets = dims.offsets(sample, head);
                let [q, k, v] = offsets;
                let go = &dout[sample * t * d + head * hd..];
                let row_lse = &lse[task * t..(task + 1) * t];
                // P again, from the scores and the saved log-sum-exps.
                let mut p = vec![0.0f32; t * t];
                scores(qkv, dims, offsets, &mut p);
                vectorised(ProbabilitiesFromLse {
                    s: &mut p,
                    lse: row_lse,
                    t,
                    scale,
                });
                let mut dv = vec![0.0f32; t * hd];
                // dV = P^T dO
                gemm_add(
                    [t, hd, t],
                    &mut dv,
                    [hd as isize, 1],
                    &p,
                    [1, t as isize],
                    go,
                    [d as isize, 1],
                    false,
                    false,
                );
                // dP = dO V^T
                let mut ds = vec![0.0f32; t * t];
                gemm_add(
                    [t, t, hd],
                    &mut ds,
                    [t as isize, 1],
                    go,
                    [d as isize, 1],
                    &qkv[v..],
                    [1, w],
                    false,
                    false,
                );
                // dS = scale P (dP - rowsum(P dP))
                vectorised(SoftmaxGrad {
                    dp: &mut ds,
                    p: &p,
                    t,
                    scale,
                });
                let mut dq = vec![0.0f32; t * hd];
                // dQ = dS K
                gemm_add(
                    [t, hd, t],
                    &mut dq,
                    [hd as isize, 1],
                    &ds,
                    [t as isize, 1],
                    &qkv[k..],
                    [w, 1],
                    false,
                    false,
                );
                let mut dk = vec![0.0f32; t * hd];
                // dK = dS^T Q
                gemm_add(
                    [t, hd, t],
                    &mut dk,
                    [hd as isize, 1],
                    &ds,
                    [1, t as isize],
                    &qkv[q..],
                    [w, 1],
                    false,
                    false,
                );
                [dq, dk, dv]
            })
            .collect();
        interleave_heads(dims, 3, |task, part| &per_head[task][part])
    }

    /// `[B, T, parts D]` from per-(sample, head) blocks `block(task, part)` of `T x hd`:
    /// token `i` of head `head`'s part `part` lands at columns `part D + head hd ..` of row
    /// `i` (timm's head layout, `parts` = 1 for the output, 3 for `qkv`).
    fn interleave_heads<'a>(
        dims: Dims,
        parts: usize,
        block: impl Fn(usize, usize) -> &'a [f32] + Sync,
    ) -> Vec<f32> {
        let Dims { b, t, h, hd } = dims;
        let width = parts * dims.d();
        let mut out = vec![0.0f32; b * t * width];
        out.par_chunks_mut(t * width)
            .enumerate()
            .for_each(|(sample, o)| {
                for head in 0..h {
                    for part in 0..parts {
                        let src = block(sample * h + head, part);
                        for (token, row) in src.chunks(hd).enumerate() {
                            let at = token * width + part * dims.d() + head * hd;
                            o[at..at + hd].copy_from_slice(row);
                        }
                    }
                }
            });
        out
    }

    #[derive(Debug)]
    struct SelfAttentionFused;

    impl Backward<Flex, 1> for SelfAttentionFused {
        /// The checkpointed `qkv`, the rows' log-sum-exps and the sizes.
        type State = (NodeId, Vec<f32>, Dims);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node] = ops.parents;
            let dout: FlexTensor = grads.consume::<Flex>(&ops.node);
            let (state, lse, dims) = ops.state;
            let qkv: FlexTensor = checkpointer.retrieve_node_output(state);
            let Some(node) = node else { return };
            let (qkv, dout) = (qkv.to_contiguous(), dout.to_contiguous());
            let dqkv = backward(qkv.storage(), dout.storage(), &lse, dims);
            grads.register::<Flex>(node.id, tensor(dqkv, [dims.b, dims.t, 3 * dims.d()]));
        }
    }

    fn tracked(qkv: FlexAutodiffTensor, dims: Dims) -> FlexAutodiffTensor {
        let run = |x: &FlexTensor| {
            let x = x.to_contiguous();
            let (out, lse) = forward(x.storage(), dims);
            (tensor(out, [dims.b, dims.t, dims.d()]), lse)
        };
        match SelfAttentionFused
            .prepare::<NoCheckpointing>([qkv.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&qkv);
                let (out, lse) = run(qkv.primitive());
                prep.finish((state, lse, dims), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(qkv.primitive()).0),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::testing::max_rel_diff;

    /// The composition of Burn's ops that [`self_attention`] falls back to, written out here
    /// independently of it: per head, `softmax(q k^T / sqrt(d)) v`.
    fn reference(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
        let [b, t, three_d] = qkv.dims();
        let d = three_d / 3;
        let hd = d / heads;
        let outs: Vec<Tensor<3>> = (0..heads)
            .map(|head| {
                let cols = |part: usize| {
                    let at = part * d + head * hd;
                    qkv.clone().slice([0..b, 0..t, at..at + hd])
                };
                let s = cols(0).matmul(cols(1).swap_dims(1, 2)) / (hd as f64).sqrt();
                softmax(s, 2).matmul(cols(2))
            })
            .collect();
        Tensor::cat(outs, 2)
    }

    /// Values and the gradient of `qkv` equal the per-head composition of Burn's ops, with
    /// sizes that are not multiples of any SIMD width, and large logits (a softmax computed
    /// without subtracting the row maximum would overflow).
    #[test]
    fn matches_the_composed_attention() {
        let device = Device::flex().autodiff();
        device.seed(13);
        for (shape, heads, spread) in [([2, 37, 3 * 24], 3, 1.0), ([3, 20, 3 * 16], 2, 12.0)] {
            let xs = Tensor::<3>::random(shape, Distribution::Normal(0.0, spread), &device);
            let weights = Tensor::<3>::random(
                [shape[0], shape[1], shape[2] / 3],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |fused: bool| {
                let x = xs.clone().require_grad();
                let before = crate::flex::fused_calls("attention");
                let y = if fused {
                    self_attention(x.clone(), heads)
                } else {
                    reference(x.clone(), heads)
                };
                if fused {
                    assert_eq!(
                        crate::flex::fused_calls("attention"),
                        before + 1,
                        "fused path not taken"
                    );
                }
                let grads = (y.clone() * weights.clone()).sum().backward();
                (y, x.grad(&grads).unwrap())
            };
            let (ours, burns) = (run(true), run(false));
            assert!(max_rel_diff(ours.0, burns.0) < 1e-5, "{shape:?}: values");
            assert!(max_rel_diff(ours.1, burns.1) < 1e-4, "{shape:?}: gradients");
            let plain = xs.clone().inner();
            assert!(
                max_rel_diff(
                    self_attention(plain.clone(), heads),
                    reference(plain, heads)
                ) < 1e-5,
                "{shape:?}: inference values"
            );
        }
    }
}
