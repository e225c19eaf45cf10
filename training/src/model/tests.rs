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
    assert_eq!(out.cells.dims(), [2, 256, 3]);
    assert_eq!(out.features.dims(), [2, 256, 16]);
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
