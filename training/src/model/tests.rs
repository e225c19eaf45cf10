//! Shapes and gradient flow of the encoder and fuser.

use burn::prelude::*;
use burn::tensor::Distribution;

use super::*;

fn input(batch: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::random(
        [batch, 1, size, size],
        Distribution::Uniform(0.0, 1.0),
        device,
    )
}

#[test]
fn encoder_and_fuser_shapes() {
    let device = Device::flex();
    let encoder = EncoderConfig::new()
        .with_input_size(64)
        .with_keypoints(32)
        .init(&device);
    let fuser = FuserConfig::new().with_features(16).init(&device);
    let out = encoder.forward(input(2, 64, &device));
    assert_eq!(out.probabilities.dims(), [2, 32, 256]);
    assert_eq!(out.values.dims(), [2, 256, 1]);
    assert_eq!(out.grid.dims(), [1, 256, 2]);
    assert_eq!(out.features.dims(), [2, 16, 256]);
    // Each keypoint's probabilities sum to one.
    let sums: Vec<f32> = out
        .probabilities
        .clone()
        .sum_dim(2)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "{sums:?}");
    let fused = fuser.forward(out);
    assert_eq!(fused.keypoints.dims(), [2, 32, 3]);
    assert_eq!(fused.fused.dims(), [2, 32, 32]);
    // Keypoint coordinates are weighted means of cell centres: inside the input.
    let kp: Vec<f32> = fused.keypoints.into_data().try_to_vec::<f32>().unwrap();
    assert!(kp.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn gradients_reach_the_encoder_through_the_fuser() {
    let device = Device::flex().autodiff();
    let encoder = EncoderConfig::new().init(&device);
    let fuser = FuserConfig::new().init(&device);
    let fused = fuser.forward(encoder.forward(input(2, 64, &device)));
    let grads = fused.fused.powi_scalar(2).sum().backward();
    for (name, grad) in [
        ("stem", encoder.stem.conv.weight.grad(&grads)),
        ("heatmaps", encoder.heatmaps.weight.grad(&grads)),
        ("cell features", encoder.cell_features.weight.grad(&grads)),
    ] {
        let grad = grad.unwrap_or_else(|| panic!("no gradient at the {name}"));
        let norm: f32 = grad.powi_scalar(2).sum().into_scalar();
        assert!(norm > 0.0, "zero gradient at the {name}");
    }
}

#[test]
fn encoder_size_is_tens_of_thousands_of_parameters() {
    let device = Device::flex();
    let params = EncoderConfig::new()
        .with_keypoints(128)
        .init(&device)
        .num_params();
    // The reference counts 138,400 at k = 128, with squeeze-excitation this variant leaves out.
    assert!((50_000..150_000).contains(&params), "{params}");
    eprintln!("encoder parameters at k = 128: {params}");
}

#[test]
fn a_frames_keypoints_do_not_depend_on_its_batch() {
    // Outside training the norms use running statistics: frame `a` gives the same output
    // whatever it is batched with (the reference's batch-statistics norms fail this).
    let device = Device::flex();
    let encoder = EncoderConfig::new().init(&device);
    let a = input(1, 64, &device);
    let with_b = Tensor::cat(vec![a.clone(), input(1, 64, &device)], 0);
    let with_c = Tensor::cat(vec![a.clone(), input(1, 64, &device) * 3.0], 0);
    let first = |x: Tensor<4>| -> Vec<f32> {
        let p = encoder.forward(x).probabilities;
        let [_, k, n] = p.dims();
        p.slice(s![0..1, 0..k, 0..n])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (alone, b, c) = (first(a), first(with_b), first(with_c));
    for ((x, y), z) in alone.iter().zip(&b).zip(&c) {
        assert!((x - y).abs() < 1e-6 && (x - z).abs() < 1e-6);
    }
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn efd_shapes_and_ablations() {
    let device = Device::flex();
    for (dilation, exchange) in [(true, true), (false, true), (true, false)] {
        let config = EfdConfig::new()
            .with_dilation(dilation)
            .with_exchange(exchange);
        let efd = config.init(Phase::Classification, &device);
        let out = efd.forward(input(2, 64, &device));
        assert_eq!(out.output.dims(), [2, 2, 64, 64]);
        assert_eq!(out.keypoints.dims(), [2, 32, 3]);
        assert_eq!(out.confidence.dims(), [2, 32]);
        assert_eq!(efd.decoder.exchange.len(), if exchange { 2 } else { 0 });
    }
    // Other input sizes and widths.
    let config = EfdConfig::new()
        .with_input_size(32)
        .with_keypoints(8)
        .with_decoder_width(8);
    let out = config
        .init(Phase::Regression, &device)
        .forward(input(1, 32, &device));
    assert_eq!(out.output.dims(), [1, 1, 32, 32]);
}

#[test]
fn crwt_transfer_keeps_every_weight_but_the_last_layer() {
    let device = Device::flex();
    let config = EfdConfig::new();
    let phase1 = config.init(Phase::Classification, &device);
    let stem = values(phase1.encoder.stem.conv.weight.val());
    let fc: Vec<f32> = phase1
        .decoder
        .fc
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    let exchange = values(phase1.decoder.exchange[1].mix[2].conv.weight.val());
    let params = phase1.num_params();

    let phase2 = phase1.transfer(&config, Phase::Regression, &device);
    assert_eq!(values(phase2.encoder.stem.conv.weight.val()), stem);
    let fc2: Vec<f32> = phase2
        .decoder
        .fc
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(fc2, fc);
    assert_eq!(
        values(phase2.decoder.exchange[1].mix[2].conv.weight.val()),
        exchange
    );
    assert_eq!(phase2.decoder.head.weight.dims(), [1, 16, 1, 1]);
    // The head lost one output channel: 16 weights and 1 bias.
    assert_eq!(phase2.num_params(), params - 17);
    let out = phase2.forward(input(1, 64, &device));
    assert_eq!(out.output.dims(), [1, 1, 64, 64]);
}

#[test]
fn reconstruction_gradients_reach_the_encoder() {
    let device = Device::flex().autodiff();
    let efd = EfdConfig::new().init(Phase::Regression, &device);
    let out = efd.forward(input(2, 64, &device));
    let grads = out.output.powi_scalar(2).mean().backward();
    let grad = efd.encoder.blocks[0]
        .depthwise
        .conv
        .weight
        .grad(&grads)
        .expect("a gradient");
    let norm: f32 = grad.powi_scalar(2).sum().into_scalar();
    assert!(norm > 0.0);
}

/// Per channel, the mean and variance of `z` (`[B, C, H, W]`) after `norm`'s running
/// statistics standardized it (gamma and beta left out).
fn standardized_moments(norm: &burn::nn::BatchNorm, z: Tensor<4>) -> (Vec<f32>, Vec<f32>) {
    let [b, c, h, w] = z.dims();
    let mean = norm.running_mean.value().reshape([1, c, 1, 1]);
    let std = (norm.running_var.value() + norm.epsilon)
        .sqrt()
        .reshape([1, c, 1, 1]);
    let rows = ((z - mean) / std).swap_dims(0, 1).reshape([c, b * h * w]);
    let m = rows.clone().mean_dim(1);
    let v = (rows - m.clone()).powi_scalar(2).mean_dim(1);
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    (values(m), values(v))
}

fn standardizes(norm: &burn::nn::BatchNorm, z: Tensor<4>) -> bool {
    let (m, v) = standardized_moments(norm, z);
    m.iter().all(|m| m.abs() < 1e-3) && v.iter().all(|v| (v - 1.0).abs() < 1e-2)
}

#[test]
fn recalibrated_encoder_norms_standardize_the_new_frames_at_every_layer() {
    let device = Device::flex();
    let encoder = EncoderConfig::new().with_input_size(32).init(&device);
    // Frames of "another mat": brighter and offset, in two batches of different sizes.
    let batches: Vec<Tensor<4>> = [3, 5]
        .into_iter()
        .map(|b| input(b, 32, &device) * 3.0 + 1.0)
        .collect();
    let all = Tensor::cat(batches.clone(), 0);
    // The fresh statistics (mean 0, variance 1) do not fit these frames: the check can fail.
    assert!(!standardizes(
        &encoder.stem.norm,
        encoder.stem.conv.forward(all.clone())
    ));

    let encoder = encoder.recalibrated(batches);
    // Walk the layers as the forward pass does: every norm standardizes what reaches it.
    assert!(standardizes(
        &encoder.stem.norm,
        encoder.stem.conv.forward(all.clone())
    ));
    let mut x = encoder.stem.forward(all);
    for (i, block) in encoder.blocks.iter().enumerate() {
        let mut y = x.clone();
        for (name, layer) in [
            ("expand", block.expand.as_ref()),
            ("depthwise", Some(&block.depthwise)),
            ("project", Some(&block.project)),
        ] {
            let Some(layer) = layer else { continue };
            let z = layer.conv.forward(y.clone());
            let (m, v) = standardized_moments(&layer.norm, z.clone());
            assert!(
                standardizes(&layer.norm, z),
                "block {i} {name}: {m:?} {v:?}"
            );
            y = layer.forward(y);
        }
        x = block.forward(x);
    }
}
