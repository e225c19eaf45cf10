//! Dense stride-1 "same" convolutions (groups 1, square kernel, padding `dilation * (k / 2)`)
//! on NCHW `f32` data: the forward pass, the input gradient and the weight gradient.
//!
//! Why: Burn's CPU backend runs these as im2col + GEMM; with the decoder's 16 output channels
//! that GEMM is 131,072 x 432 by 432 x 16, a shape it runs at about 18 % of the machine's peak,
//! and its backward through a generic transposed convolution at 2.6x the forward
//! (docs/BENCHMARKS.md). A direct convolution vectorized along the rows does better: each
//! output tile is 16 pixels of a row (two AVX2 vectors) by 4 output channels, 8 accumulators in
//! registers, fed by two row loads and 4 weight broadcasts per kernel tap; images go to rayon's
//! threads, and rows are visited outer so the input rows a row needs stay in cache across the
//! channel blocks.
//!
//! The input gradient of such a convolution is the same convolution of the output gradient with
//! the kernel flipped and its channels swapped, so it runs on the same kernel. The weight
//! gradient sums `dy * shifted x` over every pixel: per (input channel, kernel row, 4 output
//! channels) 4 x k vector accumulators run down all rows of an image; images are split into a
//! fixed number of chunks whose partial sums are added in order, so the result does not depend
//! on thread timing.
//!
//! On a machine with AVX-512 the forward pass and the input gradient take 32 pixels (two
//! 16-lane vectors) by 8 output channels per tile where the width and channels allow: 16
//! accumulators of AVX-512's 32 registers, twice the independent sums to hide the FMA's latency
//! and half the instructions per FLOP. Every output still sums its taps in the same order, so
//! the two tiles give the same bits.
//!
//! Everything here needs AVX2 and FMA ([`supported`]); the caller falls back to Burn's own
//! convolution otherwise.

use rayon::prelude::*;

/// Output channels per register tile.
const CO: usize = 4;
/// Pixels per register tile (two 8-lane vectors).
const PX: usize = 16;
/// Output channels and pixels per register tile with AVX-512 (two 16-lane vectors by 8).
const WIDE_CO: usize = 8;
const WIDE_PX: usize = 32;
/// Largest kernel side the weight gradient keeps in registers (4 x 3 accumulators).
const MAX_WEIGHT_GRAD_KERNEL: usize = 3;
/// Chunks the weight gradient's images are split into (a fixed number: the sum's order is).
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// The shape of one convolution: NCHW input `[batch, cin, height, width]`, weight
/// `[cout, cin, kernel, kernel]`, output `[batch, cout, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub dilation: usize,
}

impl Shape {
    fn pad(&self) -> usize {
        self.dilation * (self.kernel / 2)
    }

    fn padded(&self) -> (usize, usize) {
        (self.height + 2 * self.pad(), self.width + 2 * self.pad())
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.cin * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.cout * self.height * self.width
    }

    pub fn weight_len(&self) -> usize {
        self.cout * self.cin * self.kernel * self.kernel
    }

    /// The shape of the convolution that gives the input gradient: output gradient in,
    /// `cin` channels out.
    fn transposed(&self) -> Shape {
        Shape {
            cin: self.cout,
            cout: self.cin,
            ..*self
        }
    }
}

/// Whether this machine runs the kernels (x86-64 with AVX2 and FMA).
pub fn cpu_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the convolution of `shape` (forward, or the input gradient's transposed shape) takes
/// the AVX-512 tile: the machine has AVX-512F, rows are a multiple of 32 pixels and output
/// channels of 8.
fn wide(shape: &Shape) -> bool {
    #[cfg(target_arch = "x86_64")]
    let avx512 = {
        static AVX512: std::sync::LazyLock<bool> =
            std::sync::LazyLock::new(|| std::arch::is_x86_feature_detected!("avx512f"));
        *AVX512
    };
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    avx512 && shape.width.is_multiple_of(WIDE_PX) && shape.cout.is_multiple_of(WIDE_CO)
}

/// Which of the three passes the kernels run for `shape`; the others go to Burn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    pub forward: bool,
    pub input_grad: bool,
    pub weight_grad: bool,
}

