//! gst-check and pipeline tests of `spmkdpose` on real PmatData frames: the meta on every
//! buffer, both pads' counts and timestamps, stale marking, caps changes, flush/seek/EOS, the
//! error cases, and keypoints equal to the Burn model's on the same frames.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_check::Harness;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::model_meta::{ModelKind, ModelMetadata};
use spmkd_core::orientation::Orientation;
use spmkd_core::schema::PoseRecord;
use spmkd_core::{Format, Frame, Recording};
use spmkd_tests::{data_root, init, sample};

/// The usable frames of a recording.
fn frames(path: &Path) -> Vec<Frame> {
    let mut rec = Recording::open(path, Format::Auto, None).unwrap();
    let mut out = Vec::new();
    while let Some(f) = rec.next_frame().unwrap() {
        if f.artifact.is_none() {
            out.push(f.frame);
        }
    }
    out
}

fn caps(format: gst_video::VideoFormat, w: usize, h: usize) -> gst::Caps {
    gst_video::VideoInfo::builder(format, w as u32, h as u32)
        .fps(gst::Fraction::new(1, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

/// A GRAY16_LE (or GRAY8, values must fit) buffer of `frame`, rows padded as VideoInfo says.
fn buffer(frame: &Frame, format: gst_video::VideoFormat, index: u64) -> gst::Buffer {
    let (w, h) = (frame.width(), frame.height());
    let info = gst_video::VideoInfo::builder(format, w as u32, h as u32)
        .build()
        .unwrap();
    let stride = info.stride()[0] as usize;
    let mut data = vec![0u8; info.size()];
    for y in 0..h {
        for (x, &v) in frame.row(y).iter().enumerate() {
            match format {
                gst_video::VideoFormat::Gray8 => {
                    data[y * stride + x] = u8::try_from(v).expect("GRAY8 value")
                }
                _ => data[y * stride + 2 * x..][..2].copy_from_slice(&v.to_le_bytes()),
            }
        }
    }
    let mut b = gst::Buffer::from_mut_slice(data);
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_seconds(index));
        b.set_duration(gst::ClockTime::SECOND);
        b.set_offset(index);
    }
    b
}

fn pose_element(props: &[(&str, glib::Value)]) -> gst::Element {
    init();
    let mut builder = gst::ElementFactory::make("spmkdpose");
    for (name, value) in props {
        builder = builder.property(name, value.clone());
    }
    builder.build().expect("spmkdpose exists")
}

use gst::glib;

/// Harnesses on `src` and, when `recon`, on `recon_src` (so it is linked).
fn harnesses(element: &gst::Element, recon: bool) -> (Harness, Option<Harness>) {
    let mut main = Harness::with_element(element, Some("sink"), Some("src"));
    let recon = recon.then(|| Harness::with_element(element, None, Some("recon_src")));
    main.play();
    (main, recon)
}

fn push_all(h: &mut Harness, frames: &[Frame], format: gst_video::VideoFormat) {
    h.set_src_caps(caps(format, frames[0].width(), frames[0].height()));
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(
            h.push(buffer(f, format, i as u64)),
            Ok(gst::FlowSuccess::Ok)
        );
    }
}

fn pull_all(h: &mut Harness) -> Vec<gst::Buffer> {
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        out.push(b);
    }
    out
}

fn pose(b: &gst::BufferRef) -> PoseRecord {
    PoseMeta::read(b).expect("a readable meta").expect("a meta")
}

#[test]
fn every_buffer_leaves_with_a_meta_its_data_and_timestamps_and_a_reconstruction() {
    let frames = frames(&sample("3.txt"));
    assert_eq!(frames.len(), 117);
    let element = pose_element(&[]);
    let (mut main, recon) = harnesses(&element, true);
    let mut recon = recon.unwrap();
    push_all(&mut main, &frames, gst_video::VideoFormat::Gray16Le);
    main.push_event(gst::event::Eos::new());

    let out = pull_all(&mut main);
    assert_eq!(out.len(), frames.len());
    for (i, (b, f)) in out.iter().zip(&frames).enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_seconds(i as u64)));
        assert_eq!(b.duration(), Some(gst::ClockTime::SECOND));
        let map = b.map_readable().unwrap();
        let input = buffer(f, gst_video::VideoFormat::Gray16Le, 0);
        assert_eq!(map.as_slice(), input.map_readable().unwrap().as_slice());
        let p = pose(b);
        assert_eq!((p.width, p.height, p.stale), (32, 64, false));
        assert_eq!(p.keypoints.len(), 32);
        assert_eq!((p.features.len(), p.features_per_keypoint()), (32 * 16, 16));
        assert_eq!(p.model, "spmkd-default-4");
        assert!(p.quality.is_none());
    }
    let recon_out = pull_all(&mut recon);
    assert_eq!(recon_out.len(), frames.len());
    let recon_caps = recon.sinkpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&recon_caps).unwrap();
    assert_eq!(
        (info.format(), info.width(), info.height()),
        (gst_video::VideoFormat::Gray16Le, 32, 64)
    );
    for (i, b) in recon_out.iter().enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_seconds(i as u64)));
        assert_eq!(b.duration(), Some(gst::ClockTime::SECOND));
        assert_eq!(b.size(), info.size());
    }
    // Both pads end with EOS.
    assert!(main.events_received() > 0);
    assert!(
        std::iter::from_fn(|| recon.try_pull_event()).any(|e| e.type_() == gst::EventType::Eos)
    );
}

