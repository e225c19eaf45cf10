//! The fuser: soft-argmax. Each keypoint is the probability-weighted sum of the cells' (value,
//! x, y) and of their features; the (value, x, y) part is lifted to `f` features by a shared
//! linear layer and the two halves are concatenated. No argmax anywhere, so gradients reach the
//! encoder.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::encoder::EncoderOutput;

#[derive(Config, Debug)]
pub struct FuserConfig {
    /// Features per cell `f`.
    #[config(default = 16)]
    pub features: usize,
}

#[derive(Module, Debug)]
pub struct Fuser {
    pub coordinates: Linear,
}

/// The fuser's result for a batch of `B` with `k` keypoints.
#[derive(Debug, Clone)]
pub struct FusedKeypoints {
    /// `[B, k, 3]`: value, x, y of each keypoint (x, y as fractions of the input side).
    pub keypoints: Tensor<3>,
    /// `[B, k, 2f]`: the decoder's input.
    pub fused: Tensor<3>,
}

impl FuserConfig {
    pub fn init(&self, device: &Device) -> Fuser {
        Fuser {
            coordinates: LinearConfig::new(3, self.features).init(device),
        }
    }
}

impl Fuser {
    pub fn forward(&self, encoded: EncoderOutput) -> FusedKeypoints {
        let value = encoded.probabilities.clone().matmul(encoded.values);
        let position = encoded.probabilities.clone().matmul(encoded.grid);
        let keypoints = Tensor::cat(vec![value, position], 2);
        // sum_n p[k, n] * F[f, n] as a broadcast product and a sum: the same as
        // P @ F^T, without the transpose the ONNX exporter cannot lower.
        let [batch, k, cells] = encoded.probabilities.dims();
        let f = encoded.features.dims()[1];
        let features = (encoded.probabilities.reshape([batch, k, 1, cells])
            * encoded.features.reshape([batch, 1, f, cells]))
        .sum_dim(3)
        .reshape([batch, k, f]);
        let lifted = self.coordinates.forward(keypoints.clone());
        FusedKeypoints {
            keypoints,
            fused: Tensor::cat(vec![lifted, features], 2),
        }
    }
}
