//! Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) on batches of maps in `[0, 1]`.
//!
//! Gaussian window of sigma 1.5 (11 taps, as scikit-image's `truncate = 3.5`), K1 = 0.01,
//! K2 = 0.03, data range 1, population (not sample) covariances, averaged over the windows
//! that lie inside the image. `training/tests/ssim.rs` checks it against scikit-image.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

pub const SIGMA: f64 = 1.5;
pub const WINDOW: usize = 11;
const C1: f32 = 0.01 * 0.01;
const C2: f32 = 0.03 * 0.03;

/// The normalized `WINDOW x WINDOW` Gaussian, outer product of two normalized 1-D ones.
pub fn gaussian_window() -> Vec<f32> {
    let r = (WINDOW / 2) as f64;
    let taps: Vec<f64> = (0..WINDOW)
        .map(|i| (-((i as f64 - r).powi(2)) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let sum: f64 = taps.iter().sum();
    let taps: Vec<f64> = taps.iter().map(|t| t / sum).collect();
    taps.iter()
        .flat_map(|a| taps.iter().map(move |b| (a * b) as f32))
        .collect()
}

/// Per-image SSIM of `x` and `y`, `[B, 1, H, W]` each (H, W >= 11): `[B]`.
pub fn ssim(x: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    let device = x.device();
    let window = Tensor::<4>::from_data(
        TensorData::new(gaussian_window(), [1, 1, WINDOW, WINDOW]),
        &device,
    );
    let filter = |t: Tensor<4>| {
        conv2d(
            t,
            window.clone(),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        )
    };
    let mu_x = filter(x.clone());
    let mu_y = filter(y.clone());
    let xx = filter(x.clone() * x.clone()) - mu_x.clone() * mu_x.clone();
    let yy = filter(y.clone() * y.clone()) - mu_y.clone() * mu_y.clone();
    let xy = filter(x * y) - mu_x.clone() * mu_y.clone();
    let numerator = (mu_x.clone() * mu_y.clone() * 2.0 + C1) * (xy * 2.0 + C2);
    let denominator = (mu_x.clone() * mu_x + mu_y.clone() * mu_y + C1) * (xx + yy + C2);
    let map = numerator / denominator;
    let [batch, _, h, w] = map.dims();
    map.reshape([batch, h * w]).mean_dim(1).reshape([batch])
}
