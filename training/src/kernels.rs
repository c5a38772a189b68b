//! The char-CNN's convolution block and max-pool as candle custom ops, on channels-last tensors.
//!
//! Activations are `[batch, length, channels]`: the layout the embedding lookup produces, and the
//! one in which a convolution needs no im2col copy. A window of `k` positions is `k * channels`
//! consecutive floats, so the whole batch, padded and laid end to end, *is* the im2col matrix
//! when read with a row stride of `channels` (rows that straddle two URLs are computed and
//! ignored). Forward and both gradients are then one large matrix product each (the `gemm`
//! crate candle itself uses), instead of candle's conv1d with its per-sample copies and the
//! slow direct loops of its backward pass (which is also wrong on CPU, see [`ConvTanh`]).

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Device, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

/// `Conv1D(k, stride 1, zero padding on both sides) + bias + tanh` on channels-last input.
///
/// Operands: input `[B, L, C_in]`, weight `[C_out, C_in, k]` (the saved and exported layout),
/// bias `[C_out]`. Output `[B, L + 2 * padding - k + 1, C_out]`.
///
/// Written by hand because candle's own conv1d backward is wrong on CPU (0.8 to 0.11: the kernel
/// gradient's im2col path multiplies by the strides of a transposed kernel after copying it to a
/// contiguous buffer, and the unpadded input gradient's col2im path is wrong too). The
/// finite-difference test in `model.rs` guards this backward pass.
pub struct ConvTanh {
    /// Zeros added on each side of the sequence (0 = Keras 'valid', (k-1)/2 = 'same').
    pub padding: usize,
}

/// The first block fused with the embedding lookup: `tanh(conv1d(embedding[ids]) + bias)`.
///
/// A convolution of looked-up embedding rows is a sum of looked-up rows of the tables
/// `T_j = E * W_j^T` (one `[vocab, C_out]` table per kernel position `j`): `k` row additions per
/// output position instead of `k * E` multiply-adds per output channel (50 times less work for
/// the first block). The gradients of the embedding and the weight follow from the tables'
/// gradients, which are scatter-adds. Operands: embedding `[V, E]`, weight `[C_out, E, k]`, bias
/// `[C_out]`; output `[batch, len + 2 * padding - k + 1, C_out]`.
pub struct EmbedConvTanh {
    /// Token ids, `batch * len` of them, row-major.
    pub ids: Vec<u32>,
    /// URLs in the batch.
    pub batch: usize,
    /// Sequence length.
    pub len: usize,
    /// Zeros added on each side of the embedded sequence.
    pub padding: usize,
}

/// MaxPool1D(3), Keras 'valid' padding, on channels-last input: a trailing remainder is dropped.
/// The gradient goes to the first maximum of each window only, as in Keras (ties are common in
/// the zero-padded part of a URL).
pub struct MaxPool3;

type CResult<T> = candle_core::Result<T>;

fn msg(m: impl Into<String>) -> candle_core::Error {
    candle_core::Error::Msg(m.into())
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| msg("kernel expects contiguous inputs"))?;
    Ok(&s.as_slice::<f32>()?[start..end])
}

/// Runs `f` on the contiguous f32 data of `t`.
fn with_data<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> CResult<R>) -> CResult<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(slice(s, layout)?),
        _ => Err(msg("kernel runs on the CPU only")),
    }
}

fn threads() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// A row-major matrix operand for [`matmul`]: data pointer, row stride, column stride.
struct Mat(*const f32, usize, usize);

/// `dst[m x n] = (read ? dst : 0) + a[m x k] * b[k x n]`, `dst` row-major and contiguous.
///
/// # Safety
/// Every element `a.0 + i * a.1 + j * a.2` (i < m, j < k) and likewise for `b` must be in
/// bounds of one live allocation; `dst` must be valid for `m * n` writes (and initialised when
/// `read`). With `read` false and `k > 0`, all `m * n` elements are written.
unsafe fn matmul(dst: *mut f32, read: bool, (m, n, k): (usize, usize, usize), a: Mat, b: Mat) {
    // SAFETY: the caller guarantees the bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            read,
            a.0,
            a.2 as isize,
            a.1 as isize,
            b.0,
            b.2 as isize,
            b.1 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            threads(),
        )
    }
}

