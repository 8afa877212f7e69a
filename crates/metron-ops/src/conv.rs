//! 2-D convolution on the CPU backend as im2col + GEMM, forward and backward.
//!
//! Burn 0.22 derives a convolution's gradients generically: the weight gradient as another
//! convolution whose kernel is the whole output map, the input gradient as a transposed
//! convolution. On the flex backend that made training a ResNet-50 1.75x slower than PyTorch,
//! which computes both as matrix products over the unfolded input ("im2col"):
//! `dW = dY cols(X)^T` and `dX = col2im(W^T dY)`. On flex, [`conv2d`] computes the output as
//! `W cols(X)` (faster than flex's own kernel too) and, under autodiff, records its own node
//! with those two products. Grouped convolutions (ResNeXt's) run the same products group by
//! group on the same unfolded input. Everywhere else (other backends, dilated convolutions,
//! f64) it is `burn::tensor::module::conv2d`.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;

/// `burn::tensor::module::conv2d`, with an im2col + GEMM backward on flex (see the module
/// documentation). Same arguments, same result.
///
/// # Shapes
/// - `x`: `[B, C_in, H, W]`, `weight`: `[C_out, C_in / groups, kH, kW]`, `bias`: `[C_out]`
/// - -> `[B, C_out, H_out, W_out]`
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex_autodiff::conv2d(&x, &weight, &options) {
        return match bias {
            Some(b) => {
                let c = b.dims()[0];
                y + b.reshape([1, c, 1, 1])
            }
            None => y,
        };
    }
    burn_conv2d(x, weight, bias, options)
}

/// `conv.forward(x)` through [`conv2d`]: the same module, with the faster backward on flex.
///
/// # Shapes
/// - `x`: `[B, C_in, H, W]` -> `[B, C_out, H_out, W_out]`
pub fn conv2d_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // "Same" depends on the input size; Burn's module works it out.
        PaddingConfig2d::Same => return conv.forward(x),
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

#[cfg(feature = "flex")]
mod flex_autodiff {
    use burn::backend::Flex;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::ops::ModuleOps;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{DType, Tensor, TensorData};

    use super::im2col::{Geometry, forward, input_grad, weight_grad};

    fn forward_im2col(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let g = Geometry::new(
            x.layout().shape().dims(),
            weight.layout().shape().dims(),
            options.stride,
            options.padding_begin(),
            options.groups,
        );
        let y = forward(&g, x.storage(), weight.storage());
        FlexTensor::from_data(TensorData::new(y, [g.batch, g.c_out, g.h_out, g.w_out]))
    }

    use crate::flex::FlexAutodiffTensor;

    /// The convolution by im2col + GEMM (a tracked op under autodiff), or `None` where Burn's
    /// own op must run.
    pub(super) fn conv2d(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        let ([_, c_in, h, w], [_, w_in, kh, kw]) = (x.dims(), weight.dims());
        let [ph, pw] = options.padding_begin();
        // A kernel larger than the padded input, or mismatched channels, is left to Burn's
        // op to report.
        let groups = options.groups;
        if groups == 0
            || !c_in.is_multiple_of(groups)
            || !weight.dims()[0].is_multiple_of(groups)
            || options.dilation != [1, 1]
            || options.is_asymmetric()
            || x.dtype() != DType::F32
            || weight.dtype() != DType::F32
            || c_in != w_in * groups
            || h + 2 * ph < kh
            || w + 2 * pw < kw
        {
            return None;
        }
        if let (Some(x), Some(weight)) = (
            crate::flex::float_tensor(x),
            crate::flex::float_tensor(weight),
        ) {
            return Some(crate::flex::from_float_tensor(forward_im2col(
                &x, &weight, options,
            )));
        }
        let (x, context) = crate::flex::autodiff_tensor(x)?;
        let (weight, _) = crate::flex::autodiff_tensor(weight)?;
        let y = conv2d_tracked(x, weight, options.clone());
        Some(crate::flex::from_autodiff_tensor(y, context))
    }

    #[derive(Debug)]
    struct Conv2dIm2col;