/// Mean over the pixels of |a - b| after each is min-max normalized.
fn normalized_distance(a: &[f32], b: &[f32]) -> f32 {
    let norm = |v: &[f32]| {
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        v.iter()
            .map(|x| (x - lo) / (hi - lo).max(1e-6))
            .collect::<Vec<_>>()
    };
    let (a, b) = (norm(a), norm(b));
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

fn gray16_values(b: &gst::BufferRef, w: usize, h: usize) -> Vec<f32> {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray16Le, w as u32, h as u32)
        .build()
        .unwrap();
    let stride = info.stride()[0] as usize;
    let map = b.map_readable().unwrap();
    (0..h)
        .flat_map(|y| {
            let row = &map[y * stride..][..2 * w];
            row.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_default_model_rebuilds_each_frame_and_finds_keypoints_on_the_body() {
    // Held-out subject S12: never trained on.
    let frames: Vec<Frame> = frames(&sample("1.txt")).into_iter().step_by(10).collect();
    let element = pose_element(&[("quality", true.to_value())]);
    let (mut main, recon) = harnesses(&element, true);
    let mut recon = recon.unwrap();
    push_all(&mut main, &frames, gst_video::VideoFormat::Gray16Le);
    let out = pull_all(&mut main);
    let recon_out = pull_all(&mut recon);
    assert_eq!((out.len(), recon_out.len()), (frames.len(), frames.len()));
    for (i, f) in frames.iter().enumerate() {
        let p = pose(&out[i]);
        let q = p.quality.expect("quality=true writes the SSIM");
        assert!(q > 0.6, "frame {i}: SSIM {q}");
        // The reconstruction is closer to its own frame than to a frame of another posture
        // file (recording 1 is supine; 3.txt's frames lie on the left side).
        let input: Vec<f32> = f.data().iter().map(|&v| v as f32).collect();
        let rebuilt = gray16_values(&recon_out[i], 32, 64);
        let other: Vec<f32> = frames_of_3()[i].data().iter().map(|&v| v as f32).collect();
        assert!(
            normalized_distance(&rebuilt, &input) < normalized_distance(&rebuilt, &other),
            "frame {i}"
        );
        // Keypoints weighted by confidence sit where there is pressure.
        let mean_pressure = input.iter().sum::<f32>()
            / input.len() as f32
            / input.iter().cloned().fold(0.0, f32::max);
        let weight: f32 = p.keypoints.iter().map(|k| k.confidence).sum();
        let under: f32 = p
            .keypoints
            .iter()
            .map(|k| k.confidence * k.pressure)
            .sum::<f32>()
            / weight;
        assert!(
            under > 1.5 * mean_pressure,
            "frame {i}: pressure under keypoints {under}, frame mean {mean_pressure}"
        );
    }
}

fn frames_of_3() -> Vec<Frame> {
    frames(&sample("3.txt")).into_iter().step_by(10).collect()
}

#[test]
fn inference_interval_carries_the_last_keypoints_marked_stale() {
    let frames: Vec<Frame> = frames(&sample("2.txt")).into_iter().take(10).collect();
    let element = pose_element(&[("inference-interval", 3u32.to_value())]);
    let (mut main, recon) = harnesses(&element, true);
    let mut recon = recon.unwrap();
    push_all(&mut main, &frames, gst_video::VideoFormat::Gray16Le);
    let poses: Vec<PoseRecord> = pull_all(&mut main).iter().map(|b| pose(b)).collect();
    let stale: Vec<bool> = poses.iter().map(|p| p.stale).collect();
    assert_eq!(
        stale,
        [
            false, true, true, false, true, true, false, true, true, false
        ]
    );
    for (i, p) in poses.iter().enumerate() {
        let fresh = &poses[i - i % 3];
        assert_eq!(p.keypoints, fresh.keypoints, "frame {i}");
        assert_eq!(p.inference_us == 0, p.stale, "frame {i}");
    }
    assert_ne!(poses[0].keypoints, poses[3].keypoints);
    let recon_out = pull_all(&mut recon);
    assert_eq!(recon_out.len(), 10);
    for (i, b) in recon_out.iter().enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_seconds(i as u64)));
    }
}

