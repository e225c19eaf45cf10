//! An ensemble of GraphSAGE networks as one network whose layers run every member at once: the
//! form in which an ensemble is exported.
//!
//! A posture model runs once a frame on 32 nodes, so ONNX Runtime's time for it goes as much to
//! launching its ~60 small operators as to multiply-adds; an ensemble exported member by member
//! launches each of them N times (docs/RESULTS.md, "Ensembles"). Here member `m`'s weights are
//! slice `m` of a `[1, M, in, out]` tensor and the nodes travel as `[B, M, k, d]`, so every layer
//! is one batched `MatMul` for all members, whatever M. Each batch norm (inference: an affine
//! map per channel) is folded into the weights and bias before it, and the keypoint-index
//! embedding into that bias. The logits are the members' mean, as [`GnnEnsemble::forward`].

use burn::module::Param;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::classifier::{Gnn, GraphLayer, standardized};
use super::ensemble::GnnEnsemble;

/// One GraphSAGE layer of every member with its batch norm folded in.
#[derive(Module, Debug)]
pub struct StackedLayer {
    /// `[1, M, input, output]`: each node's own transform.
    pub own: Param<Tensor<4>>,
    /// `[1, M, input, output]`: the transform of the nodes' mean. `None` in the first layer
    /// of a network with graph norm: its input is standardized over the nodes, so their mean is
    /// zero and so is this term.
    pub neighbours: Option<Param<Tensor<4>>>,
    /// `[1, M, 1, output]`, or `[1, M, k, output]` where the keypoint-index embedding is in it.
    pub bias: Param<Tensor<4>>,
}

#[derive(Module, Debug)]
pub struct StackedSage {
    pub layers: Vec<StackedLayer>,
    /// `[1, M, hidden, 1]` and `[1, M, 1, 1]`: attention pooling's score.
    pub pool: Param<Tensor<4>>,
    pub pool_bias: Param<Tensor<4>>,
    /// `[1, M, hidden, classes]` and `[1, M, 1, classes]`.
    pub head: Param<Tensor<4>>,
    pub head_bias: Param<Tensor<4>>,
    #[module(skip)]
    pub graph_norm: bool,
}

/// A batch norm in inference as `x * scale + shift`, per channel.
fn affine(norm: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let scale = norm.gamma.val() / (norm.running_var.value() + norm.epsilon as f32).sqrt();
    let shift = norm.beta.val() - norm.running_mean.value() * scale.clone();
    (scale, shift)
}

/// `[rows, d]` per member to `[1, M, rows, d]`.
fn stacked(per_member: Vec<Tensor<2>>) -> Param<Tensor<4>> {
    Param::from_tensor(Tensor::<2>::stack::<3>(per_member, 0).unsqueeze_dim(0))
}

impl StackedSage {
    /// The members of `ensemble` stacked, or `None` when they are not all GraphSAGE networks
    /// of one shape (an ensemble of other layers is exported member by member) or there is
    /// only one (Burn computes a `[.., 1, K] x [1, K, N]` product through a transpose, which
    /// burn-onnx 0.22 cannot export; a single network needs no stacking anyway).
    pub fn new(ensemble: &GnnEnsemble) -> Option<Self> {
        let members = &ensemble.members;
        let first = members.first()?;
        if members.len() < 2 {
            return None;
        }
        let alike = |m: &Gnn| {
            m.graph_norm == first.graph_norm
                && m.identity.is_some() == first.identity.is_some()
                && m.layers.len() == first.layers.len()
                && m.layers.iter().zip(&first.layers).all(|pair| match pair {
                    (GraphLayer::Sage(a), GraphLayer::Sage(b)) => {
                        a.own.weight.dims() == b.own.weight.dims()
                    }
                    _ => false,
                })
        };
        if !members.iter().all(alike) {
            return None;
        }
        let mut layers = Vec::with_capacity(first.layers.len());
        for i in 0..first.layers.len() {
            let (mut own, mut neighbours, mut bias) = (Vec::new(), Vec::new(), Vec::new());
            for m in members {
                let GraphLayer::Sage(layer) = &m.layers[i] else {
                    return None;
                };
                let (scale, shift) = affine(&m.norms[i]);
                let scale = scale.unsqueeze_dim::<2>(0); // [1, out]
                own.push(layer.own.weight.val() * scale.clone());
                neighbours.push(layer.neighbours.weight.val() * scale.clone());
                let mut b: Tensor<2> = bias_of(&layer.own).unsqueeze_dim(0);
                if let (0, Some(identity)) = (i, &m.identity) {
                    let [_, k, d] = identity.dims();
                    b = b + identity.val().reshape([k, d]); // [k, out]
                }
                bias.push(b * scale + shift.unsqueeze_dim::<2>(0));
            }
            layers.push(StackedLayer {
                own: stacked(own),
                neighbours: (i > 0 || !first.graph_norm).then(|| stacked(neighbours)),
                bias: stacked(bias),
            });
        }
        let row = |t: Tensor<1>| t.unsqueeze_dim::<2>(0);
        Some(Self {
            layers,
            pool: stacked(members.iter().map(|m| m.pool.weight.val()).collect()),
            pool_bias: stacked(members.iter().map(|m| row(bias_of(&m.pool))).collect()),
            head: stacked(members.iter().map(|m| m.head.weight.val()).collect()),
            head_bias: stacked(members.iter().map(|m| row(bias_of(&m.head))).collect()),
            graph_norm: first.graph_norm,
        })
    }