/// A vector of `len` floats that `write` fills through the pointer it is given, without the
/// zeroing `vec![0.0; len]` would do first (a measurable share of a step for the large buffers).
///
/// # Safety
/// `write` must initialise all `len` elements.
unsafe fn written_by(len: usize, write: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(len);
    write(v.as_mut_ptr());
    // SAFETY: the caller guarantees that `write` initialised every element.
    unsafe { v.set_len(len) };
    v
}

/// Keeps rows `b * from + skip .. b * from + skip + keep` of each of `batch` blocks of `from` rows
/// of `width` floats, packed in order; the rest is dropped. In place: every row moves to an index
/// no greater than its own.
fn compact(v: &mut Vec<f32>, batch: usize, from: usize, skip: usize, keep: usize, width: usize) {
    for b in 0..batch {
        let src = (b * from + skip) * width;
        v.copy_within(src..src + keep * width, b * keep * width);
    }
    v.truncate(batch * keep * width);
}

/// The element-wise sum of `parts`, added in their order: a parallel reduction whose grouping
/// depended on thread scheduling would make training runs differ in the last bits.
fn sum_in_order(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    parts.into_iter().fold(vec![0f32; len], |mut acc, p| {
        acc.iter_mut().zip(p).for_each(|(a, v)| *a += v);
        acc
    })
}

/// Geometry of one convolution over a batch.
#[derive(Clone, Copy)]
struct Geometry {
    batch: usize,
    len: usize,
    c_in: usize,
    c_out: usize,
    k: usize,
    padding: usize,
}

impl Geometry {
    fn padded(&self) -> usize {
        self.len + 2 * self.padding
    }
    fn out_len(&self) -> usize {
        self.padded() + 1 - self.k
    }
    /// Rows of the im2col view: every start position in the batch laid end to end.
    fn rows(&self) -> usize {
        self.batch * self.padded() + 1 - self.k
    }
}

/// The input, zero-padded per URL and laid end to end: `[B * (L + 2p), C_in]`.
fn pad_input(x: &[f32], g: Geometry) -> Vec<f32> {
    let (lp, c) = (g.padded(), g.c_in);
    let mut xp = vec![0f32; g.batch * lp * c];
    xp.par_chunks_mut(lp * c)
        .zip(x.par_chunks(g.len * c))
        .for_each(|(dst, src)| dst[g.padding * c..][..src.len()].copy_from_slice(src));
    xp
}

/// `[C_out, C_in, k]` -> `[k * C_in, C_out]`, the im2col column order (position-major), with
/// positions reversed when `flip` (and then `[k * C_out, C_in]`, for the input gradient).
fn rearrange(w: &[f32], g: Geometry, flip: bool) -> Vec<f32> {
    let (ci, co, k) = (g.c_in, g.c_out, g.k);
    let mut out = vec![0f32; w.len()];
    for o in 0..co {
        for i in 0..ci {
            for kk in 0..k {
                let v = w[(o * ci + i) * k + kk];
                if flip {
                    out[((k - 1 - kk) * co + o) * ci + i] = v;
                } else {
                    out[(kk * ci + i) * co + o] = v;
                }
            }
        }
    }
    out
}

/// tanh as a rational function (the [-7.9, 7.9] minimax approximation also used by Eigen and
/// tract): within 1e-6 of `f32::tanh` (tested), and vectorised by the compiler where libm's is not.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    const A: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const B: [f32; 4] = [4.893_525e-3, 2.268_434_7e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    // Plain multiply-adds: `mul_add` would be a libm call on x86-64 builds without FMA.
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = x2 * A[6] + A[5];
    let p = x2 * p + A[4];
    let p = x2 * p + A[3];
    let p = x2 * p + A[2];
    let p = x2 * p + A[1];
    let p = (x2 * p + A[0]) * x;
    let q = x2 * B[3] + B[2];
    let q = x2 * q + B[1];
    let q = x2 * q + B[0];
    p / q
}

fn conv_forward(x: &[f32], w: &[f32], bias: &[f32], g: Geometry) -> Vec<f32> {
    let (lp, lo, co) = (g.padded(), g.out_len(), g.c_out);
    let xp = pad_input(x, g);
    let wt = rearrange(w, g, false);
    let rows = g.rows();
    // SAFETY: row r of the view reads xp[r * C_in .. r * C_in + k * C_in], and
    // (rows - 1) * C_in + k * C_in = B * lp * C_in = xp.len(); wt is [k * C_in, C_out]; the
    // product writes all rows * C_out elements (k * C_in > 0).
    let mut y = unsafe {
        written_by(rows * co, |dst| {
            matmul(
                dst,
                false,
                (rows, co, g.k * g.c_in),
                Mat(xp.as_ptr(), g.c_in, 1),
                Mat(wt.as_ptr(), co, 1),
            )
        })
    };
    y.par_chunks_mut(lp * co).for_each(|rows| {
        for row in rows.chunks_mut(co) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = fast_tanh(*v + b);
            }
        }
    });
    // Keep each URL's first `lo` rows (the others straddle two URLs).
    compact(&mut y, g.batch, lp, 0, lo, co);
    y
}