    impl Backward<Flex, 2> for Conv2dIm2col {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            #[cfg(test)]
            super::tests::BACKWARD_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let [node_x, node_weight] = ops.parents;
            let grad: FlexTensor = grads.consume::<Flex>(&ops.node);
            let (x_state, weight_state, options) = ops.state;
            let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
            let weight: FlexTensor = checkpointer.retrieve_node_output(weight_state);
            let (x, weight, grad) = (
                x.to_contiguous(),
                weight.to_contiguous(),
                grad.to_contiguous(),
            );
            let geometry = Geometry::new(
                x.layout().shape().dims(),
                weight.layout().shape().dims(),
                options.stride,
                options.padding_begin(),
                options.groups,
            );
            debug_assert_eq!(
                grad.layout().shape().dims::<4>(),
                [
                    geometry.batch,
                    geometry.c_out,
                    geometry.h_out,
                    geometry.w_out
                ]
            );
            if let Some(node) = node_x {
                let dx = input_grad(&geometry, weight.storage(), grad.storage());
                let shape = [geometry.batch, geometry.c_in, geometry.h, geometry.w];
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
            }
            if let Some(node) = node_weight {
                let dw = weight_grad(&geometry, x.storage(), grad.storage());
                let shape = [
                    geometry.c_out,
                    geometry.c_in / geometry.groups,
                    geometry.kh,
                    geometry.kw,
                ];
                grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dw, shape)));
            }
        }
    }

    fn conv2d_tracked(
        x: FlexAutodiffTensor,
        weight: FlexAutodiffTensor,
        options: ConvOptions<2>,
    ) -> FlexAutodiffTensor {
        match Conv2dIm2col
            .prepare::<NoCheckpointing>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = forward_im2col(x.primitive(), weight.primitive(), &options);
                prep.finish((x_state, weight_state, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                None,
                options,
            )),
        }
    }
}

/// The forward and the two gradient products on plain f32 slices (row-major NCHW),
/// independent of Burn.
#[cfg(feature = "flex")]
pub(crate) mod im2col {
    use rayon::prelude::*;

    use crate::gemm::gemm_add;

