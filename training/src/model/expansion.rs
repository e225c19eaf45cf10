//! RebuildNet's expansion layer: three parallel 3x3 convolutions with dilations 1, 3 and 5
//! (receptive fields of 3, 7 and 11 cells), concatenated, then a x2 upsampling.
//!
//! The reference upsamples with a transposed convolution; here it is a bilinear x2 resize
//! followed by a 3x3 convolution (the same parameters' role, and no checkerboard artifacts),
//! because burn-onnx 0.22 cannot export ConvTranspose and the decoder must run in the plugin.

use burn::prelude::*;

use super::conv_norm::{ConvNorm, ConvNormConfig};
use super::exchange::resample;

/// The dilations of the three parallel convolutions.
pub const DILATIONS: [usize; 3] = [1, 3, 5];

#[derive(Config, Debug)]
pub struct ExpansionConfig {
    pub channels: usize,
    /// `false` is the "no dilation" ablation: all three convolutions use dilation 1.
    #[config(default = true)]
    pub dilation: bool,
}

#[derive(Module, Debug)]
pub struct Expansion {
    pub branches: Vec<ConvNorm>,
    /// 3x3 convolution `3C -> C` after the x2 resize.
    pub upsample: ConvNorm,
}

impl ExpansionConfig {
    pub fn init(&self, device: &Device) -> Expansion {
        let c = self.channels;
        Expansion {
            branches: DILATIONS
                .iter()
                .map(|&d| {
                    ConvNormConfig::new([c, c], 3)
                        .with_dilation(if self.dilation { d } else { 1 })
                        .init(device)
                })
                .collect(),
            upsample: ConvNormConfig::new([3 * c, c], 3).init(device),
        }
    }
}

impl Expansion {
    /// `[B, C, H, W]` to `[B, C, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let parallel = self.branches.iter().map(|b| b.forward(x.clone())).collect();
        self.upsample
            .forward(resample(Tensor::cat(parallel, 1), [2 * h, 2 * w]))
    }
}
