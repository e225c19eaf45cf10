//! `spmkdpose orientation`: a mat laid any of the eight ways, told how it lies, gives the
//! keypoints and reconstructions of the frames as the models expect them, mapped into the
//! stream's own cells; spmkdposture reads the same posture; a caps change to another mat keeps
//! working; `auto` follows the encoder's `spmkd.orientation` and an unknown one is refused; a
//! mat laid head to foot is reported once (`spmkd-orientation`), one laid right never.

use std::path::{Path, PathBuf};

use gst::prelude::*;
use gst_check::Harness;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::model_meta::ORIENTATION;
use spmkd_core::orientation::Orientation;
use spmkd_core::schema::PoseRecord;
use spmkd_core::{Format, Frame, Recording};
use spmkd_tests::{data_root, init, repo_root, sample};

/// Every `every`-th usable frame of a recording.
fn frames(path: &Path, every: usize) -> Vec<Frame> {
    let mut rec = Recording::open(path, Format::Auto, None).unwrap();
    let mut out = Vec::new();
    while let Some(f) = rec.next_frame().unwrap() {
        if f.artifact.is_none() {
            out.push(f.frame);
        }
    }
    out.into_iter().step_by(every).collect()
}

/// `frame` as a mat laid `lay` delivers it (the orientation that brings it back is
/// `lay.inverse()`).
fn laid(frame: &Frame, lay: Orientation) -> Frame {
    let mut data = Vec::new();
    let (w, h) = lay.apply(frame.data(), frame.width(), frame.height(), &mut data);
    Frame::new(w, h, data).unwrap()
}

fn caps(w: usize, h: usize) -> gst::Caps {
    gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray16Le, w as u32, h as u32)
        .fps(gst::Fraction::new(1, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

fn buffer(frame: &Frame, index: u64) -> gst::Buffer {
    let info = gst_video::VideoInfo::builder(
        gst_video::VideoFormat::Gray16Le,
        frame.width() as u32,
        frame.height() as u32,
    )
    .build()
    .unwrap();
    let stride = info.stride()[0] as usize;
    let mut data = vec![0u8; info.size()];
    for y in 0..frame.height() {
        for (x, &v) in frame.row(y).iter().enumerate() {
            data[y * stride + 2 * x..][..2].copy_from_slice(&v.to_le_bytes());
        }
    }
    let mut b = gst::Buffer::from_mut_slice(data);
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_seconds(index));
        b.set_duration(gst::ClockTime::SECOND);
    }
    b
}

