//! Several posture graph networks fitted alike from different seeds, read as one.
//!
//! A posture fit on experiment-i is a fit to ten people on one mat; which of the many networks
//! that fit them equally well comes out depends on the seed, and on a mat none of them saw two
//! seeds disagree on a few frames in ten (docs/RESULTS.md, "Ensembles"). The mean of their
//! logits keeps what they agree on. It is one ONNX graph, `[1, k, nodes]` nodes to
//! `[1, classes]` logits like a single network, so `spmkdposture` needs nothing new; GraphSAGE
//! members are exported stacked, every layer of all members one operator
//! ([`super::stacked::StackedSage`]).

use burn::prelude::*;

use super::classifier::Gnn;

#[derive(Module, Debug)]
pub struct GnnEnsemble {
    pub members: Vec<Gnn>,
}

impl GnnEnsemble {
    /// # Panics
    /// If `members` is empty (a programming error: the number of members is checked where the
    /// user gives it).
    pub fn new(members: Vec<Gnn>) -> Self {
        assert!(!members.is_empty(), "an ensemble needs a member");
        Self { members }
    }

    /// `[B, k, input]` node features to `[B, classes]` logits: the members' mean.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<2> {
        let n = self.members.len();
        let sum = self
            .members
            .iter()
            .map(|m| m.forward(nodes.clone()))
            .reduce(|a, b| a + b)
            .expect("an ensemble has members");
        sum / n as f32
    }

    /// Every member with its batch norms recalibrated on `batches` ([`Gnn::recalibrated`]).
    pub fn recalibrated(self, batches: &[Tensor<3>]) -> Self {
        Self {
            members: self
                .members
                .into_iter()
                .map(|m| m.recalibrated(batches))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::classifier::{GnnConfig, GraphKind};

    #[test]
    fn an_ensemble_reads_the_mean_of_its_members_logits() {
        let device = Device::flex();
        let members: Vec<Gnn> = (0..3)
            .map(|_| {
                GnnConfig::new(GraphKind::Sage, 6)
                    .with_hidden(vec![8, 4])
                    .with_graph_norm(true)
                    .init(&device)
            })
            .collect();
        let nodes = Tensor::<3>::from_floats(
            [[
                [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                [0.9, 0.1, 0.4, 0.2, 0.3, 0.8],
                [0.5, 0.7, 0.2, 0.6, 0.1, 0.3],
            ]],
            &device,
        );
        let mean = members
            .iter()
            .map(|m| m.forward(nodes.clone()))
            .reduce(|a, b| a + b)
            .unwrap()
            / 3.0;
        let ensemble = GnnEnsemble::new(members);
        ensemble
            .forward(nodes)
            .into_data()
            .assert_approx_eq::<f32>(&mean.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }
}
