//! Depthwise convolutions (one `k x k` filter per channel, groups = channels, padding `k / 2`,
//! stride 1 or 2) on NCHW `f32` data: forward, input gradient and weight gradient.
//!
//! Why: Burn's CPU backend has a direct forward for depthwise convolutions, but its backward
//! goes through a grouped transposed convolution (input gradient) and a grouped convolution
//! (weight gradient), 4-6x the forward's time; the encoder's seven depthwise layers were a
//! fifth of a training step (docs/BENCHMARKS.md). Here every pass is a few multiply-adds along
//! contiguous rows of one channel's plane, which the compiler vectorizes: a stride-2 layer reads
//! (and writes) its padded plane through its even and odd columns, split apart first, so its
//! rows stay contiguous too. Images (forward, input gradient) or channels (weight gradient: each
//! channel's filter summed by one task, in a fixed order) go to rayon's threads.

use rayon::prelude::*;

/// A depthwise convolution: input `[batch, channels, height, width]`, weight
/// `[channels, 1, kernel, kernel]`, output `[batch, channels, out_height, out_width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl Shape {
    fn pad(&self) -> usize {
        self.kernel / 2
    }

    /// The output's height and width.
    pub fn out(&self) -> (usize, usize) {
        let size = |n: usize| (n + 2 * self.pad() - self.kernel) / self.stride + 1;
        (size(self.height), size(self.width))
    }

    /// The padded plane: large enough for every tap of every output position.
    fn padded(&self) -> (usize, usize) {
        let (ho, wo) = self.out();
        let (p, k, s) = (self.pad(), self.kernel, self.stride);
        let need = |n: usize, o: usize| (n + 2 * p).max((o - 1) * s + k);
        (
            need(self.height, ho),
            need(self.width, wo).next_multiple_of(2),
        )
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        let (ho, wo) = self.out();
        self.batch * self.channels * ho * wo
    }

    pub fn weight_len(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }
}

/// What the kernels take: odd kernels, stride 1 or 2.
pub fn supported(shape: &Shape) -> bool {
    shape.kernel % 2 == 1
        && matches!(shape.stride, 1 | 2)
        && shape.batch > 0
        && shape.channels > 0
        && shape.height > 0
        && shape.width > 0
}

/// A channel's plane, padded, split into its even and odd columns (`[rows][wp / 2]` each) for
/// stride 2, or whole (`even` only) for stride 1.
struct Planes {
    even: Vec<f32>,
    odd: Vec<f32>,
    /// Row length of `even` and `odd` (the padded width, or half of it for stride 2), and the
    /// stride: set by `load` and `zero`, so the runs below cost no arithmetic on the shape.
    row: usize,
    stride: usize,
    /// Stride 1: an output (or output gradient) plane laid out with the padded plane's row
    /// length, so that each tap is one contiguous run over the whole plane (see [`Wide`]).
    wide: Vec<f32>,
}

impl Planes {
    fn new() -> Self {
        Self {
            even: Vec::new(),
            odd: Vec::new(),
            row: 0,
            stride: 1,
            wide: Vec::new(),
        }
    }

    /// `plane` (`h x w`) padded into the buffers.
    fn load(&mut self, plane: &[f32], s: &Shape) {
        self.zero(s);
        let (_, wp) = s.padded();
        let p = s.pad();
        let (h, w) = (s.height, s.width);
        if s.stride == 1 {
            for y in 0..h {
                self.even[(y + p) * wp + p..][..w].copy_from_slice(&plane[y * w..][..w]);
            }
            return;
        }
        let half = wp / 2;
        for y in 0..h {
            for x in 0..w {
                let col = x + p;
                let target = if col.is_multiple_of(2) {
                    &mut self.even
                } else {
                    &mut self.odd
                };
                target[(y + p) * half + col / 2] = plane[y * w + x];
            }
        }
    }

    /// All zeros (the padded plane of `s`), to load into or scatter gradients into.
    fn zero(&mut self, s: &Shape) {
        let (hp, wp) = s.padded();
        self.stride = s.stride;
        self.row = if s.stride == 1 { wp } else { wp / 2 };
        let len = hp * self.row;
        self.even.clear();
        self.even.resize(len, 0.0);
        if s.stride == 2 {
            self.odd.clear();
            self.odd.resize(len, 0.0);
        }
    }

