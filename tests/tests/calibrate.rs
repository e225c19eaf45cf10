//! `spmkd_training::calibrate` (what `spmkd-train calibrate` runs) on a few frames of a
//! held-out subject on a mat laid another way: it finds how the mat lies, and the model
//! directory it writes loads in `spmkdpose` and `spmkdposture` with no other property, the
//! orientation applied. What it refuses: recordings that cannot tell, an empty or unreadable
//! one, another mat size among them.

use std::path::{Path, PathBuf};

use gstspmkd::posemeta::PoseMeta;
use spmkd_core::orientation::Orientation;
use spmkd_core::posture::Posture;
use spmkd_core::{Format, Recording};
use spmkd_tests::{npy_bytes, play, repo_root, sample};
use spmkd_training::calibrate::{self, LabelledFrame};

/// Every `every`-th usable frame of a sample recording laid by `lay`, as a GRAY16 `.npy`.
fn laid_npy(dir: &Path, name: &str, every: usize, lay: Orientation) -> PathBuf {
    let mut rec = Recording::open(sample(name), Format::Auto, None).unwrap();
    let (mut data, mut n, mut size) = (Vec::new(), 0, (0, 0));
    let mut laid = Vec::new();
    let mut i = 0;
    while let Some(f) = rec.next_frame().unwrap() {
        if f.artifact.is_some() {
            continue;
        }
        i += 1;
        if (i - 1) % every != 0 {
            continue;
        }
        size = lay.apply(f.frame.data(), f.frame.width(), f.frame.height(), &mut laid);
        data.extend(laid.iter().flat_map(|v| v.to_le_bytes()));
        n += 1;
    }
    let path = dir.join(format!("{lay}-{name}.npy"));
    std::fs::write(&path, npy_bytes("<u2", &[n, size.1, size.0], &data)).unwrap();
    path
}

/// The volunteer: S12 on their back (1.txt), left (3.txt), right (2.txt), every 40th frame (3
/// a posture), on a mat laid `lay`.
fn volunteer(dir: &Path, lay: Orientation) -> (Vec<LabelledFrame>, Vec<PathBuf>) {
    let mut frames = Vec::new();
    let mut files = Vec::new();
    for (name, posture) in [
        ("1.txt", Posture::Supine),
        ("3.txt", Posture::Left),
        ("2.txt", Posture::Right),
    ] {
        let file = laid_npy(dir, name, 40, lay);
        frames.extend(calibrate::load(std::slice::from_ref(&file), posture, None).unwrap());
        files.push(file);
    }
    (frames, files)
}

#[test]
fn a_mirrored_and_a_turned_mat_are_found_and_the_models_load_with_the_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let from = repo_root().join("models/default");
    for (lay, expected) in [
        (Orientation::FlipHorizontal, Orientation::FlipHorizontal),
        (Orientation::Rotate90R, Orientation::Rotate90L),
    ] {
        let (frames, files) = volunteer(dir.path(), lay);
        assert_eq!(frames.len(), 9);
        let out = dir.path().join(format!("calibrated-{lay}"));
        let report = calibrate::calibrate(&from, &frames, &files, &out, None).unwrap();
        assert_eq!(report.orientation, expected, "laid {lay}: {report:?}");
        assert!(report.margin >= calibrate::MIN_MARGIN);
        for name in [
            "encoder.onnx",
            "decoder.onnx",
            "posture.onnx",
            "calibration.json",
        ] {
            assert!(out.join(name).is_file(), "{name}");
        }
        // The left-side recording as this mat delivers it, through the calibrated models and
        // no orientation property.
        let left = laid_npy(dir.path(), "3.txt", 1, lay);
        let (records, _) = play(
            &format!(
                "pmatsrc location={} ! spmkdpose model={m}/encoder.onnx decoder={m}/decoder.onnx ! \
                 spmkdposture model={m}/posture.onnx ! fakesink name=sink",
                left.display(),
                m = out.display()
            ),
            |b| PoseMeta::read(b).unwrap().unwrap(),
        );
        assert!(records.iter().all(|r| r.orientation == expected));
        let (w, h) = lay.size(32, 64);
        assert!(
            records
                .iter()
                .all(|r| (r.width, r.height) == (w as u32, h as u32))
        );
        let left_read = records
            .iter()
            .filter(|r| r.posture.as_ref().unwrap().label == Posture::Left.into())
            .count();
        assert!(
            left_read * 10 >= records.len() * 9,
            "{left_read} of {} read left",
            records.len()
        );
        let meta = spmkd_core::engine::Encoder::new(
            &spmkd_core::engine::ModelSource::file(&out.join("encoder.onnx")).unwrap(),
            &spmkd_core::engine::EngineOptions::cpu(1),
        )
        .unwrap()
        .meta;
        assert_eq!(meta.orientation, expected);
        assert!(meta.calibrated_on.unwrap().contains("one volunteer"));
        // The rescaling runs inside the written posture.onnx as calibrate fitted it.
        let mut given =
            calibrate::Reader::new(&from.join("encoder.onnx"), &from.join("posture.onnx")).unwrap();
        let mut written =
            calibrate::Reader::new(&out.join("encoder.onnx"), &out.join("posture.onnx")).unwrap();
        for f in &frames {
            let z = report
                .scaling
                .apply(&given.read(f, expected).unwrap().log_p);
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = z.iter().map(|v| (v - max).exp()).sum();
            let read = written.read(f, expected).unwrap().log_p;
            for c in 0..3 {
                let want = (z[c] - max).exp() / total;
                assert!(
                    (read[c].exp() - want).abs() < 1e-4,
                    "{read:?} against {z:?}"
                );
            }
        }
    }
}

#[test]
fn recordings_that_cannot_tell_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let from = repo_root().join("models/default");
    let (frames, files) = volunteer(dir.path(), Orientation::Identity);
    // The left recording given as the right one too: left and right look alike.
    let mut alike: Vec<LabelledFrame> = frames
        .iter()
        .filter(|f| f.posture != Posture::Right)
        .cloned()
        .collect();
    alike.extend(
        frames
            .iter()
            .filter(|f| f.posture == Posture::Left)
            .map(|f| LabelledFrame {
                posture: Posture::Right,
                ..f.clone()
            }),
    );
    let err = calibrate::calibrate(&from, &alike, &files, &dir.path().join("alike"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot tell which way the mat lies"), "{err}");
    assert!(
        !dir.path().join("alike").exists(),
        "nothing written on a refusal"
    );
    // An empty recording, a missing one.
    let empty = dir.path().join("empty.npy");
    std::fs::write(&empty, npy_bytes("<u2", &[0, 64, 32], &[])).unwrap();
    let err = calibrate::load(&[empty], Posture::Left, None).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("the left recording") && err.contains("holds no frames"),
        "{err}"
    );
    let err = calibrate::load(&[dir.path().join("nowhere.txt")], Posture::Left, None).unwrap_err();
    assert!(format!("{err:#}").contains("nowhere.txt"), "{err:#}");
    // Another mat size among the recordings.
    let mut mixed = frames.clone();
    mixed.push(LabelledFrame {
        width: 27,
        height: 64,
        data: vec![0; 27 * 64],
        ..frames[0].clone()
    });
    let err =
        calibrate::calibrate(&from, &mixed, &files, &dir.path().join("mixed"), None).unwrap_err();
    assert!(err.to_string().contains("different mat sizes"), "{err}");
}
