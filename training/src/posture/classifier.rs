//! The posture classifiers: a graph network over keypoints (GCN, GAT or GraphSAGE layers, as
//! the reference: 4 layers 128-256-64-32 with batch norm, attention pooling, a linear head),
//! and the raw-image baseline, a small CNN over the same preprocessed frames.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::gat::{GatLayer, GatLayerConfig};
use super::gcn::{GcnLayer, GcnLayerConfig};
use super::sage::{SageLayer, SageLayerConfig};

/// Which graph layer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum GraphKind {
    Gcn,
    Gat,
    Sage,
}

impl GraphKind {
    pub fn name(self) -> &'static str {
        match self {
            GraphKind::Gcn => "GCN",
            GraphKind::Gat => "GAT",
            GraphKind::Sage => "GraphSAGE",
        }
    }
}

#[derive(Module, Debug)]
pub enum GraphLayer {
    Gcn(GcnLayer),
    Gat(GatLayer),
    Sage(SageLayer),
}

impl GraphLayer {
    fn forward(&self, nodes: Tensor<3>) -> Tensor<3> {
        match self {
            GraphLayer::Gcn(l) => l.forward(nodes),
            GraphLayer::Gat(l) => l.forward(nodes),
            GraphLayer::Sage(l) => l.forward(nodes),
        }
    }
}

#[derive(Config, Debug)]
pub struct GnnConfig {
    pub kind: GraphKind,
    /// Features per node.
    pub input: usize,
    #[config(default = "vec![128, 256, 64, 32]")]
    pub hidden: Vec<usize>,
    #[config(default = 3)]
    pub classes: usize,
    /// `Some(k)`: a learned embedding of each keypoint's index is added after the first layer.
    /// SPMKD keypoint i tends to follow the same body part from frame to frame, which the
    /// permutation-invariant graph layers cannot see on their own. `None` for sources without
    /// a stable order.
    #[config(default = "None")]
    pub identity: Option<usize>,
}

#[derive(Module, Debug)]
pub struct Gnn {
    /// `[1, k, hidden[0]]`, see [`GnnConfig::identity`].
    pub identity: Option<Param<Tensor<3>>>,
    pub layers: Vec<GraphLayer>,
    pub norms: Vec<BatchNorm>,
    /// Attention pooling: a score per node, softmax over nodes, weighted sum.
    pub pool: Linear,
    pub head: Linear,
}

impl GnnConfig {
    pub fn init(&self, device: &Device) -> Gnn {
        let mut layers = Vec::new();
        let mut norms = Vec::new();
        let mut input = self.input;
        for &output in &self.hidden {
            layers.push(match self.kind {
                GraphKind::Gcn => GraphLayer::Gcn(GcnLayerConfig::new(input, output).init(device)),
                GraphKind::Gat => GraphLayer::Gat(GatLayerConfig::new(input, output).init(device)),
                GraphKind::Sage => {
                    GraphLayer::Sage(SageLayerConfig::new(input, output).init(device))
                }
            });
            norms.push(BatchNormConfig::new(output).init(device));
            input = output;
        }
        let identity = self.identity.map(|k| {
            Initializer::Normal {
                mean: 0.0,
                std: 0.1,
            }
            .init(
                [1, k, self.hidden.first().copied().unwrap_or(self.input)],
                device,
            )
        });
        Gnn {
            identity,
            layers,
            norms,
            pool: LinearConfig::new(input, 1).init(device),
            head: LinearConfig::new(input, self.classes).init(device),
        }
    }
}

impl Gnn {
    /// `[B, k, input]` node features to `[B, classes]` logits.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<2> {
        let [batch, k, _] = nodes.dims();
        let mut x = nodes;
        for (i, (layer, norm)) in self.layers.iter().zip(&self.norms).enumerate() {
            let mut y = layer.forward(x);
            if let (0, Some(identity)) = (i, &self.identity) {
                y = y + identity.val();
            }
            let d = y.dims()[2];
            // Batch norm over every node of the batch: [B * k, d] is [N, C] to BatchNorm.
            let y = norm
                .forward(y.reshape([batch * k, d]))
                .reshape([batch, k, d]);
            x = relu(y);
        }
        let d = x.dims()[2];
        let scores = self.pool.forward(x.clone()); // [B, k, 1]
        let (max, _) = scores.clone().max_dim_with_indices(1);
        let e = (scores - max).exp();
        let weights = e.clone() / e.sum_dim(1);
        let pooled = (weights * x).sum_dim(1).reshape([batch, d]);
        self.head.forward(pooled)
    }
}

#[derive(Config, Debug)]
pub struct CnnConfig {
    #[config(default = "vec![16, 32, 64]")]
    pub channels: Vec<usize>,
    #[config(default = 3)]
    pub classes: usize,
}

#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: Conv2d,
    pub norm: BatchNorm,
}

/// The raw-image baseline: 3x3 conv blocks with 2x2 max pooling, global average, linear.
#[derive(Module, Debug)]
pub struct Cnn {
    pub blocks: Vec<ConvBlock>,
    pub pool: MaxPool2d,
    pub global: AdaptiveAvgPool2d,
    pub head: Linear,
}

impl CnnConfig {
    pub fn init(&self, device: &Device) -> Cnn {
        let mut blocks = Vec::new();
        let mut input = 1;
        for &c in &self.channels {
            blocks.push(ConvBlock {
                conv: Conv2dConfig::new([input, c], [3, 3])
                    .with_padding(PaddingConfig2d::Same)
                    .init(device),
                norm: BatchNormConfig::new(c).init(device),
            });
            input = c;
        }
        Cnn {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            global: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(input, self.classes).init(device),
        }
    }
}

impl Cnn {
    /// `[B, 1, S, S]` frames to `[B, classes]` logits.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for block in &self.blocks {
            x = self
                .pool
                .forward(relu(block.norm.forward(block.conv.forward(x))));
        }
        let [batch, c, _, _] = x.dims();
        self.head
            .forward(self.global.forward(x).reshape([batch, c]))
    }

    /// Parameters and multiply-accumulates per frame at input side `size`.
    pub fn macs(&self, size: usize) -> u64 {
        let mut side = size as u64;
        let mut input = 1u64;
        let mut total = 0;
        for block in &self.blocks {
            let c = block.norm.gamma.dims()[0] as u64;
            total += side * side * c * input * 9;
            side /= 2;
            input = c;
        }
        total + input * self.head.weight.dims()[1] as u64
    }
}
