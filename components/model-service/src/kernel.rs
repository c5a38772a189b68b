//! The matrix-product kernel the model's convolutions run on inside wasm.
//!
//! tract lowers every convolution of the char-CNN to a matrix product (weights × im2col'd
//! positions) and runs it tile by tile on a kernel picked for the machine; inside wasm that
//! product is three quarters of an inference. tract's wasm kernel (`wasm_f32_8x8`) keeps 16
//! vector accumulators plus the values it loads and broadcasts live at once, while wasmtime
//! compiles wasm SIMD to x86-64's 16 vector registers: on every step of its inner loop it
//! spilled accumulators to the stack. This kernel holds an 8 × 4 tile in eight registers and
//! its inner loop never broadcasts: see `add_mat_mul` for the layout, and `benchmarks/README.md` for what
//! it changed and what was tried (an 8 × 6 tile with broadcasts, fused multiply-add through
//! relaxed SIMD, unrolling — all slower under wasmtime).
//!
//! Multiply and add stay two instructions: `f32x4.relaxed_madd` becomes one fused
//! multiply-add where the CPU has FMA, but wasmtime ties its result to a multiplicand
//! register, and the copies that costs made it slower here; without relaxed SIMD the
//! component also needs no optional wasm feature and computes the same bits everywhere.
//!
//! The kernel plugs into tract through its own registries (`tract_linalg`'s kernel and
//! dispatch-tier inventories, the way tract's own wasm kernels register): nothing in tract is
//! patched, and a matrix-vector product (the dense layer) still goes to tract's kernels. Only
//! wasm builds with SIMD register it.
//!
//! The tile logic is written once over a four-lane vector (`F4`): wasm SIMD inside the
//! component, plain arrays natively, so the native tests check the logic (layouts, strides,
//! every fused operation) against tract's generic kernel, and the wasm-vs-native parity test
//! checks the SIMD build end to end.

use tract_nnef::tract_core::tract_linalg::{
    self as linalg,
    mmm::{DynKernel, FusedKerSpec, MatMatMul},
    pack::Packing,
    Scaler,
};

