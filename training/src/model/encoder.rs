//! The keypoint encoder: a slim MobileNetV3-Small variant that turns an `S x S` pressure map
//! into `k` spatial probability maps at 1/4 resolution, plus the two cell branches the fuser
//! weights with them.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

use super::conv_norm::{Activation, ConvNorm, ConvNormConfig};
use super::inverted_residual::{InvertedResidual, InvertedResidualConfig};

/// Cells are `CELL x CELL` input pixels: the encoder's two stride-2 stages.
pub const CELL: usize = 4;

#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Side of the square input, a multiple of 4.
    #[config(default = 64)]
    pub input_size: usize,
    /// Keypoints `k`.
    #[config(default = 32)]
    pub keypoints: usize,
    /// Features per cell `f` (the 4x4 stride-4 convolution branch).
    #[config(default = 16)]
    pub features: usize,
}

/// One row of the block table: kernel, expanded channels, output channels, activation, stride.
type Block = (usize, usize, usize, Activation, usize);

/// MobileNetV3-Small's table, cut to two stride-2 stages (outputs at 1/4 resolution) and
/// expanded channels up to 288, ending at 96 channels, as the reference does.
const BLOCKS: [Block; 7] = [
    (3, 16, 16, Activation::Relu, 2),
    (3, 72, 24, Activation::Relu, 2),
    (3, 88, 24, Activation::Relu, 1),
    (5, 96, 40, Activation::HardSwish, 1),
    (5, 240, 40, Activation::HardSwish, 1),
    (5, 120, 48, Activation::HardSwish, 1),
    (5, 288, 96, Activation::HardSwish, 1),
];
const STEM_CHANNELS: usize = 16;

#[derive(Module, Debug)]
pub struct Encoder {
    /// 3x3 stride-1 convolution: the first stage keeps full resolution (mats are small).
    pub stem: ConvNorm,
    pub blocks: Vec<InvertedResidual>,
    /// 1x1 convolution from the last block to the `k` heatmaps.
    pub heatmaps: Conv2d,
    /// 4x4 stride-4 convolution: `f` features per cell.
    pub cell_features: Conv2d,
    pub input_size: usize,
}

/// What the encoder gives the fuser, for a batch of `B` inputs with `N = (S/4)^2` cells.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `[B, k, N]`: each keypoint's probability over cells (rows sum to 1).
    pub probabilities: Tensor<3>,
    /// `[B, N, 1]`: per cell the 4x4 max-pooled pressure.
    pub values: Tensor<3>,
    /// `[1, N, 2]`: the cell centres (x, y) as fractions of the input side, shared by the batch
    /// (broadcast by the fuser's matmul rather than expanded: the ONNX exporter has no Expand).
    pub grid: Tensor<3>,
    /// `[B, f, N]`: per cell features, channel-major as the convolution gives them.
    pub features: Tensor<3>,
}

impl EncoderConfig {
    pub fn init(&self, device: &Device) -> Encoder {
        assert!(
            self.input_size > 0 && self.input_size.is_multiple_of(CELL),
            "input size must be a positive multiple of {CELL}"
        );
        let mut channels = STEM_CHANNELS;
        let blocks = BLOCKS
            .iter()
            .map(|&(kernel, expanded, out, activation, stride)| {
                let block = InvertedResidualConfig::new(channels, expanded, out, kernel)
                    .with_stride(stride)
                    .with_activation(activation)
                    .init(device);
                channels = out;
                block
            })
            .collect();
        Encoder {
            stem: ConvNormConfig::new([1, STEM_CHANNELS], 3)
                .with_activation(Activation::HardSwish)
                .init(device),
            blocks,
            heatmaps: Conv2dConfig::new([channels, self.keypoints], [1, 1]).init(device),
            cell_features: Conv2dConfig::new([1, self.features], [CELL, CELL])
                .with_stride([CELL, CELL])
                .with_padding(PaddingConfig2d::Valid)
                .init(device),
            input_size: self.input_size,
        }
    }
}

impl Encoder {
    /// `input`: `[B, 1, S, S]`, preprocessed by `spmkd_core::preprocess`.
    pub fn forward(&self, input: Tensor<4>) -> EncoderOutput {
        let [batch, _, size, _] = input.dims();
        let side = size / CELL;
        let cells = side * side;

        let mut x = self.stem.forward(input.clone());
        for block in &self.blocks {
            x = block.forward(x);
        }
        let logits = self.heatmaps.forward(x);
        let keypoints = logits.dims()[1];
        let probabilities = spatial_softmax(logits.reshape([batch, keypoints, cells]));

        let pooled = max_pool2d(
            input.clone(),
            MaxPoolOptions::new([CELL, CELL]).with_stride([CELL, CELL]),
        );
        let values = pooled.reshape([batch, cells, 1]);
        let grid = cell_centres(side, &input.device());
        let features = self.cell_features.forward(input);
        let f = features.dims()[1];
        let features = features.reshape([batch, f, cells]);

        EncoderOutput {
            probabilities,
            values,
            grid,
            features,
        }
    }
}

impl Encoder {
    /// The encoder with every batch norm's statistics measured afresh on `inputs` (batches of
    /// preprocessed frames, `[B, 1, S, S]`, on a device without autodiff): AdaBN (Li et al. 2016,
    /// "Revisiting batch normalization for practical domain adaptation"), the frames of a new
    /// mat, no labels. Layer by layer: each norm's statistics are those of its input as the
    /// layers before it, already recalibrated, give it. The learned weights stay.
    pub fn recalibrated(mut self, inputs: Vec<Tensor<4>>) -> Encoder {
        if inputs.is_empty() {
            return self;
        }
        let (stem, mut x) = self.stem.recalibrated(inputs);
        self.stem = stem;
        let blocks = std::mem::take(&mut self.blocks);
        for block in blocks {
            let (block, y) = block.recalibrated(x);
            self.blocks.push(block);
            x = y;
        }
        self
    }
}

/// Softmax over the last axis, spelled with the operations the ONNX exporter lowers (it has no
/// Softmax): `exp(x - max) / sum`.
fn spatial_softmax(logits: Tensor<3>) -> Tensor<3> {
    let (max, _) = logits.clone().max_dim_with_indices(2);
    let e = (logits - max).exp();
    let sum = e.clone().sum_dim(2);
    e / sum
}

/// `[1, N, 2]`: the (x, y) centre of each cell of a `side x side` grid, row-major, as fractions
/// of the side (so keypoints come out in `[0, 1]` whatever the input size).
fn cell_centres(side: usize, device: &Device) -> Tensor<3> {
    let data: Vec<f32> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = (i % side, i / side);
            [
                (x as f32 + 0.5) / side as f32,
                (y as f32 + 0.5) / side as f32,
            ]
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [1, side * side, 2]), device)
}