/// What the kernels can do for `shape`: odd kernels, rows a multiple of 16 pixels, output
/// channels a multiple of 4 (input channels too for the input gradient), on an AVX2 machine.
pub fn supported(shape: &Shape) -> Support {
    let base = cpu_supported()
        && shape.kernel % 2 == 1
        && shape.dilation > 0
        && shape.width > 0
        && shape.width.is_multiple_of(PX)
        && shape.height > 0
        && shape.batch > 0
        && shape.cin > 0;
    Support {
        forward: base && shape.cout.is_multiple_of(CO),
        input_grad: base && shape.cin.is_multiple_of(CO) && shape.cout > 0,
        weight_grad: base
            && shape.cout.is_multiple_of(CO)
            && shape.kernel <= MAX_WEIGHT_GRAD_KERNEL,
    }
}

/// `[cout / tile][cin][k][k][tile]`: the `tile` output channels of a register tile next to each
/// other, taps in the order the kernel visits them. `flip`: the input gradient's kernel
/// (flipped, channels swapped: `weight` is then `[cin][cout][k][k]` of the forward and `shape`
/// the transposed one).
fn pack(weight: &[f32], shape: &Shape, flip: bool, tile: usize) -> Vec<f32> {
    let (cin, cout, k) = (shape.cin, shape.cout, shape.kernel);
    let kk = k * k;
    let mut packed = vec![0.0; cout * cin * kk];
    for co in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                let value = if flip {
                    // Forward weight [ci_fwd = co][co_fwd = ci], tap reversed.
                    weight[(ci * cout + co) * kk + (kk - 1 - t)]
                } else {
                    weight[(co * cin + ci) * kk + t]
                };
                packed[(((co / tile) * cin + ci) * kk + t) * tile + co % tile] = value;
            }
        }
    }
    packed
}

/// One image's channels copied into `padded` (zeros around).
fn pad_image(image: &[f32], shape: &Shape, channels: usize, padded: &mut Vec<f32>) {
    let (hp, wp) = shape.padded();
    let p = shape.pad();
    let (h, w) = (shape.height, shape.width);
    padded.clear();
    padded.resize(channels * hp * wp, 0.0);
    for c in 0..channels {
        for y in 0..h {
            let src = &image[(c * h + y) * w..][..w];
            padded[(c * hp + y + p) * wp + p..][..w].copy_from_slice(src);
        }
    }
}

/// The convolution of `x` by `weight` (packed as [`pack`] with `flip`) for `shape` into `out`,
/// image by image, with the AVX-512 tile if `wide` (which [`wide`] must allow).
fn convolve(x: &[f32], weight: &[f32], flip: bool, shape: &Shape, wide: bool, out: &mut [f32]) {
    let image_in = shape.cin * shape.height * shape.width;
    let image_out = shape.cout * shape.height * shape.width;
    let packed = pack(weight, shape, flip, if wide { WIDE_CO } else { CO });
    out.par_chunks_mut(image_out)
        .zip(x.par_chunks(image_in))
        .for_each_init(Vec::new, |padded, (out, image)| {
            pad_image(image, shape, shape.cin, padded);
            // SAFETY: `supported` checked AVX2 and FMA on this machine and the shape the
            // kernel indexes by (width a multiple of 16, cout of 4), `wide` AVX-512F and a
            // width of 32, cout of 8; `padded`, `packed` and `out` have the shape's lengths.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                if wide {
                    avx512::image(padded, &packed, shape, out)
                } else {
                    avx2::image(padded, &packed, shape, out)
                }
            }
        });
}

/// Forward: `out = conv(x, weight)`.
///
/// # Panics
/// If the slices do not have the shape's lengths, or `supported(shape).forward` is false.
pub fn forward(x: &[f32], weight: &[f32], shape: &Shape, out: &mut [f32]) {
    assert!(supported(shape).forward, "dense conv forward: {shape:?}");
    assert_eq!(x.len(), shape.input_len(), "dense conv: input");
    assert_eq!(weight.len(), shape.weight_len(), "dense conv: weight");
    assert_eq!(out.len(), shape.output_len(), "dense conv: output");
    convolve(x, weight, false, shape, wide(shape), out);
}

