//! MobileNetV3's inverted residual block (without squeeze-excitation, which buys little on
//! one-channel pressure maps and costs a global pooling per block).

use burn::prelude::*;

use super::conv_norm::{Activation, ConvNorm, ConvNormConfig};

#[derive(Config, Debug)]
pub struct InvertedResidualConfig {
    pub in_channels: usize,
    pub expanded: usize,
    pub out_channels: usize,
    pub kernel_size: usize,
    #[config(default = 1)]
    pub stride: usize,
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

/// 1x1 expansion, depthwise k x k (the stride lives here), linear 1x1 projection, and a
/// residual connection when the shape is kept.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub expand: Option<ConvNorm>,
    pub depthwise: ConvNorm,
    pub project: ConvNorm,
    pub residual: bool,
}

impl InvertedResidualConfig {
    pub fn init(&self, device: &Device) -> InvertedResidual {
        let expand = (self.expanded != self.in_channels).then(|| {
            ConvNormConfig::new([self.in_channels, self.expanded], 1)
                .with_activation(self.activation)
                .init(device)
        });
        InvertedResidual {
            expand,
            depthwise: ConvNormConfig::new([self.expanded, self.expanded], self.kernel_size)
                .with_stride(self.stride)
                .with_groups(self.expanded)
                .with_activation(self.activation)
                .init(device),
            project: ConvNormConfig::new([self.expanded, self.out_channels], 1)
                .with_activation(Activation::Identity)
                .init(device),
            residual: self.stride == 1 && self.in_channels == self.out_channels,
        }
    }
}

impl InvertedResidual {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = match &self.expand {
            Some(expand) => expand.forward(x.clone()),
            None => x.clone(),
        };
        let y = self.project.forward(self.depthwise.forward(y));
        if self.residual { y + x } else { y }
    }

    /// The block with its batch norms measured on `inputs`, layer after layer
    /// ([`ConvNorm::recalibrated`]), and its outputs for them.
    pub fn recalibrated(self, inputs: Vec<Tensor<4>>) -> (InvertedResidual, Vec<Tensor<4>>) {
        let (expand, y) = match self.expand {
            Some(expand) => {
                let (expand, y) = expand.recalibrated(inputs.clone());
                (Some(expand), y)
            }
            None => (None, inputs.clone()),
        };
        let (depthwise, y) = self.depthwise.recalibrated(y);
        let (project, y) = self.project.recalibrated(y);
        let out = if self.residual {
            y.into_iter().zip(inputs).map(|(y, x)| y + x).collect()
        } else {
            y
        };
        let block = InvertedResidual {
            expand,
            depthwise,
            project,
            residual: self.residual,
        };
        (block, out)
    }
}
