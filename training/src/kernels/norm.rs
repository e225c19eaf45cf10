//! Batch norm over a training batch, then the activation, as one pass each way, on NCHW `f32`
//! data.
//!
//! Why: Burn's CPU backend composes a training batch norm from generic operations (the batch
//! swapped to channel-major and copied, means, a centred copy, the normalisation, and as many
//! again for its backward), and the activation after it adds a node per operation (h-swish is
//! six). Around every convolution of the network that cost as much as the convolution itself
//! (docs/BENCHMARKS.md). Here the forward reads the input twice (statistics, then output) and
//! the backward reads input and output gradient twice (the two sums, then the input gradient).
//!
//! Each per-element loop is compiled once per activation and, where the machine has AVX2 and
//! FMA, for them: written plainly, they branched on the activation at every element and ran
//! SSE2's 4 lanes, at a fraction of the memory's speed.
//!
//! Statistics are those of Burn's `batch_norm_train`: the mean and the biased variance over
//! batch, height and width. Each channel's sums are taken plane by plane in a fixed order (eight
//! partial sums within a plane, the planes added in `f64`), so results do not depend on threads.

use rayon::prelude::*;

use super::activation::Activation;

/// `batch` images of `channels` planes of `plane` values each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl Shape {
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel: what the statistics are taken over.
    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Channel `c`'s plane in each image, in batch order.
    fn planes<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (channels, plane) = (self.channels, self.plane);
        (0..self.batch).map(move |b| &data[(b * channels + c) * plane..][..plane])
    }
}

/// The normalisation of one channel: `x -> gamma * (x - mean) * inv_std + beta`.
#[derive(Debug, Clone, Copy)]
struct Affine {
    mean: f32,
    inv_std: f32,
    gamma: f32,
    beta: f32,
}

impl Affine {
    fn new(mean: f32, var: f32, epsilon: f64, gamma: f32, beta: f32) -> Self {
        let inv_std = (1.0 / (var as f64 + epsilon).sqrt()) as f32;
        Self {
            mean,
            inv_std,
            gamma,
            beta,
        }
    }

    #[inline(always)]
    fn normalized(&self, x: f32) -> f32 {
        (x - self.mean) * self.inv_std
    }
}

/// `$f(args)` compiled for AVX2 and FMA where the machine has them ([`avx2`]), else as it is.
macro_rules! vectorized {
    ($f:ident $(::<$A:ty>)? ($($arg:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        let value = if super::dense::cpu_supported() {
            // SAFETY: the machine has AVX2 and FMA (checked just now).
            unsafe { avx2::$f $(::<$A>)? ($($arg),*) }
        } else {
            $f $(::<$A>)? ($($arg),*)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let value = $f $(::<$A>)? ($($arg),*);
        value
    }};
}

/// An activation as a type, so that each loop below is compiled for one of them: with the
/// activation a value, the loops branched on it at every element and did not vectorize.
trait Pointwise {
    const ACTIVATION: Activation;
}

struct Linear;
struct Rectified;
struct HSwish;

impl Pointwise for Linear {
    const ACTIVATION: Activation = Activation::Identity;
}

impl Pointwise for Rectified {
    const ACTIVATION: Activation = Activation::Relu;
}

impl Pointwise for HSwish {
    const ACTIVATION: Activation = Activation::HardSwish;
}

/// `$body` with `$A` the [`Pointwise`] type of `$activation`.
macro_rules! with_activation {
    ($activation:expr, $A:ident => $body:expr) => {
        match $activation {
            Activation::Identity => {
                type $A = Linear;
                $body
            }
            Activation::Relu => {
                type $A = Rectified;
                $body
            }
            Activation::HardSwish => {
                type $A = HSwish;
                $body
            }
        }
    };
}

/// Channel `c`'s mean and biased variance.
#[inline(always)]
fn statistics(x: &[f32], s: &Shape, c: usize) -> (f32, f32) {
    let n = s.count();
    let total: f64 = s.planes(x, c).map(|p| sums(p, p, |v, _| (v, 0.0)).0).sum();
    let m = (total / n) as f32;
    let squares: f64 = s
        .planes(x, c)
        .map(|p| sums(p, p, |v, _| ((v - m) * (v - m), 0.0)).0)
        .sum();
    (m, (squares / n) as f32)
}

/// One plane of the forward's output.
#[inline(always)]
fn normalize_plane<A: Pointwise>(y: &mut [f32], x: &[f32], a: &Affine) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = A::ACTIVATION.value(a.gamma * a.normalized(x) + a.beta);
    }
}