/// Rows of the tile: output channels, two vectors of four.
pub const MR: usize = 8;
/// Columns of the tile: output positions, one vector of the packed input per step.
pub const NR: usize = 4;
/// The kernel's name in tract's registry (and in a plan's `OptMatMul` nodes).
pub const NAME: &str = "model_service_wasm_f32_8x4";

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod f4 {
    use std::arch::wasm32::*;

    /// Four f32 lanes in one wasm SIMD register.
    #[derive(Clone, Copy)]
    pub struct F4(v128);

    impl F4 {
        #[inline(always)]
        pub fn zero() -> F4 {
            F4(f32x4_splat(0.0))
        }
        #[inline(always)]
        pub fn splat(x: f32) -> F4 {
            F4(f32x4_splat(x))
        }
        /// # Safety
        /// `p` must be valid for reading four f32 (no alignment needed).
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> F4 {
            F4(unsafe { v128_load(p as *const v128) })
        }
        /// # Safety
        /// `p` must be valid for reading one f32.
        #[inline(always)]
        pub unsafe fn load_splat(p: *const f32) -> F4 {
            F4(unsafe { v128_load32_splat(p as *const u32) })
        }
        /// # Safety
        /// `p` must be valid for writing four f32 (no alignment needed).
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            unsafe { v128_store(p as *mut v128, self.0) }
        }
        #[inline(always)]
        pub fn lanes(self) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(self.0),
                f32x4_extract_lane::<1>(self.0),
                f32x4_extract_lane::<2>(self.0),
                f32x4_extract_lane::<3>(self.0),
            ]
        }
        #[inline(always)]
        pub fn from_lanes(l: [f32; 4]) -> F4 {
            F4(f32x4(l[0], l[1], l[2], l[3]))
        }
        #[inline(always)]
        pub fn add(self, o: F4) -> F4 {
            F4(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: F4) -> F4 {
            F4(f32x4_sub(self.0, o.0))
        }
        #[inline(always)]
        pub fn mul(self, o: F4) -> F4 {
            F4(f32x4_mul(self.0, o.0))
        }
        /// `if o < self { o } else { self }` per lane (tract's generic min, NaNs included).
        #[inline(always)]
        pub fn min(self, o: F4) -> F4 {
            F4(f32x4_pmin(self.0, o.0))
        }
        /// `if self < o { o } else { self }` per lane.
        #[inline(always)]
        pub fn max(self, o: F4) -> F4 {
            F4(f32x4_pmax(self.0, o.0))
        }
        /// `self` where it is positive, `alpha · self` elsewhere.
        #[inline(always)]
        pub fn leaky(self, alpha: F4) -> F4 {
            let scaled = f32x4_mul(self.0, alpha.0);
            F4(v128_bitselect(
                self.0,
                scaled,
                f32x4_gt(self.0, f32x4_splat(0.0)),
            ))
        }
        /// The lanes rotated left by `R`: lane `i` of the result is lane `(i + R) % 4`.
        #[inline(always)]
        pub fn rotate<const R: usize>(self) -> F4 {
            F4(match R % 4 {
                0 => self.0,
                1 => i32x4_shuffle::<1, 2, 3, 0>(self.0, self.0),
                2 => i32x4_shuffle::<2, 3, 0, 1>(self.0, self.0),
                _ => i32x4_shuffle::<3, 0, 1, 2>(self.0, self.0),
            })
        }
        /// `self + a · b`: a multiply and an add, not fused (see the module's documentation).
        #[inline(always)]
        pub fn madd(self, a: F4, b: F4) -> F4 {
            F4(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod f4 {
    /// Four f32 lanes as a plain array: the same tile logic, natively, for the tests.
    #[derive(Clone, Copy)]
    pub struct F4([f32; 4]);

    impl F4 {
        #[inline(always)]
        fn map2(self, o: F4, f: impl Fn(f32, f32) -> f32) -> F4 {
            F4(std::array::from_fn(|i| f(self.0[i], o.0[i])))
        }
        pub fn zero() -> F4 {
            F4([0.0; 4])
        }
        pub fn splat(x: f32) -> F4 {
            F4([x; 4])
        }
        /// # Safety
        /// `p` must be valid for reading four f32.
        pub unsafe fn load(p: *const f32) -> F4 {
            F4(unsafe { std::ptr::read_unaligned(p as *const [f32; 4]) })
        }
        /// # Safety
        /// `p` must be valid for reading one f32.
        pub unsafe fn load_splat(p: *const f32) -> F4 {
            F4([unsafe { *p }; 4])
        }
        /// # Safety
        /// `p` must be valid for writing four f32.
        pub unsafe fn store(self, p: *mut f32) {
            unsafe { std::ptr::write_unaligned(p as *mut [f32; 4], self.0) }
        }
        pub fn lanes(self) -> [f32; 4] {
            self.0
        }
        pub fn from_lanes(l: [f32; 4]) -> F4 {
            F4(l)
        }
        pub fn add(self, o: F4) -> F4 {
            self.map2(o, |a, b| a + b)
        }
        pub fn sub(self, o: F4) -> F4 {
            self.map2(o, |a, b| a - b)
        }
        pub fn mul(self, o: F4) -> F4 {
            self.map2(o, |a, b| a * b)
        }
        pub fn min(self, o: F4) -> F4 {
            self.map2(o, |a, b| if b < a { b } else { a })
        }
        pub fn max(self, o: F4) -> F4 {
            self.map2(o, |a, b| if a < b { b } else { a })
        }
        pub fn leaky(self, alpha: F4) -> F4 {
            self.map2(alpha, |x, a| if x > 0.0 { x } else { a * x })
        }
        pub fn rotate<const R: usize>(self) -> F4 {
            F4(std::array::from_fn(|i| self.0[(i + R) % 4]))
        }
        pub fn madd(self, a: F4, b: F4) -> F4 {
            self.add(a.mul(b))
        }
    }
}

use f4::F4;

/// The tile: column `j` of the 8 × NR accumulator block is `acc[j]`, rows 0–3 then 4–7.
type Tile = [[F4; 2]; NR];

/// Applies `f(m, x)` to every accumulator `x` of a tile with the per-row values `m[0..8]`.
///
/// # Safety
/// `m` must be valid for reading eight f32.
#[inline(always)]
unsafe fn per_row(acc: &mut Tile, m: *const f32, f: impl Fn(F4, F4) -> F4) {
    let m = unsafe { [F4::load(m), F4::load(m.add(4))] };
    for col in acc.iter_mut() {
        for h in 0..2 {
            col[h] = f(m[h], col[h]);
        }
    }
}

/// Applies `f(m, x)` to every accumulator `x` of column `j` with the per-column value `m[j]`.
///
/// # Safety
/// `m` must be valid for reading NR f32.
#[inline(always)]
unsafe fn per_col(acc: &mut Tile, m: *const f32, f: impl Fn(F4, F4) -> F4) {
    for (j, col) in acc.iter_mut().enumerate() {
        let m = unsafe { F4::load_splat(m.add(j)) };
        for x in col.iter_mut() {
            *x = f(m, *x);
        }
    }
}

/// Applies `f(m, x)` to every accumulator with one scalar `m`.
#[inline(always)]
fn scalar(acc: &mut Tile, m: f32, f: impl Fn(F4, F4) -> F4) {
    let m = F4::splat(m);
    for col in acc.iter_mut() {
        for x in col.iter_mut() {
            *x = f(m, *x);
        }
    }
}

/// The address of element (`row`, `col`) of an output tile.
#[inline(always)]
fn at(tile: &linalg::mmm::OutputStoreKer, row: usize, col: usize) -> *mut f32 {
    tile.ptr
        .wrapping_offset(tile.row_byte_stride * row as isize + tile.col_byte_stride * col as isize)
        as *mut f32
}

/// `acc += A·B` over `k` steps of the packed panels: A is `k × MR` (weights), B is `k × NR`.
///
/// Broadcasting each B value to a vector (the usual way) would keep the broadcasts live next to
/// the accumulators, more than the registers hold once wasmtime has compiled it. Instead every
/// step loads four B values as one vector and multiplies the A vectors with its four rotations:
/// accumulator `d[r][h]` then holds, in lane `i`, the element of row `4h + i` and column
/// `(i + r) % 4`. Eight accumulators, two A vectors, B and a rotation of it fit in registers.
/// The tile is turned into that diagonal layout before the loop and back after it.
///
/// # Safety
/// `pa` must hold `k · MR` f32 and `pb` `k · NR` f32.
#[inline(always)]
unsafe fn add_mat_mul(acc: &mut Tile, k: usize, pa: *const f32, pb: *const f32) {
    let lanes: [[[f32; 4]; 2]; NR] = acc.map(|col| col.map(F4::lanes));
    let diagonal =
        |r: usize, h: usize| F4::from_lanes(std::array::from_fn(|i| lanes[(i + r) % 4][h][i]));
    let (mut d00, mut d01) = (diagonal(0, 0), diagonal(0, 1));
    let (mut d10, mut d11) = (diagonal(1, 0), diagonal(1, 1));
    let (mut d20, mut d21) = (diagonal(2, 0), diagonal(2, 1));
    let (mut d30, mut d31) = (diagonal(3, 0), diagonal(3, 1));
    let mut a = pa;
    let mut b = pb;
    for _ in 0..k {
        // One step: the A column at `a` (rows 0–3, 4–7), the B row at `b` and its rotations.
        unsafe {
            let lo = F4::load(a);
            let hi = F4::load(a.add(4));
            let b0 = F4::load(b);
            d00 = d00.madd(lo, b0);
            d01 = d01.madd(hi, b0);
            let b1 = b0.rotate::<1>();
            d10 = d10.madd(lo, b1);
            d11 = d11.madd(hi, b1);
            let b2 = b0.rotate::<2>();
            d20 = d20.madd(lo, b2);
            d21 = d21.madd(hi, b2);
            let b3 = b0.rotate::<3>();
            d30 = d30.madd(lo, b3);
            d31 = d31.madd(hi, b3);
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    let d = [
        [d00.lanes(), d01.lanes()],
        [d10.lanes(), d11.lanes()],
        [d20.lanes(), d21.lanes()],
        [d30.lanes(), d31.lanes()],
    ];
    // Element (row 4h + i, column j) sits in d[r][h] lane i with (i + r) % 4 = j.
    *acc = std::array::from_fn(|j| {
        std::array::from_fn(|h| F4::from_lanes(std::array::from_fn(|i| d[(j + 4 - i) % 4][h][i])))
    });
}

/// The kernel tract calls per tile: runs the fused operations in `ops` (up to `Done`) over one
/// 8 × NR tile. Returns 0, or 1 for an operation this kernel does not support (a store or an
/// added tile of another type than f32, or a packing it did not declare).
///
/// # Safety
/// As for every tract kernel: `ops` comes from tract's matmul frame, with pointers valid for
/// the tile and panels it describes.
unsafe fn kernel(ops: &[FusedKerSpec<f32>]) -> isize {
    let mut acc: Tile = [[F4::zero(); 2]; NR];
    for op in ops {
        // SAFETY: each operation's pointers are valid for this tile (tract's contract).
        unsafe {
            match *op {
                FusedKerSpec::Done => break,
                FusedKerSpec::Clear => acc = [[F4::zero(); 2]; NR],
                FusedKerSpec::LoadTile(col_major, _row_major) => {
                    for (j, col) in acc.iter_mut().enumerate() {
                        col[0] = F4::load(col_major.add(j * MR));
                        col[1] = F4::load(col_major.add(j * MR + 4));
                    }
                }
                FusedKerSpec::ScalarMin(m) => scalar(&mut acc, m, |m, x| x.min(m)),
                FusedKerSpec::ScalarMax(m) => scalar(&mut acc, m, |m, x| x.max(m)),
                FusedKerSpec::ScalarAdd(m) => scalar(&mut acc, m, |m, x| m.add(x)),
                FusedKerSpec::ScalarMul(m) => scalar(&mut acc, m, |m, x| m.mul(x)),
                FusedKerSpec::ScalarSub(m) => scalar(&mut acc, m, |m, x| m.sub(x)),
                FusedKerSpec::ScalarSubF(m) => scalar(&mut acc, m, |m, x| x.sub(m)),
                FusedKerSpec::LeakyRelu(alpha) => scalar(&mut acc, alpha, |a, x| x.leaky(a)),
                FusedKerSpec::PerRowMin(m) => per_row(&mut acc, m, |m, x| x.min(m)),
                FusedKerSpec::PerRowMax(m) => per_row(&mut acc, m, |m, x| x.max(m)),
                FusedKerSpec::PerRowAdd(m) => per_row(&mut acc, m, |m, x| m.add(x)),
                FusedKerSpec::PerRowMul(m) => per_row(&mut acc, m, |m, x| m.mul(x)),
                FusedKerSpec::PerRowSub(m) => per_row(&mut acc, m, |m, x| m.sub(x)),
                FusedKerSpec::PerRowSubF(m) => per_row(&mut acc, m, |m, x| x.sub(m)),
                FusedKerSpec::PerColMin(m) => per_col(&mut acc, m, |m, x| x.min(m)),
                FusedKerSpec::PerColMax(m) => per_col(&mut acc, m, |m, x| x.max(m)),
                FusedKerSpec::PerColAdd(m) => per_col(&mut acc, m, |m, x| m.add(x)),
                FusedKerSpec::PerColMul(m) => per_col(&mut acc, m, |m, x| m.mul(x)),
                FusedKerSpec::PerColSub(m) => per_col(&mut acc, m, |m, x| m.sub(x)),
                FusedKerSpec::PerColSubF(m) => per_col(&mut acc, m, |m, x| x.sub(m)),
                // The quantization steps, as tract's float kernels do them: scalings.
                FusedKerSpec::QScale(shift, policy, mult) => {
                    let s = Scaler::from_fuse_params(shift, policy, mult).scale;
                    scalar(&mut acc, s, |m, x| m.mul(x))
                }
                FusedKerSpec::RoundingShiftRight(shift, _) => {
                    scalar(&mut acc, 2f32.powi(-(shift as i32)), |m, x| m.mul(x))
                }
                FusedKerSpec::ShiftLeft(shift) => {
                    scalar(&mut acc, 2f32.powi(shift as i32), |m, x| m.mul(x))
                }
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    let r = [F4::load(rows), F4::load(rows.add(4))];
                    for (j, col) in acc.iter_mut().enumerate() {
                        let c = F4::load_splat(cols.add(j));
                        col[0] = col[0].madd(r[0], c);
                        col[1] = col[1].madd(r[1], c);
                    }
                }
                FusedKerSpec::AddUnicast(tile) => {
                    if tile.item_size != 4 {
                        return 1;
                    }
                    for (j, col) in acc.iter_mut().enumerate() {
                        for (h, x) in col.iter_mut().enumerate() {
                            let other: [f32; 4] = std::array::from_fn(|r| *at(&tile, 4 * h + r, j));
                            *x = x.add(F4::from_lanes(other));
                        }
                    }
                }
                FusedKerSpec::Store(tile) => {
                    if tile.item_size != 4 {
                        return 1;
                    }
                    if tile.row_byte_stride == 4 {
                        // Column-major output: each column of the tile is contiguous.
                        for (j, col) in acc.iter().enumerate() {
                            col[0].store(at(&tile, 0, j));
                            col[1].store(at(&tile, 4, j));
                        }
                    } else {
                        for (j, col) in acc.iter().enumerate() {
                            for (h, x) in col.iter().enumerate() {
                                for (r, v) in x.lanes().into_iter().enumerate() {
                                    *at(&tile, 4 * h + r, j) = v;
                                }
                            }
                        }
                    }
                }
                FusedKerSpec::AddMatMul { k, pa, pb, packing } => {
                    if packing != 0 {
                        return 1;
                    }
                    add_mat_mul(&mut acc, k, pa as *const f32, pb as *const f32);
                }
            }
        }
    }
    0
}

/// The kernel as tract runs it: its tile, packings (A panels of 8 rows, B panels of NR
/// columns), f32 accumulation and store, written for wasm32 with SIMD.
pub fn mmm() -> Box<dyn MatMatMul> {
    let mut k = DynKernel::<MR, NR, f32>::new(NAME, kernel, f32::packing(MR), f32::packing(NR));
    k.arch = Some(linalg::isa::Arch::Wasm32Simd128);
    k.mmm()
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod registration {
    use super::*;
    use linalg::mmm::{Query, Suitable};
    use linalg::mmm_routines::MmmRoutine;
    use linalg::mmm_tiers::MmmTier;
    use tract_nnef::tract_core::internal::inventory;
    use tract_nnef::tract_core::prelude::DatumType;

    /// Matrix-matrix products in f32 go to this kernel; matrix-vector ones (n = 1, the dense
    /// layer) and every other type stay with tract's wasm tier below.
    fn preferred(
        _isa: &linalg::isa::IsaSet,
        dt: DatumType,
        query: &Query,
        _suitable: &[Suitable],
    ) -> Option<&'static str> {
        (dt == DatumType::F32 && query.n != Some(1)).then_some(NAME)
    }

    inventory::submit! { MmmRoutine { make: mmm } }
    inventory::submit! {
        MmmTier {
            arch: Some(linalg::isa::Arch::Wasm32Simd128),
            // Above tract's own wasm tier (1): asked first.
            precedence: 2,
            name: "model-service-wasm",
            applies: |_| true,
            preferred,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linalg::mmm::{AsInputValue, FusedSpec};
    use linalg::BinOp;
    use tract_nnef::prelude::*;

    /// A small deterministic generator: values in [-1, 1) with a few exact zeros and negatives,
    /// so min/max/leaky cases all occur.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((s >> 40) % 2001) as f32 / 1000.0 - 1.0;
                if (s >> 20).is_multiple_of(17) {
                    0.0
                } else {
                    v
                }
            })
            .collect()
    }

    struct Problem {
        m: usize,
        k: usize,
        n: usize,
        a: Tensor,
        b: Tensor,
        rows: Tensor,
        cols: Tensor,
        unicast: Tensor,
        scalar: Tensor,
    }

    impl Problem {
        fn new(m: usize, k: usize, n: usize) -> TractResult<Problem> {
            let t = |shape: &[usize], seed| {
                Tensor::from_shape(shape, &values(shape.iter().product(), seed))
            };
            Ok(Problem {
                m,
                k,
                n,
                a: t(&[m, k], 1)?,
                b: t(&[k, n], 2)?,
                rows: t(&[m], 3)?,
                cols: t(&[n], 4)?,
                unicast: t(&[m, n], 5)?,
                scalar: tensor0(0.25f32),
            })
        }

        /// Runs `A·B` then `post` through tract's matmul frame with `ker`, storing into an
        /// `m × n` tensor, row-major or (`transposed`) column-major.
        fn run(
            &self,
            ker: &dyn MatMatMul,
            post: &[&str],
            transposed: bool,
        ) -> TractResult<Vec<f32>> {
            let (pack_a, pack_b) = &ker.packings()[0];
            let pa = pack_a.prepare_one(&self.a, 1, 0)?;
            let pb = pack_b.prepare_one(&self.b, 0, 1)?;
            let shape = if transposed {
                [self.n, self.m]
            } else {
                [self.m, self.n]
            };
            let mut c = Tensor::zero::<f32>(&shape)?;
            let unicast = if transposed {
                self.unicast.clone().permute_axes(&[1, 0])?
            } else {
                self.unicast.clone()
            };
            let (m_axis, n_axis) = if transposed { (1, 0) } else { (0, 1) };
            unsafe {
                let mut ops = vec![FusedSpec::AddMatMul {
                    a: AsInputValue::Borrowed(&*pa),
                    b: AsInputValue::Borrowed(&*pb),
                    packing: 0,
                }];
                for p in post {
                    ops.push(match *p {
                        "row_add" => FusedSpec::BinPerRow(self.rows.view(), BinOp::Add),
                        "row_sub" => FusedSpec::BinPerRow(self.rows.view(), BinOp::Sub),
                        "row_subf" => FusedSpec::BinPerRow(self.rows.view(), BinOp::SubF),
                        "row_mul" => FusedSpec::BinPerRow(self.rows.view(), BinOp::Mul),
                        "row_min" => FusedSpec::BinPerRow(self.rows.view(), BinOp::Min),
                        "row_max" => FusedSpec::BinPerRow(self.rows.view(), BinOp::Max),
                        "col_add" => FusedSpec::BinPerCol(self.cols.view(), BinOp::Add),
                        "col_sub" => FusedSpec::BinPerCol(self.cols.view(), BinOp::Sub),
                        "col_subf" => FusedSpec::BinPerCol(self.cols.view(), BinOp::SubF),
                        "col_mul" => FusedSpec::BinPerCol(self.cols.view(), BinOp::Mul),
                        "col_min" => FusedSpec::BinPerCol(self.cols.view(), BinOp::Min),
                        "col_max" => FusedSpec::BinPerCol(self.cols.view(), BinOp::Max),
                        "scalar_add" => FusedSpec::BinScalar(&self.scalar, BinOp::Add),
                        "scalar_sub" => FusedSpec::BinScalar(&self.scalar, BinOp::Sub),
                        "scalar_subf" => FusedSpec::BinScalar(&self.scalar, BinOp::SubF),
                        "scalar_mul" => FusedSpec::BinScalar(&self.scalar, BinOp::Mul),
                        "scalar_min" => FusedSpec::BinScalar(&self.scalar, BinOp::Min),
                        "scalar_max" => FusedSpec::BinScalar(&self.scalar, BinOp::Max),
                        "leaky" => FusedSpec::LeakyRelu(&self.scalar),
                        "row_col_products" => FusedSpec::AddRowColProducts(&self.rows, &self.cols),
                        "unicast" => FusedSpec::AddUnicast(
                            ker.c_view(Some(m_axis), Some(n_axis)).wrap(&unicast.view()),
                        ),
                        other => panic!("unknown operation {other}"),
                    });
                }
                ops.push(FusedSpec::Store(
                    ker.c_view(Some(m_axis), Some(n_axis)).wrap(&c.view_mut()),
                ));
                ker.run(self.m, self.n, &ops)?;
            }
            if transposed {
                c = c.permute_axes(&[1, 0])?.into_plain_ram()?;
            }
            Ok(c.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        }

        fn check(&self, post: &[&str], transposed: bool) -> TractResult<()> {
            let reference = linalg::generic::mmm::generic_f32_4x4.mmm();
            let expected = self.run(&*reference, post, transposed)?;
            let found = self.run(&*mmm(), post, transposed)?;
            for (i, (f, e)) in found.iter().zip(&expected).enumerate() {
                let tolerance = 1e-5 * (1.0 + e.abs()) * (self.k as f32).sqrt();
                assert!(
                    (f - e).abs() <= tolerance,
                    "m={} k={} n={} {post:?} transposed={transposed}: element ({}, {}) found {f} vs expected {e}",
                    self.m, self.k, self.n, i / self.n, i % self.n
                );
            }
            Ok(())
        }
    }

    #[test]
    fn products_equal_tracts_generic_kernel_on_full_and_partial_tiles() -> TractResult<()> {
        // Exact tiles, ragged edges in m, n or both, k of one, and the model's own shapes.
        for (m, k, n) in [
            (8, 1, 6),
            (8, 5, 6),
            (16, 7, 12),
            (13, 9, 11),
            (3, 4, 2),
            (1, 3, 7),
            (128, 150, 198),
            (128, 896, 60),
        ] {
            let p = Problem::new(m, k, n)?;
            p.check(&[], false)?;
            p.check(&[], true)?;
            p.check(&["row_add"], false)?;
        }
        Ok(())
    }

    #[test]
    fn every_fused_operation_matches_tracts_generic_kernel() -> TractResult<()> {
        let p = Problem::new(19, 13, 17)?;
        for op in [
            "row_add",
            "row_sub",
            "row_subf",
            "row_mul",
            "row_min",
            "row_max",
            "col_add",
            "col_sub",
            "col_subf",
            "col_mul",
            "col_min",
            "col_max",
            "scalar_add",
            "scalar_sub",
            "scalar_subf",
            "scalar_mul",
            "scalar_min",
            "scalar_max",
            "leaky",
            "row_col_products",
            "unicast",
        ] {
            p.check(&[op], false)?;
            p.check(&[op], true)?;
        }
        // A chain, as tract fuses a bias, a scale and a clamp behind one product.
        p.check(
            &["row_add", "scalar_mul", "col_max", "unicast", "scalar_min"],
            false,
        )?;
        Ok(())
    }

    #[test]
    fn an_unsupported_store_type_is_refused_not_miswritten() {
        let mut out = [0u16; MR * NR];
        let tile = linalg::mmm::OutputStoreKer {
            ptr: out.as_mut_ptr() as *mut u8,
            row_byte_stride: (2 * NR) as isize,
            col_byte_stride: 2,
            item_size: 2,
        };
        let ops = [
            FusedKerSpec::Clear,
            FusedKerSpec::Store(tile),
            FusedKerSpec::Done,
        ];
        assert_eq!(unsafe { kernel(&ops) }, 1);
        assert!(out.iter().all(|&x| x == 0));
    }
}