/// Gradients `(dx, dw, db)` of a block, from the input, weight, the block's output `y` (after
/// tanh) and the gradient of the loss with respect to `y`.
fn conv_backward(
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dy: &[f32],
    g: Geometry,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (lp, lo, ci, co, k) = (g.padded(), g.out_len(), g.c_in, g.c_out, g.k);
    // Gradient before tanh, placed at the rows of the im2col view, zero elsewhere, after k - 1
    // leading zero rows (the input gradient is a full convolution: it reads k - 1 rows back).
    let mut gp = vec![0f32; (g.batch * lp + k - 1) * co];
    let partial: Vec<Vec<f32>> = gp[(k - 1) * co..]
        .par_chunks_mut(lp * co)
        .zip(y.par_chunks(lo * co).zip(dy.par_chunks(lo * co)))
        .map(|(dst, (ys, gs))| {
            let mut db = vec![0f32; co];
            for ((d, (yv, gv)), j) in dst.iter_mut().zip(ys.iter().zip(gs)).zip((0..co).cycle()) {
                *d = gv * (1.0 - yv * yv);
                db[j] += *d;
            }
            db
        })
        .collect();
    let db = sum_in_order(partial, co);
    let g_rows = &gp[(k - 1) * co..];
    let xp = pad_input(x, g);
    // dW^T[k * C_in, C_out] = view^T * G: the view transposed reads row r, column c at r*C_in + c.
    let mut dwt = vec![0f32; k * ci * co];
    // SAFETY: as in the forward pass, the view stays within xp; g_rows holds rows * C_out.
    unsafe {
        matmul(
            dwt.as_mut_ptr(),
            false,
            (k * ci, co, g.rows()),
            Mat(xp.as_ptr(), 1, ci),
            Mat(g_rows.as_ptr(), co, 1),
        );
    }
    let mut dw = vec![0f32; w.len()];
    for o in 0..co {
        for i in 0..ci {
            for kk in 0..k {
                dw[(o * ci + i) * k + kk] = dwt[(kk * ci + i) * co + o];
            }
        }
    }
    // dXp[B * lp, C_in] = (view of gp, rows of k * C_out floats) * flipped weight.
    let wf = rearrange(w, g, true);
    // SAFETY: row j reads gp[j * C_out .. (j + k) * C_out], j < B * lp, and gp holds
    // (B * lp + k - 1) * C_out; wf is [k * C_out, C_in]; all B * lp * C_in elements are written.
    let mut dx = unsafe {
        written_by(g.batch * lp * ci, |dst| {
            matmul(
                dst,
                false,
                (g.batch * lp, ci, k * co),
                Mat(gp.as_ptr(), co, 1),
                Mat(wf.as_ptr(), ci, 1),
            )
        })
    };
    // The padding rows' gradients are not the input's.
    compact(&mut dx, g.batch, lp, g.padding, g.len, ci);
    (dx, dw, db)
}

impl ConvTanh {
    fn geometry(&self, x: &Shape, w: &Shape) -> CResult<Geometry> {
        let (batch, len, c_in) = x.dims3()?;
        let (c_out, wc_in, k) = w.dims3()?;
        if wc_in != c_in || k == 0 || len + 2 * self.padding < k {
            return Err(msg(format!(
                "conv-tanh: input {x:?} does not fit weight {w:?} with padding {}",
                self.padding
            )));
        }
        Ok(Geometry {
            batch,
            len,
            c_in,
            c_out,
            k,
            padding: self.padding,
        })
    }
}

impl CustomOp3 for ConvTanh {
    fn name(&self) -> &'static str {
        "conv1d-bias-tanh-nlc"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let g = self.geometry(l1.shape(), l2.shape())?;
        let bias = slice(s3, l3)?;
        if bias.len() != g.c_out {
            return Err(msg("conv-tanh: bias length differs from output channels"));
        }
        let y = conv_forward(slice(s1, l1)?, slice(s2, l2)?, bias, g);
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.batch, g.out_len(), g.c_out)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.shape(), w.shape())?;
        let (dx, dw, db) = with_data(x, |x| {
            with_data(w, |w| {
                with_data(y, |y| with_data(dy, |dy| Ok(conv_backward(x, w, y, dy, g))))
            })
        })?;
        let dev = &Device::Cpu;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, b.shape(), dev)?),
        ))
    }
}

