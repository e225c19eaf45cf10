//! A graph convolution (Kipf & Welling 2017) on the fully connected keypoint graph with self
//! loops, as the reference builds it: the normalized adjacency is `1/k` everywhere, so every
//! node receives the mean of all nodes, transformed.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

#[derive(Config, Debug)]
pub struct GcnLayerConfig {
    pub input: usize,
    pub output: usize,
}

#[derive(Module, Debug)]
pub struct GcnLayer {
    pub linear: Linear,
}

impl GcnLayerConfig {
    pub fn init(&self, device: &Device) -> GcnLayer {
        GcnLayer {
            linear: LinearConfig::new(self.input, self.output).init(device),
        }
    }
}

impl GcnLayer {
    /// `[B, k, input]` to `[B, k, output]`.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<3> {
        let [batch, k, _] = nodes.dims();
        // A sum divided by k rather than mean_dim: burn-onnx 0.22 exports no mean reduction.
        let mean = nodes.sum_dim(1).div_scalar(k as f32);
        let out = self.linear.forward(mean);
        let d = out.dims()[2];
        // Every node gets the same aggregate: a broadcast add to zeros keeps [B, k, d].
        Tensor::zeros([batch, k, d], &out.device()) + out
    }
}