    /// Members.
    pub fn members(&self) -> usize {
        self.head.dims()[1]
    }

    /// `[B, k, input]` node features to `[B, classes]` logits: the members' mean.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<2> {
        let [batch, k, input] = nodes.dims();
        let nodes = if self.graph_norm {
            standardized(nodes)
        } else {
            nodes
        };
        // [B, 1, k, input]: MatMul broadcasts it over the members.
        let mut x: Tensor<4> = nodes.reshape([batch, 1, k, input]);
        for layer in &self.layers {
            let mut y = x.clone().matmul(layer.own.val()) + layer.bias.val();
            if let Some(neighbours) = &layer.neighbours {
                // A sum divided by k: burn-onnx 0.22 exports no mean reduction.
                let mean = x.sum_dim(2).div_scalar(k as f32);
                y = y + mean.matmul(neighbours.val());
            }
            x = relu(y);
        }
        let scores = x.clone().matmul(self.pool.val()) + self.pool_bias.val(); // [B, M, k, 1]
        let (max, _) = scores.clone().max_dim_with_indices(2);
        let e = (scores - max).exp();
        let weights = e.clone() / e.sum_dim(2);
        let pooled = (weights * x).sum_dim(2); // [B, M, 1, d]
        let logits = pooled.matmul(self.head.val()) + self.head_bias.val(); // [B, M, 1, C]
        let classes = logits.dims()[3];
        (logits.sum_dim(1) / self.members() as f32).reshape([batch, classes])
    }
}

/// A linear layer's bias, zeros if it was made without one.
fn bias_of(linear: &Linear) -> Tensor<1> {
    linear.bias.as_ref().map_or_else(
        || Tensor::zeros([linear.weight.dims()[1]], &linear.weight.device()),
        |b| b.val(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::classifier::{GnnConfig, GraphKind};

    fn nodes(device: &Device) -> Tensor<3> {
        let values: Vec<f32> = (0..2 * 5 * 6).map(|i| (i as f32 * 0.73).sin()).collect();
        Tensor::from_data(TensorData::new(values, [2, 5, 6]), device)
    }

    /// Members whose batch norms carry statistics of their own (not the identity of a fresh
    /// network), so that folding them is tested.
    fn members(identity: bool, graph_norm: bool, device: &Device) -> Vec<Gnn> {
        let batches = vec![nodes(device) * 3.0 + 1.0];
        (0..3)
            .map(|_| {
                GnnConfig::new(GraphKind::Sage, 6)
                    .with_hidden(vec![8, 4])
                    .with_graph_norm(graph_norm)
                    .with_identity(identity.then_some(5))
                    .init(device)
                    .recalibrated(&batches)
            })
            .collect()
    }

    #[test]
    fn stacked_members_read_as_the_ensemble() {
        let device = Device::flex();
        for (identity, graph_norm) in [(false, true), (true, true), (true, false)] {
            let ensemble = GnnEnsemble::new(members(identity, graph_norm, &device));
            let stacked = StackedSage::new(&ensemble).expect("GraphSAGE members stack");
            assert_eq!(stacked.members(), 3);
            // The first layer's nodes are standardized, their mean zero: no term for it.
            assert_eq!(stacked.layers[0].neighbours.is_some(), !graph_norm);
            stacked
                .forward(nodes(&device))
                .into_data()
                .assert_approx_eq::<f32>(
                    &ensemble.forward(nodes(&device)).into_data(),
                    burn::tensor::Tolerance::absolute(1e-5),
                );
        }
    }

    #[test]
    fn members_of_other_layers_or_shapes_do_not_stack() {
        let device = Device::flex();
        let gcn = GnnConfig::new(GraphKind::Gcn, 6)
            .with_hidden(vec![8, 4])
            .init(&device);
        assert!(StackedSage::new(&GnnEnsemble::new(vec![gcn.clone(), gcn])).is_none());
        let single = members(false, true, &device).remove(0);
        assert!(StackedSage::new(&GnnEnsemble::new(vec![single])).is_none());
        let narrow = GnnConfig::new(GraphKind::Sage, 6)
            .with_hidden(vec![4, 4])
            .with_graph_norm(true)
            .init(&device);
        let mut mixed = members(false, true, &device);
        mixed.push(narrow);
        assert!(StackedSage::new(&GnnEnsemble::new(mixed)).is_none());
    }
}
