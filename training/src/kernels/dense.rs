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
//! Everything here needs AVX2 and FMA ([`supported`]); the caller falls back to Burn's own
//! convolution otherwise.

use rayon::prelude::*;

/// Output channels per register tile.
const CO: usize = 4;
/// Pixels per register tile (two 8-lane vectors).
const PX: usize = 16;
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

/// `[cout / 4][cin][k][k][4]`: the 4 output channels of a tile next to each other, taps in the
/// order the kernel visits them. `flip`: the input gradient's kernel (flipped, channels
/// swapped: `weight` is then `[cin][cout][k][k]` of the forward and `shape` the transposed one).
fn pack(weight: &[f32], shape: &Shape, flip: bool) -> Vec<f32> {
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
                packed[(((co / CO) * cin + ci) * kk + t) * CO + co % CO] = value;
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

/// The convolution of `x` by the packed weights of `shape` into `out`, image by image.
fn convolve(x: &[f32], packed: &[f32], shape: &Shape, out: &mut [f32]) {
    let image_in = shape.cin * shape.height * shape.width;
    let image_out = shape.cout * shape.height * shape.width;
    out.par_chunks_mut(image_out)
        .zip(x.par_chunks(image_in))
        .for_each_init(Vec::new, |padded, (out, image)| {
            pad_image(image, shape, shape.cin, padded);
            // SAFETY: `supported` checked AVX2 and FMA on this machine and the shape the
            // kernel indexes by (width a multiple of 16, cout of 4); `padded`, `packed` and
            // `out` have the lengths the shape gives.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx2::image(padded, packed, shape, out)
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
    convolve(x, &pack(weight, shape, false), shape, out);
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
    convolve(dy, &pack(weight, &t, true), &t, dx);
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
                // SAFETY: as in `convolve`; `supported` also bounds the kernel side to 3.
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

    use super::{CO, PX, Shape};

    /// One image: `padded` input `[cin][h + 2p][w + 2p]`, packed weights, `out` `[cout][h][w]`.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; the slices must have the shape's lengths, the width be a
    /// multiple of 16 and `cout` of 4.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn image(padded: &[f32], packed: &[f32], shape: &Shape, out: &mut [f32]) {
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
                    for ox in (0..w).step_by(PX) {
                        let mut acc = [[_mm256_setzero_ps(); 2]; CO];
                        let mut wt = weights;
                        for ci in 0..cin {
                            let channel = x.add(ci * hp * wp);
                            for ky in 0..k {
                                let row = channel.add((oy + ky * d) * wp + ox);
                                for kx in 0..k {
                                    let a0 = _mm256_loadu_ps(row.add(kx * d));
                                    let a1 = _mm256_loadu_ps(row.add(kx * d + 8));
                                    for (c, acc) in acc.iter_mut().enumerate() {
                                        let wv = _mm256_broadcast_ss(&*wt.add(c));
                                        acc[0] = _mm256_fmadd_ps(a0, wv, acc[0]);
                                        acc[1] = _mm256_fmadd_ps(a1, wv, acc[1]);
                                    }
                                    wt = wt.add(CO);
                                }
                            }
                        }
                        for (c, acc) in acc.iter().enumerate() {
                            let dst = o.add(((block * CO + c) * h + oy) * w + ox);
                            _mm256_storeu_ps(dst, acc[0]);
                            _mm256_storeu_ps(dst.add(8), acc[1]);
                        }
                    }
                }
            }
        }
    }

    /// Adds one image's weight gradient into `dw` `[cout][cin][k][k]`.
    ///
    /// # Safety
    /// As [`image`], and `k <= 3`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_image(padded: &[f32], dy: &[f32], shape: &Shape, dw: &mut [f32]) {
        let (hp, wp) = shape.padded();
        let (h, w, k, d) = (shape.height, shape.width, shape.kernel, shape.dilation);
        let (cin, cout) = (shape.cin, shape.cout);
        debug_assert!(k <= super::MAX_WEIGHT_GRAD_KERNEL);
        debug_assert!(padded.len() >= cin * hp * wp);
        debug_assert!(dy.len() >= cout * h * w);
        // SAFETY: the caller's contract: offsets stay inside `padded` and `dy`, `dw` is indexed.
        unsafe {
            let x = padded.as_ptr();
            let g = dy.as_ptr();
            for ci in 0..cin {
                let channel = x.add(ci * hp * wp);
                for ky in 0..k {
                    for block in 0..cout / CO {
                        let mut acc = [[_mm256_setzero_ps(); 3]; CO];
                        for y in 0..h {
                            let row = channel.add((y + ky * d) * wp);
                            let grads = g.add((block * CO * h + y) * w);
                            for ox in (0..w).step_by(8) {
                                let mut gv = [_mm256_setzero_ps(); CO];
                                for (c, gv) in gv.iter_mut().enumerate() {
                                    *gv = _mm256_loadu_ps(grads.add(c * h * w + ox));
                                }
                                for kx in 0..k {
                                    let xv = _mm256_loadu_ps(row.add(ox + kx * d));
                                    for (acc, gv) in acc.iter_mut().zip(&gv) {
                                        acc[kx] = _mm256_fmadd_ps(*gv, xv, acc[kx]);
                                    }
                                }
                            }
                        }
                        for (c, acc) in acc.iter().enumerate() {
                            let co = block * CO + c;
                            for (kx, v) in acc.iter().take(k).enumerate() {
                                dw[((co * cin + ci) * k + ky) * k + kx] += sum(*v);
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

    const SHAPES: [Shape; 4] = [
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
