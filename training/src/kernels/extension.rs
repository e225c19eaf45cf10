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

use super::activation::Activation;
use super::{dense, depthwise, norm, resample};

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

    /// Bilinear resampling to `[height, width]` with aligned corners (Burn's `interpolate` with
    /// `InterpolateMode::Bilinear` and its default options).
    fn bilinear_resample(x: FloatTensor<Self>, height: usize, width: usize) -> FloatTensor<Self>;

    /// Batch norm with the batch's statistics, then `activation`: the output, and the batch's
    /// mean and biased variance per channel (for the running statistics; not differentiated).
    fn norm_act_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
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

fn norm_shape(x: &FlexTensor) -> norm::Shape {
    let dims = x.layout().shape();
    norm::Shape {
        batch: dims[0],
        channels: dims[1],
        plane: dims[2..].iter().product(),
    }
}

/// `t` as contiguous `f32` values: the norm kernel's input whatever the model's float type.
fn f32_contiguous(t: &FlexTensor) -> FlexTensor {
    use burn::backend::ops::FloatTensorOps;
    use burn::tensor::{DType, FloatDType};
    match t.dtype() {
        DType::F32 => t.to_contiguous(),
        _ => Flex::float_cast(t.clone(), FloatDType::F32).to_contiguous(),
    }
}

/// `values` (`f32`) as a tensor of `dims` in the float type of `like`.
fn tensor_like(values: Vec<f32>, dims: Vec<usize>, like: &FlexTensor) -> FlexTensor {
    use burn::backend::ops::FloatTensorOps;
    use burn::tensor::DType;
    let t = FlexTensor::from_data(TensorData::new(values, dims));
    match like.dtype() {
        DType::F32 => t,
        dtype => Flex::float_cast(t, dtype.into()),
    }
}

/// The `f32` values of a tensor made by [`f32_contiguous`].
fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("f32_contiguous gives contiguous f32 tensors")
}

impl ConvKernelsBackend for Flex {
    fn dense_conv2d(x: FlexTensor, weight: FlexTensor, dilation: usize) -> FlexTensor {
        forward(x, weight, Conv::Dense { dilation })
    }

    fn depthwise_conv2d(x: FlexTensor, weight: FlexTensor, stride: usize) -> FlexTensor {
        forward(x, weight, Conv::Depthwise { stride })
    }

    fn bilinear_resample(x: FlexTensor, height: usize, width: usize) -> FlexTensor {
        resample_forward(x, [height, width])
    }

    fn norm_act_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        activation: Activation,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let s = norm_shape(&x);
        let [xs, g, b] = [&x, &gamma, &beta].map(f32_contiguous);
        let mut y = vec![0.0f32; s.len()];
        let (mut mean, mut var) = (vec![0.0f32; s.channels], vec![0.0f32; s.channels]);
        norm::forward(
            values(&xs),
            values(&g),
            values(&b),
            epsilon,
            activation,
            &s,
            &mut y,
            &mut mean,
            &mut var,
        );
        let n = s.channels;
        (
            tensor_like(y, x.layout().shape().to_vec(), &x),
            tensor_like(mean, vec![n], &x),
            tensor_like(var, vec![n], &x),
        )
    }
}

fn bilinear_options() -> burn::backend::ops::InterpolateOptions {
    burn::backend::ops::InterpolateOptions::new(burn::backend::ops::InterpolateMode::Bilinear)
}

fn resample_shape(x: &FlexTensor, size: [usize; 2]) -> Option<resample::Shape> {
    let [batch, channels, height, width] = dims(x);
    let shape = resample::Shape {
        planes: batch * channels,
        height,
        width,
        out_height: size[0],
        out_width: size[1],
    };
    (shape.input_len() > 0 && shape.output_len() > 0).then_some(shape)
}

fn resample_forward(x: FlexTensor, size: [usize; 2]) -> FlexTensor {
    let [batch, channels, ..] = dims(&x);
    resample_shape(&x, size)
        .and_then(|s| {
            let xc = x.to_contiguous();
            let input = xc.as_slice::<f32>()?;
            let mut out = vec![0.0f32; s.output_len()];
            resample::forward(input, &s, &mut out);
            let dims = [batch, channels, size[0], size[1]];
            Some(FlexTensor::from_data(TensorData::new(out, dims)))
        })
        .unwrap_or_else(|| Flex::interpolate(x, size, bilinear_options()))
}

