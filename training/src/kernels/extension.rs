//! The kernels as Burn operations: `#[backend_extension]` for the flex backend, with
//! handwritten backward passes for `Autodiff<Flex>`. Shapes the kernels do not take, and every
//! other backend (the ONNX exporter's capture backend among them), run Burn's own convolution
//! and its backward: the same mathematics.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::prelude::*;

use super::{dense, depthwise};

#[backend_extension(Flex, Autodiff)]
pub trait ConvKernelsBackend: Backend {
    /// `conv2d` at stride 1, groups 1, padding `dilation * (k / 2)`, no bias.
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self>;

    /// `conv2d` with groups = channels (weight `[c, 1, k, k]`), padding `k / 2`, no bias.
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;
}

/// Which convolution, with what it needs besides its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    Dense { dilation: usize },
    Depthwise { stride: usize },
}

impl Conv {
    /// Burn's options for the same convolution, for the fallbacks.
    fn options(self, weight: &FlexTensor) -> ConvOptions<2> {
        let [channels, _, k, _] = dims(weight);
        match self {
            Conv::Dense { dilation } => {
                let pad = dilation * (k / 2);
                ConvOptions::new([1, 1], [pad, pad], [dilation, dilation], 1)
            }
            Conv::Depthwise { stride } => {
                ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], channels)
            }
        }
    }
}

fn dims(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

fn dense_shape(x: &FlexTensor, weight: &FlexTensor, dilation: usize) -> Option<dense::Shape> {
    let ([batch, cin, height, width], [cout, wcin, k1, k2]) = (dims(x), dims(weight));
    (k1 == k2 && wcin == cin).then_some(dense::Shape {
        batch,
        cin,
        cout,
        height,
        width,
        kernel: k1,
        dilation,
    })
}

fn depthwise_shape(x: &FlexTensor, weight: &FlexTensor, stride: usize) -> Option<depthwise::Shape> {
    let ([batch, channels, height, width], [c, one, k1, k2]) = (dims(x), dims(weight));
    let shape = depthwise::Shape {
        batch,
        channels,
        height,
        width,
        kernel: k1,
        stride,
    };
    (c == channels && one == 1 && k1 == k2 && depthwise::supported(&shape)).then_some(shape)
}

/// Runs `kernel` on the f32 values of two tensors into a fresh `dims` tensor; `None` when one
/// is not f32 (the caller then falls back).
fn run(
    inputs: [&FlexTensor; 2],
    dims: [usize; 4],
    kernel: impl FnOnce(&[f32], &[f32], &mut [f32]),
) -> Option<FlexTensor> {
    let (a, b) = (inputs[0].to_contiguous(), inputs[1].to_contiguous());
    let mut out = vec![0.0f32; dims.iter().product()];
    kernel(a.as_slice::<f32>()?, b.as_slice::<f32>()?, &mut out);
    Some(FlexTensor::from_data(TensorData::new(out, dims)))
}

fn forward(x: FlexTensor, weight: FlexTensor, conv: Conv) -> FlexTensor {
    let fast = match conv {
        Conv::Dense { dilation } => dense_shape(&x, &weight, dilation)
            .filter(|s| dense::supported(s).forward)
            .and_then(|s| {
                let out = [s.batch, s.cout, s.height, s.width];
                run([&x, &weight], out, |x, w, o| dense::forward(x, w, &s, o))
            }),
        Conv::Depthwise { stride } => depthwise_shape(&x, &weight, stride).and_then(|s| {
            let (ho, wo) = s.out();
            let out = [s.batch, s.channels, ho, wo];
            run([&x, &weight], out, |x, w, o| {
                depthwise::forward(x, w, &s, o)
            })
        }),
    };
    fast.unwrap_or_else(|| {
        let options = conv.options(&weight);
        Flex::conv2d(x, weight, None, options)
    })
}

/// The input gradient, by a kernel or Burn's backward.
fn input_grad(x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor, conv: Conv) -> FlexTensor {
    let fast = match conv {
        Conv::Dense { dilation } => dense_shape(x, weight, dilation)
            .filter(|s| dense::supported(s).input_grad)
            .and_then(|s| {
                let dx = [s.batch, s.cin, s.height, s.width];
                run([grad, weight], dx, |g, w, dx| {
                    dense::input_grad(g, w, &s, dx)
                })
            }),
        Conv::Depthwise { stride } => depthwise_shape(x, weight, stride).and_then(|s| {
            let dx = [s.batch, s.channels, s.height, s.width];
            run([grad, weight], dx, |g, w, dx| {
                depthwise::input_grad(g, w, &s, dx)
            })
        }),
    };
    fast.unwrap_or_else(|| {
        let options = conv.options(weight);
        Flex::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options)
    })
}

/// The weight gradient, by a kernel or Burn's backward.
fn weight_grad(x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor, conv: Conv) -> FlexTensor {
    let fast = match conv {
        Conv::Dense { dilation } => dense_shape(x, weight, dilation)
            .filter(|s| dense::supported(s).weight_grad)
            .and_then(|s| {
                let dw = [s.cout, s.cin, s.kernel, s.kernel];
                run([x, grad], dw, |x, g, dw| dense::weight_grad(x, g, &s, dw))
            }),
        Conv::Depthwise { stride } => depthwise_shape(x, weight, stride).and_then(|s| {
            let dw = [s.channels, 1, s.kernel, s.kernel];
            run([x, grad], dw, |x, g, dw| {
                depthwise::weight_grad(x, g, &s, dw)
            })
        }),
    };
    fast.unwrap_or_else(|| {
        let options = conv.options(weight);
        Flex::conv2d_weight_backward(x.clone(), weight.clone(), grad.clone(), options)
    })
}

