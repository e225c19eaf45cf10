//! `spmkdposture` on real recordings: a left-side recording reads left, postures in a row give
//! changes at the right running times, the reposition alert comes at the right buffer time, and
//! bad input (no pose, a pose of another encoder, a model of the wrong kind) gets a clear error.

use gst::prelude::*;
use gst_check::Harness;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::posture::Posture;
use spmkd_core::schema::PostureLabel;
use spmkd_core::schema::{Keypoint, PoseRecord, SCHEMA_VERSION};
use spmkd_tests::{empty_npy, init, play, repo_root, sample, usable_frames};

const SECOND: u64 = 1_000_000_000;

/// What a pipeline gave: the posed records at the sink named `sink` (with PTS), and the
/// spmkd-posture / spmkd-reposition messages in the order they were posted.
struct Run {
    records: Vec<(u64, PoseRecord)>,
    messages: Vec<gst::Structure>,
}

fn run(description: &str) -> Run {
    let (records, messages) = play(description, |b| {
        let pts = b.pts().map_or(0, |t| t.nseconds());
        (pts, PoseMeta::read(b).unwrap().unwrap())
    });
    let messages = messages
        .into_iter()
        .filter(|s| s.name().starts_with("spmkd-posture") || s.name() == "spmkd-reposition")
        .collect();
    Run { records, messages }
}

fn text(s: &gst::Structure, field: &str) -> String {
    s.get::<String>(field).unwrap()
}

fn ns(s: &gst::Structure, field: &str) -> u64 {
    s.get::<u64>(field).unwrap()
}

#[test]
fn a_left_side_recording_reads_left_in_the_meta_and_on_the_bus() {
    let path = sample("3.txt");
    let out = run(&format!(
        "pmatsrc location={} ! spmkdpose ! spmkdposture ! fakesink name=sink",
        path.display()
    ));
    assert_eq!(out.records.len() as u64, usable_frames(&path));
    let left = out
        .records
        .iter()
        .filter(|(_, r)| r.posture.as_ref().unwrap().label == Posture::Left.into())
        .count();
    assert!(
        left * 100 >= out.records.len() * 95,
        "{left} of {} frames read left",
        out.records.len()
    );
    for (_, r) in &out.records {
        let p = &r.posture.as_ref().unwrap().probabilities;
        assert_eq!(p.len(), 3);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{p:?}");
    }
    let first = &out.messages[0];
    assert_eq!(first.name(), "spmkd-posture");
    assert_eq!(
        (text(first, "posture"), ns(first, "running-time")),
        ("left".into(), 0)
    );
    assert!(!first.has_field("previous"));
}

#[test]
fn an_empty_bed_gets_no_posture_without_a_monitor() {
    // Empty stretches (a mat that reads 0 at rest, one with a floor of 44 and its noise)
    // between real recordings, through the README's posture pipeline: no spmkdmonitor.
    let dir = tempfile::tempdir().unwrap();
    let (left, supine) = (sample("3.txt"), sample("1.txt"));
    let bare = empty_npy(dir.path(), "bare.npy", 10, (32, 64), 0);
    let floor = empty_npy(dir.path(), "floor.npy", 10, (32, 64), 44);
    let out = run(&format!(
        "concat name=c ! spmkdpose ! spmkdposture ! fakesink name=sink \
         pmatsrc location={} ! c.  pmatsrc location={} ! c.  pmatsrc location={} ! c. \
         pmatsrc location={} ! c.  pmatsrc location={} ! c.",
        bare.display(),
        left.display(),
        floor.display(),
        supine.display(),
        bare.display(),
    ));
    let (n_left, n_supine) = (
        usable_frames(&left) as usize,
        usable_frames(&supine) as usize,
    );
    let empty =
        |i: usize| i < 10 || (10 + n_left..20 + n_left).contains(&i) || i >= 20 + n_left + n_supine;
    assert_eq!(out.records.len(), 30 + n_left + n_supine);
    for (i, (_, r)) in out.records.iter().enumerate() {
        let p = r.posture.as_ref().unwrap();
        assert_eq!(r.occupied, Some(!empty(i)), "frame {i}");
        if empty(i) {
            assert_eq!(p.label, PostureLabel::NONE, "frame {i}");
            assert!(p.probabilities.is_empty(), "frame {i}");
        } else {
            assert!(p.label.posture().is_some(), "frame {i}: {p:?}");
        }
    }
    // The real frames are read as they were before: left, then supine.
    let share = |range: std::ops::Range<usize>, posture: Posture| {
        let hits = out.records[range.clone()]
            .iter()
            .filter(|(_, r)| r.posture.as_ref().unwrap().label == posture.into())
            .count();
        hits as f64 / range.len() as f64
    };
    assert!(share(10..10 + n_left, Posture::Left) > 0.9);
    assert!(share(20 + n_left..20 + n_left + n_supine, Posture::Supine) > 0.9);
}