/// Geometry of the fused first block, checked against the operands.
struct Embedded {
    vocab: usize,
    g: Geometry,
}

impl EmbedConvTanh {
    fn check(&self, e: &Shape, w: &Shape, b: &Shape) -> CResult<Embedded> {
        let (vocab, dim) = e.dims2()?;
        let (c_out, w_dim, k) = w.dims3()?;
        if w_dim != dim || k == 0 || self.len + 2 * self.padding < k || b.elem_count() != c_out {
            return Err(msg(format!(
                "embed-conv-tanh: embedding {e:?}, weight {w:?} and bias {b:?} do not fit"
            )));
        }
        if self.ids.len() != self.batch * self.len {
            return Err(msg(format!(
                "embed-conv-tanh: {} ids for a batch of {} x {}",
                self.ids.len(),
                self.batch,
                self.len
            )));
        }
        if let Some(bad) = self.ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(msg(format!(
                "embed-conv-tanh: token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        Ok(Embedded {
            vocab,
            g: Geometry {
                batch: self.batch,
                len: self.len,
                c_in: dim,
                c_out,
                k,
                padding: self.padding,
            },
        })
    }

    /// For output position `t`, kernel position `j`: the id it reads, if not in the padding.
    fn id_at(&self, b: usize, t: usize, j: usize) -> Option<usize> {
        let p = (t + j).checked_sub(self.padding)?;
        (p < self.len).then(|| self.ids[b * self.len + p] as usize)
    }
}

/// The tables `T_j = E * W_j^T`, `[k, V, C_out]`.
fn embed_tables(e: &[f32], w: &[f32], m: &Embedded) -> Vec<f32> {
    let (v, ci, co, k) = (m.vocab, m.g.c_in, m.g.c_out, m.g.k);
    let mut t = vec![0f32; k * v * co];
    for (j, tj) in t.chunks_mut(v * co).enumerate() {
        // SAFETY: E is [V, C_in]; W_j^T (C_in x C_out) reads w[(o * C_in + i) * k + j].
        unsafe {
            matmul(
                tj.as_mut_ptr(),
                false,
                (v, co, ci),
                Mat(e.as_ptr(), ci, 1),
                Mat(w.as_ptr().add(j), k, ci * k),
            );
        }
    }
    t
}

impl CustomOp3 for EmbedConvTanh {
    fn name(&self) -> &'static str {
        "embedding-conv1d-bias-tanh-nlc"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let m = self.check(l1.shape(), l2.shape(), l3.shape())?;
        let (lo, co, k, v) = (m.g.out_len(), m.g.c_out, m.g.k, m.vocab);
        let tables = embed_tables(slice(s1, l1)?, slice(s2, l2)?, &m);
        let bias = slice(s3, l3)?;
        let mut y = vec![0f32; m.g.batch * lo * co];
        y.par_chunks_mut(lo * co).enumerate().for_each(|(b, yb)| {
            let mut acc = vec![0f32; co];
            for (t, out) in yb.chunks_mut(co).enumerate() {
                acc.copy_from_slice(bias);
                for j in 0..k {
                    if let Some(id) = self.id_at(b, t, j) {
                        let row = &tables[(j * v + id) * co..][..co];
                        acc.iter_mut().zip(row).for_each(|(a, r)| *a += r);
                    }
                }
                out.iter_mut()
                    .zip(&acc)
                    .for_each(|(o, a)| *o = fast_tanh(*a));
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((m.g.batch, lo, co))))
    }