#[derive(Debug)]
struct ResampleBackward;

impl Backward<Flex, 1> for ResampleBackward {
    /// The input (for its shape and type) and the output size.
    type State = (FlexTensor, [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x, size) = ops.state;
        let Some(node) = node_x else { return };
        let fast = resample_shape(&x, size).and_then(|s| {
            let gc = grad.to_contiguous();
            let g = gc.as_slice::<f32>()?;
            let mut dx = vec![0.0f32; s.input_len()];
            resample::input_grad(g, &s, &mut dx);
            Some(FlexTensor::from_data(TensorData::new(dx, dims(&x))))
        });
        let dx =
            fast.unwrap_or_else(|| Flex::interpolate_backward(x, grad, size, bilinear_options()));
        grads.register::<Flex>(node.id, dx);
    }
}

/// What [`NormBackward`] keeps from the forward: its inputs and the batch statistics.
#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    epsilon: f64,
    activation: Activation,
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let s = norm_shape(&st.x);
        let [x, gamma, beta, mean, var, dy] =
            [&st.x, &st.gamma, &st.beta, &st.mean, &st.var, &dy].map(f32_contiguous);
        let mut dx = vec![0.0f32; s.len()];
        let (mut dgamma, mut dbeta) = (vec![0.0f32; s.channels], vec![0.0f32; s.channels]);
        norm::backward(
            values(&x),
            values(&gamma),
            values(&beta),
            values(&mean),
            values(&var),
            st.epsilon,
            st.activation,
            values(&dy),
            &s,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        );
        let n = s.channels;
        if let Some(node) = node_x {
            let dx = tensor_like(dx, st.x.layout().shape().to_vec(), &st.x);
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor_like(dgamma, vec![n], &st.x));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor_like(dbeta, vec![n], &st.x));
        }
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

    fn bilinear_resample(x: FloatTensor<Self>, height: usize, width: usize) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        let size = [height, width];
        match ResampleBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x.clone(), size), resample_forward(x, size)),
            OpsKind::UnTracked(prep) => prep.finish(resample_forward(x, size)),
        }
    }

    fn norm_act_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Activation,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        use burn::backend::AutodiffBackend;
        let (x, x_node) = x.into_parts();
        let (gamma, gamma_node) = gamma.into_parts();
        let (beta, beta_node) = beta.into_parts();
        let prepared = NormBackward
            .prepare::<C>([x_node, gamma_node, beta_node])
            .compute_bound()
            .stateful();
        let (y, mean, var) =
            Flex::norm_act_train(x.clone(), gamma.clone(), beta.clone(), epsilon, activation);
        // The statistics leave the graph: they only feed the running averages.
        let stats = |t: FlexTensor| Self::from_inner(t);
        match prepared {
            OpsKind::Tracked(prep) => {
                let state = NormState {
                    x,
                    gamma,
                    beta,
                    mean: mean.clone(),
                    var: var.clone(),
                    epsilon,
                    activation,
                };
                (prep.finish(state, y), stats(mean), stats(var))
            }
            OpsKind::UnTracked(prep) => (prep.finish(y), stats(mean), stats(var)),
        }
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
    let [cout, cin, k, _] = weight.dims();
    if on_flex(&x.device()) && k == 1 {
        // A 1x1 convolution is a matrix product per image: Burn's matmul (and its backward, two
        // more matmuls) beat the direct kernel's backward by about a third at these shapes.
        let [b, _, h, w] = x.dims();
        let y = weight
            .reshape([1, cout, cin])
            .matmul(x.reshape([b, cin, h * w]));
        return y.reshape([b, cout, h, w]);
    }
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

/// `x` resampled bilinearly to `size` with aligned corners: Burn's
/// `interpolate(x, InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size(size))`,
/// through the kernel on the flex backend.
pub fn bilinear_resample(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    if on_flex(&x.device()) {
        return Tensor::from_dispatch(<Dispatch as ConvKernelsBackend>::bilinear_resample(
            x.into_dispatch(),
            size[0],
            size[1],
        ));
    }
    burn::tensor::module::interpolate(x, bilinear_options().with_output_size(size))
}

