//! GraphSAGE with the mean aggregator (Hamilton et al. 2017) on the fully connected keypoint
//! graph: each node keeps its own transform beside the transformed mean of the others, so
//! nodes stay distinct (unlike GCN on a complete graph).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

#[derive(Config, Debug)]
pub struct SageLayerConfig {
    pub input: usize,
    pub output: usize,
}

#[derive(Module, Debug)]
pub struct SageLayer {
    pub own: Linear,
    pub neighbours: Linear,
}

impl SageLayerConfig {
    pub fn init(&self, device: &Device) -> SageLayer {
        SageLayer {
            own: LinearConfig::new(self.input, self.output).init(device),
            neighbours: LinearConfig::new(self.input, self.output)
                .with_bias(false)
                .init(device),
        }
    }
}

impl SageLayer {
    /// `[B, k, input]` to `[B, k, output]`.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<3> {
        // A sum divided by k rather than mean_dim: burn-onnx 0.22 exports no mean reduction.
        let k = nodes.dims()[1] as f32;
        let mean = nodes.clone().sum_dim(1).div_scalar(k);
        self.own.forward(nodes) + self.neighbours.forward(mean)
    }
}
