//! A tiny model on real frames: its loss falls, its checkpoints round-trip, a run resumes.

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use spmkd_core::posture::Posture;
use spmkd_training::augment::AugmentConfig;
use spmkd_training::data::FrameSet;
use spmkd_training::model::{EfdConfig, Phase};
use spmkd_training::train::{Run, TrainingConfig};

mod common;
use common::sample;

/// Every 8th usable frame of the three committed sample recordings: 42 real frames.
fn frames(size: usize) -> FrameSet {
    let mut set = FrameSet::new(size);
    for (file, posture) in [
        ("1.txt", Posture::Supine),
        ("2.txt", Posture::Right),
        ("3.txt", Posture::Left),
    ] {
        set.add_file(&sample(file), Some(posture), 12, 8).unwrap();
    }
    set
}

fn tiny() -> TrainingConfig {
    let model = EfdConfig::new()
        .with_input_size(32)
        .with_keypoints(8)
        .with_features(8)
        .with_decoder_width(8);
    TrainingConfig::new(model)
        .with_batch_size(14)
        .with_learning_rate(5e-3)
        .with_classification_epochs(4)
        .with_regression_epochs(4)
        .with_seed(7)
}

fn step_losses(dir: &Path, phase: &str) -> Vec<f64> {
    std::fs::read_to_string(dir.join("steps.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.starts_with(phase))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect()
}

/// Burn's random stream is one per process and the tests of this file run on parallel threads:
/// each test that draws weights holds this lock, so another test's draws or seeding cannot fall
/// between its seeding and its draws.
fn random_stream() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn a_tiny_model_learns_real_frames_with_crwt() {
    let _stream = random_stream();
    let data = frames(32);
    assert_eq!(data.len(), 15 + 13 + 15);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex().autodiff();
    device.seed(7);
    let config = tiny();
    let mut run = Run::open(dir.path(), config.clone(), false).unwrap();
    let start = config.model.init(Phase::Classification, &device);
    let phase1 = run
        .train_phase(Phase::Classification, start, &data, &data, &device)
        .unwrap();
    let losses = step_losses(dir.path(), "classification");
    assert_eq!(losses.len(), 4 * 4);
    assert!(mean(&losses[12..]) < 0.8 * mean(&losses[..4]), "{losses:?}");

    let phase2 = phase1.transfer(&config.model, Phase::Regression, &device);
    run.train_phase(Phase::Regression, phase2, &data, &data, &device)
        .unwrap();
    let losses = step_losses(dir.path(), "regression");
    assert!(mean(&losses[12..]) < mean(&losses[..4]), "{losses:?}");

    // Validation ran after every epoch: 8 rows, F-score in phase 1.
    let epochs = std::fs::read_to_string(dir.path().join("epochs.csv")).unwrap();
    assert_eq!(epochs.lines().count(), 1 + 8);
    let f1: f64 = epochs
        .lines()
        .nth(4)
        .unwrap()
        .split(',')
        .nth(5)
        .unwrap()
        .parse()
        .unwrap();
    // The F-score after 4 tiny epochs depends on the running statistics: only its range is checked.
    assert!((0.0..=1.0).contains(&f1), "{epochs}");
}

#[test]
fn checkpoints_round_trip_exactly() {
    let _stream = random_stream();
    let device = Device::flex();
    let config = tiny();
    let model = config.model.init(Phase::Regression, &device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bpk");
    model.clone().save_file(&path).unwrap();
    let loaded = config
        .model
        .init(Phase::Regression, &device)
        .try_load_file(&path)
        .unwrap();
    let input = frames(32).batch(&[0, 20, 40], &device);
    let a = model.valid().forward(input.clone());
    let b = loaded.valid().forward(input);
    let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(values(a.output), values(b.output));
    let kp = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(kp(a.keypoints), kp(b.keypoints));
}

#[test]
fn a_run_resumes_where_it_stopped() {
    let _stream = random_stream();
    let data = frames(32);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex().autodiff();
    let config = tiny().with_classification_epochs(1);
    let mut run = Run::open(dir.path(), config.clone(), false).unwrap();
    let start = config.model.init(Phase::Classification, &device);
    run.train_phase(
        Phase::Classification,
        start,
        &data,
        &FrameSet::new(32),
        &device,
    )
    .unwrap();
    assert_eq!(run.state.classification, 1);

    // Reopening without --resume is refused; with another configuration too.
    assert!(Run::open(dir.path(), config.clone(), false).is_err());
    assert!(Run::open(dir.path(), config.clone().with_seed(8), true).is_err());

    // Two more epochs on top of the first: only epochs 2 and 3 run.
    let config = config.with_classification_epochs(3);
    let mut run = Run::open(dir.path(), config.clone(), true).unwrap();
    let unused = config.model.init(Phase::Classification, &device);
    run.train_phase(
        Phase::Classification,
        unused,
        &data,
        &FrameSet::new(32),
        &device,
    )
    .unwrap();
    assert_eq!(run.state.classification, 3);
    let epochs: Vec<String> = std::fs::read_to_string(dir.path().join("epochs.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        epochs,
        ["classification,1", "classification,2", "classification,3"]
    );
}

#[test]
fn phase_two_is_the_same_whether_resumed_or_not() {
    let _stream = random_stream();
    let data = frames(32);
    let none = FrameSet::new(32);
    let config = tiny()
        .with_classification_epochs(1)
        .with_regression_epochs(1);
    let device = Device::flex().autodiff();

    // One process: phase 1, then phase 2 straight away.
    let together = tempfile::tempdir().unwrap();
    let mut run = Run::open(together.path(), config.clone(), false).unwrap();
    let start = run.phase_start(Phase::Classification, None, &device);
    let phase1 = run
        .train_phase(Phase::Classification, start, &data, &none, &device)
        .unwrap();
    let start = run.phase_start(Phase::Regression, Some(phase1), &device);
    run.train_phase(Phase::Regression, start, &data, &none, &device)
        .unwrap();

    // Phase 1, then (as after a restart) phase 2 from the checkpoint, after other draws from the
    // device's random stream.
    let apart = tempfile::tempdir().unwrap();
    let mut run = Run::open(apart.path(), config.clone(), false).unwrap();
    let start = run.phase_start(Phase::Classification, None, &device);
    run.train_phase(Phase::Classification, start, &data, &none, &device)
        .unwrap();
    let _ = config.model.init(Phase::Regression, &device);
    let mut run = Run::open(apart.path(), config, true).unwrap();
    let phase1 = run.load(Phase::Classification, &device).unwrap();
    let start = run.phase_start(Phase::Regression, Some(phase1), &device);
    run.train_phase(Phase::Regression, start, &data, &none, &device)
        .unwrap();

    let a = step_losses(together.path(), "regression");
    let b = step_losses(apart.path(), "regression");
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
}

#[test]
fn an_existing_run_opens_for_reading_without_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Run::open_existing(dir.path()).err().expect("no run there");
    assert!(missing.to_string().contains("holds no run"), "{missing}");
    let config = tiny().with_regression_epochs(9);
    Run::open(dir.path(), config.clone(), false).unwrap();
    let path = dir.path().join("config.json");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let run = Run::open_existing(dir.path()).unwrap();
    assert_eq!(run.config.to_string(), config.to_string());
    assert_eq!(run.state.regression, 0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    // Opening to resume (to train on) rewrites it: only reading must not.
    std::thread::sleep(std::time::Duration::from_millis(20));
    Run::open(dir.path(), config, true).unwrap();
    assert_ne!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn augmented_training_draws_the_same_frames_every_time_and_other_frames_than_plain() {
    let _stream = random_stream();
    let data = frames(32);
    let none = FrameSet::new(32);
    let device = Device::flex().autodiff();
    let losses = |config: TrainingConfig| {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::open(dir.path(), config, false).unwrap();
        let start = run.phase_start(Phase::Classification, None, &device);
        run.train_phase(Phase::Classification, start, &data, &none, &device)
            .unwrap();
        step_losses(dir.path(), "classification")
    };
    let plain = tiny().with_classification_epochs(2);
    let augmented = plain.clone().with_augment(Some(AugmentConfig::new()));
    let a = losses(augmented.clone());
    let b = losses(augmented);
    assert_eq!(a.len(), 2 * data.len().div_ceil(14));
    assert!(a.iter().all(|l| l.is_finite()), "{a:?}");
    assert_eq!(a, b, "the same seed, the same augmented frames");
    // The first step starts from the same weights: only the frames differ.
    let p = losses(plain);
    assert_ne!(a[0], p[0], "augmentation changed nothing");
}

#[test]
fn a_run_made_before_augmentation_existed_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    Run::open(dir.path(), tiny(), false).unwrap();
    let path = dir.path().join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("augment");
    std::fs::write(&path, json.to_string()).unwrap();
    let run = Run::open_existing(dir.path()).unwrap();
    assert_eq!(run.config.augment, None);
}
