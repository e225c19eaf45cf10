//! Parameters and multiply-accumulates (MACs) of the networks, counted from their weights.
//!
//! A convolution costs its weight count per output pixel (`C_out * C_in / groups * k * k`), a
//! linear layer its weight count.
//! Batch norms (folded into the convolutions at inference), activations, pooling, softmax and
//! resampling are not counted, as is usual for FLOP tables; FLOPs = 2 x MACs.

use burn::nn::Linear;
use burn::nn::conv::Conv2d;

use super::conv_norm::ConvNorm;
use super::decoder::Decoder;
use super::encoder::{CELL, Encoder};

fn conv(c: &Conv2d, out_pixels: usize) -> u64 {
    (c.weight.shape().num_elements() * out_pixels) as u64
}

fn conv_norm(c: &ConvNorm, out_pixels: usize) -> u64 {
    conv(&c.conv, out_pixels)
}

fn linear(l: &Linear) -> u64 {
    l.weight.shape().num_elements() as u64
}

impl Encoder {
    /// MACs of one `S x S` frame through the encoder (and its two cell branches).
    pub fn macs(&self) -> u64 {
        let s = self.input_size;
        let mut side = s;
        let mut total = conv_norm(&self.stem, s * s);
        for block in &self.blocks {
            if let Some(expand) = &block.expand {
                total += conv_norm(expand, side * side);
            }
            side /= block.depthwise.conv.stride[0];
            total += conv_norm(&block.depthwise, side * side);
            total += conv_norm(&block.project, side * side);
        }
        let cells = (s / CELL) * (s / CELL);
        total + conv(&self.heatmaps, cells) + conv(&self.cell_features, cells)
    }
}

impl Decoder {
    /// MACs of rebuilding one `S x S` map from fused keypoints.
    pub fn macs(&self) -> u64 {
        let mut side = self.base;
        let mut total = linear(&self.fc) + conv_norm(&self.widen, side * side);
        let mut sides = vec![side];
        for (stage, expand) in self.expand.iter().enumerate() {
            total += expand
                .branches
                .iter()
                .map(|b| conv_norm(b, side * side))
                .sum::<u64>();
            side *= 2;
            total += conv_norm(&expand.upsample, side * side);
            sides.push(side);
            if let Some(exchange) = self.exchange.get(stage) {
                total += exchange
                    .mix
                    .iter()
                    .zip(&sides)
                    .map(|(m, &s)| conv_norm(m, s * s))
                    .sum::<u64>();
            }
        }
        total + conv(&self.head, side * side)
    }
}