#[test]
fn an_unlinked_pad_never_stops_the_other() {
    let frames: Vec<Frame> = frames(&sample("2.txt")).into_iter().take(4).collect();
    // recon_src not linked: the main stream flows.
    let element = pose_element(&[]);
    let (mut main, _) = harnesses(&element, false);
    push_all(&mut main, &frames, gst_video::VideoFormat::Gray16Le);
    assert_eq!(pull_all(&mut main).len(), 4);

    // src not linked, recon_src linked: the reconstruction flows.
    let element = pose_element(&[]);
    let mut recon = Harness::with_element(&element, Some("sink"), Some("recon_src"));
    recon.play();
    push_all(&mut recon, &frames, gst_video::VideoFormat::Gray16Le);
    assert_eq!(pull_all(&mut recon).len(), 4);
}

#[test]
fn a_caps_change_mid_stream_renegotiates_and_goes_on() {
    let mat_i: Vec<Frame> = frames(&sample("1.txt")).into_iter().take(3).collect();
    let mat_ii = frames(&data_root().join("experiment-ii/S1/Air_Mat/Matrix_Air_B1.txt"));
    assert_eq!((mat_ii[0].width(), mat_ii[0].height()), (27, 64));
    let element = pose_element(&[("inference-interval", 2u32.to_value())]);
    let (mut main, recon) = harnesses(&element, true);
    let mut recon = recon.unwrap();
    push_all(&mut main, &mat_i, gst_video::VideoFormat::Gray16Le);
    main.set_src_caps(caps(gst_video::VideoFormat::Gray16Le, 27, 64));
    assert_eq!(
        main.push(buffer(&mat_ii[0], gst_video::VideoFormat::Gray16Le, 3)),
        Ok(gst::FlowSuccess::Ok)
    );
    let poses: Vec<PoseRecord> = pull_all(&mut main).iter().map(|b| pose(b)).collect();
    assert_eq!(poses.len(), 4);
    assert_eq!((poses[2].width, poses[3].width), (32, 27));
    // Frame 2 was due for inference anyway; frame 3 is the first of a new grid, so it is
    // inferred although the interval would have skipped it.
    assert!(!poses[3].stale);
    let on_mat = poses[3]
        .keypoints
        .iter()
        .filter(|k| (0.0..27.0).contains(&k.x) && (0.0..64.0).contains(&k.y))
        .count();
    assert!(on_mat >= 24, "{on_mat} of 32 keypoints on the 27-wide mat");
    let recon_out = pull_all(&mut recon);
    assert_eq!(recon_out.len(), 4);
    let info_27 = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray16Le, 27, 64)
        .build()
        .unwrap();
    assert_eq!(recon_out[3].size(), info_27.size());
    let caps = recon.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(gst_video::VideoInfo::from_caps(&caps).unwrap().width(), 27);
}

#[test]
fn gray8_and_gray16_of_the_same_pressure_give_the_same_keypoints() {
    let frames: Vec<Frame> = frames(&sample("3.txt"))
        .into_iter()
        .take(5)
        .map(|f| {
            let max = f.data().iter().copied().max().unwrap_or(1).max(1) as u32;
            let data = f
                .data()
                .iter()
                .map(|&v| (v as u32 * 255 / max) as u16)
                .collect();
            Frame::new(f.width(), f.height(), data).unwrap()
        })
        .collect();
    let run = |format| {
        let element = pose_element(&[]);
        let (mut main, _) = harnesses(&element, false);
        push_all(&mut main, &frames, format);
        pull_all(&mut main)
            .iter()
            .map(|b| pose(b).keypoints)
            .collect::<Vec<_>>()
    };
    let gray8 = run(gst_video::VideoFormat::Gray8);
    assert_eq!(gray8.len(), 5);
    assert_eq!(gray8, run(gst_video::VideoFormat::Gray16Le));
}

