//! The posture classifiers: a graph network over keypoints (GCN, GAT or GraphSAGE layers, as
//! the reference: 4 layers 128-256-64-32 with batch norm, attention pooling, a linear head),
//! and the raw-image baseline, a small CNN over the same preprocessed frames.

use burn::module::{Param, RunningState};
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
    /// Standardize each node feature over the graph's nodes before the first layer (subtract
    /// its mean over the `k` nodes, divide by their standard deviation): what is left is how
    /// the keypoints differ from each other, not where the body lies, how large it is, or the
    /// gain and offset of a mat's pressure and of the encoder features on it. Part of the
    /// network, so it is exported with it and `spmkdposture` needs nothing new.
    #[config(default = false)]
    pub graph_norm: bool,
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
    /// See [`GnnConfig::graph_norm`].
    #[module(skip)]
    pub graph_norm: bool,
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
            graph_norm: self.graph_norm,
        }
    }
}

impl Gnn {
    /// `[B, k, input]` node features to `[B, classes]` logits.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<2> {
        self.head.forward(self.embed(nodes))
    }

    /// `[B, k, input]` node features to `[B, d]`: the pooled graph the head reads.
    pub fn embed(&self, nodes: Tensor<3>) -> Tensor<2> {
        let batch = nodes.dims()[0];
        let mut x = self.standardized(nodes);
        for i in 0..self.layers.len() {
            x = self.normalized(i, self.mixed(i, x));
        }
        let d = x.dims()[2];
        let scores = self.pool.forward(x.clone()); // [B, k, 1]
        let (max, _) = scores.clone().max_dim_with_indices(1);
        let e = (scores - max).exp();
        let weights = e.clone() / e.sum_dim(1);
        (weights * x).sum_dim(1).reshape([batch, d])
    }

    /// The nodes as the first layer sees them ([`GnnConfig::graph_norm`]).
    fn standardized(&self, nodes: Tensor<3>) -> Tensor<3> {
        if self.graph_norm {
            standardized(nodes)
        } else {
            nodes
        }
    }

    /// Layer `i` before its batch norm: the graph layer, and after the first the keypoint
    /// index embedding.
    fn mixed(&self, i: usize, x: Tensor<3>) -> Tensor<3> {
        let y = self.layers[i].forward(x);
        match (i, &self.identity) {
            (0, Some(identity)) => y + identity.val(),
            _ => y,
        }
    }

    /// Batch norm `i` over every node of the batch (`[B * k, d]` is `[N, C]` to `BatchNorm`),
    /// then ReLU.
    fn normalized(&self, i: usize, y: Tensor<3>) -> Tensor<3> {
        let [batch, k, d] = y.dims();
        relu(
            self.norms[i]
                .forward(y.reshape([batch * k, d]))
                .reshape([batch, k, d]),
        )
    }

    /// The network with every batch norm's statistics measured afresh on `batches` (AdaBN, Li
    /// et al. 2016): the graphs of a new mat, no labels. The learned weights stay; only the
    /// normalization follows the new mat's distribution of node features, layer by layer (each
    /// layer's statistics are measured through the layers before it, already recalibrated).
    /// `batches` must be on a device without autodiff.
    pub fn recalibrated(mut self, batches: &[Tensor<3>]) -> Gnn {
        if batches.is_empty() {
            return self;
        }
        for i in 0..self.layers.len() {
            let rows = |nodes: &Tensor<3>| -> Tensor<2> {
                let mut x = self.standardized(nodes.clone());
                for j in 0..i {
                    x = self.normalized(j, self.mixed(j, x));
                }
                let y = self.mixed(i, x);
                let [batch, k, d] = y.dims();
                y.reshape([batch * k, d])
            };
            let Some((mean, variance)) =
                crate::moments::column_moments(batches.len(), |b| rows(&batches[b]))
            else {
                return self;
            };
            self.norms[i].running_mean = RunningState::new(mean);
            self.norms[i].running_var = RunningState::new(variance);
        }
        self
    }
}

