//! `spmkd-train adapt` end to end: a tiny trained run adapted to frames it has not seen (the
//! sample recordings turned by 180 degrees, as a mat lying the other way round) fits them better
//! afterwards, its files load through the plugin's engine with the adaptation in their metadata,
//! it resumes, and bad input gets a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::prelude::*;
use spmkd_core::engine::{Decoder, Encoder, EngineOptions, ModelSource};
use spmkd_training::adapt::AdaptReport;
use spmkd_training::data::FrameSet;
use spmkd_training::model::{EfdConfig, Phase};
use spmkd_training::train::{Run, TrainingConfig};

mod common;
use common::sample;

/// A tiny phase-2 model trained (from scratch, a few epochs) on the upright sample frames.
fn tiny_run(dir: &Path) {
    let mut data = FrameSet::new(32);
    for file in ["1.txt", "2.txt", "3.txt"] {
        data.add_file(&sample(file), None, 12, 8).unwrap();
    }
    let model = EfdConfig::new()
        .with_input_size(32)
        .with_keypoints(8)
        .with_features(8)
        .with_decoder_width(8);
    let config = TrainingConfig::new(model)
        .with_batch_size(14)
        .with_learning_rate(5e-3)
        .with_classification_epochs(0)
        .with_regression_epochs(6)
        .with_seed(3);
    let device = Device::flex().autodiff();
    let mut run = Run::open(dir, config.clone(), false).unwrap();
    let start = run.phase_start(Phase::Regression, None, &device);
    run.train_phase(Phase::Regression, start, &data, &FrameSet::new(32), &device)
        .unwrap();
}

fn adapt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spmkd-train"))
        .arg("adapt")
        .args(args)
        .output()
        .expect("spmkd-train runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn engine() -> EngineOptions {
    EngineOptions::cpu(1)
}