    /// Sizes of one undilated convolution, its channels split into `groups` independent
    /// groups (1 for an ordinary convolution).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Geometry {
        pub batch: usize,
        pub groups: usize,
        pub c_in: usize,
        pub h: usize,
        pub w: usize,
        pub c_out: usize,
        pub kh: usize,
        pub kw: usize,
        pub stride: [usize; 2],
        pub padding: [usize; 2],
        pub h_out: usize,
        pub w_out: usize,
        /// Size in floats the blocked forward pass aims its unfolded blocks at (see
        /// [`Geometry::rows_per_block`]); tests shrink it to exercise many blocks.
        pub block_floats: usize,
    }

    impl Geometry {
        /// `weight` is `[C_out, C_in / groups, kH, kW]`.
        pub fn new(
            x: [usize; 4],
            weight: [usize; 4],
            stride: [usize; 2],
            padding: [usize; 2],
            groups: usize,
        ) -> Self {
            let [batch, c_in, h, w] = x;
            let [c_out, _, kh, kw] = weight;
            Geometry {
                batch,
                groups,
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride,
                padding,
                h_out: (h + 2 * padding[0] - kh) / stride[0] + 1,
                w_out: (w + 2 * padding[1] - kw) / stride[1] + 1,
                block_floats: 1 << 19,
            }
        }

        /// Rows of the unfolded input: one per (input channel, kernel row, kernel column).
        fn rows(&self) -> usize {
            self.c_in * self.kh * self.kw
        }

        /// Rows of the unfolded input per group: a contiguous block of [`Geometry::rows`], as
        /// a group's input channels are.
        fn group_rows(&self) -> usize {
            self.rows() / self.groups
        }

        fn group_out(&self) -> usize {
            self.c_out / self.groups
        }

        fn pixels(&self) -> usize {
            self.h_out * self.w_out
        }

        /// Output rows per block of the blocked forward pass: the unfolded block stays about
        /// `block_floats` (2 MB: in cache between its writing and the product reading it), but
        /// at least `block_floats / 1024` (512) pixels wide, so that the product still
        /// streams the weights over many columns.
        fn rows_per_block(&self) -> usize {
            let w = self.w_out.max(1);
            (self.block_floats / (self.rows().max(1) * w))
                .max((self.block_floats / 1024).div_ceil(w))
                .clamp(1, self.h_out.max(1))
        }

        /// Samples whose unfolded maps one product takes side by side: enough that a small
        /// map (ResNet-18's last stage at 64 x 64 input has 2 x 2 pixels) still gives the
        /// product `block_floats / 1024` (512) columns; 1 for maps that large or larger.
        fn samples_per_product(&self) -> usize {
            let min = (self.block_floats / 1024).max(1);
            let p = self.pixels().max(1);
            if p >= min {
                1
            } else {
                min.div_ceil(p).min(self.batch.max(1))
            }
        }

        /// A 1x1, stride-1, unpadded convolution: the unfolded input is the input itself.
        fn is_pointwise(&self) -> bool {
            self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
        }

        /// For kernel column `j`: the output columns whose input column is inside the image,
        /// and the input column of the first of them.
        fn valid_columns(&self, j: usize) -> (std::ops::Range<usize>, isize) {
            let (sw, pw) = (self.stride[1], self.padding[1] as isize);
            let first_ix = j as isize - pw;
            // ox * sw + first_ix >= 0  and  < w
            let lo = if first_ix >= 0 {
                0
            } else {
                ((-first_ix) as usize).div_ceil(sw)
            };
            let hi = if (self.w as isize) > first_ix {
                (((self.w as isize - first_ix) as usize).div_ceil(sw)).min(self.w_out)
            } else {
                0
            };
            (lo..hi.max(lo), first_ix)
        }
    }

    /// `cols[(c kh + i) kw + j][(oy - rows.start) w_out + ox] = x[c][oy sh + i - ph][ox sw + j - pw]`
    /// (0 outside the image) for the output rows `oy` in `rows`, for one sample: `cols` is
    /// `[R, rows.len() w_out]`.
    fn unfold_rows(
        g: &Geometry,
        x: &[f32],
        rows: std::ops::Range<usize>,
        cols: &mut [f32],
        stride: usize,
    ) {
        let (sh, sw, ph) = (g.stride[0], g.stride[1], g.padding[0] as isize);
        let p = rows.len() * g.w_out;
        for c in 0..g.c_in {
            let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = &mut cols[((c * g.kh + i) * g.kw + j) * stride..][..p];
                    let (valid, first_ix) = g.valid_columns(j);
                    if sh == 1 && sw == 1 && g.w_out == g.w {
                        shifted_copy(g, plane, rows.clone(), i, first_ix, row);
                        continue;
                    }
                    for oy in rows.clone() {
                        let at = (oy - rows.start) * g.w_out;
                        let out = &mut row[at..at + g.w_out];
                        let iy = (oy * sh) as isize + i as isize - ph;
                        if iy < 0 || iy >= g.h as isize || valid.is_empty() {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                        out[..valid.start].fill(0.0);
                        out[valid.end..].fill(0.0);
                        let start = (valid.start * sw) as isize + first_ix;
                        if sw == 1 {
                            out[valid.clone()].copy_from_slice(
                                &src[start as usize..start as usize + valid.len()],
                            );
                        } else {
                            for (k, o) in out[valid.clone()].iter_mut().enumerate() {
                                *o = src[start as usize + k * sw];
                            }
                        }
                    }
                }
            }
        }
    }

    /// One row of the unfolded input of a stride-1 convolution whose output is as wide as
    /// its input (padding `(kw - 1) / 2` on both sides): the input plane shifted by
    /// `(i - ph, first_ix)` as one copy, then the rows above or below the image and the
    /// columns that wrapped around from the neighbouring row set to 0. (Row by row, a small
    /// map cost one `memcpy` call per output row: the slowest part of training on 64 x 64
    /// images.)
    fn shifted_copy(
        g: &Geometry,
        plane: &[f32],
        rows: std::ops::Range<usize>,
        i: usize,
        first_ix: isize,
        out: &mut [f32],
    ) {
        let w = g.w;
        let ph = g.padding[0] as isize;
        // Output rows whose input row iy = oy + i - ph is inside the image.
        let lo = (ph - i as isize)
            .max(rows.start as isize)
            .min(rows.end as isize) as usize;
        let hi = (g.h as isize + ph - i as isize)
            .min(rows.end as isize)
            .max(lo as isize) as usize;
        let (qa, qb) = ((lo - rows.start) * w, (hi - rows.start) * w);
        out[..qa].fill(0.0);
        out[qb..].fill(0.0);
        if qa == qb {
            return;
        }
        // Output position q reads input position q + shift.
        let shift = (rows.start as isize + i as isize - ph) * w as isize + first_ix;
        // Clip to the plane: the first / last element can fall one column outside it.
        let start = qa.max((-shift).max(0) as usize);
        let end = qb
            .min((plane.len() as isize - shift).max(0) as usize)
            .max(start);
        out[qa..start].fill(0.0);
        out[end..qb].fill(0.0);
        let from = (start as isize + shift) as usize;
        out[start..end].copy_from_slice(&plane[from..from + (end - start)]);
        // Columns ox with ox + first_ix outside [0, w) read the neighbouring row: zero them.
        let bad = if first_ix < 0 {
            0..(-first_ix) as usize
        } else {
            w.saturating_sub(first_ix as usize)..w
        };
        if !bad.is_empty() {
            for r in 0..hi - lo {
                out[qa + r * w + bad.start..qa + r * w + bad.end.min(w)].fill(0.0);
            }
        }
    }

    /// The adjoint of [`unfold_rows`]: adds every column entry of the output rows `rows`
    /// back onto its input pixel.
    fn fold_add_rows(
        g: &Geometry,
        cols: &[f32],
        rows: std::ops::Range<usize>,
        stride: usize,
        dx: &mut [f32],
    ) {
        let (sh, sw, ph) = (g.stride[0], g.stride[1], g.padding[0] as isize);
        let p = rows.len() * g.w_out;
        for c in 0..g.c_in {
            let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = &cols[((c * g.kh + i) * g.kw + j) * stride..][..p];
                    let (valid, first_ix) = g.valid_columns(j);
                    if valid.is_empty() {
                        continue;
                    }
                    for oy in rows.clone() {
                        let iy = (oy * sh) as isize + i as isize - ph;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let at = (oy - rows.start) * g.w_out;
                        let src = &row[at..at + g.w_out];
                        let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                        let start = ((valid.start * sw) as isize + first_ix) as usize;
                        if sw == 1 {
                            for (d, s) in dst[start..start + valid.len()]
                                .iter_mut()
                                .zip(&src[valid.clone()])
                            {
                                *d += s;
                            }
                        } else {
                            for (k, s) in src[valid.clone()].iter().enumerate() {
                                dst[start + k * sw] += s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Most partial sums the weight gradient keeps (see [`weight_grad`]).
    const WEIGHT_GRAD_CHUNKS: usize = 2;

    /// Samples per parallel task: about one task per thread, so that the per-task buffers
    /// (a weight-sized accumulator, one unfolded sample) stay few.
    fn samples_per_task(batch: usize) -> usize {
        batch.div_ceil(rayon::current_num_threads()).max(1)
    }

    /// The blocks one product covers: whole output-row blocks of one sample (`samples == 1`),
    /// or the whole maps of `samples` consecutive samples side by side.
    #[derive(Debug, Clone)]
    struct Block {
        first_sample: usize,
        samples: usize,
        rows: std::ops::Range<usize>,
    }

    impl Block {
        /// Columns of the block's products: pixels of every sample in it.
        fn width(&self, g: &Geometry) -> usize {
            self.samples * self.rows.len() * g.w_out
        }
    }

    /// The blocks of samples `samples` (consecutive), in a fixed order: row blocks of each
    /// sample for large maps, groups of [`Geometry::samples_per_product`] samples for small
    /// ones.
    fn blocks(g: &Geometry, samples: std::ops::Range<usize>) -> Vec<Block> {
        let stack = g.samples_per_product();
        if stack > 1 {
            return samples
                .clone()
                .step_by(stack)
                .map(|first| Block {
                    first_sample: first,
                    samples: stack.min(samples.end - first),
                    rows: 0..g.h_out,
                })
                .collect();
        }
        let per = g.rows_per_block();
        samples
            .flat_map(|n| {
                (0..g.h_out).step_by(per).map(move |first| Block {
                    first_sample: n,
                    samples: 1,
                    rows: first..(first + per).min(g.h_out),
                })
            })
            .collect()
    }

    /// The unfolded input of `block`, `[R, block.width()]`, in `buf` (or, for a pointwise
    /// convolution of one sample's whole map, the input itself).
    fn unfolded<'a>(g: &Geometry, x: &'a [f32], block: &Block, buf: &'a mut Vec<f32>) -> &'a [f32] {
        let x_len = g.c_in * g.h * g.w;
        let width = block.width(g);
        let one = block.rows.len() * g.w_out;
        if g.is_pointwise() && block.samples == 1 && width == g.pixels() {
            return &x[block.first_sample * x_len..][..x_len];
        }
        buf.resize(g.rows() * width, 0.0);
        for s in 0..block.samples {
            let xn = &x[(block.first_sample + s) * x_len..][..x_len];
            unfold_rows(g, xn, block.rows.clone(), &mut buf[s * one..], width);
        }
        buf
    }

    /// `dY` of `block` as a `[C_out, width]` matrix: `(slice, row stride)`, the gradient
    /// itself for one sample, else gathered into `buf`.
    fn block_dy<'a>(
        g: &Geometry,
        dy: &'a [f32],
        block: &Block,
        buf: &'a mut Vec<f32>,
    ) -> (&'a [f32], usize) {
        let p = g.pixels();
        let dy_len = g.c_out * p;
        if block.samples == 1 {
            let start = block.first_sample * dy_len + block.rows.start * g.w_out;
            return (&dy[start..], p);
        }
        let width = block.width(g);
        buf.resize(g.c_out * width, 0.0);
        for s in 0..block.samples {
            let dyn_ = &dy[(block.first_sample + s) * dy_len..][..dy_len];
            for c in 0..g.c_out {
                buf[c * width + s * p..][..p].copy_from_slice(&dyn_[c * p..][..p]);
            }
        }
        (buf, width)
    }

    /// `dW [C_out, C_in / G, kH, kW] = sum over samples of dY_n [C_out, P] cols(X_n)^T [P, R]`,
    /// group by group (rows of `dY_n` and of `cols` in blocks of the group's size).
    pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let r = g.group_rows();
        let co = g.group_out();
        // acc += dY[:, block] cols^T.
        let block_grad =
            |acc: &mut [f32], bufs: &mut (Vec<f32>, Vec<f32>), block: &Block, parallel: bool| {
                let width = block.width(g);
                let (cols_buf, dy_buf) = bufs;
                let cols = unfolded(g, x, block, cols_buf);
                let (dyb, dy_rs) = block_dy(g, dy, block, dy_buf);
                for group in 0..g.groups {
                    gemm_add(
                        [co, r, width],
                        &mut acc[group * co * r..],
                        [r as isize, 1],
                        &dyb[group * co * dy_rs..],
                        [dy_rs as isize, 1],
                        &cols[group * r * width..],
                        [1, width as isize],
                        parallel,
                        true,
                    );
                }
            };
        // Fixed chunks of samples, summed in chunk order and block by block within a chunk:
        // the partition depends on the batch size only, so the result is the same bits
        // whatever the thread count or scheduling (resumed training runs must equal
        // uninterrupted ones). Each chunk is one partial weight-sized sum, hence at most
        // WEIGHT_GRAD_CHUNKS of them.
        let chunk = g.batch.div_ceil(WEIGHT_GRAD_CHUNKS).max(1);
        let chunks = g.batch.div_ceil(chunk);
        // Fewer chunks than threads: let each product use the threads (gemm splits the output,
        // not the sum, so this does not change the arithmetic).
        let parallel_gemm = chunks < rayon::current_num_threads();
        let partials: Vec<Vec<f32>> = (0..chunks)
            .into_par_iter()
            // The unfolded-block buffers are per thread; the partial sum per chunk.
            .map_init(
                || (Vec::new(), Vec::new()),
                |bufs, c| {
                    let mut acc = vec![0.0f32; g.c_out * r];
                    for block in blocks(g, c * chunk..((c + 1) * chunk).min(g.batch)) {
                        block_grad(&mut acc, bufs, &block, parallel_gemm);
                    }
                    acc
                },
            )
            .collect();
        let mut partials = partials.into_iter();
        let mut total = partials.next().unwrap_or_else(|| vec![0.0f32; g.c_out * r]);
        for partial in partials {
            total.iter_mut().zip(&partial).for_each(|(t, p)| *t += p);
        }
        total
    }

    /// `Y_n [C_out, P] = W [C_out, R] cols(X_n) [R, P]` for every sample, group by group.
    pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
        let (r, p) = (g.group_rows(), g.pixels());
        let co = g.group_out();
        let y_len = g.c_out * p;
        let mut y = vec![0.0f32; g.batch * y_len];
        let stack = g.samples_per_product();
        let parallel_gemm = g.batch.div_ceil(stack) < rayon::current_num_threads();
        // `out` holds the samples of `block`'s first to last.
        let run = |out: &mut [f32], bufs: &mut (Vec<f32>, Vec<f32>), block: &Block| {
            let width = block.width(g);
            let (cols_buf, wide_buf) = bufs;
            let cols = unfolded(g, x, block, cols_buf);
            // One sample: straight into its output rows; several: into a [C_out, width]
            // matrix, then out to each sample.
            let (dst, dst_rs): (&mut [f32], usize) = if block.samples == 1 {
                (&mut out[block.rows.start * g.w_out..], p)
            } else {
                wide_buf.resize(g.c_out * width, 0.0);
                (wide_buf, width)
            };
            for group in 0..g.groups {
                gemm_add(
                    [co, width, r],
                    &mut dst[group * co * dst_rs..],
                    [dst_rs as isize, 1],
                    &weight[group * co * r..],
                    [r as isize, 1],
                    &cols[group * r * width..],
                    [width as isize, 1],
                    parallel_gemm,
                    false,
                );
            }
            if block.samples > 1 {
                for s in 0..block.samples {
                    for c in 0..g.c_out {
                        out[(s * g.c_out + c) * p..][..p]
                            .copy_from_slice(&wide_buf[c * width + s * p..][..p]);
                    }
                }
            }
        };
        for_each_sample_group(&mut y, y_len, stack, parallel_gemm, |out, bufs, first| {
            let count = out.len() / y_len;
            for block in blocks(g, first..first + count) {
                let at = (block.first_sample - first) * y_len;
                run(&mut out[at..at + block.samples * y_len], bufs, &block);
            }
        });
        y
    }

    /// `dX_n = fold(W^T [R, C_out] dY_n [C_out, P])` for every sample, group by group.
    pub fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
        let (r, p) = (g.group_rows(), g.pixels());
        let co = g.group_out();
        let x_len = g.c_in * g.h * g.w;
        let mut dx = vec![0.0f32; g.batch * x_len];
        let stack = g.samples_per_product();
        let parallel_gemm = g.batch.div_ceil(stack) < rayon::current_num_threads();
        // W^T: element (row q, col k) of the [R, C_out] view is W[k][q].
        let wt = [1, r as isize];
        let run = |out: &mut [f32], bufs: &mut (Vec<f32>, Vec<f32>), block: &Block| {
            let width = block.width(g);
            let (cols_buf, dy_buf) = bufs;
            let (dyb, dy_rs) = block_dy(g, dy, block, dy_buf);
            let product = |dst: &mut [f32]| {
                for group in 0..g.groups {
                    gemm_add(
                        [r, width, co],
                        &mut dst[group * r * width..],
                        [width as isize, 1],
                        &weight[group * co * r..],
                        wt,
                        &dyb[group * co * dy_rs..],
                        [dy_rs as isize, 1],
                        parallel_gemm,
                        false,
                    );
                }
            };
            if g.is_pointwise() && block.samples == 1 && width == p {
                return product(out);
            }
            // Every entry is overwritten by the product: no need to clear a reused buffer.
            cols_buf.resize(g.rows() * width, 0.0);
            product(cols_buf);
            let one = block.rows.len() * g.w_out;
            for s in 0..block.samples {
                let dxn = &mut out[s * x_len..(s + 1) * x_len];
                fold_add_rows(g, &cols_buf[s * one..], block.rows.clone(), width, dxn);
            }
        };
        for_each_sample_group(&mut dx, x_len, stack, parallel_gemm, |out, bufs, first| {
            let count = out.len() / x_len;
            for block in blocks(g, first..first + count) {
                let at = (block.first_sample - first) * x_len;
                run(&mut out[at..at + block.samples * x_len], bufs, &block);
            }
        });
        dx
    }

    /// Runs `f(out, buffers, first)` on groups of `stack` consecutive samples (`len`-long
    /// slices of `out` each; `first` the group's first sample), with reusable buffers per
    /// worker: one group at a time when the products themselves use the threads
    /// (`parallel_gemm`), else groups in parallel.
    fn for_each_sample_group<F>(
        out: &mut [f32],
        len: usize,
        stack: usize,
        parallel_gemm: bool,
        f: F,
    ) where
        F: Fn(&mut [f32], &mut (Vec<f32>, Vec<f32>), usize) + Sync,
    {
        let group = (len * stack).max(1);
        if parallel_gemm {
            let mut bufs = (Vec::new(), Vec::new());
            for (i, out) in out.chunks_mut(group).enumerate() {
                f(out, &mut bufs, i * stack);
            }
        } else {
            let groups = out.len().div_ceil(group);
            out.par_chunks_mut(group)
                .enumerate()
                .with_min_len(samples_per_task(groups))
                .for_each_init(
                    || (Vec::new(), Vec::new()),
                    |bufs, (i, out)| f(out, bufs, i * stack),
                );
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Direct definition of the convolution, in f64.
        fn conv_direct(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f64> {
            let mut y = vec![0.0f64; g.batch * g.c_out * g.pixels()];
            for n in 0..g.batch {
                for o in 0..g.c_out {
                    for oy in 0..g.h_out {
                        for ox in 0..g.w_out {
                            let mut acc = 0.0f64;
                            let cig = g.c_in / g.groups;
                            let group = o / (g.c_out / g.groups);
                            for c in group * cig..(group + 1) * cig {
                                for i in 0..g.kh {
                                    for j in 0..g.kw {
                                        let iy =
                                            (oy * g.stride[0] + i) as isize - g.padding[0] as isize;
                                        let ix =
                                            (ox * g.stride[1] + j) as isize - g.padding[1] as isize;
                                        if iy < 0
                                            || ix < 0
                                            || iy >= g.h as isize
                                            || ix >= g.w as isize
                                        {
                                            continue;
                                        }
                                        acc += x[((n * g.c_in + c) * g.h + iy as usize) * g.w
                                            + ix as usize]
                                            as f64
                                            * w[((o * cig + c - group * cig) * g.kh + i) * g.kw + j]
                                                as f64;
                                    }
                                }
                            }
                            y[((n * g.c_out + o) * g.h_out + oy) * g.w_out + ox] = acc;
                        }
                    }
                }
            }
            y
        }

        fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
            let mut s = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (0..len)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        }

        /// The weight gradient is the same bits on 1, 2 and 3 threads (its partial sums
        /// follow the batch, not the scheduling), for batches above and below the chunk count.
        #[test]
        fn weight_gradient_does_not_depend_on_the_thread_count() {
            for batch in [3usize, 20] {
                let g = Geometry::new([batch, 3, 6, 6], [4, 3, 3, 3], [1, 1], [1, 1], 1);
                let x = pseudo_random(batch * 3 * 36, 5);
                let dy = pseudo_random(batch * 4 * g.pixels(), 6);
                let on = |threads: usize| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap()
                        .install(|| weight_grad(&g, &x, &dy))
                };
                let one = on(1);
                for threads in [2, 3] {
                    let other = on(threads);
                    assert!(
                        one.iter()
                            .zip(&other)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "batch {batch}: {threads} threads differ from 1"
                    );
                }
            }
        }

        /// The gradients of `sum(dY * conv(X, W))` by central differences are linear in X and
        /// W, so they are exact: dW[q] = sum dY * conv(X, e_q), dX[q] = sum dY * conv(e_q, W).
        #[test]
        fn gradients_equal_the_derivatives_of_the_direct_convolution() {
            for (x, w, stride, padding, groups) in [
                ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [1, 1], 1),
                ([3, 2, 9, 8], [5, 2, 3, 3], [2, 2], [1, 1], 1),
                ([2, 3, 11, 10], [2, 3, 7, 7], [2, 2], [3, 3], 1),
                ([2, 4, 5, 5], [3, 4, 1, 1], [1, 1], [0, 0], 1),
                ([2, 4, 6, 5], [3, 4, 1, 1], [2, 2], [0, 0], 1),
                ([1, 2, 6, 7], [3, 2, 2, 3], [1, 2], [0, 2], 1),
                // Grouped, as ResNeXt's 3x3 convolutions (and a pointwise one).
                ([2, 6, 7, 6], [9, 2, 3, 3], [1, 1], [1, 1], 3),
                ([3, 8, 9, 8], [4, 2, 3, 3], [2, 2], [1, 1], 4),
                ([2, 4, 5, 5], [6, 2, 1, 1], [1, 1], [0, 0], 2),
                // A kernel wider than the map: shifts past the whole row.
                ([2, 2, 5, 3], [3, 2, 7, 7], [1, 1], [3, 3], 1),
            ] {
                for row_blocks in [false, true] {
                    let mut g = Geometry::new(x, w, stride, padding, groups);
                    if row_blocks {
                        // Blocks of a few rows, so that the maps are unfolded in pieces (of 2
                        // rows, with a last block of 1 where the height is odd).
                        g.block_floats = 2 * g.rows() * g.w_out;
                        assert!(g.rows_per_block() < g.h_out.max(2), "{g:?} is one block");
                        assert_eq!(g.samples_per_product(), 1);
                    } else if g.batch > 1 {
                        // These maps are small: several samples share each product.
                        assert!(g.samples_per_product() > 1, "{g:?}");
                    }
                    let xs = pseudo_random(x.iter().product(), 1);
                    let ws = pseudo_random(w.iter().product(), 2);
                    let dy = pseudo_random(g.batch * g.c_out * g.pixels(), 3);
                    let loss = |xs: &[f32], ws: &[f32]| -> f64 {
                        conv_direct(&g, xs, ws)
                            .iter()
                            .zip(&dy)
                            .map(|(y, d)| y * *d as f64)
                            .sum()
                    };
                    // Every entry of `got` within 1e-4 (relative, plus 1e-4) of `want(q)`.
                    let check = |name: &str, got: &[f32], want: &dyn Fn(usize) -> f64| {
                        for (q, &v) in got.iter().enumerate() {
                            let want = want(q);
                            assert!(
                                (v as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                                "{g:?} {name}[{q}] {v} vs {want}"
                            );
                        }
                    };
                    let unit = |len: usize, q: usize| {
                        let mut e = vec![0.0f32; len];
                        e[q] = 1.0;
                        e
                    };
                    let y_direct = conv_direct(&g, &xs, &ws);
                    check("y", &forward(&g, &xs, &ws), &|q| y_direct[q]);
                    check("dW", &weight_grad(&g, &xs, &dy), &|q| {
                        loss(&xs, &unit(ws.len(), q))
                    });
                    check("dX", &input_grad(&g, &ws, &dy), &|q| {
                        loss(&unit(xs.len(), q), &ws)
                    });
                }
            }
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::testing::max_rel_diff;

    /// How often the im2col backward ran, so that a test can tell it was used.
    pub(super) static BACKWARD_CALLS: AtomicUsize = AtomicUsize::new(0);

    /// Values and gradients (input, weight, bias) equal Burn's own convolution's on flex with
    /// autodiff, for the layer shapes ResNets and VGG use.
    #[test]
    fn matches_burns_convolution_values_and_gradients() {
        let device = Device::flex().autodiff();
        device.seed(7);
        for (x, w, stride, padding, groups) in [
            ([2, 3, 9, 8], [4, 3, 3, 3], [1, 1], [1, 1], 1),
            ([3, 4, 10, 9], [6, 4, 3, 3], [2, 2], [1, 1], 1),
            ([2, 3, 16, 16], [5, 3, 7, 7], [2, 2], [3, 3], 1),
            ([2, 6, 7, 7], [4, 6, 1, 1], [1, 1], [0, 0], 1),
            ([2, 6, 8, 8], [4, 6, 1, 1], [2, 2], [0, 0], 1),
            // ResNeXt's grouped 3x3 convolutions, at stride 1 and 2.
            ([2, 8, 9, 8], [8, 2, 3, 3], [1, 1], [1, 1], 4),
            ([3, 6, 10, 9], [8, 3, 3, 3], [2, 2], [1, 1], 2),
        ] {
            let xs = Tensor::<4>::random(x, Distribution::Normal(0.0, 1.0), &device);
            let ws = Tensor::<4>::random(w, Distribution::Normal(0.0, 0.5), &device);
            let bs = Tensor::<1>::random([w[0]], Distribution::Normal(0.0, 0.5), &device);
            let options = ConvOptions::new(stride, padding, [1, 1], groups);
            let run = |ours: bool| {
                let (x, w, b) = (
                    xs.clone().require_grad(),
                    ws.clone().require_grad(),
                    bs.clone().require_grad(),
                );
                let y = if ours {
                    conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
                } else {
                    burn_conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
                };
                // A non-uniform upstream gradient, so that every output position matters.
                let grads = (y.clone() * y.clone().sin()).sum().backward();
                (
                    y.inner(),
                    x.grad(&grads).unwrap(),
                    w.grad(&grads).unwrap(),
                    b.grad(&grads).unwrap(),
                )
            };
            let before = BACKWARD_CALLS.load(Ordering::SeqCst);
            let (y, dx, dw, db) = run(true);
            assert!(
                BACKWARD_CALLS.load(Ordering::SeqCst) > before,
                "{x:?} {w:?}: fast path not taken"
            );
            let (y0, dx0, dw0, db0) = run(false);
            let tag =
                format!("x {x:?} w {w:?} stride {stride:?} padding {padding:?} groups {groups}");
            assert!(max_rel_diff(y, y0) < 1e-5, "{tag}: values");
            assert!(max_rel_diff(dx, dx0) < 1e-5, "{tag}: input gradient");
            assert!(max_rel_diff(dw, dw0) < 1e-5, "{tag}: weight gradient");
            assert!(max_rel_diff(db, db0) < 1e-5, "{tag}: bias gradient");
        }
    }

    /// Only the weight needs a gradient (a frozen input, as for the first layer): the input
    /// gradient is not asked for, and the weight gradient is still right.
    #[test]
    fn input_without_gradient() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let ours = conv2d(x.clone(), w.clone(), None, options.clone())
            .sum()
            .backward();
        let burns = burn_conv2d(x.clone(), w.clone(), None, options)
            .sum()
            .backward();
        assert!(x.grad(&ours).is_none());
        assert!(max_rel_diff(w.grad(&ours).unwrap(), w.grad(&burns).unwrap()) < 1e-5);
    }
}