/// The gradient before the activation at one element, and the normalized input there.
#[inline(always)]
fn pre_activation<A: Pointwise>(a: &Affine, x: f32, dy: f32) -> (f32, f32) {
    let n = a.normalized(x);
    (dy * A::ACTIVATION.slope(a.gamma * n + a.beta), n)
}

/// The two terms of the backward's sums at one element: the gradient before the activation,
/// and it times the normalized input.
#[inline(always)]
fn gradient_terms<A: Pointwise>(a: &Affine, x: f32, dy: f32) -> (f32, f32) {
    let (dz, n) = pre_activation::<A>(a, x, dy);
    (dz, dz * n)
}

/// Channel `c`'s two sums of the backward: of the gradient before the activation, and of it
/// times the normalized input.
#[inline(always)]
fn gradient_sums<A: Pointwise>(
    x: &[f32],
    dy: &[f32],
    a: &Affine,
    s: &Shape,
    c: usize,
) -> (f64, f64) {
    let (mut sum, mut sum_n) = (0.0, 0.0);
    for (x, dy) in s.planes(x, c).zip(s.planes(dy, c)) {
        let (u, v) = sums(x, dy, |x, dy| gradient_terms::<A>(a, x, dy));
        sum += u;
        sum_n += v;
    }
    (sum, sum_n)
}

/// One plane of the input gradient.
#[inline(always)]
fn input_gradient_plane<A: Pointwise>(
    dx: &mut [f32],
    x: &[f32],
    dy: &[f32],
    a: &Affine,
    (mean_dz, mean_dz_n): (f32, f32),
) {
    let scale = a.gamma * a.inv_std;
    for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
        let (dz, n) = pre_activation::<A>(a, x, dy);
        *dx = scale * (dz - mean_dz - n * mean_dz_n);
    }
}

/// `sum_i f(a[i], b[i])` in eight partial sums, so the loop vectorizes; the two sums of a pair
/// at once.
#[inline(always)]
fn sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut s, mut t) = ([0.0f32; 8], [0.0f32; 8]);
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let (u, v) = f(x[i], y[i]);
            s[i] += u;
            t[i] += v;
        }
    }
    totals((s, t), ra.iter().zip(rb).map(|(&x, &y)| f(x, y)))
}

/// The totals of [`sums`]: its eight partial sums of each kind added in `f64` in lane order,
/// then the pairs past the last whole 8.
#[inline(always)]
fn totals((s, t): ([f32; 8], [f32; 8]), rest: impl Iterator<Item = (f32, f32)>) -> (f64, f64) {
    let (mut s, mut t) = (
        s.iter().map(|&v| v as f64).sum::<f64>(),
        t.iter().map(|&v| v as f64).sum::<f64>(),
    );
    for (u, v) in rest {
        s += u as f64;
        t += v as f64;
    }
    (s, t)
}

/// Forward: `y = activation(batch_norm(x))`, with the batch's `mean` and biased `var` per
/// channel (for the running statistics and the backward).
///
/// # Panics
/// If a slice does not have the shape's length.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    activation: Activation,
    s: &Shape,
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    assert_eq!(x.len(), s.len(), "batch norm: input");
    assert_eq!(y.len(), s.len(), "batch norm: output");
    for v in [gamma.len(), beta.len(), mean.len(), var.len()] {
        assert_eq!(v, s.channels, "batch norm: per-channel values");
    }
    mean.par_iter_mut()
        .zip(var.par_iter_mut())
        .enumerate()
        .for_each(|(c, (mean, var))| (*mean, *var) = vectorized!(statistics(x, s, c)));
    let affine: Vec<Affine> = (0..s.channels)
        .map(|c| Affine::new(mean[c], var[c], epsilon, gamma[c], beta[c]))
        .collect();
    y.par_chunks_mut(s.plane)
        .zip(x.par_chunks(s.plane))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let a = affine[i % s.channels];
            with_activation!(activation, A => vectorized!(normalize_plane::<A>(y, x, &a)))
        });
}