    /// Padded row `row` from column `col` on, `out.len()` long, into `out`.
    fn store_row(&self, row: usize, col: usize, out: &mut [f32]) {
        if self.stride == 1 {
            out.copy_from_slice(&self.even[row * self.row + col..][..out.len()]);
            return;
        }
        for (i, v) in out.iter_mut().enumerate() {
            let c = col + i;
            let source = if c.is_multiple_of(2) {
                &self.even
            } else {
                &self.odd
            };
            *v = source[row * self.row + c / 2];
        }
    }

    /// As [`Planes::run`], to write into.
    fn run_mut(&mut self, row: usize, kx: usize, len: usize) -> &mut [f32] {
        if self.stride == 1 {
            &mut self.even[row * self.row + kx..][..len]
        } else {
            let source = if kx.is_multiple_of(2) {
                &mut self.even
            } else {
                &mut self.odd
            };
            &mut source[row * self.row + kx / 2..][..len]
        }
    }

    /// The contiguous run `out_width` long that column `2 * x + kx` (stride 2) or `x + kx`
    /// (stride 1) of padded row `row` gives for x = 0, 1, ...
    fn run(&self, row: usize, kx: usize, len: usize) -> &[f32] {
        if self.stride == 1 {
            &self.even[row * self.row + kx..][..len]
        } else {
            let source = if kx.is_multiple_of(2) {
                &self.even
            } else {
                &self.odd
            };
            &source[row * self.row + kx / 2..][..len]
        }
    }
}

/// `acc[i] += a * b[i]`: the loop every pass is made of.
#[inline(always)]
fn axpy(acc: &mut [f32], a: f32, b: &[f32]) {
    for (o, &v) in acc.iter_mut().zip(b) {
        *o += a * v;
    }
}

/// `sum_i a[i] * b[i]`, in 8 partial sums (so it vectorizes).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// Forward: `out = depthwise_conv(x, weight)`.
///
/// # Panics
/// If the slices do not have the shape's lengths, or the shape is not [`supported`].
pub fn forward(x: &[f32], weight: &[f32], shape: &Shape, out: &mut [f32]) {
    check(shape, x.len(), weight.len(), out.len());
    let (h, w) = (shape.height, shape.width);
    let (ho, wo) = shape.out();
    let kernel = Kernels::select();
    out.par_chunks_mut(shape.channels * ho * wo)
        .zip(x.par_chunks(shape.channels * h * w))
        .for_each_init(Planes::new, |planes, (out, image)| {
            kernel.forward_image(image, weight, shape, out, planes)
        });
}

/// The input gradient from the output gradient `dy`.
///
/// # Panics
/// As [`forward`].
pub fn input_grad(dy: &[f32], weight: &[f32], shape: &Shape, dx: &mut [f32]) {
    check(shape, dx.len(), weight.len(), dy.len());
    let (h, w) = (shape.height, shape.width);
    let (ho, wo) = shape.out();
    let kernel = Kernels::select();
    dx.par_chunks_mut(shape.channels * h * w)
        .zip(dy.par_chunks(shape.channels * ho * wo))
        .for_each_init(Planes::new, |planes, (dx, grad)| {
            kernel.input_grad_image(grad, weight, shape, dx, planes)
        });
}

/// The weight gradient `[channels, 1, k, k]` from the input and the output gradient.
///
/// # Panics
/// As [`forward`].
pub fn weight_grad(x: &[f32], dy: &[f32], shape: &Shape, dw: &mut [f32]) {
    check(shape, x.len(), dw.len(), dy.len());
    let k = shape.kernel;
    let kernel = Kernels::select();
    dw.par_chunks_mut(k * k)
        .enumerate()
        .for_each_init(Planes::new, |planes, (c, filter)| {
            kernel.weight_grad_channel(x, dy, shape, c, filter, planes)
        });
}