#[test]
fn flush_resets_the_interval_and_eos_may_come_first() {
    // EOS before any buffer or caps: both pads see it.
    let element = pose_element(&[]);
    let (mut main, recon) = harnesses(&element, true);
    let mut recon = recon.unwrap();
    assert!(main.push_event(gst::event::Eos::new()));
    let eos = |h: &mut Harness| {
        std::iter::from_fn(|| h.try_pull_event()).any(|e| e.type_() == gst::EventType::Eos)
    };
    assert!(eos(&mut main) && eos(&mut recon));

    let frames: Vec<Frame> = frames(&sample("2.txt")).into_iter().take(6).collect();
    let element = pose_element(&[("inference-interval", 4u32.to_value())]);
    let (mut main, _) = harnesses(&element, false);
    push_all(&mut main, &frames[..2], gst_video::VideoFormat::Gray16Le);
    assert!(main.push_event(gst::event::FlushStart::new()));
    assert!(main.push_event(gst::event::FlushStop::new(true)));
    main.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    for (i, f) in frames[2..].iter().enumerate() {
        main.push(buffer(f, gst_video::VideoFormat::Gray16Le, 2 + i as u64))
            .unwrap();
    }
    let stale: Vec<bool> = pull_all(&mut main).iter().map(|b| pose(b).stale).collect();
    // Two before the flush (fresh, stale); after it the count starts again.
    assert_eq!(stale, [false, true, false, true, true, true]);
}

/// Runs a pipeline description to EOS (or `max` buffers), collecting the poses and PTS seen
/// at the sink named `sink`; `seek` is performed once the pipeline is paused.
fn run_collect(
    description: &str,
    seek: Option<gst::ClockTime>,
) -> Vec<(gst::ClockTime, PoseRecord)> {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = pipeline.by_name("sink").unwrap();
    let s = seen.clone();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                s.lock()
                    .unwrap()
                    .push((b.pts().unwrap(), PoseMeta::read(b).unwrap().unwrap()));
            }
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(30));
    if let Some(position) = seek {
        seen.lock().unwrap().clear();
        // To 20 s: a live-like source would otherwise run forever.
        pipeline
            .seek(
                1.0,
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::SeekType::Set,
                position,
                gst::SeekType::Set,
                gst::ClockTime::from_seconds(20),
            )
            .expect("seekable");
        let _ = pipeline.state(gst::ClockTime::from_seconds(30));
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}: {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    std::mem::take(&mut *seen.lock().unwrap())
}

#[test]
fn a_seek_flushes_and_the_poses_follow_the_new_position() {
    // videotestsrc seeks exactly and draws the same frame for the same time (rawvideoparse of
    // GStreamer 1.22 restarts from the first frame when seeked in a file, so it cannot serve).
    let source = "videotestsrc pattern=ball ! \
                  video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=1/1";
    // One lane, and three on their threads (the flush then drops frames in flight).
    let seeked = |lanes: u32| {
        let description = format!(
            "{source} ! spmkdpose inference-interval=5 parallel-frames={lanes} ! fakesink name=sink sync=false"
        );
        let after = run_collect(&description, Some(gst::ClockTime::from_seconds(7)));
        let pts: Vec<u64> = after.iter().map(|(t, _)| t.seconds()).collect();
        assert_eq!(pts, (7..20).collect::<Vec<_>>(), "parallel-frames={lanes}");
        // After the flushing seek the first frame is inferred, then the interval counts from it.
        let stale: Vec<bool> = after.iter().map(|(_, p)| p.stale).collect();
        assert_eq!(&stale[..6], [false, true, true, true, true, false]);
        after
    };
    let after = seeked(1);
    let three = seeked(3);
    let poses = |v: &[(gst::ClockTime, PoseRecord)]| -> Vec<_> {
        v.iter().map(|(_, p)| p.keypoints.clone()).collect()
    };
    assert_eq!(poses(&three), poses(&after));
    // And its pose is frame 7's own, as a run without seek and interval finds it.
    let fresh = run_collect(
        &format!(
            "videotestsrc num-buffers=8 pattern=ball ! {} ! spmkdpose ! fakesink name=sink sync=false",
            source.split_once('!').unwrap().1
        ),
        None,
    );
    assert_eq!(after[0].1.keypoints, fresh[7].1.keypoints);
}

#[test]
fn coordinates_follow_the_frame_through_videoscale() {
    let description = format!(
        "pmatsrc location={} ! spmkdpose ! videoscale ! \
         video/x-raw,width=64,height=192 ! fakesink name=sink sync=false",
        sample("2.txt").display()
    );
    let scaled = run_collect(&description, None);
    let plain = run_collect(
        &format!(
            "pmatsrc location={} ! spmkdpose ! fakesink name=sink sync=false",
            sample("2.txt").display()
        ),
        None,
    );
    assert_eq!(scaled.len(), plain.len());
    for ((_, s), (_, p)) in scaled.iter().zip(&plain) {
        assert_eq!((s.width, s.height), (64, 192));
        for (a, b) in s.keypoints.iter().zip(&p.keypoints) {
            assert!((a.x - 2.0 * b.x).abs() < 1e-4 && (a.y - 3.0 * b.y).abs() < 1e-4);
            assert_eq!((a.confidence, a.pressure), (b.confidence, b.pressure));
        }
    }
}