/// The cells of a GRAY16_LE buffer of `w x h`.
fn cells(b: &gst::BufferRef, w: usize, h: usize) -> Vec<u16> {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray16Le, w as u32, h as u32)
        .build()
        .unwrap();
    let stride = info.stride()[0] as usize;
    let map = b.map_readable().unwrap();
    (0..h)
        .flat_map(|y| {
            let row = &map[y * stride..][..2 * w];
            row.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What `spmkdpose props` (recon_src linked) and `spmkdposture` behind it make of `frames`:
/// per frame its pose (with the posture) and its reconstruction's cells.
fn run(props: &str, frames: &[Frame]) -> Vec<(PoseRecord, Vec<u16>)> {
    init();
    let pose = gst::parse::bin_from_description(&format!("spmkdpose {props}"), false)
        .ok()
        .and_then(|bin| bin.children().into_iter().next())
        .expect("an spmkdpose");
    let mut main = Harness::with_element(&pose, Some("sink"), Some("src"));
    let mut recon = Harness::with_element(&pose, None, Some("recon_src"));
    main.play();
    let mut posture = Harness::new("spmkdposture");
    posture.play();
    let mut segment = None;
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if segment != Some((f.width(), f.height())) {
            main.set_src_caps(caps(f.width(), f.height()));
            posture.set_src_caps(caps(f.width(), f.height()));
            segment = Some((f.width(), f.height()));
        }
        assert_eq!(main.push(buffer(f, i as u64)), Ok(gst::FlowSuccess::Ok));
        let posed = main.pull().unwrap();
        let r = recon.pull().unwrap();
        assert_eq!(posture.push(posed), Ok(gst::FlowSuccess::Ok));
        let classified = posture.pull().unwrap();
        let record = PoseMeta::read(&classified).unwrap().unwrap();
        out.push((record, cells(&r, f.width(), f.height())));
    }
    out
}

#[test]
fn a_mat_laid_any_way_told_how_gives_the_keypoints_of_the_frames_as_expected() {
    // Every 12th frame of a left-side and a supine recording of a held-out subject.
    let mut upright = frames(&sample("3.txt"), 12);
    upright.extend(frames(&sample("1.txt"), 12));
    let reference = run("", &upright);
    assert!(reference.iter().all(|(r, _)| r.orientation.is_identity()));
    for lay in Orientation::ALL {
        let orientation = lay.inverse();
        let delivered: Vec<Frame> = upright.iter().map(|f| laid(f, lay)).collect();
        let got = run(&format!("orientation={orientation}"), &delivered);
        for (i, ((want, want_recon), (r, recon))) in reference.iter().zip(&got).enumerate() {
            let (w, h) = (delivered[i].width(), delivered[i].height());
            assert_eq!((r.width, r.height), (w as u32, h as u32));
            assert_eq!(r.orientation, orientation);
            for (a, b) in want.keypoints.iter().zip(&r.keypoints) {
                // Where the keypoint of the upright frame lies on the grid as delivered.
                let (x, y) = orientation.to_stream(a.x, a.y, w, h);
                assert!(
                    (x - b.x).abs() < 1e-3 && (y - b.y).abs() < 1e-3,
                    "laid {lay}, frame {i}: ({x}, {y}) against ({}, {})",
                    b.x,
                    b.y
                );
                assert!((a.confidence - b.confidence).abs() < 1e-5);
                assert!((a.pressure - b.pressure).abs() < 1e-5);
            }
            assert_eq!(r.layout, want.layout, "laid {lay}, frame {i}");
            assert_eq!(r.occupied, want.occupied);
            // The reconstruction on the delivered grid is the upright one laid the same way.
            let mut expected = Vec::new();
            lay.apply(
                want_recon,
                upright[i].width(),
                upright[i].height(),
                &mut expected,
            );
            assert_eq!(&expected, recon, "laid {lay}, frame {i}: reconstruction");
            // And the posture reads the same.
            let (p, q) = (want.posture.as_ref().unwrap(), r.posture.as_ref().unwrap());
            assert_eq!(p.label, q.label, "laid {lay}, frame {i}");
            for (a, b) in p.probabilities.iter().zip(&q.probabilities) {
                assert!((a - b).abs() < 1e-4, "laid {lay}, frame {i}: {p:?} {q:?}");
            }
        }
    }
}

#[test]
fn told_nothing_a_mirrored_mat_reads_the_other_side() {
    // What the issue found on other makes' mats: columns numbered the other way round turn a
    // left-side recording into a right-side one, unless the element is told.
    let left = frames(&sample("3.txt"), 6);
    let mirrored: Vec<Frame> = left
        .iter()
        .map(|f| laid(f, Orientation::FlipHorizontal))
        .collect();
    let reads = |props: &str| -> Vec<String> {
        run(props, &mirrored)
            .iter()
            .map(|(r, _)| r.posture.as_ref().unwrap().label.to_string())
            .collect()
    };
    let share = |labels: &[String], label: &str| {
        labels.iter().filter(|l| *l == label).count() as f64 / labels.len() as f64
    };
    assert!(share(&reads(""), "right") > 0.8);
    assert!(share(&reads("orientation=horiz"), "left") > 0.9);
}

#[test]
fn a_caps_change_to_another_mat_keeps_working() {
    // Turned a quarter, experiment-i's 32 x 64 and then experiment-ii's 27 x 64 mat.
    let mut delivered: Vec<Frame> = frames(&sample("1.txt"), 20)
        .iter()
        .map(|f| laid(f, Orientation::Rotate90L))
        .collect();
    let n = delivered.len();
    let mat_ii = frames(
        &data_root().join("experiment-ii/S1/Air_Mat/Matrix_Air_B1.txt"),
        1,
    );
    delivered.push(laid(
        &laid(&mat_ii[0], Experiment::II.orientation()),
        Orientation::Rotate90L,
    ));
    let got = run("orientation=90r", &delivered);
    assert_eq!((got[0].0.width, got[0].0.height), (64, 32));
    let last = &got[n].0;
    assert_eq!((last.width, last.height), (64, 27));
    let on_mat = last
        .keypoints
        .iter()
        .filter(|k| (0.0..64.0).contains(&k.x) && (0.0..27.0).contains(&k.y))
        .count();
    assert!(
        on_mat >= 24,
        "{on_mat} of 32 keypoints on the turned 27-row mat"
    );
    assert_eq!(
        last.posture.as_ref().unwrap().label,
        spmkd_core::posture::Posture::Supine.into()
    );
}

use spmkd_core::dataset::Experiment;

/// The built-in encoder with its `spmkd.orientation` set to `value` (or removed), in `dir`.
fn encoder_saying(dir: &Path, value: Option<&str>) -> PathBuf {
    use onnx_ir::{Message, ModelProto};
    let bytes = std::fs::read(repo_root().join("models/default/encoder.onnx")).unwrap();
    let mut model = ModelProto::parse_from_bytes(&bytes).unwrap();
    model.metadata_props.retain(|p| p.key != ORIENTATION);
    if let Some(value) = value {
        model.metadata_props.push(Default::default());
        let entry = model.metadata_props.last_mut().unwrap();
        entry.key = ORIENTATION.to_owned();
        entry.value = value.to_owned();
    }
    let path = dir.join(format!("encoder-{}.onnx", value.unwrap_or("none")));
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    path
}

#[test]
fn auto_follows_the_encoders_metadata_and_a_setting_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let decoder = repo_root().join("models/default/decoder.onnx");
    let encoder = encoder_saying(dir.path(), Some("horiz"));
    let upright = frames(&sample("3.txt"), 20);
    let mirrored: Vec<Frame> = upright
        .iter()
        .map(|f| laid(f, Orientation::FlipHorizontal))
        .collect();
    let models = format!("model={} decoder={}", encoder.display(), decoder.display());
    let reference = run("", &upright);
    let auto = run(&models, &mirrored);
    let told = run(&format!("{models} orientation=identity"), &mirrored);
    for (i, ((want, _), (got, _))) in reference.iter().zip(&auto).enumerate() {
        assert_eq!(got.orientation, Orientation::FlipHorizontal);
        let (w, h) = (got.width as usize, got.height as usize);
        for (a, b) in want.keypoints.iter().zip(&got.keypoints) {
            let (x, y) = Orientation::FlipHorizontal.to_stream(a.x, a.y, w, h);
            assert!(
                (x - b.x).abs() < 1e-3 && (y - b.y).abs() < 1e-3,
                "frame {i}"
            );
        }
        assert!(told[i].0.orientation.is_identity());
    }
    // The explicit identity runs the mirrored frames as they are: other keypoints.
    assert_ne!(
        auto.iter()
            .map(|(r, _)| r.keypoints.clone())
            .collect::<Vec<_>>(),
        told.iter()
            .map(|(r, _)| r.keypoints.clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_encoder_naming_an_unknown_orientation_is_refused_at_the_state_change() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder_saying(dir.path(), Some("sideways"));
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=GRAY16_LE,width=32,height=64 ! \
         spmkdpose model={} ! fakesink",
        encoder.display()
    ))
    .unwrap();
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let bus = pipeline.bus().unwrap();
    let error = bus
        .iter_timed(gst::ClockTime::from_seconds(30))
        .find_map(|msg| match msg.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error message");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        error.contains(ORIENTATION) && error.contains("\"sideways\""),
        "{error}"
    );
}