#[test]
fn postures_in_a_row_give_each_change_at_the_right_time() {
    // S12: supine, then right side, then left side, one recording after another.
    let files = ["1.txt", "2.txt", "3.txt"].map(sample);
    let sources: String = files
        .iter()
        .map(|f| format!(" pmatsrc location={} ! c.", f.display()))
        .collect();
    let smoothing = 5;
    let out = run(&format!(
        "concat name=c ! spmkdpose ! spmkdposture smoothing={smoothing} ! fakesink name=sink{sources}"
    ));
    let starts = [
        0,
        usable_frames(&files[0]),
        usable_frames(&files[0]) + usable_frames(&files[1]),
    ];
    let changes: Vec<(String, u64)> = out
        .messages
        .iter()
        .filter(|m| m.name() == "spmkd-posture")
        .map(|m| (text(m, "posture"), ns(m, "running-time") / SECOND))
        .collect();
    let names: Vec<&str> = changes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["supine", "right", "left"], "{changes:?}");
    // Each change within the smoothing window after the recording switched.
    for ((_, at), start) in changes.iter().zip(starts) {
        assert!(
            (start..start + smoothing).contains(at),
            "{changes:?}, recordings start at {starts:?} s"
        );
    }
    // Each change says how long the posture before it lasted.
    let right = &out.messages[1];
    assert_eq!(text(right, "previous"), "supine");
    assert_eq!(ns(right, "previous-duration"), ns(right, "running-time"));
}

#[test]
fn the_reposition_alert_comes_once_at_the_right_buffer_time() {
    let path = sample("3.txt");
    let describe = |interval: u64| {
        format!(
            "pmatsrc location={} ! spmkdpose ! spmkdposture reposition-interval={interval} ! fakesink name=sink",
            path.display()
        )
    };
    let out = run(&describe(30 * SECOND));
    let alerts: Vec<&gst::Structure> = out
        .messages
        .iter()
        .filter(|m| m.name() == "spmkd-reposition")
        .collect();
    assert_eq!(alerts.len(), 1, "{:?}", out.messages);
    let a = alerts[0];
    assert_eq!(text(a, "posture"), "left");
    assert_eq!(
        (ns(a, "since"), ns(a, "duration"), ns(a, "running-time")),
        (0, 30 * SECOND, 30 * SECOND)
    );
    // It was posted with the buffer of that time: the 31st frame, one per second.
    assert!(out.records.iter().any(|(pts, _)| *pts == 30 * SECOND));
    // The default interval (2 hours) is far longer than the recording.
    let quiet = run(&format!(
        "pmatsrc location={} ! spmkdpose ! spmkdposture ! fakesink name=sink",
        path.display()
    ));
    assert!(
        quiet
            .messages
            .iter()
            .all(|m| m.name() != "spmkd-reposition")
    );
}

fn gray16(w: u32, h: u32, pts: u64) -> gst::Buffer {
    let mut b = gst::Buffer::with_size((w * h * 2) as usize).unwrap();
    b.get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_nseconds(pts));
    b
}

fn harness(props: &str) -> Harness {
    init();
    let mut h = Harness::new_parse(&format!("spmkdposture {props}"));
    h.set_src_caps_str("video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=1/1");
    h.play();
    h
}

#[test]
fn a_buffer_without_a_pose_passes_unchanged_with_one_warning() {
    let mut h = harness("");
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    for i in 0..3 {
        assert_eq!(h.push(gray16(32, 64, i * SECOND)), Ok(gst::FlowSuccess::Ok));
    }
    for _ in 0..3 {
        let b = h.pull().unwrap();
        assert!(PoseMeta::read(&b).unwrap().is_none());
    }
    let warnings: Vec<String> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("without SpmkdPoseMeta"),
        "{warnings:?}"
    );
}

#[test]
fn a_pose_the_model_cannot_read_is_a_clear_error() {
    let mut h = harness("");
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    // Keypoints without features: what an older spmkdpose or another tool might attach.
    let record = PoseRecord {
        schema: SCHEMA_VERSION,
        pts_ns: None,
        duration_ns: None,
        running_time_ns: None,
        width: 32,
        height: 64,
        model: "elsewhere".into(),
        inference_us: 0,
        stale: false,
        quality: None,
        confidence_reference: None,
        layout: None,
        layout_ramp: None,
        orientation: Default::default(),
        occupied: None,
        posture: None,
        monitor: None,
        keypoints: vec![
            Keypoint {
                x: 1.0,
                y: 2.0,
                confidence: 0.5,
                pressure: 0.5
            };
            32
        ],
        features: Vec::new(),
    };
    let mut b = gray16(32, 64, 0);
    PoseMeta::add(b.get_mut().unwrap(), &record).unwrap();
    assert_eq!(h.push(b), Err(gst::FlowError::NotNegotiated));
    let err = std::iter::from_fn(|| bus.pop())
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error message");
    assert!(
        err.contains("32 keypoints with 0 features") && err.contains("elsewhere"),
        "{err}"
    );
}

#[test]
fn a_model_of_the_wrong_kind_fails_at_the_state_change() {
    init();
    let encoder = repo_root().join("models/default/encoder.onnx");
    let element = gst::ElementFactory::make("spmkdposture")
        .property("model", encoder.to_str().unwrap())
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(element.set_state(gst::State::Paused).is_err());
    let err = std::iter::from_fn(|| bus.pop())
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error message");
    assert!(err.contains("posture") && err.contains("encoder"), "{err}");
    element.set_state(gst::State::Null).unwrap();
}