/// An untrained model exported by the training code, so the test does not depend on the
/// shipped one.
fn exported(dir: &Path) -> (spmkd_training::model::Efd, String) {
    exported_with(dir, spmkd_training::model::EfdConfig::new())
}

/// An untrained model of `config` exported to `dir`.
fn exported_with(
    dir: &Path,
    config: spmkd_training::model::EfdConfig,
) -> (spmkd_training::model::Efd, String) {
    use burn::prelude::*;
    use spmkd_training::model::Phase;
    let device = Device::flex();
    device.seed(5);
    let model = config.init(Phase::Regression, &device).valid();
    let version = "test-untrained-seed5".to_owned();
    let provenance = spmkd_training::export::Provenance {
        version: version.clone(),
        trained_on: "nothing".into(),
        ..Default::default()
    };
    spmkd_training::export::export(&model, &config, &provenance, dir, &device).unwrap();
    (model, version)
}

#[test]
fn keypoints_equal_the_burn_models_on_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (model, version) = exported(dir.path());
    let frames: Vec<Frame> = frames(&sample("3.txt")).into_iter().step_by(12).collect();
    let element = pose_element(&[
        (
            "model",
            dir.path().join("encoder.onnx").to_str().unwrap().to_value(),
        ),
        (
            "decoder",
            dir.path().join("decoder.onnx").to_str().unwrap().to_value(),
        ),
    ]);
    let (mut main, _) = harnesses(&element, false);
    push_all(&mut main, &frames, gst_video::VideoFormat::Gray16Le);
    let out = pull_all(&mut main);
    assert_eq!(out.len(), frames.len());
    let device = burn::prelude::Device::flex();
    for (b, f) in out.iter().zip(&frames) {
        let p = pose(b);
        assert_eq!(p.model, version);
        let burn = spmkd_training::keypoints::frame_keypoints(
            &model,
            false,
            Orientation::Identity,
            f.data(),
            32,
            64,
            &device,
        );
        assert_eq!(p.keypoints.len(), burn.len());
        for (a, e) in p.keypoints.iter().zip(&burn) {
            for (x, y) in [
                (a.x, e.x),
                (a.y, e.y),
                (a.confidence, e.confidence),
                (a.pressure, e.pressure),
            ] {
                assert!((x - y).abs() < 1e-3, "{a:?} vs {e:?}");
            }
        }
    }
}

/// Starts `spmkdpose` with `props` in a pipeline; the error message it fails with, if any.
fn start_error(props: &str) -> Option<String> {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=GRAY16_LE,width=32,height=64 ! \
         spmkdpose {props} ! fakesink"
    ))
    .unwrap();
    let result = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().unwrap();
    let mut error = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Error(e) => {
                error = Some(e.error().to_string());
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(result.is_err(), error.is_some(), "{error:?}");
    error
}

/// A copy of `onnx` whose every float weight reads NaN: what a training run that diverged
/// (`--lr 1e30`) exports.
fn diverged(onnx: &[u8]) -> Vec<u8> {
    use onnx_ir::{Message, ModelProto};
    let mut model = ModelProto::parse_from_bytes(onnx).unwrap();
    let mut poisoned = 0;
    for t in model.graph.as_mut().unwrap().initializer.iter_mut() {
        if t.data_type == 1 && t.raw_data.len() > 64 {
            let n = t.raw_data.len() / 4;
            t.raw_data = f32::NAN.to_le_bytes().repeat(n).into();
            poisoned += 1;
        }
    }
    assert!(poisoned > 0, "no float weights found");
    model.write_to_bytes().unwrap()
}

/// A copy of `onnx` with its metadata replaced by `meta`'s, or removed.
fn with_metadata(onnx: &[u8], meta: Option<&ModelMetadata>) -> Vec<u8> {
    use onnx_ir::{Message, ModelProto};
    match meta {
        Some(m) => spmkd_training::export::with_metadata(onnx, m).unwrap(),
        None => {
            let mut model = ModelProto::parse_from_bytes(onnx).unwrap();
            model.metadata_props.clear();
            model.write_to_bytes().unwrap()
        }
    }
}