fn check(shape: &Shape, input: usize, weight: usize, output: usize) {
    assert!(supported(shape), "depthwise conv: {shape:?}");
    assert_eq!(input, shape.input_len(), "depthwise conv: input");
    assert_eq!(weight, shape.weight_len(), "depthwise conv: weight");
    assert_eq!(output, shape.output_len(), "depthwise conv: output");
}

/// The per-image (per-channel) passes, compiled for AVX2 + FMA when the machine has them (the
/// row loops then vectorize 8 wide), else for the baseline target.
#[derive(Clone, Copy)]
enum Kernels {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernels {
    fn select() -> Self {
        #[cfg(target_arch = "x86_64")]
        if super::dense::cpu_supported() {
            return Kernels::Avx2;
        }
        Kernels::Baseline
    }

    fn forward_image(
        self,
        image: &[f32],
        weight: &[f32],
        s: &Shape,
        out: &mut [f32],
        p: &mut Planes,
    ) {
        match self {
            Kernels::Baseline => forward_image(image, weight, s, out, p),
            // SAFETY: `select` detected AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::forward_image(image, weight, s, out, p) },
        }
    }

    fn input_grad_image(
        self,
        grad: &[f32],
        weight: &[f32],
        s: &Shape,
        dx: &mut [f32],
        p: &mut Planes,
    ) {
        match self {
            Kernels::Baseline => input_grad_image(grad, weight, s, dx, p),
            // SAFETY: `select` detected AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::input_grad_image(grad, weight, s, dx, p) },
        }
    }

