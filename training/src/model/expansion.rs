//! RebuildNet's expansion layer: three parallel 3x3 convolutions with dilations 1, 3 and 5
//! (receptive fields of 3, 7 and 11 cells), concatenated, then a transposed convolution that
//! doubles the resolution.

use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::conv_norm::{ConvNorm, ConvNormConfig};

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
    pub upsample: ConvTranspose2d,
    pub norm: BatchNorm,
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
            // Kernel 4, stride 2, padding 1: exactly twice the size, no checkerboard overlap gaps.
            upsample: ConvTranspose2dConfig::new([3 * c, c], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(c).init(device),
        }
    }
}

impl Expansion {
    /// `[B, C, H, W]` to `[B, C, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let parallel = self.branches.iter().map(|b| b.forward(x.clone())).collect();
        relu(
            self.norm
                .forward(self.upsample.forward(Tensor::cat(parallel, 1))),
        )
    }
}
