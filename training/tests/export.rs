//! Export parity: ONNX Runtime runs the exported encoder and decoder and gets what Burn gets,
//! within 1e-4, on real frames; the models carry the spmkd metadata; the layout reference is
//! the one spmkdpose compares frames with.

use std::collections::HashMap;

use burn::module::Module;
use burn::prelude::*;
use onnx_ir::Message;
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use spmkd_core::model_meta::{ALL_KEYS, ModelKind, ModelMetadata};
use spmkd_core::orientation::Orientation;
use spmkd_training::data::FrameSet;
use spmkd_training::export::{decoder_onnx, encoder_onnx, metadata};
use spmkd_training::model::{Efd, EfdConfig, Phase};
use spmkd_training::train::{Run, TrainingConfig};

mod common;
use common::sample;

fn frames(size: usize) -> FrameSet {
    let mut set = FrameSet::new(size);
    for file in ["1.txt", "2.txt", "3.txt"] {
        set.add_file(&sample(file), None, 12, 8).unwrap();
    }
    set
}

/// A network small enough to train in a second, on 32 x 32 inputs.
fn small() -> EfdConfig {
    EfdConfig::new()
        .with_input_size(32)
        .with_keypoints(8)
        .with_features(8)
        .with_decoder_width(8)
}

/// A small model trained a few steps through both phases, so the batch norms' running
/// statistics are no longer their initial values.
fn trained(config: &EfdConfig, data: &FrameSet) -> Efd {
    let device = Device::flex().autodiff();
    device.seed(3);
    let dir = tempfile::tempdir().unwrap();
    let training = TrainingConfig::new(config.clone())
        .with_batch_size(8)
        .with_classification_epochs(1)
        .with_regression_epochs(1)
        .with_steps_per_epoch(Some(3));
    let mut run = Run::open(dir.path(), training, false).unwrap();
    let empty = FrameSet::new(config.input_size);
    let phase1 = run
        .train_phase(
            Phase::Classification,
            config.init(Phase::Classification, &device),
            data,
            &empty,
            &device,
        )
        .unwrap();
    let phase2 = phase1.transfer(config, Phase::Regression, &device);
    run.train_phase(Phase::Regression, phase2, data, &empty, &device)
        .unwrap()
}

/// ONNX Runtime allows one environment per process.
fn environment() -> &'static ort::environment::Environment {
    static ENV: std::sync::OnceLock<ort::environment::Environment> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let library = spmkd_core::runtime::onnxruntime_library();
        ort::init_from(&library)
            .unwrap_or_else(|e| {
                panic!(
                    "ONNX Runtime at {} (run scripts/setup): {e}",
                    library.display()
                )
            })
            .with_name("spmkd-export-test")
            .build()
            .unwrap()
    })
}

fn session(bytes: &[u8]) -> Session {
    Session::builder(environment())
        .unwrap()
        .commit_from_memory(bytes)
        .unwrap()
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "{what}: largest difference {worst}");
}

#[test]
fn onnx_runtime_matches_burn_on_real_frames() {
    let config = small();
    let data = frames(32);
    let model = trained(&config, &data);
    let device = Device::flex();
    let model = model.valid().to_device(&device);

    let enc_meta = metadata(&config, ModelKind::Encoder, "test-encoder", "S12 samples");
    let dec_meta = metadata(&config, ModelKind::Decoder, "test-decoder", "S12 samples");
    let encoder = encoder_onnx(&model, &enc_meta, &device).unwrap();
    let decoder = decoder_onnx(&model, &dec_meta, &device).unwrap();
    // What is compared below is the graph as `export` rewrites it (h-swish and the fuser).
    let graph = onnx_ir::ModelProto::parse_from_bytes(&encoder)
        .unwrap()
        .graph
        .unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    for op in ["HardSwish", "Softmax", "ReduceMax", "Transpose"] {
        assert!(ops.contains(&op), "no {op} in the exported encoder");
    }
    assert!(!ops.contains(&"TopK"));
    let mut encoder = session(&encoder);
    let mut decoder = session(&decoder);

    // The metadata reads back through ONNX Runtime and parses as the plugin will parse it.
    let meta = encoder.metadata().unwrap();
    let props: HashMap<String, String> = ALL_KEYS
        .iter()
        .filter_map(|k| meta.custom(k).map(|v| (k.to_string(), v)))
        .collect();
    drop(meta);
    assert_eq!(ModelMetadata::from_props(&props).unwrap(), enc_meta);

    let to_vec = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    for i in [0, 10, 20, 30, 40] {
        let input = data.batch(&[i], &device);
        let ours = model.encode(input.clone());
        let ours_map =
            spmkd_training::crwt::regression_map(model.decoder.forward(ours.fused.clone()));

        let pixels: Vec<f32> = input.into_data().try_to_vec().unwrap();
        let outputs = encoder
            .run(ort::inputs![
                OrtTensor::from_array(([1usize, 1, 32, 32], pixels)).unwrap()
            ])
            .unwrap();
        let (_, keypoints) = outputs[0].try_extract_tensor::<f32>().unwrap();
        let (_, confidence) = outputs[1].try_extract_tensor::<f32>().unwrap();
        let (_, fused) = outputs[2].try_extract_tensor::<f32>().unwrap();
        assert_close("keypoints", &to_vec(ours.keypoints), keypoints);
        assert_close(
            "confidence",
            &ours.confidence.into_data().try_to_vec::<f32>().unwrap(),
            confidence,
        );
        let fused = fused.to_vec();
        assert_close("fused", &to_vec(ours.fused), &fused);
        drop(outputs);

        let outputs = decoder
            .run(ort::inputs![
                OrtTensor::from_array(([1usize, 8, 16], fused)).unwrap()
            ])
            .unwrap();
        let (shape, map) = outputs[0].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), vec![1, 1, 32, 32]);
        assert_close(
            "map",
            &ours_map.into_data().try_to_vec::<f32>().unwrap(),
            map,
        );
    }
}

