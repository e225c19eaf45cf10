//! `spmkd-train calibrate` end to end on sample recordings of experiment-i S12 (laid as the
//! models expect): it finds the orientation, reports it and writes the model directory, with
//! progress on stderr when stderr is not a terminal; it refuses an output directory that exists
//! and recordings that cannot tell, writing nothing.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::sample;

fn calibrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spmkd-train"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("calibrate")
        .args(["--from", "../models/default"])
        .args(args)
        .output()
        .expect("spmkd-train runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn a_volunteer_on_a_mat_laid_right_gives_identity_and_a_model_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bed");
    let (supine, left, right) = (
        path(&sample("1.txt")),
        path(&sample("3.txt")),
        path(&sample("2.txt")),
    );
    let args = [
        "--supine", &supine, "--left", &left, "--right", &right, "--out",
    ];
    let o = calibrate(&[&args[..], &[&path(&out)]].concat());
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("orientation: identity"), "{stdout}");
    assert!(stdout.contains("margin over the next"), "{stdout}");
    assert!(stderr.contains("at most 60 a posture"), "{stderr}");
    assert!(
        stderr.contains("reading the volunteer's frames: done"),
        "progress in a log: {stderr}"
    );
    for name in [
        "encoder.onnx",
        "decoder.onnx",
        "posture.onnx",
        "calibration.json",
    ] {
        assert!(out.join(name).is_file(), "{name}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("calibration.json")).unwrap())
            .unwrap();
    assert_eq!(report["orientation"], "identity");
    assert_eq!(report["frames"]["left"], 60);

    // Again into the same directory: refused, nothing changed.
    let before = std::fs::read(out.join("posture.onnx")).unwrap();
    let o = calibrate(&[&args[..], &[&path(&out)]].concat());
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("exists"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read(out.join("posture.onnx")).unwrap(), before);
}

#[test]
fn the_same_recording_as_both_sides_is_refused_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bed");
    let (supine, left) = (path(&sample("1.txt")), path(&sample("3.txt")));
    let o = calibrate(&[
        "--supine",
        &supine,
        "--left",
        &left,
        "--right",
        &left,
        "--out",
        &path(&out),
    ]);
    let stderr = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("cannot tell which way the mat lies"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written on a refusal");
}