/// Backward of [`forward`]: the gradients of input, `gamma` and `beta` from the output gradient
/// `dy`, with the `mean` and `var` the forward returned.
///
/// # Panics
/// If a slice does not have the shape's length.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    activation: Activation,
    dy: &[f32],
    s: &Shape,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    for v in [x.len(), dy.len(), dx.len()] {
        assert_eq!(v, s.len(), "batch norm backward: tensors");
    }
    for v in [gamma.len(), beta.len(), mean.len(), var.len()] {
        assert_eq!(v, s.channels, "batch norm backward: per-channel values");
    }
    let affine: Vec<Affine> = (0..s.channels)
        .map(|c| Affine::new(mean[c], var[c], epsilon, gamma[c], beta[c]))
        .collect();
    dgamma
        .par_iter_mut()
        .zip(dbeta.par_iter_mut())
        .enumerate()
        .for_each(|(c, (dgamma, dbeta))| {
            let a = affine[c];
            let (sum, sum_n) =
                with_activation!(activation, A => vectorized!(gradient_sums::<A>(x, dy, &a, s, c)));
            (*dbeta, *dgamma) = (sum as f32, sum_n as f32);
        });
    let n = s.count() as f32;
    dx.par_chunks_mut(s.plane)
        .zip(x.par_chunks(s.plane).zip(dy.par_chunks(s.plane)))
        .enumerate()
        .for_each(|(i, (dx, (x, dy)))| {
            let c = i % s.channels;
            let a = affine[c];
            let means = (dbeta[c] / n, dgamma[c] / n);
            with_activation!(activation, A => {
                vectorized!(input_gradient_plane::<A>(dx, x, dy, &a, means))
            })
        });
}