#[test]
fn bad_models_and_settings_fail_at_the_state_change_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    exported(dir.path());
    let enc = dir.path().join("encoder.onnx");
    let dec = dir.path().join("decoder.onnx");
    let onnx = std::fs::read(&enc).unwrap();
    let meta = |kind| {
        spmkd_training::export::metadata(
            &spmkd_training::model::EfdConfig::new(),
            kind,
            "v",
            "nothing",
        )
    };
    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let corrupt = write("corrupt.onnx", b"not an onnx model at all");
    let nan = write("nan.onnx", &diverged(&onnx));
    let bare = write("bare.onnx", &with_metadata(&onnx, None));
    let mut wrong_size = meta(ModelKind::Encoder);
    wrong_size.input_size = 32;
    let wrong_size = write("size.onnx", &with_metadata(&onnx, Some(&wrong_size)));
    let mut other_k = meta(ModelKind::Decoder);
    other_k.keypoints = 16;
    let other_k = write(
        "k16.onnx",
        &with_metadata(&std::fs::read(&dec).unwrap(), Some(&other_k)),
    );
    // A real decoder of another model, for 32 x 32 frames.
    let s32 = dir.path().join("s32");
    std::fs::create_dir(&s32).unwrap();
    exported_with(
        &s32,
        spmkd_training::model::EfdConfig::new().with_input_size(32),
    );
    let other_s = s32.join("decoder.onnx");

    let cases: Vec<(String, &str)> = vec![
        (
            "model=/nonexistent/encoder.onnx".into(),
            "cannot read the model /nonexistent/encoder.onnx",
        ),
        (
            format!("model={}", corrupt.display()),
            "not a model ONNX Runtime can load",
        ),
        (
            format!("model={}", dec.display()),
            "the model is of kind decoder, but kind encoder is needed here",
        ),
        (
            format!("model={}", bare.display()),
            "model metadata lacks the key",
        ),
        (
            format!("model={}", wrong_size.display()),
            "but its metadata says the frame [1, 1, 32, 32]",
        ),
        (
            format!("model={} decoder={}", enc.display(), other_s.display()),
            "does not fit the encoder",
        ),
        (
            format!("model={} decoder={}", enc.display(), other_k.display()),
            "but its metadata says fused keypoints [1, 16, 32]",
        ),
        (
            format!("model={}", nan.display()),
            "gives non-finite keypoints (NaN or infinity) on a blank probe",
        ),
        (
            format!("model={} quality=true", enc.display()),
            "quality=true needs a decoder",
        ),
        (
            "device=cuda".into(),
            "the CUDA execution provider is not available",
        ),
        (
            "ort-library=/nonexistent/libonnxruntime.so".into(),
            "/nonexistent/libonnxruntime.so",
        ),
    ];
    for (props, expected) in cases {
        let error = start_error(&props).unwrap_or_else(|| panic!("{props}: no error"));
        assert!(error.contains(expected), "{props}: {error}");
    }
    // The models themselves are fine, and CUDA may fall back when allowed.
    assert_eq!(
        start_error(&format!(
            "model={} decoder={}",
            enc.display(),
            dec.display()
        )),
        None
    );
    assert_eq!(start_error("device=cuda allow-fallback=true"), None);
}

#[test]
fn the_latency_query_adds_the_inference_cost() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=30/1 ! \
         spmkdpose name=p ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(30));
    let pose = pipeline.by_name("p").unwrap();
    let mut ours = gst::query::Latency::new();
    assert!(pose.static_pad("src").unwrap().query(&mut ours));
    let mut upstream = gst::query::Latency::new();
    assert!(pose.static_pad("sink").unwrap().peer_query(&mut upstream));
    let ((live, min, _), (_, up_min, _)) = (ours.result(), upstream.result());
    assert!(live);
    assert!(min > up_min, "ours {min}, upstream {up_min}");
    assert!(min - up_min < gst::ClockTime::from_mseconds(500));
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn caps_it_cannot_read_are_refused() {
    init();
    // gst-launch: the link itself fails, naming the caps.
    let err = gst::parse::launch(
        "videotestsrc num-buffers=2 ! video/x-raw,format=RGB,width=32,height=64 ! spmkdpose ! fakesink",
    )
    .unwrap_err();
    assert!(err.to_string().contains("can't handle caps"), "{err}");
    // Caps forced onto the pad: the buffer after them fails as not negotiated.
    for caps in [
        "video/x-raw,format=RGB,width=32,height=64,framerate=1/1",
        "audio/x-raw",
    ] {
        let mut h = Harness::new("spmkdpose");
        h.play();
        // (A sticky event counts as sent once stored; the refusal shows on the next buffer.)
        h.push_event(gst::event::Caps::new(&caps.parse::<gst::Caps>().unwrap()));
        assert_eq!(
            h.push(gst::Buffer::with_size(32 * 64 * 3).unwrap()),
            Err(gst::FlowError::NotNegotiated),
            "{caps}"
        );
    }
}