/// The input gradient from the output gradient `dy`.
///
/// # Panics
/// As [`forward`], with `supported(shape).input_grad`.
pub fn input_grad(dy: &[f32], weight: &[f32], shape: &Shape, dx: &mut [f32]) {
    assert!(
        supported(shape).input_grad,
        "dense conv input grad: {shape:?}"
    );
    assert_eq!(dy.len(), shape.output_len(), "dense conv: output gradient");
    assert_eq!(weight.len(), shape.weight_len(), "dense conv: weight");
    assert_eq!(dx.len(), shape.input_len(), "dense conv: input gradient");
    let t = shape.transposed();
    convolve(dy, weight, true, &t, wide(&t), dx);
}

/// The weight gradient `[cout, cin, k, k]` from the input `x` and the output gradient `dy`.
///
/// # Panics
/// As [`forward`], with `supported(shape).weight_grad`.
pub fn weight_grad(x: &[f32], dy: &[f32], shape: &Shape, dw: &mut [f32]) {
    assert!(
        supported(shape).weight_grad,
        "dense conv weight grad: {shape:?}"
    );
    assert_eq!(x.len(), shape.input_len(), "dense conv: input");
    assert_eq!(dy.len(), shape.output_len(), "dense conv: output gradient");
    assert_eq!(dw.len(), shape.weight_len(), "dense conv: weight gradient");
    let image_in = shape.cin * shape.height * shape.width;
    let image_out = shape.cout * shape.height * shape.width;
    let per_chunk = shape.batch.div_ceil(WEIGHT_GRAD_CHUNKS);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(image_in * per_chunk)
        .zip(dy.par_chunks(image_out * per_chunk))
        .map(|(xs, dys)| {
            let mut partial = vec![0.0; shape.weight_len()];
            let mut padded = Vec::new();
            for (image, grad) in xs.chunks(image_in).zip(dys.chunks(image_out)) {
                pad_image(image, shape, shape.cin, &mut padded);
                // SAFETY: as in `convolve`; `supported` also bounds the kernel side to 3 (and
                // odd: 1 or 3).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx2::weight_grad_image(&padded, grad, shape, &mut partial)
                }
            }
            partial
        })
        .collect();
    dw.fill(0.0);
    for partial in partials {
        for (d, p) in dw.iter_mut().zip(partial) {
            *d += p;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{CO, Shape};

    /// One image: `padded` input `[cin][h + 2p][w + 2p]`, packed weights, `out` `[cout][h][w]`.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; the slices must have the shape's lengths, the width be a
    /// multiple of 16 and `cout` of 4.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn image(padded: &[f32], packed: &[f32], shape: &Shape, out: &mut [f32]) {
        // SAFETY: the caller's contract.
        unsafe { super::tile::image::<__m256, CO>(padded, packed, shape, out) }
    }

    /// Adds one image's weight gradient into `dw` `[cout][cin][k][k]`.
    ///
    /// # Safety
    /// As [`image`], and `k` 1 or 3.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_image(padded: &[f32], dy: &[f32], shape: &Shape, dw: &mut [f32]) {
        debug_assert!(shape.kernel == 1 || shape.kernel == 3);
        // SAFETY: the caller's contract.
        unsafe {
            if shape.kernel == 1 {
                weight_grad::<1>(padded, dy, shape, dw)
            } else {
                weight_grad::<3>(padded, dy, shape, dw)
            }
        }
    }

    /// [`weight_grad_image`] with the kernel side `K` a constant: the accumulators indexed by
    /// it then stay in registers (with the side a variable they lived on the stack, and this
    /// pass ran at half the forward's speed). Per 8 pixels of a row, the `K` shifted input
    /// vectors are loaded first and each output channel's gradient vector goes straight into
    /// its `K` FMAs: 12 accumulators + 3 inputs + 1 gradient fit AVX2's 16 registers.
    #[inline(always)]
    unsafe fn weight_grad<const K: usize>(
        padded: &[f32],
        dy: &[f32],
        shape: &Shape,
        dw: &mut [f32],
    ) {
        let (hp, wp) = shape.padded();
        let (h, w, d) = (shape.height, shape.width, shape.dilation);
        let (cin, cout) = (shape.cin, shape.cout);
        debug_assert_eq!(shape.kernel, K);
        debug_assert!(padded.len() >= cin * hp * wp);
        debug_assert!(dy.len() >= cout * h * w);
        // SAFETY: the caller's contract: offsets stay inside `padded` and `dy`, `dw` is indexed.
        unsafe {
            let x = padded.as_ptr();
            let g = dy.as_ptr();
            for ci in 0..cin {
                let channel = x.add(ci * hp * wp);
                for ky in 0..K {
                    for block in 0..cout / CO {
                        let mut acc = [[_mm256_setzero_ps(); K]; CO];
                        for y in 0..h {
                            let row = channel.add((y + ky * d) * wp);
                            let grads = g.add((block * CO * h + y) * w);
                            for ox in (0..w).step_by(8) {
                                let mut xv = [_mm256_setzero_ps(); K];
                                for (kx, xv) in xv.iter_mut().enumerate() {
                                    *xv = _mm256_loadu_ps(row.add(ox + kx * d));
                                }
                                for (c, acc) in acc.iter_mut().enumerate() {
                                    let gv = _mm256_loadu_ps(grads.add(c * h * w + ox));
                                    for (a, xv) in acc.iter_mut().zip(&xv) {
                                        *a = _mm256_fmadd_ps(gv, *xv, *a);
                                    }
                                }
                            }
                        }
                        for (c, acc) in acc.iter().enumerate() {
                            let co = block * CO + c;
                            for (kx, v) in acc.iter().enumerate() {
                                dw[((co * cin + ci) * K + ky) * K + kx] += sum(*v);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    fn sum(v: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let one = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
        _mm_cvtss_f32(one)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::__m512;

    use super::{Shape, WIDE_CO};

    /// As [`super::avx2::image`], with 32-pixel by 8-channel tiles (weights packed by 8).
    ///
    /// # Safety
    /// AVX-512F must be available; the slices must have the shape's lengths, the width be a
    /// multiple of 32 and `cout` of 8.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn image(padded: &[f32], packed: &[f32], shape: &Shape, out: &mut [f32]) {
        // SAFETY: the caller's contract.
        unsafe { super::tile::image::<__m512, WIDE_CO>(padded, packed, shape, out) }
    }
}

/// The forward's register tile, written once for both vector widths: two vectors of a row by
/// `CO` output channels.
#[cfg(target_arch = "x86_64")]
mod tile {
    use std::arch::x86_64::*;

    use super::Shape;

    /// A vector of `f32` lanes, as the tile uses it. Each method is one instruction; they are
    /// inlined into the `#[target_feature]` function that calls [`image`], whose features they
    /// need.
    pub trait Lanes: Copy {
        const LANES: usize;
        unsafe fn zero() -> Self;
        unsafe fn load(from: *const f32) -> Self;
        unsafe fn splat(from: *const f32) -> Self;
        /// `a * b + c`, rounded once.
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
        unsafe fn store(self, to: *mut f32);
    }

    impl Lanes for __m256 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn load(from: *const f32) -> Self {
            unsafe { _mm256_loadu_ps(from) }
        }
        #[inline(always)]
        unsafe fn splat(from: *const f32) -> Self {
            unsafe { _mm256_broadcast_ss(&*from) }
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn store(self, to: *mut f32) {
            unsafe { _mm256_storeu_ps(to, self) }
        }
    }

    impl Lanes for __m512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn load(from: *const f32) -> Self {
            unsafe { _mm512_loadu_ps(from) }
        }
        #[inline(always)]
        unsafe fn splat(from: *const f32) -> Self {
            unsafe { _mm512_set1_ps(*from) }
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn store(self, to: *mut f32) {
            unsafe { _mm512_storeu_ps(to, self) }
        }
    }

    /// One image: `padded` input `[cin][h + 2p][w + 2p]`, weights packed by `CO`, `out`
    /// `[cout][h][w]`. Each output sums its taps in the order (input channel, kernel row,
    /// kernel column), whatever `V`.
    ///
    /// # Safety
    /// `V`'s instructions must be available; the slices must have the shape's lengths, the width
    /// be a multiple of `2 * V::LANES` and `cout` of `CO`.
    #[inline(always)]
    pub unsafe fn image<V: Lanes, const CO: usize>(
        padded: &[f32],
        packed: &[f32],
        shape: &Shape,
        out: &mut [f32],
    ) {
        let (hp, wp) = shape.padded();
        let (h, w, k, d) = (shape.height, shape.width, shape.kernel, shape.dilation);
        let (cin, cout) = (shape.cin, shape.cout);
        debug_assert!(padded.len() >= cin * hp * wp);
        debug_assert!(out.len() >= cout * h * w);
        let kk = k * k;
        // SAFETY: the caller's contract: every offset below stays inside `padded` (rows of the
        // padded image), `packed` (cout x cin x k x k) and `out` (cout x h x w).
        unsafe {
            let x = padded.as_ptr();
            let o = out.as_mut_ptr();
            for oy in 0..h {
                for block in 0..cout / CO {
                    let weights = packed.as_ptr().add(block * cin * kk * CO);
                    for ox in (0..w).step_by(2 * V::LANES) {
                        let mut acc = [[V::zero(); 2]; CO];
                        let mut wt = weights;
                        for ci in 0..cin {
                            let channel = x.add(ci * hp * wp);
                            for ky in 0..k {
                                let row = channel.add((oy + ky * d) * wp + ox);
                                for kx in 0..k {
                                    let a0 = V::load(row.add(kx * d));
                                    let a1 = V::load(row.add(kx * d + V::LANES));
                                    for (c, acc) in acc.iter_mut().enumerate() {
                                        let wv = V::splat(wt.add(c));
                                        acc[0] = V::fma(a0, wv, acc[0]);
                                        acc[1] = V::fma(a1, wv, acc[1]);
                                    }
                                    wt = wt.add(CO);
                                }
                            }
                        }
                        for (c, acc) in acc.iter().enumerate() {
                            let dst = o.add(((block * CO + c) * h + oy) * w + ox);
                            acc[0].store(dst);
                            acc[1].store(dst.add(V::LANES));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{inner, values};

    /// The convolution by its definition, in f64.
    fn reference(x: &[f32], weight: &[f32], s: &Shape) -> Vec<f32> {
        let p = s.pad() as isize;
        let (h, w, k, d) = (s.height, s.width, s.kernel, s.dilation);
        let mut out = vec![0.0; s.output_len()];
        for b in 0..s.batch {
            for co in 0..s.cout {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = 0.0f64;
                        for ci in 0..s.cin {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = y as isize + (ky * d) as isize - p;
                                    let ix = xx as isize + (kx * d) as isize - p;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xv =
                                        x[((b * s.cin + ci) * h + iy as usize) * w + ix as usize];
                                    let wv = weight[((co * s.cin + ci) * k + ky) * k + kx];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        out[((b * s.cout + co) * h + y) * w + xx] = acc as f32;
                    }
                }
            }
        }
        out
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-5 * scale * 10.0,
            "{what}: off by {worst} (scale {scale})"
        );
    }

    const SHAPES: [Shape; 5] = [
        Shape {
            batch: 3,
            cin: 5,
            cout: 8,
            height: 7,
            width: 16,
            kernel: 3,
            dilation: 1,
        },
        Shape {
            batch: 2,
            cin: 8,
            cout: 4,
            height: 9,
            width: 32,
            kernel: 3,
            dilation: 3,
        },
        Shape {
            batch: 2,
            cin: 4,
            cout: 12,
            height: 5,
            width: 16,
            kernel: 1,
            dilation: 1,
        },
        Shape {
            batch: 9,
            cin: 4,
            cout: 4,
            height: 4,
            width: 16,
            kernel: 3,
            dilation: 5,
        },
        // The AVX-512 tile, where the machine has it (forward and input gradient).
        Shape {
            batch: 2,
            cin: 8,
            cout: 16,
            height: 21,
            width: 64,
            kernel: 3,
            dilation: 2,
        },
    ];

    #[test]
    fn forward_is_the_convolution() {
        if !cpu_supported() {
            return;
        }
        for s in SHAPES {
            let x = values(s.input_len(), 1);
            let w = values(s.weight_len(), 2);
            let mut out = vec![f32::NAN; s.output_len()];
            forward(&x, &w, &s, &mut out);
            close(&out, &reference(&x, &w, &s), &format!("forward {s:?}"));
        }
    }

    #[test]
    fn gradients_are_those_of_the_convolution() {
        if !cpu_supported() {
            return;
        }
        for s in SHAPES {
            let x = values(s.input_len(), 3);
            let w = values(s.weight_len(), 4);
            let dy = values(s.output_len(), 5);
            // <dy, conv(x, w)> is bilinear: its gradients are what the kernels compute.
            // Input gradient: the adjoint, <dx, e_i> = <dy, conv(e_i, w)>, checked through
            // <dx, v> = <dy, conv(v, w)> for a random v; weight gradient likewise.
            if supported(&s).input_grad {
                let mut dx = vec![f32::NAN; s.input_len()];
                input_grad(&dy, &w, &s, &mut dx);
                let v = values(s.input_len(), 6);
                let (lhs, rhs) = (inner(&dx, &v), inner(&dy, &reference(&v, &w, &s)));
                assert!(
                    (lhs - rhs).abs() <= 1e-4 * rhs.abs().max(1.0),
                    "input grad {s:?}: {lhs} {rhs}"
                );
            }
            let mut dw = vec![f32::NAN; s.weight_len()];
            weight_grad(&x, &dy, &s, &mut dw);
            let v = values(s.weight_len(), 7);
            let (lhs, rhs) = (inner(&dw, &v), inner(&dy, &reference(&x, &v, &s)));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * rhs.abs().max(1.0),
                "weight grad {s:?}: {lhs} {rhs}"
            );
        }
    }

    #[test]
    fn both_tiles_give_the_same_bits() {
        let s = SHAPES[4];
        if !cpu_supported() || !wide(&s) {
            return;
        }
        let x = values(s.input_len(), 10);
        let w = values(s.weight_len(), 11);
        let mut narrow = vec![f32::NAN; s.output_len()];
        let mut wider = vec![f32::NAN; s.output_len()];
        convolve(&x, &w, false, &s, false, &mut narrow);
        convolve(&x, &w, false, &s, true, &mut wider);
        assert_eq!(narrow, wider);
    }

    #[test]
    fn shapes_the_kernels_do_not_take_are_said_so() {
        let s = SHAPES[0];
        assert!(!supported(&Shape { width: 20, ..s }).forward);
        assert!(!supported(&Shape { cout: 6, ..s }).forward);
        assert!(!supported(&Shape { cin: 5, ..s }).input_grad);
        assert!(!supported(&Shape { kernel: 5, ..s }).weight_grad);
        assert!(!supported(&Shape { kernel: 2, ..s }).forward);
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_thread_timing() {
        if !cpu_supported() {
            return;
        }
        let s = Shape {
            batch: 17,
            ..SHAPES[0]
        };
        let x = values(s.input_len(), 8);
        let dy = values(s.output_len(), 9);
        let mut first = vec![0.0; s.weight_len()];
        weight_grad(&x, &dy, &s, &mut first);
        for _ in 0..5 {
            let mut again = vec![0.0; s.weight_len()];
            weight_grad(&x, &dy, &s, &mut again);
            assert_eq!(first, again);
        }
    }
}