    fn weight_grad_channel(
        self,
        x: &[f32],
        dy: &[f32],
        s: &Shape,
        c: usize,
        filter: &mut [f32],
        p: &mut Planes,
    ) {
        match self {
            Kernels::Baseline => weight_grad_channel(x, dy, s, c, filter, p),
            // SAFETY: `select` detected AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::weight_grad_channel(x, dy, s, c, filter, p) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Planes, Shape};

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_image(i: &[f32], w: &[f32], s: &Shape, o: &mut [f32], p: &mut Planes) {
        super::forward_image(i, w, s, o, p)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn input_grad_image(g: &[f32], w: &[f32], s: &Shape, d: &mut [f32], p: &mut Planes) {
        super::input_grad_image(g, w, s, d, p)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_channel(
        x: &[f32],
        dy: &[f32],
        s: &Shape,
        c: usize,
        f: &mut [f32],
        p: &mut Planes,
    ) {
        super::weight_grad_channel(x, dy, s, c, f, p)
    }
}

/// Stride 1 in "wide" layout: output `(oy, ox)` at `oy * wp + ox` of a buffer whose rows are
/// as long as the padded plane's (`wp`, the columns past `wo` unused), so that the input of tap
/// `(ky, kx)` for every output is the one contiguous run of the padded plane starting at
/// `ky * wp + kx`: a whole plane is `k * k` long multiply-adds instead of `k * k * ho` short
/// ones. (Stride 2 steps two padded rows per output row; it keeps the row-by-row runs.)
struct Wide {
    /// Row length of the padded plane.
    wp: usize,
    /// Length of a run: up to the last output's column of the last output row.
    span: usize,
}

impl Wide {
    fn of(s: &Shape) -> Option<Self> {
        let (ho, wo) = s.out();
        let (_, wp) = s.padded();
        (s.stride == 1).then_some(Wide {
            wp,
            span: (ho - 1) * wp + wo,
        })
    }

    /// The padded plane's run read by tap `(ky, kx)`.
    fn run(&self, padded: &[f32], ky: usize, kx: usize) -> std::ops::Range<usize> {
        let start = ky * self.wp + kx;
        debug_assert!(start + self.span <= padded.len());
        start..start + self.span
    }
}

/// One image's channels.
#[inline(always)]
fn forward_image(image: &[f32], weight: &[f32], s: &Shape, out: &mut [f32], planes: &mut Planes) {
    let (h, w, k) = (s.height, s.width, s.kernel);
    let (ho, wo) = s.out();
    for c in 0..s.channels {
        planes.load(&image[c * h * w..][..h * w], s);
        let filter = &weight[c * k * k..][..k * k];
        let plane = &mut out[c * ho * wo..][..ho * wo];
        if let Some(wide) = Wide::of(s) {
            let mut acc = std::mem::take(&mut planes.wide);
            acc.clear();
            acc.resize(wide.span, 0.0);
            for (t, &f) in filter.iter().enumerate() {
                axpy(
                    &mut acc,
                    f,
                    &planes.even[wide.run(&planes.even, t / k, t % k)],
                );
            }
            for (oy, row) in plane.chunks_exact_mut(wo).enumerate() {
                row.copy_from_slice(&acc[oy * wide.wp..][..wo]);
            }
            planes.wide = acc;
            continue;
        }
        for oy in 0..ho {
            let row = &mut plane[oy * wo..][..wo];
            row.fill(0.0);
            for ky in 0..k {
                for kx in 0..k {
                    let run = planes.run(oy * s.stride + ky, kx, wo);
                    axpy(row, filter[ky * k + kx], run);
                }
            }
        }
    }
}

/// `g` (`ho x wo`) into `wide` in wide layout, the unused columns zero.
fn widen(g: &[f32], wo: usize, layout: &Wide, wide: &mut Vec<f32>) {
    wide.clear();
    wide.resize(layout.span, 0.0);
    for (oy, row) in g.chunks_exact(wo).enumerate() {
        wide[oy * layout.wp..][..wo].copy_from_slice(row);
    }
}

/// One image's input gradient: every output gradient scattered back onto the padded plane it
/// was read from (tap (ky, kx) of output (oy, ox) read padded (s oy + ky, s ox + kx)), then
/// cropped.
#[inline(always)]
fn input_grad_image(grad: &[f32], weight: &[f32], s: &Shape, dx: &mut [f32], planes: &mut Planes) {
    let (h, w, k, p) = (s.height, s.width, s.kernel, s.pad());
    let (ho, wo) = s.out();
    for c in 0..s.channels {
        let filter = &weight[c * k * k..][..k * k];
        let g = &grad[c * ho * wo..][..ho * wo];
        planes.zero(s);
        if let Some(wide) = Wide::of(s) {
            let mut grad = std::mem::take(&mut planes.wide);
            widen(g, wo, &wide, &mut grad);
            for (t, &f) in filter.iter().enumerate() {
                let run = wide.run(&planes.even, t / k, t % k);
                axpy(&mut planes.even[run], f, &grad);
            }
            planes.wide = grad;
        } else {
            scatter_rows(g, filter, s, planes);
        }
        let plane = &mut dx[c * h * w..][..h * w];
        for y in 0..h {
            planes.store_row(y + p, p, &mut plane[y * w..][..w]);
        }
    }
}

/// Stride 2's scatter of one channel's output gradient `g`, output row by output row.
#[inline(always)]
fn scatter_rows(g: &[f32], filter: &[f32], s: &Shape, planes: &mut Planes) {
    let k = s.kernel;
    let (ho, wo) = s.out();
    {
        for oy in 0..ho {
            let src = &g[oy * wo..][..wo];
            for ky in 0..k {
                for kx in 0..k {
                    let dst = planes.run_mut(oy * s.stride + ky, kx, wo);
                    axpy(dst, filter[ky * k + kx], src);
                }
            }
        }
    }
}

/// One channel's filter gradient, summed over the batch in order.
#[inline(always)]
fn weight_grad_channel(
    x: &[f32],
    dy: &[f32],
    s: &Shape,
    c: usize,
    filter: &mut [f32],
    planes: &mut Planes,
) {
    let (h, w, k, channels) = (s.height, s.width, s.kernel, s.channels);
    let (ho, wo) = s.out();
    filter.fill(0.0);
    for b in 0..s.batch {
        planes.load(&x[(b * channels + c) * h * w..][..h * w], s);
        let g = &dy[(b * channels + c) * ho * wo..][..ho * wo];
        if let Some(wide) = Wide::of(s) {
            let mut grad = std::mem::take(&mut planes.wide);
            widen(g, wo, &wide, &mut grad);
            for (t, tap) in filter.iter_mut().enumerate() {
                *tap += dot(&grad, &planes.even[wide.run(&planes.even, t / k, t % k)]);
            }
            planes.wide = grad;
            continue;
        }
        for (t, tap) in filter.iter_mut().enumerate() {
            let (ky, kx) = (t / k, t % k);
            let mut sum = 0.0;
            for oy in 0..ho {
                sum += dot(&g[oy * wo..][..wo], planes.run(oy * s.stride + ky, kx, wo));
            }
            *tap += sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{inner, values};

    fn reference(x: &[f32], weight: &[f32], s: &Shape) -> Vec<f32> {
        let (h, w, k, p) = (
            s.height as isize,
            s.width as isize,
            s.kernel,
            s.pad() as isize,
        );
        let (ho, wo) = s.out();
        let mut out = vec![0.0; s.output_len()];
        for b in 0..s.batch {
            for c in 0..s.channels {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = 0.0f64;
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s.stride + ky) as isize - p;
                                let ix = (ox * s.stride + kx) as isize - p;
                                if iy < 0 || ix < 0 || iy >= h || ix >= w {
                                    continue;
                                }
                                let xv = x[((b * s.channels + c) * s.height + iy as usize)
                                    * s.width
                                    + ix as usize];
                                acc += xv as f64 * weight[(c * k + ky) * k + kx] as f64;
                            }
                        }
                        out[((b * s.channels + c) * ho + oy) * wo + ox] = acc as f32;
                    }
                }
            }
        }
        out
    }

    const SHAPES: [Shape; 5] = [
        Shape {
            batch: 2,
            channels: 3,
            height: 16,
            width: 16,
            kernel: 5,
            stride: 1,
        },
        Shape {
            batch: 3,
            channels: 2,
            height: 9,
            width: 13,
            kernel: 3,
            stride: 1,
        },
        Shape {
            batch: 2,
            channels: 4,
            height: 64,
            width: 32,
            kernel: 3,
            stride: 2,
        },
        Shape {
            batch: 1,
            channels: 2,
            height: 7,
            width: 9,
            kernel: 3,
            stride: 2,
        },
        Shape {
            batch: 2,
            channels: 3,
            height: 8,
            width: 8,
            kernel: 5,
            stride: 2,
        },
    ];

    #[test]
    fn forward_is_the_depthwise_convolution() {
        for s in SHAPES {
            let x = values(s.input_len(), 1);
            let w = values(s.weight_len(), 2);
            let mut out = vec![f32::NAN; s.output_len()];
            forward(&x, &w, &s, &mut out);
            let r = reference(&x, &w, &s);
            let worst = out
                .iter()
                .zip(&r)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "{s:?}: off by {worst}");
        }
    }