#[test]
fn adapting_fits_the_new_frames_better_and_records_it_in_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    tiny_run(&base);
    let out = tmp.path().join("adapted");
    let recordings: Vec<PathBuf> = ["1.txt", "2.txt", "3.txt"].map(sample).into();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let mut args = vec![
        "--from".to_owned(),
        path(&base),
        "--out".into(),
        path(&out),
        "--orientation".into(),
        "180".into(),
        "--frame-stride".into(),
        "8".into(),
        "--epochs".into(),
        "10".into(),
        "--lr".into(),
        "5e-3".into(),
        "--batch".into(),
        "14".into(),
        "--no-posture".into(),
        "--recordings".into(),
    ];
    args.extend(recordings.iter().map(|p| path(p)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = adapt(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // Its stderr is a pipe, not a terminal: progress comes as lines, one at least per epoch,
    // each with the stage, where it is, the loss, the time spent and the time left.
    let log = stderr(&o);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("regression epoch "))
        .collect();
    assert!(lines.len() >= 10, "{log}");
    assert!(
        lines[0].contains("epoch 1/10 step ")
            && lines[0].contains("loss ")
            && lines[0].contains("elapsed")
            && lines[0].contains("left"),
        "{log}"
    );
    assert!(log.contains("regression: done in "), "{log}");

    let report: AdaptReport =
        serde_json::from_str(&std::fs::read_to_string(out.join("adaptation.json")).unwrap())
            .unwrap();
    assert_eq!(report.recordings, 3);
    assert_eq!(report.frames, 15 + 13 + 15);
    assert!(
        report.after.loss < 0.9 * report.before.loss,
        "the reconstruction loss of the new frames did not fall: {:?} -> {:?}",
        report.before,
        report.after
    );
    assert!(report.after.ssim > report.before.ssim);

    // The elements' engine loads both files; the metadata names the adaptation.
    let encoder = Encoder::new(
        &ModelSource::file(&out.join("encoder.onnx")).unwrap(),
        &engine(),
    )
    .expect("the adapted encoder loads");
    let adapted = encoder.meta.adapted_on.clone().expect("spmkd.adapted_on");
    assert!(adapted.contains("without labels"), "{adapted}");
    assert!(
        adapted.contains("43 frames") && adapted.contains("laid 180"),
        "{adapted}"
    );
    assert!(encoder.meta.version.ends_with("-base-adapted"));
    assert!(encoder.meta.trained_on.contains("experiment-i"));
    let decoder = Decoder::new(
        &ModelSource::file(&out.join("decoder.onnx")).unwrap(),
        &engine(),
        &encoder.meta,
    )
    .expect("the adapted decoder loads");
    assert_eq!(decoder.meta.adapted_on, Some(adapted));

    // Run again with --resume: every epoch is done, nothing is retrained, the same model comes out.
    let steps = std::fs::read_to_string(out.join("run/steps.csv")).unwrap();
    let mut again = args.clone();
    again.push("--resume");
    let o = adapt(&again);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("run/steps.csv")).unwrap(),
        steps
    );
    // Without --resume the existing run is not overwritten.
    let o = adapt(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));

    // A model directory (its run in run/) can be adapted again; the id says so.
    let twice = tmp.path().join("twice");
    let o = adapt(&[
        "--from",
        &path(&out),
        "--out",
        &path(&twice),
        "--epochs",
        "1",
        "--no-posture",
        "--recordings",
        &path(&recordings[0]),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let encoder = Encoder::new(
        &ModelSource::file(&twice.join("encoder.onnx")).unwrap(),
        &engine(),
    )
    .unwrap();
    assert!(
        encoder.meta.version.ends_with("-base-adapted-adapted"),
        "{}",
        encoder.meta.version
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    tiny_run(&base);
    let out = tmp.path().join("out");
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let good = p(&sample("1.txt"));
    // `adapt --from FROM --out OUT --recordings RECORDING` fails, saying `expected`.
    let fails = |from: &Path, recording: &str, expected: &str| {
        let args = [
            "--from",
            &p(from),
            "--out",
            &p(&out),
            "--recordings",
            recording,
        ];
        let o = adapt(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(expected), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    };
    // Not a run.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&empty, &good, "holds no run");
    // A recording that does not exist, one that is not a recording, a directory without any.
    fails(&base, "/nonexistent.txt", "/nonexistent.txt: no such file");
    let junk = tmp.path().join("junk.txt");
    std::fs::write(&junk, "1 2 3\nnot a number\n").unwrap();
    fails(&base, &p(&junk), "junk.txt");
    fails(&base, &p(&empty), "holds no recording");
    // Frames with no usable frame at all (all zero: capture artifacts).
    let zeros = tmp.path().join("zeros.txt");
    std::fs::write(&zeros, format!("{}\n", vec!["0"; 2048].join("\t"))).unwrap();
    fails(&base, &p(&zeros), "no usable frame");
    assert!(!out.join("encoder.onnx").exists());
}

#[test]
fn a_recalibrated_encoder_is_shipped_and_the_phase_2_one_kept_for_the_posture_refit() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    tiny_run(&base);
    let out = tmp.path().join("adapted");
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    // One epoch on two turned sample recordings into `out`, with `flag`.
    let adapt_with = |flag: &str| {
        let (base, out) = (p(&base), p(&out));
        let (one, two) = (p(&sample("1.txt")), p(&sample("2.txt")));
        let o = adapt(&[
            "--from",
            &base,
            "--out",
            &out,
            "--orientation",
            "180",
            "--frame-stride",
            "8",
            "--epochs",
            "1",
            "--batch",
            "14",
            "--no-posture",
            flag,
            "--recordings",
            &one,
            &two,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    adapt_with("--recalibrate-encoder");
    let load = |path: PathBuf| {
        Encoder::new(&ModelSource::file(&path).unwrap(), &engine())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut adapted = load(out.join("encoder.onnx"));
    let mut phase2 = load(out.join("run/encoder-phase2.onnx"));
    let recorded = adapted.meta.adapted_on.clone().expect("spmkd.adapted_on");
    assert!(
        recorded.contains("encoder batch norms measured on 28 of them"),
        "{recorded}"
    );
    assert!(phase2.meta.version.ends_with("-adapted-phase2"));

    // The same frame: the norms now follow other statistics, so the keypoints move.
    let mut frames = FrameSet::new(32);
    frames.add_file(&sample("2.txt"), None, 0, 8).unwrap();
    let frame = &frames.inputs[..32 * 32];
    adapted.run(frame).unwrap();
    phase2.run(frame).unwrap();
    let moved = adapted
        .keypoints
        .iter()
        .zip(&phase2.keypoints)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(moved > 1e-4, "the recalibration changed nothing");

    // Resumed without it (phase 2 is done): the model as phase 2 left it, said so.
    adapt_with("--resume");
    let mut plain = load(out.join("encoder.onnx"));
    let recorded = plain.meta.adapted_on.clone().expect("spmkd.adapted_on");
    assert!(!recorded.contains("batch norms"), "{recorded}");
    plain.run(frame).unwrap();
    assert_eq!(plain.keypoints, phase2.keypoints);
}