/// The loops above compiled for AVX2 and FMA: they vectorize 8 lanes wide instead of SSE2's
/// 4. The same operations in the same order (Rust never fuses a multiply and an add by
/// itself), so the same results to the bit.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Activation, Affine, Pointwise, Shape};

    #[target_feature(enable = "avx2,fma")]
    pub fn statistics(x: &[f32], s: &Shape, c: usize) -> (f32, f32) {
        super::statistics(x, s, c)
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn normalize_plane<A: Pointwise>(y: &mut [f32], x: &[f32], a: &Affine) {
        super::normalize_plane::<A>(y, x, a)
    }

    /// [`super::gradient_sums`] in explicit vectors: written plainly, the per-element closure
    /// returning a pair kept it from vectorizing. Lane `i` adds the elements `i, i + 8, ...` as
    /// the eight partial sums of [`super::sums`] do, and the totals are taken by the same code.
    #[target_feature(enable = "avx2,fma")]
    pub fn gradient_sums<A: Pointwise>(
        x: &[f32],
        dy: &[f32],
        a: &Affine,
        s: &Shape,
        c: usize,
    ) -> (f64, f64) {
        let (mean, inv_std) = (_mm256_set1_ps(a.mean), _mm256_set1_ps(a.inv_std));
        let (gamma, beta) = (_mm256_set1_ps(a.gamma), _mm256_set1_ps(a.beta));
        let (mut sum, mut sum_n) = (0.0, 0.0);
        for (x, dy) in s.planes(x, c).zip(s.planes(dy, c)) {
            let (mut acc, mut acc_n) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (cx, cdy) = (x.chunks_exact(8), dy.chunks_exact(8));
            let rest = cx.remainder().iter().zip(cdy.remainder());
            for (x, dy) in cx.zip(cdy) {
                // SAFETY: chunks of 8 values, read unaligned.
                let (x, dy) =
                    unsafe { (_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(dy.as_ptr())) };
                let n = _mm256_mul_ps(_mm256_sub_ps(x, mean), inv_std);
                let z = _mm256_add_ps(_mm256_mul_ps(gamma, n), beta);
                let dz = _mm256_mul_ps(dy, slope::<A>(z));
                acc = _mm256_add_ps(acc, dz);
                acc_n = _mm256_add_ps(acc_n, _mm256_mul_ps(dz, n));
            }
            let (mut lanes, mut lanes_n) = ([0.0f32; 8], [0.0f32; 8]);
            // SAFETY: arrays of 8 values, written unaligned.
            unsafe {
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
                _mm256_storeu_ps(lanes_n.as_mut_ptr(), acc_n);
            }
            let (u, v) = super::totals(
                (lanes, lanes_n),
                rest.map(|(&x, &dy)| super::gradient_terms::<A>(a, x, dy)),
            );
            sum += u;
            sum_n += v;
        }
        (sum, sum_n)
    }

    /// [`Activation::slope`] of 8 values: the same comparisons and arithmetic as selects.
    #[target_feature(enable = "avx2,fma")]
    fn slope<A: Pointwise>(z: __m256) -> __m256 {
        let (zero, one) = (_mm256_setzero_ps(), _mm256_set1_ps(1.0));
        match A::ACTIVATION {
            Activation::Identity => one,
            Activation::Relu => _mm256_blendv_ps(zero, one, _mm256_cmp_ps::<_CMP_GT_OQ>(z, zero)),
            Activation::HardSwish => {
                let (three, six) = (_mm256_set1_ps(3.0), _mm256_set1_ps(6.0));
                let twice = _mm256_mul_ps(_mm256_set1_ps(2.0), z);
                let middle = _mm256_div_ps(_mm256_add_ps(twice, three), six);
                let upper = _mm256_blendv_ps(middle, one, _mm256_cmp_ps::<_CMP_GE_OQ>(z, three));
                let lower = _mm256_cmp_ps::<_CMP_LE_OQ>(z, _mm256_set1_ps(-3.0));
                _mm256_blendv_ps(upper, zero, lower)
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn input_gradient_plane<A: Pointwise>(
        dx: &mut [f32],
        x: &[f32],
        dy: &[f32],
        a: &Affine,
        means: (f32, f32),
    ) {
        super::input_gradient_plane::<A>(dx, x, dy, a, means)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test values in [-4, 4): wide enough to cross every kink of the activations, and none
    /// so close to one that a finite difference straddles it.
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 250.0) - 4.0)
            .collect()
    }

    /// The forward in `f64`, element by element, as the definition reads.
    fn reference(x: &[f32], gamma: &[f32], beta: &[f32], act: Activation, s: &Shape) -> Vec<f64> {
        let mut y = vec![0.0; s.len()];
        for c in 0..s.channels {
            let idx: Vec<usize> = (0..s.batch)
                .flat_map(|b| (0..s.plane).map(move |p| (b * s.channels + c) * s.plane + p))
                .collect();
            let n = idx.len() as f64;
            let m = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / n;
            let v = idx.iter().map(|&i| (x[i] as f64 - m).powi(2)).sum::<f64>() / n;
            for &i in &idx {
                let z = gamma[c] as f64 * (x[i] as f64 - m) / (v + 1e-5).sqrt() + beta[c] as f64;
                y[i] = match act {
                    Activation::Identity => z,
                    Activation::Relu => z.max(0.0),
                    Activation::HardSwish => z * (z + 3.0).clamp(0.0, 6.0) / 6.0,
                };
            }
        }
        y
    }

    const SHAPE: Shape = Shape {
        batch: 3,
        channels: 4,
        plane: 37,
    };
    const ACTIVATIONS: [Activation; 3] = [
        Activation::Identity,
        Activation::Relu,
        Activation::HardSwish,
    ];

    fn run(x: &[f32], gamma: &[f32], beta: &[f32], act: Activation) -> Vec<f32> {
        let s = SHAPE;
        let (mut y, mut m, mut v) = (vec![0.0; s.len()], vec![0.0; 4], vec![0.0; 4]);
        forward(x, gamma, beta, 1e-5, act, &s, &mut y, &mut m, &mut v);
        y
    }

    #[test]
    fn forward_is_the_norm_then_the_activation() {
        let s = SHAPE;
        let (x, gamma, beta) = (values(s.len(), 1), values(4, 2), values(4, 3));
        for act in ACTIVATIONS {
            let y = run(&x, &gamma, &beta, act);
            let r = reference(&x, &gamma, &beta, act, &s);
            let worst = y
                .iter()
                .zip(&r)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-4, "{act:?}: off by {worst}");
        }
    }

    /// The loops compiled for AVX2 give the bits the plain ones give (the kernel takes either,
    /// by machine).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx2_loops_give_the_same_bits() {
        if !crate::kernels::dense::cpu_supported() {
            return;
        }
        fn same<A: Pointwise>() {
            let s = Shape {
                batch: 3,
                channels: 2,
                plane: 37,
            };
            let (x, dy) = (values(s.len(), 1), values(s.len(), 2));
            // Normalized values from about -7 to 6: past both kinks of h-swish.
            let a = Affine::new(0.3, 0.5, 1e-5, 1.1, -0.2);
            // [output, input gradient] of one plane, plain and compiled for AVX2.
            let (mut plain, mut vector) = ([[0.0; 37]; 2], [[0.0; 37]; 2]);
            let (x0, dy0, means) = (&x[..37], &dy[..37], (0.1, -0.3));
            normalize_plane::<A>(&mut plain[0], x0, &a);
            input_gradient_plane::<A>(&mut plain[1], x0, dy0, &a, means);
            // SAFETY: the machine has AVX2 and FMA (checked above).
            unsafe {
                assert_eq!(avx2::statistics(&x, &s, 1), statistics(&x, &s, 1));
                assert_eq!(
                    avx2::gradient_sums::<A>(&x, &dy, &a, &s, 1),
                    gradient_sums::<A>(&x, &dy, &a, &s, 1)
                );
                avx2::normalize_plane::<A>(&mut vector[0], x0, &a);
                avx2::input_gradient_plane::<A>(&mut vector[1], x0, dy0, &a, means);
            }
            assert_eq!(plain, vector);
        }
        same::<Linear>();
        same::<Rectified>();
        same::<HSwish>();
    }

    #[test]
    fn gradients_match_finite_differences() {
        // L = <r, y>; each gradient checked against central differences of L in f64.
        let s = SHAPE;
        let (x, gamma, beta) = (values(s.len(), 4), values(4, 5), values(4, 6));
        let r: Vec<f32> = values(s.len(), 7);
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32], act| -> f64 {
            let y = reference(x, gamma, beta, act, &s);
            y.iter().zip(&r).map(|(y, r)| y * *r as f64).sum()
        };
        for act in ACTIVATIONS {
            let (mut y, mut m, mut v) = (vec![0.0; s.len()], vec![0.0; 4], vec![0.0; 4]);
            forward(&x, &gamma, &beta, 1e-5, act, &s, &mut y, &mut m, &mut v);
            let (mut dx, mut dg, mut db) = (vec![0.0; s.len()], vec![0.0; 4], vec![0.0; 4]);
            backward(
                &x, &gamma, &beta, &m, &v, 1e-5, act, &r, &s, &mut dx, &mut dg, &mut db,
            );
            let h = 1e-3;
            let numeric = |set: &dyn Fn(f32) -> f64, at: f32| (set(at + h) - set(at - h)) / 2e-3;
            for i in [0, 5, 40, 77, 110] {
                let at = |v: f32| {
                    let mut x = x.clone();
                    x[i] = v;
                    loss(&x, &gamma, &beta, act)
                };
                let n = numeric(&at, x[i]);
                assert!(
                    (dx[i] as f64 - n).abs() < 2e-2,
                    "{act:?} dx[{i}] {} {n}",
                    dx[i]
                );
            }
            for c in 0..4 {
                let at = |v: f32| {
                    let mut g = gamma.clone();
                    g[c] = v;
                    loss(&x, &g, &beta, act)
                };
                let n = numeric(&at, gamma[c]);
                assert!(
                    (dg[c] as f64 - n).abs() < 2e-2,
                    "{act:?} dgamma[{c}] {} {n}",
                    dg[c]
                );
                let at = |v: f32| {
                    let mut b = beta.clone();
                    b[c] = v;
                    loss(&x, &gamma, &b, act)
                };
                let n = numeric(&at, beta[c]);
                assert!(
                    (db[c] as f64 - n).abs() < 2e-2,
                    "{act:?} dbeta[{c}] {} {n}",
                    db[c]
                );
            }
        }
    }
}
