//! Convolution, batch norm and activation: the unit every encoder layer is built of.

use burn::module::RunningState;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

pub use crate::kernels::activation::Activation;

#[derive(Config, Debug)]
pub struct ConvNormConfig {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Square kernel; padding keeps the size at stride 1.
    pub kernel_size: usize,
    #[config(default = 1)]
    pub stride: usize,
    /// `channels[0]` for a depthwise convolution.
    #[config(default = 1)]
    pub groups: usize,
    /// Spacing of the kernel taps; padding grows with it so the size is kept.
    #[config(default = 1)]
    pub dilation: usize,
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

/// Convolution (no bias: the norm has one) + batch norm + activation.
///
/// The batch norm keeps running statistics and uses them outside training, so a frame's
/// output never depends on the other frames of its batch (the reference's norms do; see
/// docs/DESIGN.md).
#[derive(Module, Debug)]
pub struct ConvNorm {
    pub conv: Conv2d,
    pub norm: BatchNorm,
    #[module(skip)]
    pub activation: Activation,
}

impl ConvNormConfig {
    pub fn init(&self, device: &Device) -> ConvNorm {
        let pad = self.dilation * (self.kernel_size / 2);
        ConvNorm {
            conv: Conv2dConfig::new(self.channels, [self.kernel_size; 2])
                .with_stride([self.stride; 2])
                .with_groups(self.groups)
                .with_dilation([self.dilation; 2])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(self.channels[1]).init(device),
            activation: self.activation,
        }
    }
}

impl ConvNorm {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self.convolve(x);
        if z.device().is_autodiff() && self.norm.training.is_enabled() {
            self.norm_act_train(z)
        } else {
            self.activation.apply(self.norm.forward(z))
        }
    }

    /// Norm and activation of a training step as one operation (see
    /// [`crate::kernels::norm`]), the running statistics updated as Burn's `BatchNorm` does.
    fn norm_act_train(&self, z: Tensor<4>) -> Tensor<4> {
        let norm = &self.norm;
        let (y, mean, var) = crate::kernels::extension::norm_act_train(
            z,
            norm.gamma.val(),
            norm.beta.val(),
            norm.epsilon,
            self.activation,
        );
        let device = y.device();
        let momentum = norm.momentum;
        let update = |running: &burn::module::RunningState<Tensor<1>>, batch: Tensor<1>| {
            let old = running.value_sync().to_device(&device);
            let new = old
                .mul_scalar(1.0 - momentum)
                .add(batch.detach().mul_scalar(momentum));
            running.update(new.detach());
        };
        update(&norm.running_mean, mean);
        update(&norm.running_var, var);
        y
    }

    /// This layer with its batch norm's statistics measured on `inputs` (batches of what
    /// reaches it), and what it then gives for them: AdaBN (Li et al. 2016), one layer of
    /// [`super::Encoder::recalibrated`]. The learned weights stay. `inputs` must be on a device
    /// without autodiff.
    pub fn recalibrated(mut self, inputs: Vec<Tensor<4>>) -> (ConvNorm, Vec<Tensor<4>>) {
        let z: Vec<Tensor<4>> = inputs.into_iter().map(|x| self.convolve(x)).collect();
        if let Some((mean, variance)) = channel_statistics(&z) {
            self.norm.running_mean = RunningState::new(mean);
            self.norm.running_var = RunningState::new(variance);
        }
        let out = z
            .into_iter()
            .map(|z| self.activation.apply(self.norm.forward(z)))
            .collect();
        (self, out)
    }

    /// The convolution through the faster kernels of [`crate::kernels`]: dense stride-1 ones
    /// (every decoder layer, the stem, the 1x1s) and depthwise ones (the encoder's blocks);
    /// anything else through Burn. The padding is always `dilation * (k / 2)` here (see
    /// [`ConvNormConfig::init`]).
    fn convolve(&self, x: Tensor<4>) -> Tensor<4> {
        use crate::kernels::extension::{conv2d_same, depthwise_conv2d};
        let c = &self.conv;
        let [k1, k2] = c.kernel_size;
        let channels = c.weight.dims()[0];
        let square = k1 == k2 && c.stride[0] == c.stride[1] && c.dilation[0] == c.dilation[1];
        if !square || c.bias.is_some() {
            return c.forward(x);
        }
        if c.groups == 1 && c.stride[0] == 1 {
            conv2d_same(x, c.weight.val(), c.dilation[0])
        } else if c.groups == channels && c.dilation[0] == 1 && x.dims()[1] == channels {
            depthwise_conv2d(x, c.weight.val(), c.stride[0])
        } else {
            c.forward(x)
        }
    }
}

/// Per channel, the mean and variance of `batches` (`[B, C, H, W]` each) over every batch, row
/// and column ([`crate::moments::column_moments`]).
fn channel_statistics(batches: &[Tensor<4>]) -> Option<(Tensor<1>, Tensor<1>)> {
    crate::moments::column_moments(batches.len(), |i| {
        let [b, c, h, w] = batches[i].dims();
        batches[i]
            .clone()
            .permute([0, 2, 3, 1])
            .reshape([b * h * w, c])
    })
}
