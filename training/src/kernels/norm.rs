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
//! Statistics are those of Burn's `batch_norm_train`: the mean and the biased variance over
//! batch, height and width. Each channel's sums are taken plane by plane in a fixed order (eight
//! partial sums within a plane, the planes added in `f64`), so results do not depend on threads.

use rayon::prelude::*;

use crate::model::conv_norm::Activation;

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
    let (mut s, mut t) = (
        s.iter().map(|&v| v as f64).sum::<f64>(),
        t.iter().map(|&v| v as f64).sum::<f64>(),
    );
    for (&x, &y) in ra.iter().zip(rb) {
        let (u, v) = f(x, y);
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
    let n = s.count();
    mean.par_iter_mut()
        .zip(var.par_iter_mut())
        .enumerate()
        .for_each(|(c, (mean, var))| {
            let total: f64 = s.planes(x, c).map(|p| sums(p, p, |v, _| (v, 0.0)).0).sum();
            let m = (total / n) as f32;
            let squares: f64 = s
                .planes(x, c)
                .map(|p| sums(p, p, |v, _| ((v - m) * (v - m), 0.0)).0)
                .sum();
            (*mean, *var) = (m, (squares / n) as f32);
        });
    let affine: Vec<Affine> = (0..s.channels)
        .map(|c| Affine::new(mean[c], var[c], epsilon, gamma[c], beta[c]))
        .collect();
    y.par_chunks_mut(s.plane)
        .zip(x.par_chunks(s.plane))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let a = affine[i % s.channels];
            for (y, &x) in y.iter_mut().zip(x) {
                *y = activation.value(a.gamma * a.normalized(x) + a.beta);
            }
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
    // The gradient before the activation, at one element.
    let pre = move |a: &Affine, x: f32, dy: f32| {
        let n = a.normalized(x);
        (dy * activation.slope(a.gamma * n + a.beta), n)
    };
    dgamma
        .par_iter_mut()
        .zip(dbeta.par_iter_mut())
        .enumerate()
        .for_each(|(c, (dgamma, dbeta))| {
            let a = affine[c];
            let (mut sum, mut sum_n) = (0.0, 0.0);
            for (x, dy) in s.planes(x, c).zip(s.planes(dy, c)) {
                let (u, v) = sums(x, dy, |x, dy| {
                    let (dz, n) = pre(&a, x, dy);
                    (dz, dz * n)
                });
                sum += u;
                sum_n += v;
            }
            (*dbeta, *dgamma) = (sum as f32, sum_n as f32);
        });
    let n = s.count() as f32;
    dx.par_chunks_mut(s.plane)
        .zip(x.par_chunks(s.plane).zip(dy.par_chunks(s.plane)))
        .enumerate()
        .for_each(|(i, (dx, (x, dy)))| {
            let c = i % s.channels;
            let a = affine[c];
            let (mean_dz, mean_dz_n) = (dbeta[c] / n, dgamma[c] / n);
            let scale = a.gamma * a.inv_std;
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                let (dz, n) = pre(&a, x, dy);
                *dx = scale * (dz - mean_dz - n * mean_dz_n);
            }
        });
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
