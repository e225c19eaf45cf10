//! A graph attention layer (Velickovic et al. 2018), one head, on the fully connected keypoint
//! graph: node i attends to every node j with weights softmax_j(LeakyReLU(a_s.z_i + a_d.z_j)).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

#[derive(Config, Debug)]
pub struct GatLayerConfig {
    pub input: usize,
    pub output: usize,
}

#[derive(Module, Debug)]
pub struct GatLayer {
    pub transform: Linear,
    pub attend_source: Linear,
    pub attend_target: Linear,
}

impl GatLayerConfig {
    pub fn init(&self, device: &Device) -> GatLayer {
        GatLayer {
            transform: LinearConfig::new(self.input, self.output)
                .with_bias(false)
                .init(device),
            attend_source: LinearConfig::new(self.output, 1).init(device),
            attend_target: LinearConfig::new(self.output, 1)
                .with_bias(false)
                .init(device),
        }
    }
}

impl GatLayer {
    /// `[B, k, input]` to `[B, k, output]`.
    pub fn forward(&self, nodes: Tensor<3>) -> Tensor<3> {
        let [batch, k, _] = nodes.dims();
        let z = self.transform.forward(nodes);
        let s = self.attend_source.forward(z.clone()); // [B, k, 1]
        let t = self.attend_target.forward(z.clone()).reshape([batch, 1, k]);
        // LeakyReLU(x, 0.2) as relu(x) - 0.2 relu(-x): burn-onnx 0.22 exports no LeakyRelu.
        let x = s + t; // [B, k, k]
        let scores = relu(x.clone()) - relu(x.neg()).mul_scalar(0.2);
        // Softmax over j as exp(x - max) / sum, which the ONNX exporter lowers.
        let (max, _) = scores.clone().max_dim_with_indices(2);
        let e = (scores - max).exp();
        let weights = e.clone() / e.sum_dim(2);
        weights.matmul(z)
    }
}