/// Batch norm of `x` with the batch's statistics (training), then `activation`: the output and
/// the batch's mean and biased variance per channel, as Burn's `batch_norm_train` gives them.
/// One operation with its own backward on the flex backend, Burn's operations elsewhere.
pub fn norm_act_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    activation: Activation,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    if on_flex(&x.device()) {
        let (y, mean, var) = <Dispatch as ConvKernelsBackend>::norm_act_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
            activation,
        );
        return (
            Tensor::from_dispatch(y),
            Tensor::from_dispatch(mean),
            Tensor::from_dispatch(var),
        );
    }
    let out = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
    (activation.apply(out.output), out.mean, out.variance)
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
        // 3x3 through the kernels, 1x1 as a matrix product.
        for (cin, k, dilation) in [(8, 3, 1), (16, 3, 3), (3, 3, 1), (8, 1, 1)] {
            let pad = dilation * (k / 2);
            same_as_burn(
                [2, cin, 12, 10],
                [4, cin, k, k],
                ConvOptions::new([1, 1], [pad, pad], [dilation, dilation], 1),
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

    #[test]
    fn norm_and_activation_are_burns_with_their_gradients() {
        let device = Device::flex().autodiff();
        let x = random([3, 5, 6, 7], &device);
        let gamma = Tensor::<1>::random([5], Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<1>::random([5], Distribution::Uniform(-1.0, 1.0), &device);
        for activation in [
            Activation::Identity,
            Activation::Relu,
            Activation::HardSwish,
        ] {
            let run = |fused: bool| {
                let (x, g, b) = (
                    x.clone().require_grad(),
                    gamma.clone().require_grad(),
                    beta.clone().require_grad(),
                );
                let (y, mean, var) = if fused {
                    norm_act_train(x.clone(), g.clone(), b.clone(), 1e-5, activation)
                } else {
                    let out = burn::tensor::module::batch_norm_train(
                        x.clone(),
                        g.clone(),
                        b.clone(),
                        1e-5,
                    );
                    (activation.apply(out.output), out.mean, out.variance)
                };
                let r = (y.clone() * 3.0).sin();
                let grads = (y.clone() * r).sum().backward();
                let flat = |t: Option<Tensor<1>>| t.expect("a gradient").reshape([1, 1, 1, -1]);
                (
                    [
                        y.inner(),
                        x.grad(&grads).expect("dx"),
                        flat(g.grad(&grads)),
                        flat(b.grad(&grads)),
                    ],
                    [mean.inner(), var.inner()],
                )
            };
            let (fused, fused_stats) = run(true);
            let (burn, burn_stats) = run(false);
            for (name, (a, b)) in ["y", "dx", "dgamma", "dbeta"]
                .iter()
                .zip(fused.into_iter().zip(burn))
            {
                let off = worst(a, b);
                assert!(off < 1e-3, "{activation:?} {name}: off by {off}");
            }
            for (a, b) in fused_stats.into_iter().zip(burn_stats) {
                let off: f32 = (a - b).abs().max().into_scalar();
                assert!(off < 1e-4, "{activation:?} statistics: off by {off}");
            }
        }
    }

    #[test]
    fn resampling_is_burns_with_its_gradient() {
        let device = Device::flex().autodiff();
        for (from, to) in [([8, 8], [32, 32]), ([16, 16], [8, 8]), ([5, 7], [9, 4])] {
            let x = random([2, 3, from[0], from[1]], &device);
            let run = |fast: bool| {
                let x = x.clone().require_grad();
                let y = if fast {
                    bilinear_resample(x.clone(), to)
                } else {
                    burn::tensor::module::interpolate(
                        x.clone(),
                        bilinear_options().with_output_size(to),
                    )
                };
                let r = (y.clone() * 5.0).cos();
                let grads = (y.clone() * r).sum().backward();
                (y.inner(), x.grad(&grads).expect("dx"))
            };
            let ((y, dx), (ry, rdx)) = (run(true), run(false));
            assert!(worst(y, ry) < 1e-5, "{from:?} -> {to:?}");
            assert!(worst(dx, rdx) < 1e-4, "{from:?} -> {to:?}: gradient");
        }
    }
}