/// A pipeline of every labelled experiment-ii frame of `subjects` on the Air mattress, one
/// file after another, into `spmkdpose props`.
fn experiment_ii(subjects: &[u8], props: &str) -> String {
    let index = spmkd_core::dataset::DatasetIndex::scan(data_root()).unwrap();
    let mut sources = String::new();
    for e in index.entries.iter().filter(|e| {
        e.experiment == Experiment::II
            && e.mat == spmkd_core::dataset::Mat::Air
            && subjects.contains(&e.subject)
            && e.posture.is_some()
    }) {
        sources.push_str(&format!(" pmatsrc location={} ! c.", e.path.display()));
    }
    format!("concat name=c ! spmkdpose {props} ! fakesink name=sink {sources}")
}

fn head_foot_messages(description: &str) -> Vec<gst::Structure> {
    let (_, messages) = spmkd_tests::play(description, |_| ());
    messages
        .into_iter()
        .filter(|m| m.name() == spmkd_core::layout::message::NAME)
        .collect()
}

#[test]
fn a_mat_laid_head_to_foot_is_reported_once_and_one_laid_right_never() {
    use spmkd_core::layout::message as m;
    // Experiment-ii as recorded: head at the last row. 58 occupied frames, a stretch of 20.
    let found = head_foot_messages(&experiment_ii(&[1, 2], "orientation-check=20"));
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0];
    assert_eq!(s.get::<String>(m::ORIENTATION).unwrap(), "identity");
    assert_eq!(s.get::<String>(m::SUGGESTED).unwrap(), "180");
    assert_eq!(s.get::<u32>(m::FRAMES).unwrap(), 20);
    assert!(s.get::<f32>(m::EVIDENCE).unwrap() > spmkd_core::layout::HEAD_FOOT_MARGIN);
    let at = s.get::<gst::ClockTime>(m::RUNNING_TIME).unwrap();
    assert_eq!(
        at,
        gst::ClockTime::from_seconds(19),
        "decided at the 20th frame"
    );
    // Laid as installed, and off: nothing.
    assert!(
        head_foot_messages(&experiment_ii(
            &[1, 2],
            "orientation=180 orientation-check=20"
        ))
        .is_empty()
    );
    assert!(head_foot_messages(&experiment_ii(&[1, 2], "orientation-check=0")).is_empty());
    // A held-out subject of the convention's own mat, every sample recording: never.
    for name in ["1.txt", "2.txt", "3.txt"] {
        let description = format!(
            "pmatsrc location={} ! spmkdpose ! fakesink name=sink",
            sample(name).display()
        );
        assert!(head_foot_messages(&description).is_empty(), "{name}");
    }
}