    #[test]
    fn gradients_are_the_adjoints() {
        // <dy, conv(x, w)> is bilinear in x and w: its gradients are the adjoint maps.
        for s in SHAPES {
            let x = values(s.input_len(), 3);
            let w = values(s.weight_len(), 4);
            let dy = values(s.output_len(), 5);
            let mut dx = vec![f32::NAN; s.input_len()];
            input_grad(&dy, &w, &s, &mut dx);
            let v = values(s.input_len(), 6);
            let (lhs, rhs) = (inner(&dx, &v), inner(&dy, &reference(&v, &w, &s)));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * rhs.abs().max(1.0),
                "dx {s:?}: {lhs} {rhs}"
            );
            let mut dw = vec![f32::NAN; s.weight_len()];
            weight_grad(&x, &dy, &s, &mut dw);
            let v = values(s.weight_len(), 7);
            let (lhs, rhs) = (inner(&dw, &v), inner(&dy, &reference(&x, &v, &s)));
            assert!(
                (lhs - rhs).abs() <= 1e-4 * rhs.abs().max(1.0),
                "dw {s:?}: {lhs} {rhs}"
            );
        }
    }

    #[test]
    fn strides_and_kernels_it_does_not_take_are_said_so() {
        let s = SHAPES[0];
        assert!(!supported(&Shape { stride: 3, ..s }));
        assert!(!supported(&Shape { kernel: 4, ..s }));
    }
}
