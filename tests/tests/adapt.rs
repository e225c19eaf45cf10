//! The adapt workflow as a hospital would run it, with a tiny model: a trained run adapted to a
//! "new mat" (the sample recordings turned by 180 degrees) without labels, the posture network
//! refitted on experiment-i labels through the adapted encoder (with self-training on the new
//! frames), and the model directory loaded by
//! `spmkdpose` and `spmkdposture` in a real pipeline.

use burn::prelude::*;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::dataset::DatasetIndex;
use spmkd_core::orientation::Orientation;
use spmkd_tests::{data_root, play, sample, usable_frames};
use spmkd_training::adapt::{self, AdaptOptions, Unlabelled};
use spmkd_training::data::FrameSet;
use spmkd_training::model::{EfdConfig, Phase};
use spmkd_training::posture::classifier::GraphKind;
use spmkd_training::posture::experiment::{self, Kind, NewMat};
use spmkd_training::posture::fit::FitConfig;
use spmkd_training::posture::graphs::{Augment, NodeSource};
use spmkd_training::train::{Run, TrainingConfig};

#[test]
fn an_adapted_model_directory_runs_in_spmkdpose_and_spmkdposture() {
    let tmp = tempfile::tempdir().unwrap();
    let samples = ["1.txt", "2.txt", "3.txt"].map(sample);

    // A tiny trained run (phase 2 from scratch on the upright sample frames).
    let base = tmp.path().join("base");
    let mut upright = FrameSet::new(32);
    for file in &samples {
        upright.add_file(file, None, 12, 8).unwrap();
    }
    let config = TrainingConfig::new(
        EfdConfig::new()
            .with_input_size(32)
            .with_keypoints(8)
            .with_features(8)
            .with_decoder_width(8),
    )
    .with_batch_size(14)
    .with_learning_rate(5e-3)
    .with_classification_epochs(0)
    .with_regression_epochs(4);
    let device = Device::flex().autodiff();
    let mut run = Run::open(&base, config, false).unwrap();
    let start = run.phase_start(Phase::Regression, None, &device);
    run.train_phase(
        Phase::Regression,
        start,
        &upright,
        &FrameSet::new(32),
        &device,
    )
    .unwrap();

    // Adapted to the turned frames, no labels.
    let data = Unlabelled::load(
        samples.to_vec(),
        &EfdConfig::new().with_input_size(32),
        8,
        Orientation::Rotate180,
        None,
    )
    .unwrap();
    let options = AdaptOptions {
        epochs: 3,
        learning_rate: 5e-3,
        batch_size: 14,
        seed: 1,
        every: 8,
        augment: None,
        recalibrate_encoder: false,
    };
    let out = tmp.path().join("adapted");
    let adapt::Adapted {
        run,
        model,
        before,
        after,
        ..
    } = adapt::adapt(&base, &data, &options, &out.join("run"), false, &device).unwrap();
    assert!(after.loss < before.loss, "{before:?} -> {after:?}");
    let version = "test-adapted";
    let provenance = spmkd_training::export::Provenance {
        version: version.into(),
        trained_on: run.config.trained_on(),
        adapted_on: run.config.adapted_on(Some(data.frames.len())),
        references: spmkd_training::export::trust_references(&model, &data.frames, &Device::flex()),
    };
    spmkd_training::export::export(
        &model,
        &run.config.model,
        &provenance,
        &out,
        &Device::flex(),
    )
    .unwrap();

    // The posture network refitted through the adapted encoder (a quick fit: every 40th
    // training frame, one epoch).
    let index = DatasetIndex::scan(data_root()).unwrap();
    let options = experiment::Options {
        kind: Kind::Graph(GraphKind::Sage),
        source: NodeSource::Spmkd,
        deployed_encoder: None,
        encoder: Some(out.join("encoder.onnx")),
        train_stride: 40,
        augment: Augment::default(),
        version: "test-adapted-posture".into(),
        identity: true,
        graph_norm: true,
        body_centred: false,
        ensemble: 1,
        hidden: None,
        // Self-training on the new mat's frames (threshold 0 keeps every one), then the batch
        // norms recalibrated on them.
        new_mat: Some(NewMat {
            frames: data.frames.raw.clone(),
            pseudo_labels: Some(0.0),
            recalibrate: true,
        }),
    };
    let report = experiment::run(
        &index,
        &options,
        &FitConfig::new().with_epochs(1),
        &out.join("posture"),
    )
    .unwrap();
    let pseudo = report.pseudo_labels.expect("self-training ran");
    assert_eq!(pseudo.frames, data.frames.len());
    assert_eq!(pseudo.kept.iter().sum::<usize>(), data.frames.len());
    assert_eq!(report.recalibrated_on, Some(2 * data.frames.len()));
    let posture = report.exported.expect("posture.onnx");

    let path = sample("2.txt");
    let (records, messages) = play(
        &format!(
            "pmatsrc location={} ! spmkdpose model={} decoder={} quality=true ! \
             spmkdposture model={} ! \
             fakesink name=sink",
            path.display(),
            out.join("encoder.onnx").display(),
            out.join("decoder.onnx").display(),
            posture.display()
        ),
        |b| PoseMeta::read(b).unwrap().unwrap(),
    );
    assert_eq!(records.len() as u64, usable_frames(&path));
    for r in &records {
        assert_eq!(r.model, version);
        assert_eq!(r.keypoints.len(), 8);
        assert!(r.quality.is_some(), "the adapted decoder ran");
        // The adapted encoder's layout reference was measured, written and read.
        assert!(
            r.layout.is_some_and(|l| (-1.0..=1.0).contains(&l)),
            "{:?}",
            r.layout
        );
        let p = r.posture.as_ref().expect("a posture");
        assert_eq!(p.probabilities.len(), 3);
    }
    assert!(messages.iter().any(|m| m.name() == "spmkd-posture"));
}

#[test]
fn an_adaptation_that_diverges_stops_with_an_error_and_makes_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let file = sample("1.txt");
    let mut frames = FrameSet::new(32);
    frames.add_file(&file, None, 12, 8).unwrap();
    let model = EfdConfig::new()
        .with_input_size(32)
        .with_keypoints(8)
        .with_features(8)
        .with_decoder_width(8);
    let device = Device::flex().autodiff();
    let base = tmp.path().join("base");
    let mut run = Run::open(
        &base,
        TrainingConfig::new(model.clone())
            .with_batch_size(14)
            .with_classification_epochs(0)
            .with_regression_epochs(1),
        false,
    )
    .unwrap();
    let start = run.phase_start(Phase::Regression, None, &device);
    run.train_phase(
        Phase::Regression,
        start,
        &frames,
        &FrameSet::new(32),
        &device,
    )
    .unwrap();
    let data = Unlabelled::load(vec![file], &model, 8, Orientation::Identity, None).unwrap();
    // A step no optimizer survives (the command line refuses it; a library caller may not).
    let options = AdaptOptions {
        epochs: 1,
        learning_rate: 1e30,
        batch_size: 14,
        seed: 1,
        every: 8,
        augment: None,
        recalibrate_encoder: false,
    };
    let out = tmp.path().join("adapted");
    let error = match adapt::adapt(&base, &data, &options, &out, false, &device) {
        Ok(a) => panic!("no error; after the fit: {:?}", a.after),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("the adaptation diverged"), "{error}");
}
