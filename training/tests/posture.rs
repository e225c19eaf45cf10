//! Posture classifiers: shapes, gradients through every graph layer, and a short training on
//! real keypoint graphs of the shipped encoder that beats chance on frames it has not seen.

use burn::prelude::*;
use spmkd_core::posture::Posture;
use spmkd_training::posture::classifier::{CnnConfig, GnnConfig, GraphKind};
use spmkd_training::posture::ensemble::GnnEnsemble;
use spmkd_training::posture::fit::{Classifier, FitConfig, evaluate, fit};
use spmkd_training::posture::graphs::{GraphBuilder, GraphSet, NodeSource, graphs_of_file};

mod common;
use common::sample;

/// Graphs of the three sample recordings: 1 supine, 2 right, 3 left.
fn sample_graphs(source: NodeSource) -> GraphSet {
    let mut builder = GraphBuilder::new(source, None).expect("the shipped encoder loads");
    let mut all = builder.empty_set();
    for (file, label) in [
        ("1.txt", Posture::Supine),
        ("2.txt", Posture::Right),
        ("3.txt", Posture::Left),
    ] {
        let set = graphs_of_file(&mut builder, &sample(file), label, 1).unwrap();
        all.append(&set);
    }
    all
}

#[test]
fn graphs_have_k_nodes_of_the_documented_features() {
    for source in [NodeSource::Spmkd, NodeSource::Peaks] {
        let set = sample_graphs(source);
        assert_eq!(set.len(), 336);
        assert_eq!(set.keypoints, 32);
        assert_eq!(set.node_features, 20);
        assert_eq!(set.nodes.len(), 336 * 32 * 20);
        assert_eq!(set.images.len(), 336 * 64 * 64);
        // x / W and y / H of every node lie on the mat (or its letterbox margin, for SPMKD).
        for node in set.nodes.chunks_exact(20) {
            assert!(
                (-0.5..1.5).contains(&node[1]) && (-0.5..1.5).contains(&node[2]),
                "{node:?}"
            );
        }
    }
}

#[test]
fn every_classifier_gives_logits_and_gradients() {
    let set = sample_graphs(NodeSource::Spmkd);
    let device = Device::flex().autodiff();
    device.seed(2);
    let mut models: Vec<Classifier> = [GraphKind::Gcn, GraphKind::Gat, GraphKind::Sage]
        .into_iter()
        .map(|k| Classifier::Graph(GnnConfig::new(k, 20).init(&device)))
        .collect();
    models.push(Classifier::Image(CnnConfig::new().init(&device)));
    for model in models {
        let logits = model.forward(&set, &[0, 150, 300], &device);
        assert_eq!(logits.dims(), [3, 3]);
        let grads = logits.sum().backward();
        let params = burn::optim::GradientsParams::from_grads(grads, &model);
        assert!(!params.is_empty(), "{model:?}");
    }
}

#[test]
fn a_short_training_beats_chance_on_frames_it_has_not_seen() {
    let set = sample_graphs(NodeSource::Spmkd);
    // Every other frame trains, the rest tests (neighbouring frames are alike, but the test
    // frames themselves are never seen).
    let train = set.select(|i| i % 2 == 0);
    let test = set.select(|i| i % 2 == 1);
    let device = Device::flex().autodiff();
    device.seed(4);
    let model = Classifier::Graph(GnnConfig::new(GraphKind::Sage, 20).init(&device));
    let config = FitConfig::new().with_epochs(10).with_batch_size(32);
    let model = fit(model, &train, &config, &device).unwrap().valid();
    let e = evaluate(&model, &test, &Device::flex());
    assert_eq!(e.total(), test.len());
    assert!(e.accuracy() > 0.6, "accuracy {}", e.accuracy());
    assert_eq!(
        e.per_subject.values().map(|&(_, t)| t).sum::<usize>(),
        test.len()
    );
    // By recording: each of the three, its true class, and every frame read as something.
    let frames = |p: Posture| test.labels.iter().filter(|&&l| l == p).count();
    let recordings: Vec<(&str, usize, usize)> = e
        .per_recording
        .iter()
        .map(|((_, variant), (truth, read))| (variant.as_str(), *truth, read.iter().sum()))
        .collect();
    assert_eq!(
        recordings,
        [
            ("left", 1, frames(Posture::Left)),
            ("right", 2, frames(Posture::Right)),
            ("supine", 0, frames(Posture::Supine))
        ]
    );
    let correct: usize = e.per_recording.values().map(|(t, read)| read[*t]).sum();
    assert_eq!(correct, (0..3).map(|i| e.confusion[i][i]).sum::<usize>());
}

