//! Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) on batches of maps in `[0, 1]`.
//!
//! The window and constants are spmkd-core's ([`spmkd_core::ssim`]), so the training loss and
//! the plugin's reconstruction quality are the same measure. `training/tests/ssim.rs` checks
//! this tensor form against scikit-image.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use spmkd_core::ssim::{C1, C2, WINDOW, gaussian_window};

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
