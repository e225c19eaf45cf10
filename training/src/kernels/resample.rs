//! Bilinear resampling of NCHW `f32` planes with aligned corners (Burn's `interpolate` default,
//! the decoder's up- and down-sampling): forward and input gradient.
//!
//! Why: Burn's CPU backend maps every output pixel's coordinates on its own, in `f64`, and
//! gathers four inputs: the decoder's resampling was a fifth of a training step
//! (docs/BENCHMARKS.md). Bilinear resampling is separable: here each output row is a blend of
//! two input rows (contiguous, vectorized), then a gather along the row from a table made once
//! per call. The backward runs the same two steps transposed. Planes go to rayon's threads.

use rayon::prelude::*;

/// `planes` planes (batch x channels) of `height x width`, resampled to `out_height x out_width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub planes: usize,
    pub height: usize,
    pub width: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl Shape {
    pub fn input_len(&self) -> usize {
        self.planes * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.planes * self.out_height * self.out_width
    }
}

/// Where output coordinate `o` reads from along one axis: `lo`, `hi = lo + 1` (or `lo` at the
/// last index) and the weight of `hi`.
#[derive(Debug, Clone, Copy)]
struct Tap {
    lo: usize,
    hi: usize,
    weight: f32,
}

/// The taps of one axis, with Burn's coordinates (corners aligned: output `o` reads input
/// `o * (n_in - 1) / (n_out - 1)`), computed in `f64` as Burn does so the weights agree.
fn taps(n_in: usize, n_out: usize) -> Vec<Tap> {
    let ratio = (n_in as f64 - 1.0) / ((n_out.max(1) - 1).max(1) as f64);
    (0..n_out)
        .map(|o| {
            let at = o as f64 * ratio;
            let lo = (at.floor().max(0.0) as usize).min(n_in - 1);
            Tap {
                lo,
                hi: (lo + 1).min(n_in - 1),
                weight: (at - lo as f64).max(0.0) as f32,
            }
        })
        .collect()
}

fn check(s: &Shape, input: usize, output: usize) {
    assert!(
        s.height > 0 && s.width > 0 && s.out_height > 0 && s.out_width > 0,
        "resample: empty plane {s:?}"
    );
    assert_eq!(input, s.input_len(), "resample: input");
    assert_eq!(output, s.output_len(), "resample: output");
}

/// Forward: `out` is `x` resampled.
///
/// # Panics
/// If a plane is empty or the slices do not have the shape's lengths.
pub fn forward(x: &[f32], s: &Shape, out: &mut [f32]) {
    check(s, x.len(), out.len());
    let (rows, cols) = (taps(s.height, s.out_height), taps(s.width, s.out_width));
    let (w, wo) = (s.width, s.out_width);
    out.par_chunks_mut(s.out_height * wo)
        .zip(x.par_chunks(s.height * w))
        .for_each_init(
            || vec![0.0f32; w],
            |blend, (out, plane)| {
                for (row, r) in out.chunks_exact_mut(wo).zip(&rows) {
                    let (a, b) = (&plane[r.lo * w..][..w], &plane[r.hi * w..][..w]);
                    for ((t, &a), &b) in blend.iter_mut().zip(a).zip(b) {
                        *t = a + r.weight * (b - a);
                    }
                    for (o, c) in row.iter_mut().zip(&cols) {
                        let (a, b) = (blend[c.lo], blend[c.hi]);
                        *o = a + c.weight * (b - a);
                    }
                }
            },
        );
}

/// The input gradient from the output gradient `dy`.
///
/// # Panics
/// As [`forward`].
pub fn input_grad(dy: &[f32], s: &Shape, dx: &mut [f32]) {
    check(s, dx.len(), dy.len());
    let (rows, cols) = (taps(s.height, s.out_height), taps(s.width, s.out_width));
    let (w, wo) = (s.width, s.out_width);
    dx.par_chunks_mut(s.height * w)
        .zip(dy.par_chunks(s.out_height * wo))
        .for_each_init(
            || vec![0.0f32; w],
            |spread, (plane, grad)| {
                plane.fill(0.0);
                for (row, r) in grad.chunks_exact(wo).zip(&rows) {
                    spread.fill(0.0);
                    for (&g, c) in row.iter().zip(&cols) {
                        spread[c.lo] += g - c.weight * g;
                        spread[c.hi] += c.weight * g;
                    }
                    let top = r.lo * w;
                    for (d, &t) in plane[top..][..w].iter_mut().zip(spread.iter()) {
                        *d += t - r.weight * t;
                    }
                    let bottom = r.hi * w;
                    for (d, &t) in plane[bottom..][..w].iter_mut().zip(spread.iter()) {
                        *d += r.weight * t;
                    }
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{inner, values};

    /// Bilinear with aligned corners, pixel by pixel in `f64`, as the definition reads.
    fn reference(x: &[f32], s: &Shape) -> Vec<f64> {
        let scale = |n_in: usize, n_out: usize| {
            if n_out > 1 {
                (n_in as f64 - 1.0) / (n_out as f64 - 1.0)
            } else {
                0.0
            }
        };
        let (sy, sx) = (scale(s.height, s.out_height), scale(s.width, s.out_width));
        let mut out = Vec::with_capacity(s.output_len());
        for p in 0..s.planes {
            for oy in 0..s.out_height {
                for ox in 0..s.out_width {
                    let (fy, fx) = (oy as f64 * sy, ox as f64 * sx);
                    let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
                    let (y1, x1) = ((y0 + 1).min(s.height - 1), (x0 + 1).min(s.width - 1));
                    let (wy, wx) = (fy - y0 as f64, fx - x0 as f64);
                    let v = |y: usize, xx: usize| x[(p * s.height + y) * s.width + xx] as f64;
                    out.push(
                        v(y0, x0) * (1.0 - wy) * (1.0 - wx)
                            + v(y0, x1) * (1.0 - wy) * wx
                            + v(y1, x0) * wy * (1.0 - wx)
                            + v(y1, x1) * wy * wx,
                    );
                }
            }
        }
        out
    }

    const SHAPES: [Shape; 4] = [
        Shape {
            planes: 3,
            height: 16,
            width: 16,
            out_height: 64,
            out_width: 64,
        },
        Shape {
            planes: 2,
            height: 32,
            width: 32,
            out_height: 16,
            out_width: 16,
        },
        Shape {
            planes: 2,
            height: 5,
            width: 7,
            out_height: 9,
            out_width: 3,
        },
        Shape {
            planes: 1,
            height: 4,
            width: 4,
            out_height: 1,
            out_width: 1,
        },
    ];

    #[test]
    fn forward_is_bilinear_with_aligned_corners() {
        for s in SHAPES {
            let x = values(s.input_len(), 1);
            let mut out = vec![f32::NAN; s.output_len()];
            forward(&x, &s, &mut out);
            let r = reference(&x, &s);
            let worst = out
                .iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-5, "{s:?}: off by {worst}");
        }
    }

    #[test]
    fn the_gradient_is_the_adjoint() {
        // <dy, resample(v)> = <input_grad(dy), v> for every v: resampling is linear.
        for s in SHAPES {
            let dy = values(s.output_len(), 2);
            let v = values(s.input_len(), 3);
            let mut dx = vec![f32::NAN; s.input_len()];
            input_grad(&dy, &s, &mut dx);
            let (lhs, rhs) = (inner(&dy, &reference(&v, &s)), inner(&dx, &v));
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{s:?}: {lhs} {rhs}"
            );
        }
    }
}