#[test]
fn the_layout_reference_is_measured_on_the_rows_spmkdpose_gives() {
    // What export writes (from the encoder's raw outputs, fractions of the input side) and what
    // a frame's layout is compared with in spmkdpose (rows in sensor cells, after the
    // letterbox is undone) must be one layout: standardizing removes the map between them.
    let config = small();
    let data = frames(32);
    let device = Device::flex();
    let model = trained(&config, &data).valid().to_device(&device);
    let references = spmkd_training::export::trust_references(&model, &data, &device);
    let written = references.layout.expect("a layout reference");
    let rows: Vec<Vec<f32>> = data
        .raw
        .iter()
        .map(|(w, h, frame)| {
            spmkd_training::keypoints::frame_keypoints(
                &model,
                false,
                Orientation::Identity,
                frame,
                *w as usize,
                *h as usize,
                &device,
            )
            .iter()
            .map(|k| k.y)
            .collect()
        })
        .collect();
    let measured = spmkd_core::layout::reference(rows.iter().map(Vec::as_slice)).unwrap();
    assert_close("layout reference", &written, &measured);
    assert!(references.confidence.is_some_and(|c| c > 0.0 && c <= 1.0));
}

#[test]
fn the_layout_ramp_keeps_the_frames_it_was_fitted_on_trusted_as_spmkdpose_measures_them() {
    use spmkd_core::monitor::trust::{DEFAULT_MIN_TRUST, Evidence, trust};
    let config = small();
    let data = frames(32);
    let device = Device::flex();
    let model = trained(&config, &data).valid().to_device(&device);
    let references = spmkd_training::export::trust_references(&model, &data, &device);
    let (lo, hi) = references.layout_ramp.expect("a layout ramp");
    let reference = references.layout.expect("a layout reference");
    // The keypoints as spmkdpose gives them (sensor cells), without the decoder's quality.
    let poses: Vec<_> = data
        .raw
        .iter()
        .map(|(w, h, frame)| {
            spmkd_training::keypoints::frame_keypoints(
                &model,
                false,
                Orientation::Identity,
                frame,
                *w as usize,
                *h as usize,
                &device,
            )
        })
        .collect();
    let mut layouts: Vec<f32> = poses
        .iter()
        .filter_map(|p| spmkd_core::layout::agreement(p, &reference))
        .collect();
    layouts.sort_by(f32::total_cmp);
    let median = layouts[layouts.len() / 2];
    assert!(
        lo < hi && (hi - median).abs() <= 0.005 + 1e-4,
        "{lo}..{hi}, median {median}"
    );
    // The ramp costs no frame that full layout evidence would keep trusted (1 % of 32 frames
    // is none of them).
    let mut kept = 0;
    for keypoints in &poses {
        let evidence = Evidence {
            keypoints,
            confidence_reference: references.confidence,
            layout: spmkd_core::layout::agreement(keypoints, &reference),
            layout_ramp: Some((lo, hi)),
            ..Default::default()
        };
        let perfect = Evidence {
            layout: Some(1.0),
            ..evidence
        };
        if trust(true, &perfect) >= DEFAULT_MIN_TRUST as f32 {
            kept += 1;
            assert!(
                trust(true, &evidence) >= DEFAULT_MIN_TRUST as f32,
                "{evidence:?}"
            );
        }
    }
    assert!(kept > 0, "no frame to hold the ramp to");
}
