//! The non-linearities after a norm: one definition for the model (on tensors) and for the
//! fused CPU kernels (on values, with their slopes), kept with the kernels so that they need
//! nothing of the model.

use burn::prelude::*;
use burn::tensor::activation::relu;

/// The non-linearity after the norm.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum Activation {
    /// Linear (the projection of an inverted residual).
    Identity,
    Relu,
    /// MobileNetV3's h-swish.
    HardSwish,
}

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Identity => x,
            Activation::Relu => relu(x),
            // x * relu6(x + 3) / 6 with relu6(y) = relu(y) - relu(y - 6): the ONNX exporter has
            // neither HardSigmoid nor Clip, but has Relu.
            Activation::HardSwish => {
                let gate = relu(x.clone() + 3.0) - relu(x.clone() - 3.0);
                x * gate / 6.0
            }
        }
    }

    /// The activation of one value (the fused kernels' forward; the same function as
    /// [`Activation::apply`]).
    #[inline(always)]
    pub fn value(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        }
    }

    /// Its derivative at `x` (at a kink, one of the two one-sided slopes; relu's is 0 at 0, as
    /// in Burn).
    #[inline(always)]
    pub fn slope(self, x: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::HardSwish => {
                if x <= -3.0 {
                    0.0
                } else if x >= 3.0 {
                    1.0
                } else {
                    (2.0 * x + 3.0) / 6.0
                }
            }
        }
    }
}
