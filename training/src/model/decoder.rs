//! RebuildNet, the decoder: from the fused keypoints back to the full `S x S` pressure map.
//!
//! ```text
//! fused [B, k, 2f] --FC--> [B, c0, S/4, S/4] --1x1--> b0 [B, C, S/4, S/4]
//!   expansion: b0 -> b1 (S/2)        exchange {b0, b1}
//!   expansion: b1 -> b2 (S)          exchange {b0, b1, b2}
//!   head: 1x1 conv on b2 -> [B, out, S, S]
//! ```
//!
//! The head is the only layer CRWT replaces between its phases (2 classes, then 1 value).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::conv_norm::{ConvNorm, ConvNormConfig};
use super::exchange::{Exchange, ExchangeConfig};
use super::expansion::{Expansion, ExpansionConfig};

#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Side `S` of the map to rebuild, a multiple of 4.
    pub input_size: usize,
    /// Keypoints `k`.
    pub keypoints: usize,
    /// Features `f` per half of a fused keypoint (the fused vector has `2f` per keypoint).
    pub features: usize,
    /// Channels `C` of every decoder branch.
    #[config(default = 16)]
    pub width: usize,
    /// Channels `c0` the fully connected layer writes at 1/4 resolution (widened to `C` by a
    /// 1x1 convolution). The FC layer holds most of the decoder's weights; a narrow `c0` keeps
    /// the shipped decoder a few MB.
    #[config(default = 4)]
    pub fc_channels: usize,
    /// 2 for CRWT phase 1 (pressure / no pressure logits), 1 for phase 2 (the map).
    #[config(default = 2)]
    pub out_channels: usize,
    /// `false`: the "no dilation" ablation.
    #[config(default = true)]
    pub dilation: bool,
    /// `false`: the "no exchange" ablation (branches never meet).
    #[config(default = true)]
    pub exchange: bool,
}

#[derive(Module, Debug)]
pub struct Decoder {
    pub fc: Linear,
    pub widen: ConvNorm,
    pub expand: Vec<Expansion>,
    /// Empty in the "no exchange" ablation.
    pub exchange: Vec<Exchange>,
    pub head: Conv2d,
    pub width: usize,
    pub fc_channels: usize,
    pub base: usize,
}

impl DecoderConfig {
    pub fn init(&self, device: &Device) -> Decoder {
        assert!(
            self.input_size.is_multiple_of(4),
            "input size must be a multiple of 4"
        );
        let base = self.input_size / 4;
        let c = self.width;
        let expansion = ExpansionConfig::new(c).with_dilation(self.dilation);
        Decoder {
            fc: LinearConfig::new(
                2 * self.features * self.keypoints,
                self.fc_channels * base * base,
            )
            .init(device),
            widen: ConvNormConfig::new([self.fc_channels, c], 1).init(device),
            fc_channels: self.fc_channels,
            expand: (0..2).map(|_| expansion.init(device)).collect(),
            exchange: if self.exchange {
                vec![
                    ExchangeConfig::new(c, 2).init(device),
                    ExchangeConfig::new(c, 3).init(device),
                ]
            } else {
                Vec::new()
            },
            head: self.head(device),
            width: c,
            base,
        }
    }

    /// A fresh head with this config's `out_channels` (what CRWT phase 2 puts on).
    pub fn head(&self, device: &Device) -> Conv2d {
        Conv2dConfig::new([self.width, self.out_channels], [1, 1]).init(device)
    }
}

impl Decoder {
    /// `fused`: `[B, k, 2f]` from the fuser; returns `[B, out, S, S]` (logits or map, before
    /// any final activation).
    pub fn forward(&self, fused: Tensor<3>) -> Tensor<4> {
        let [batch, k, f2] = fused.dims();
        let b0 = relu(self.fc.forward(fused.reshape([batch, k * f2]))).reshape([
            batch,
            self.fc_channels,
            self.base,
            self.base,
        ]);
        let b0 = self.widen.forward(b0);
        let mut branches = vec![b0];
        for (stage, expand) in self.expand.iter().enumerate() {
            let last = branches.last().expect("at least one branch").clone();
            branches.push(expand.forward(last));
            if let Some(exchange) = self.exchange.get(stage) {
                branches = exchange.forward(branches);
            }
        }
        let full = branches.pop().expect("the full-resolution branch");
        self.head.forward(full)
    }
}