#[test]
fn parallel_frames_give_the_same_poses_in_the_same_order() {
    let frames = frames(&sample("3.txt"));
    let run = |props: &[(&str, glib::Value)], eos: bool| {
        let element = pose_element(props);
        let (mut main, recon) = harnesses(&element, true);
        let mut recon = recon.unwrap();
        push_all(&mut main, &frames, gst_video::VideoFormat::Gray16Le);
        if eos {
            main.push_event(gst::event::Eos::new());
        }
        let out: Vec<(Option<gst::ClockTime>, PoseRecord)> = pull_all(&mut main)
            .iter()
            .map(|b| (b.pts(), pose(b)))
            .collect();
        let recon: Vec<Vec<u8>> = pull_all(&mut recon)
            .iter()
            .map(|b| b.map_readable().unwrap().to_vec())
            .collect();
        (out, recon)
    };
    let strip = |v: Vec<(Option<gst::ClockTime>, PoseRecord)>| {
        v.into_iter()
            .map(|(pts, p)| (pts, p.stale, p.keypoints))
            .collect::<Vec<_>>()
    };
    let (one, one_recon) = run(&[], false);
    assert_eq!(one.len(), 117);
    // 4 lanes: a frame leaves once 4 later frames are in flight (one per lane and one more), so
    // the last 4 wait until EOS drains them.
    let four = [("parallel-frames", 4u32.to_value())];
    let (held, _) = run(&four, false);
    assert_eq!(held.len(), 113);
    let (four, four_recon) = run(&four, true);
    assert_eq!(strip(four), strip(one.clone()));
    assert_eq!(four_recon, one_recon);
    // 0: lanes chosen from the machine (one per core at threads=1); the same poses.
    let (auto, auto_recon) = run(&[("parallel-frames", 0u32.to_value())], true);
    assert_eq!(strip(auto), strip(one.clone()));
    assert_eq!(auto_recon, one_recon);

    // With an interval the carried frames wait behind the frame they carry.
    let interval = |n: u32| {
        let (out, recon) = run(
            &[
                ("parallel-frames", n.to_value()),
                ("inference-interval", 3u32.to_value()),
            ],
            true,
        );
        (strip(out), recon.len())
    };
    let (serial, serial_recon) = interval(1);
    assert_eq!(serial.iter().filter(|p| !p.1).count(), 39);
    assert_eq!(interval(2), (serial, serial_recon));
}

#[test]
fn parallel_frames_drain_before_a_caps_change_and_drop_on_flush() {
    let mat_i: Vec<Frame> = frames(&sample("1.txt")).into_iter().take(3).collect();
    let mat_ii = frames(&data_root().join("experiment-ii/S1/Air_Mat/Matrix_Air_B1.txt"));
    let element = pose_element(&[("parallel-frames", 2u32.to_value())]);
    let (mut main, _) = harnesses(&element, false);
    push_all(&mut main, &mat_i, gst_video::VideoFormat::Gray16Le);
    // Frame 0 left once 2 later frames were in flight; frames 1 and 2 wait until the new caps
    // drain them.
    assert_eq!(pull_all(&mut main).len(), 1);
    main.set_src_caps(caps(gst_video::VideoFormat::Gray16Le, 27, 64));
    let widths: Vec<u32> = pull_all(&mut main).iter().map(|b| pose(b).width).collect();
    assert_eq!(widths, [32, 32]);
    main.push(buffer(&mat_ii[0], gst_video::VideoFormat::Gray16Le, 3))
        .unwrap();
    assert!(pull_all(&mut main).is_empty());
    // A flush drops the waiting frame: nothing of the old position leaves after it.
    assert!(main.push_event(gst::event::FlushStart::new()));
    assert!(main.push_event(gst::event::FlushStop::new(true)));
    main.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    main.push_event(gst::event::Eos::new());
    assert!(pull_all(&mut main).is_empty());
}

#[test]
fn parallel_frames_add_their_wait_to_the_latency() {
    init();
    let latency = |n: u32| {
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc is-live=true ! video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=10/1 ! \
             spmkdpose name=p parallel-frames={n} ! fakesink"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let _ = pipeline.state(gst::ClockTime::from_seconds(30));
        let mut q = gst::query::Latency::new();
        let pose = pipeline.by_name("p").unwrap();
        assert!(pose.static_pad("src").unwrap().query(&mut q));
        pipeline.set_state(gst::State::Null).unwrap();
        q.result().1
    };
    let (one, three) = (latency(1), latency(3));
    // Three frames of 100 ms more (a frame waits for parallel-frames later ones), give or take
    // the measured inference cost.
    let extra = three.saturating_sub(one);
    assert!(
        extra > gst::ClockTime::from_mseconds(280) && extra < gst::ClockTime::from_mseconds(320),
        "parallel-frames=1: {one}, 3: {three}"
    );
}