#[test]
fn the_exported_posture_model_gives_burns_probabilities() {
    use spmkd_core::engine::{Device as OrtDevice, EngineOptions, ModelSource, PostureModel};
    use spmkd_core::model_meta::{ModelKind, ModelMetadata};

    let set = sample_graphs(NodeSource::Spmkd);
    let device = Device::flex();
    device.seed(5);
    // The last two: ensembles of three as `posture --ensemble 3` exports them (GraphSAGE
    // members stacked, their batch norms folded into the weights: so these carry statistics of
    // real graphs, and the second the keypoint-index embedding folded with them).
    let batches = set.node_batches(256, &device);
    for (kind, graph_norm, members, identity) in [
        (GraphKind::Gcn, false, 1, false),
        (GraphKind::Gat, false, 1, false),
        (GraphKind::Sage, false, 1, false),
        (GraphKind::Sage, true, 1, false),
        (GraphKind::Sage, true, 3, false),
        (GraphKind::Sage, true, 3, true),
    ] {
        let gnn = || {
            let g = GnnConfig::new(kind, set.node_features)
                .with_graph_norm(graph_norm)
                .with_identity(identity.then_some(set.keypoints))
                .init(&device);
            if members > 1 {
                g.recalibrated(&batches)
            } else {
                g
            }
        };
        let model = match members {
            1 => Classifier::Graph(gnn()),
            n => Classifier::Ensemble(GnnEnsemble::new((0..n).map(|_| gnn()).collect())),
        };
        let meta = ModelMetadata {
            kind: ModelKind::Posture,
            input_size: 64,
            keypoints: set.keypoints,
            features: set.node_features - spmkd_core::posture::BASE_FEATURES,
            normalization: spmkd_core::preprocess::NORMALIZATION.to_owned(),
            classes: Posture::ALL.iter().map(ToString::to_string).collect(),
            version: "test-posture".into(),
            trained_on: "nothing".into(),
            adapted_on: None,
            confidence_reference: None,
            layout_reference: None,
            layout_ramp: None,
            orientation: Default::default(),
            calibrated_on: None,
        };
        let onnx = spmkd_training::posture::export::posture_onnx(&model, &meta, &device).unwrap();
        let options = EngineOptions {
            library: None,
            device: OrtDevice::Cpu,
            allow_fallback: false,
            threads: 1,
        };
        let mut ort = PostureModel::new(
            &ModelSource {
                origin: "test".into(),
                bytes: onnx.into(),
            },
            &options,
        )
        .unwrap();
        assert_eq!(ort.meta.version, "test-posture");
        let model = model.valid();
        let per = set.keypoints * set.node_features;
        for i in [0, 150, 300] {
            let logits: Vec<f32> = model
                .forward(&set, &[i], &device)
                .into_data()
                .try_to_vec()
                .unwrap();
            let burn = spmkd_core::posture::probabilities(&logits);
            let onnx = ort.run(&set.nodes[i * per..(i + 1) * per]).unwrap();
            for (a, b) in burn.iter().zip(onnx) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{kind:?} x {members} (graph norm {graph_norm}) graph {i}: burn {burn:?}, onnx {onnx:?}"
                );
            }
        }
    }
}
