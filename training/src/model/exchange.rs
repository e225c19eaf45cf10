//! RebuildNet's exchange layer (as in HRNet): every resolution branch receives every other
//! branch resampled to its own size, concatenated with itself and mixed by a 3x3 convolution.

use burn::prelude::*;

use super::conv_norm::{ConvNorm, ConvNormConfig};

#[derive(Config, Debug)]
pub struct ExchangeConfig {
    pub channels: usize,
    /// Number of resolution branches.
    pub branches: usize,
}

#[derive(Module, Debug)]
pub struct Exchange {
    /// One mixing convolution per branch, `branches * C -> C`.
    pub mix: Vec<ConvNorm>,
}

impl ExchangeConfig {
    pub fn init(&self, device: &Device) -> Exchange {
        Exchange {
            mix: (0..self.branches)
                .map(|_| {
                    ConvNormConfig::new([self.branches * self.channels, self.channels], 3)
                        .init(device)
                })
                .collect(),
        }
    }
}

impl Exchange {
    /// Branches of the same channel count at any resolutions, in, and the same shapes out.
    pub fn forward(&self, branches: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        assert_eq!(branches.len(), self.mix.len(), "exchange: branch count");
        self.mix
            .iter()
            .zip(&branches)
            .map(|(mix, target)| {
                let [_, _, h, w] = target.dims();
                let gathered = branches
                    .iter()
                    .map(|b| resample(b.clone(), [h, w]))
                    .collect();
                mix.forward(Tensor::cat(gathered, 1))
            })
            .collect()
    }
}

/// Bilinear resampling to `size` with aligned corners (Burn's default for `interpolate`, and
/// `coordinate_transformation_mode = align_corners` in the exported ONNX `Resize`); the identity
/// when the size matches. Through [`crate::kernels`] on the CPU backend.
pub fn resample(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == size {
        return x;
    }
    crate::kernels::extension::bilinear_resample(x, size)
}