/// `[B, k, features]` with each feature standardized over the graph's `k` nodes
/// ([`GnnConfig::graph_norm`]).
pub(super) fn standardized(nodes: Tensor<3>) -> Tensor<3> {
    // Sums over the nodes divided by k: the ONNX exporter has no ReduceMean.
    let k = nodes.dims()[1] as f32;
    let deviation = nodes.clone() - nodes.sum_dim(1) / k;
    let variance = (deviation.clone() * deviation.clone()).sum_dim(1) / k;
    deviation / (variance + 1e-5).sqrt()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-channel mean and variance of `[N, d]` rows.
    fn moments(rows: &Tensor<2>) -> (Vec<f32>, Vec<f32>) {
        let n = rows.dims()[0] as f32;
        let mean = rows.clone().sum_dim(0) / n;
        let deviation = rows.clone() - mean.clone();
        let var = (deviation.clone() * deviation).sum_dim(0) / n;
        let v = |t: Tensor<2>| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        };
        (v(mean), v(var))
    }

    #[test]
    fn graph_norm_ignores_where_the_body_lies_and_the_mats_gain() {
        let device = Device::flex();
        device.seed(4);
        let nodes = Tensor::<3>::random(
            [2, 5, 6],
            burn::tensor::Distribution::Uniform(0.0, 1.0),
            &device,
        );
        // Every feature shifted and scaled by its own positive factor: another position on
        // the mat, another gain.
        let gain =
            Tensor::<1>::from_floats([2.0, 0.5, 3.0, 1.5, 4.0, 0.25], &device).reshape([1, 1, 6]);
        let moved = nodes.clone() * gain + 0.7;
        let gnn = |graph_norm: bool| {
            GnnConfig::new(GraphKind::Sage, 6)
                .with_hidden(vec![8, 4])
                .with_graph_norm(graph_norm)
                .init(&device)
        };
        let normed = gnn(true);
        normed
            .forward(nodes.clone())
            .into_data()
            .assert_approx_eq::<f32>(
                &normed.forward(moved.clone()).into_data(),
                burn::tensor::Tolerance::absolute(1e-3),
            );
        // Without it the first layer already sees another graph. (Compared before the ReLUs:
        // a random init can zero every unit of the last layer, and then any two graphs give
        // the head's bias alone, which said nothing about graph norm.)
        let plain = gnn(false);
        let first = |x: Tensor<3>| plain.mixed(0, plain.standardized(x)).into_data();
        assert_ne!(
            first(nodes),
            first(moved),
            "without graph norm the moved nodes read differently"
        );
    }

    #[test]
    fn recalibrated_batch_norms_standardize_the_new_data_at_every_layer() {
        let device = Device::flex();
        device.seed(3);
        let gnn = GnnConfig::new(GraphKind::Sage, 6)
            .with_hidden(vec![8, 4])
            .with_identity(Some(5))
            .with_graph_norm(true)
            .init(&device);
        // "Another mat": node features far from the N(0, 1) the fresh statistics expect.
        let batches: Vec<Tensor<3>> = (0..3)
            .map(|_| {
                Tensor::<3>::random(
                    [7, 5, 6],
                    burn::tensor::Distribution::Uniform(2.0, 9.0),
                    &device,
                )
            })
            .collect();
        let stale = gnn.norms[0].running_mean.value().into_data();
        let gnn = gnn.recalibrated(&batches);
        assert_ne!(gnn.norms[0].running_mean.value().into_data(), stale);
        // With gamma 1 and beta 0 (as initialized), each batch norm's output over all the data
        // it was recalibrated on has mean 0 and variance 1 per channel (up to epsilon).
        let mut xs: Vec<Tensor<3>> = batches.into_iter().map(|x| gnn.standardized(x)).collect();
        for i in 0..gnn.layers.len() {
            let rows: Vec<Tensor<2>> = xs
                .iter()
                .map(|x| {
                    let y = gnn.mixed(i, x.clone());
                    let [b, k, d] = y.dims();
                    gnn.norms[i].forward(y.reshape([b * k, d]))
                })
                .collect();
            let (mean, var) = moments(&Tensor::cat(rows, 0));
            for (m, v) in mean.iter().zip(&var) {
                assert!(m.abs() < 1e-3, "layer {i}: mean {m}");
                assert!((v - 1.0).abs() < 1e-2, "layer {i}: variance {v}");
            }
            xs = xs
                .into_iter()
                .map(|x| gnn.normalized(i, gnn.mixed(i, x)))
                .collect();
        }
    }
}