impl ConvKernelsBackend for Flex {
    fn dense_conv2d(x: FlexTensor, weight: FlexTensor, dilation: usize) -> FlexTensor {
        forward(x, weight, Conv::Dense { dilation })
    }

    fn depthwise_conv2d(x: FlexTensor, weight: FlexTensor, stride: usize) -> FlexTensor {
        forward(x, weight, Conv::Depthwise { stride })
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    /// The input, the weight and which convolution.
    type State = (FlexTensor, FlexTensor, Conv);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x, weight, conv) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, input_grad(&x, &weight, &grad, conv));
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, weight_grad(&x, &weight, &grad, conv));
        }
    }
}

/// The convolution on autodiff tensors: recorded with [`ConvBackward`] when either input is
/// tracked.
fn tracked<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    conv: Conv,
) -> FloatTensor<Autodiff<Flex, C>> {
    let (x, x_node) = x.into_parts();
    let (weight, weight_node) = weight.into_parts();
    match ConvBackward
        .prepare::<C>([x_node, weight_node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = (x.clone(), weight.clone(), conv);
            prep.finish(state, forward(x, weight, conv))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x, weight, conv)),
    }
}

impl<C: CheckpointStrategy> ConvKernelsBackend for Autodiff<Flex, C> {
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        tracked::<C>(x, weight, Conv::Dense { dilation })
    }

    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        tracked::<C>(x, weight, Conv::Depthwise { stride })
    }
}

/// Whether the kernels are on (see [`super::ENV`]) and `device` runs on the flex backend (with
/// or without autodiff): the only one the kernels are written for.
fn on_flex(device: &Device) -> bool {
    super::enabled()
        && matches!(
            device.as_dispatch().clone().inner(),
            DispatchDevice::Flex(_)
        )
}

/// `conv2d(x, weight)` at stride 1, groups 1, padding `dilation * (k / 2)`, no bias: through the
/// kernels on the flex backend, through Burn's `conv2d` elsewhere.
pub fn conv2d_same(x: Tensor<4>, weight: Tensor<4>, dilation: usize) -> Tensor<4> {
    if on_flex(&x.device()) {
        return Tensor::from_dispatch(<Dispatch as ConvKernelsBackend>::dense_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            dilation,
        ));
    }
    let pad = dilation * (weight.dims()[2] / 2);
    burn::tensor::module::conv2d(
        x,
        weight,
        None,
        burn::tensor::ops::ConvOptions::new([1, 1], [pad, pad], [dilation, dilation], 1),
    )
}

/// The depthwise `conv2d(x, weight)` (groups = channels, weight `[c, 1, k, k]`) at `stride`,
/// padding `k / 2`, no bias: through the kernels on the flex backend, through Burn elsewhere.
pub fn depthwise_conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize) -> Tensor<4> {
    if on_flex(&x.device()) {
        return Tensor::from_dispatch(<Dispatch as ConvKernelsBackend>::depthwise_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            stride,
        ));
    }
    let [channels, _, k, _] = weight.dims();
    burn::tensor::module::conv2d(
        x,
        weight,
        None,
        burn::tensor::ops::ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], channels),
    )
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    use super::*;

    fn random(dims: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::random(dims, Distribution::Uniform(-1.0, 1.0), device)
    }

    fn worst(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Output, input gradient and weight gradient of `fast` and of Burn's `conv2d` with
    /// `options`, on the same tensors, agree.
    fn same_as_burn(
        x: [usize; 4],
        w: [usize; 4],
        options: ConvOptions<2>,
        fast: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    ) {
        let device = Device::flex().autodiff();
        let (x, w) = (random(x, &device), random(w, &device));
        let run = |conv: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| {
            let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
            let y = conv(x.clone(), w.clone());
            // A fixed weighting of the output, so every output element has its own gradient.
            let r = Tensor::<1, Int>::arange(0..y.shape().num_elements() as i64, &device)
                .float()
                .reshape(y.dims())
                .cos();
            let grads = (y.clone() * r).sum().backward();
            let (dx, dw) = (x.grad(&grads), w.grad(&grads));
            (y.inner(), dx.expect("dx"), dw.expect("dw"))
        };
        let (y, dx, dw) = run(&fast);
        let (ry, rdx, rdw) = run(&|x, w| conv2d(x, w, None, options.clone()));
        assert!(worst(y, ry) < 1e-4);
        assert!(worst(dx, rdx) < 1e-4);
        assert!(worst(dw, rdw) < 1e-3);
    }

    #[test]
    fn dense_gradients_reach_the_right_tensors() {
        for (cin, dilation) in [(8, 1), (16, 3), (3, 1)] {
            same_as_burn(
                [2, cin, 12, 10],
                [4, cin, 3, 3],
                ConvOptions::new([1, 1], [dilation, dilation], [dilation, dilation], 1),
                |x, w| conv2d_same(x, w, dilation),
            );
        }
    }

    #[test]
    fn depthwise_gradients_reach_the_right_tensors() {
        for (k, stride) in [(3, 2), (5, 1)] {
            same_as_burn(
                [2, 6, 16, 12],
                [6, 1, k, k],
                ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], 6),
                |x, w| depthwise_conv2d(x, w, stride),
            );
        }
    }
}