#[test]
fn a_linked_recon_src_without_a_decoder_carries_gaps_and_never_hangs() {
    // The README's demo shape with an encoder file and no decoder: the branch behind recon_src
    // gets a gap per frame, prerolls and reaches EOS; the main branch gets every frame.
    let encoder = spmkd_tests::repo_root().join("models/default/encoder.onnx");
    let outcome = spmkd_tests::run_pipeline(
        &format!(
            "pmatsrc location={} ! spmkdpose name=pose model={} ! queue ! fakesink name=main \
             pose.recon_src ! queue ! videoconvert ! fakesink name=recon",
            sample("3.txt").display(),
            encoder.display()
        ),
        &["main", "recon"],
        gst::ClockTime::from_seconds(30),
    );
    assert!(outcome.eos, "no EOS within 30 s: {outcome:?}");
    assert_eq!(outcome.buffers, [117, 0]);
    assert_eq!(
        outcome
            .warnings
            .iter()
            .filter(|w| w.contains("no decoder"))
            .count(),
        1,
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn every_good_frame_leaves_before_an_upstream_error_whatever_the_lanes() {
    // 10 good frames, then a malformed line: with 4 lanes, 4 frames are in flight when pmatsrc
    // fails. They must reach the sink before the error is posted (an application, as
    // gst-launch-1.0, tears the pipeline down on it).
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample("3.txt")).unwrap();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    lines[12] = lines[12].replacen("\t0\t", "\tzero\t", 1);
    let path = dir.path().join("bad.txt");
    std::fs::write(&path, lines[..13].concat()).unwrap();
    for lanes in [1, 2, 4] {
        let outcome = spmkd_tests::run_pipeline(
            &format!(
                "pmatsrc location={} ! spmkdpose parallel-frames={lanes} ! queue \
                 ! fakesink name=sink sync=false",
                path.display()
            ),
            &["sink"],
            gst::ClockTime::from_seconds(30),
        );
        let error = outcome.error.expect("the pipeline fails");
        assert!(error.contains("bad.txt:13:"), "{error}");
        assert_eq!(
            outcome.buffers_at_error,
            Some(vec![10]),
            "parallel-frames={lanes}: frames at the sink when the error was posted"
        );
    }
}

/// A model trained on body-centred frames (`train --body-centred`) says so in its metadata, and
/// `spmkdpose` frames each input on the body for it as the training code does: the keypoints
/// equal the Burn model's through `preprocess_framed_into`, and not the ones of the mat in the
/// middle.
#[test]
fn a_body_centred_model_sees_each_frame_framed_on_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let config = spmkd_training::model::EfdConfig::new().with_body_centred(Some(true));
    let (model, _) = exported_with(dir.path(), config);
    let encoder = dir.path().join("encoder.onnx");
    let source = spmkd_core::engine::ModelSource::file(&encoder).unwrap();
    let options = spmkd_core::engine::EngineOptions::cpu(1);
    let meta = spmkd_core::engine::Encoder::new(&source, &options)
        .unwrap()
        .meta;
    assert!(meta.body_centred(), "{}", meta.normalization);
    // The body pushed 8 columns towards one long edge, where the framing moves it back.
    let shifted: Vec<Frame> = frames(&sample("3.txt"))
        .into_iter()
        .step_by(12)
        .map(|f| {
            let floor = f.data().iter().copied().min().unwrap_or(0);
            let mut data = vec![floor; 32 * 64];
            for (row, src) in data.chunks_exact_mut(32).zip(f.data().chunks_exact(32)) {
                row[..24].copy_from_slice(&src[8..]);
            }
            Frame::new(32, 64, data).unwrap()
        })
        .collect();
    let element = pose_element(&[
        ("model", encoder.to_str().unwrap().to_value()),
        (
            "decoder",
            dir.path().join("decoder.onnx").to_str().unwrap().to_value(),
        ),
    ]);
    let (mut main, _) = harnesses(&element, false);
    push_all(&mut main, &shifted, gst_video::VideoFormat::Gray16Le);
    let out = pull_all(&mut main);
    assert_eq!(out.len(), shifted.len());
    let device = burn::prelude::Device::flex();
    let mut off_mat_centred = 0.0f32;
    for (b, f) in out.iter().zip(&shifted) {
        let p = pose(b);
        let framed = spmkd_training::keypoints::frame_keypoints(
            &model,
            true,
            Orientation::Identity,
            f.data(),
            32,
            64,
            &device,
        );
        let mat = spmkd_training::keypoints::frame_keypoints(
            &model,
            false,
            Orientation::Identity,
            f.data(),
            32,
            64,
            &device,
        );
        for ((a, e), m) in p.keypoints.iter().zip(&framed).zip(&mat) {
            assert!(
                (a.x - e.x).abs() < 1e-3 && (a.y - e.y).abs() < 1e-3,
                "{a:?} vs {e:?}"
            );
            off_mat_centred = off_mat_centred.max((a.x - m.x).abs());
        }
    }
    assert!(
        off_mat_centred > 0.5,
        "framing on the body changed no keypoint by half a cell: {off_mat_centred}"
    );
}