    fn bwd(
        &self,
        e: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let m = self.check(e.shape(), w.shape(), b.shape())?;
        let (lo, ci, co, k, v) = (m.g.out_len(), m.g.c_in, m.g.c_out, m.g.k, m.vocab);
        // Per URL: the gradient before tanh, scattered onto the tables' rows; summed over URLs.
        // Partial sums per group of URLs (fixed groups, summed in order: reproducible).
        const GROUP: usize = 8;
        let parts: Vec<(Vec<f32>, Vec<f32>)> = with_data(y, |y| {
            with_data(dy, |dy| {
                Ok(y.par_chunks(GROUP * lo * co)
                    .zip(dy.par_chunks(GROUP * lo * co))
                    .enumerate()
                    .map(|(group, (yg, gg))| {
                        let (mut dt, mut db) = (vec![0f32; k * v * co], vec![0f32; co]);
                        let mut dz = vec![0f32; co];
                        for (n, (yb, gb)) in yg.chunks(lo * co).zip(gg.chunks(lo * co)).enumerate()
                        {
                            let b = group * GROUP + n;
                            for (t, (yt, gt)) in yb.chunks(co).zip(gb.chunks(co)).enumerate() {
                                for ((z, yv), gv) in dz.iter_mut().zip(yt).zip(gt) {
                                    *z = gv * (1.0 - yv * yv);
                                }
                                db.iter_mut().zip(&dz).for_each(|(d, z)| *d += z);
                                for j in 0..k {
                                    if let Some(id) = self.id_at(b, t, j) {
                                        let row = &mut dt[(j * v + id) * co..][..co];
                                        row.iter_mut().zip(&dz).for_each(|(r, z)| *r += z);
                                    }
                                }
                            }
                        }
                        (dt, db)
                    })
                    .collect())
            })
        })?;
        let (dts, dbs): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let (dt, db) = (sum_in_order(dts, k * v * co), sum_in_order(dbs, co));
        let (de, dw) = with_data(e, |e| {
            with_data(w, |w| {
                let mut de = vec![0f32; v * ci];
                let mut dw = vec![0f32; w.len()];
                let mut dwj = vec![0f32; co * ci];
                for j in 0..k {
                    let dtj = &dt[j * v * co..][..v * co];
                    // SAFETY: dT_j is [V, C_out]; W_j (C_out x C_in) reads w[(o * C_in + i) * k + j];
                    // E is [V, C_in].
                    unsafe {
                        // dE += dT_j * W_j
                        matmul(
                            de.as_mut_ptr(),
                            true,
                            (v, ci, co),
                            Mat(dtj.as_ptr(), co, 1),
                            Mat(w.as_ptr().add(j), ci * k, k),
                        );
                        // dW_j = dT_j^T * E
                        matmul(
                            dwj.as_mut_ptr(),
                            false,
                            (co, ci, v),
                            Mat(dtj.as_ptr(), 1, co),
                            Mat(e.as_ptr(), ci, 1),
                        );
                    }
                    for (oi, g) in dwj.iter().enumerate() {
                        dw[oi * k + j] = *g;
                    }
                }
                Ok((de, dw))
            })
        })?;
        let dev = &Device::Cpu;
        Ok((
            Some(Tensor::from_vec(de, e.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, b.shape(), dev)?),
        ))
    }
}

impl CustomOp1 for MaxPool3 {
    fn name(&self) -> &'static str {
        "max-pool-3-nlc"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let (batch, len, c) = l.shape().dims3()?;
        let x = slice(s, l)?;
        let lo = len / 3;
        let mut y = vec![0f32; batch * lo * c];
        if lo > 0 {
            y.par_chunks_mut(c).enumerate().for_each(|(row, out)| {
                let (b, t) = (row / lo, row % lo);
                let win = &x[(b * len + 3 * t) * c..][..3 * c];
                let (w0, rest) = win.split_at(c);
                let (w1, w2) = rest.split_at(c);
                for (((d, a), bb), cc) in out.iter_mut().zip(w0).zip(w1).zip(w2) {
                    *d = a.max(*bb).max(*cc);
                }
            });
        }
        Ok((CpuStorage::F32(y), Shape::from((batch, lo, c))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> CResult<Option<Tensor>> {
        let (_, len, c) = x.dims3()?;
        let lo = len / 3;
        let dx = with_data(x, |x| {
            with_data(dy, |dy| {
                let mut dx = vec![0f32; x.len()];
                if lo == 0 {
                    return Ok(dx);
                }
                // One URL per task; within it, window by window (3 rows of c values).
                dx.par_chunks_mut(len * c)
                    .zip(x.par_chunks(len * c).zip(dy.par_chunks(lo * c)))
                    .for_each(|(dxb, (xb, dyb))| {
                        for (t, g) in dyb.chunks(c).enumerate() {
                            let (win, d) =
                                (&xb[3 * t * c..][..3 * c], &mut dxb[3 * t * c..][..3 * c]);
                            for ch in 0..c {
                                let (a, b, e) = (win[ch], win[c + ch], win[2 * c + ch]);
                                // The first maximum, as Keras (and argmax) pick it.
                                let j = if a >= b && a >= e {
                                    0
                                } else if b >= e {
                                    1
                                } else {
                                    2
                                };
                                d[j * c + ch] = g[ch];
                            }
                        }
                    });
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), &Device::Cpu)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut StdRng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn fast_tanh_matches_the_library_tanh() {
        let worst = (-2000..=2000)
            .map(|i| i as f32 / 100.0)
            .map(|x| (fast_tanh(x) - x.tanh()).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "largest difference {worst}");
    }

    // The forward pass against candle's channels-first conv1d (which is right; only its backward
    // pass is not), for the first block's shape and a padded one.
    #[test]
    fn conv_tanh_matches_candle_conv1d() -> candle_core::Result<()> {
        let mut rng = StdRng::seed_from_u64(5);
        for (c_in, k, padding) in [(5, 3, 0), (6, 7, 3), (4, 5, 2)] {
            let x = random(&mut rng, &[3, 20, c_in]);
            let w = random(&mut rng, &[8, c_in, k]);
            let b = random(&mut rng, &[8]);
            let ours = x.apply_op3(&w, &b, ConvTanh { padding })?;
            let theirs = x
                .transpose(1, 2)?
                .contiguous()?
                .conv1d(&w, padding, 1, 1, 1)?
                .broadcast_add(&b.reshape((1, 8, 1))?)?
                .tanh()?
                .transpose(1, 2)?;
            assert_eq!(ours.dims(), theirs.dims());
            let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                diff < 1e-5,
                "k={k} padding={padding}: max difference {diff}"
            );
        }
        Ok(())
    }

    // The fused first block against lookup + convolution: same output, same gradients.
    #[test]
    fn embed_conv_tanh_matches_lookup_then_convolution() -> candle_core::Result<()> {
        use candle_core::Var;
        let mut rng = StdRng::seed_from_u64(9);
        for (k, padding) in [(3, 0), (5, 2)] {
            let (batch, len, vocab, dim, c_out) = (3, 12, 7, 4, 6);
            let ids: Vec<u32> = (0..batch * len).map(|_| rng.gen_range(0..vocab)).collect();
            let e = Var::from_tensor(&random(&mut rng, &[vocab as usize, dim]))?;
            let w = Var::from_tensor(&random(&mut rng, &[c_out, dim, k]))?;
            let b = Var::from_tensor(&random(&mut rng, &[c_out]))?;
            let r = random(&mut rng, &[batch, len + 2 * padding + 1 - k, c_out]);
            let fused = e.apply_op3(
                &w,
                &b,
                EmbedConvTanh {
                    ids: ids.clone(),
                    batch,
                    len,
                    padding,
                },
            )?;
            let ids_t = Tensor::from_vec(ids, batch * len, &Device::Cpu)?;
            let plain = e
                .index_select(&ids_t, 0)?
                .reshape((batch, len, dim))?
                .apply_op3(&w, &b, ConvTanh { padding })?;
            let diff = (&fused - &plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-6, "output differs by {diff}");
            let gf = (fused * &r)?.sum_all()?.backward()?;
            let gp = (plain * &r)?.sum_all()?.backward()?;
            for (name, v) in [("embedding", &e), ("weight", &w), ("bias", &b)] {
                let (a, c) = (gf.get(v).unwrap(), gp.get(v).unwrap());
                let diff = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "k={k}: {name} gradient differs by {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn out_of_vocabulary_ids_are_an_error() {
        let e = Tensor::zeros((5, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((3, 2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap();
        let op = EmbedConvTanh {
            ids: vec![0, 1, 9, 2],
            batch: 1,
            len: 4,
            padding: 0,
        };
        let err = e.apply_op3(&w, &b, op).unwrap_err();
        assert!(err.to_string().contains("token id 9"), "{err}");
    }

    #[test]
    fn max_pool_takes_window_maxima_and_drops_the_remainder() -> candle_core::Result<()> {
        let x = Tensor::from_vec(
            vec![1f32, -1., 5., 0., 2., 2., 7., 9., 9., 9.],
            (1, 5, 2),
            &Device::Cpu,
        )?;
        let y = x.apply_op1(MaxPool3)?;
        assert_eq!(y.dims(), &[1, 1, 2]);
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![5., 2.]);
        Ok(())
    }

    #[test]
    fn mismatched_shapes_are_an_error_not_a_panic() {
        let x = Tensor::zeros((1, 10, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((2, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = x.apply_op3(&w, &b, ConvTanh { padding: 1 }).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
