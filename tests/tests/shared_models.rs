//! Models shared between pipelines of one process, and models swapped while playing: a second
//! bed with the same model loads no model (ONNX Runtime sessions counted), a bad model path fails
//! its own pipeline only, a `model` set while playing takes over at a frame boundary with no frame
//! lost and a `spmkd-model` message, and a model that cannot be loaded leaves the old one running.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gstspmkd::hot_swap::MODEL_MESSAGE;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::engine::sessions_made;
use spmkd_core::model_pool;
use spmkd_tests::{init, repo_root, sample, usable_frames};

/// The tests count sessions and pools of the whole process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shipped default models copied to `dir`: files of their own, so no other pool is theirs.
fn models(dir: &Path) -> [PathBuf; 3] {
    ["encoder.onnx", "decoder.onnx", "posture.onnx"].map(|name| {
        let to = dir.join(name);
        std::fs::copy(repo_root().join("models/default").join(name), &to).unwrap();
        to
    })
}

fn bed(recording: &Path, [encoder, decoder, posture]: &[PathBuf; 3]) -> String {
    format!(
        "pmatsrc location={} ! spmkdpose model={} decoder={} ! spmkdposture model={} ! fakesink name=sink",
        recording.display(),
        encoder.display(),
        decoder.display(),
        posture.display()
    )
}

fn pipeline(description: &str) -> gst::Pipeline {
    init();
    gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// A bed's pipeline, counting the buffers that reach its sink (from the preroll on).
struct Bed {
    pipeline: gst::Pipeline,
    buffers: Arc<AtomicUsize>,
}

impl Bed {
    fn new(description: &str) -> Self {
        let pipeline = pipeline(description);
        let buffers = Arc::new(AtomicUsize::new(0));
        let count = buffers.clone();
        pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                count.fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
        Self { pipeline, buffers }
    }

    /// To PAUSED, waiting: its elements have started (and loaded their models).
    fn pause(&self) -> Result<(), gst::StateChangeError> {
        self.pipeline.set_state(gst::State::Paused)?;
        self.pipeline
            .state(gst::ClockTime::from_seconds(30))
            .0
            .map(|_| ())
    }

    /// Plays to EOS; the buffers that reached the sink and the error, if any.
    fn finish(&self) -> (usize, Option<String>) {
        // A failed state change leaves its reason on the bus.
        let _ = self.pipeline.set_state(gst::State::Playing);
        let mut error = None;
        for msg in self
            .pipeline
            .bus()
            .unwrap()
            .iter_timed(gst::ClockTime::from_seconds(60))
        {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    error = Some(e.error().to_string());
                    break;
                }
                _ => {}
            }
        }
        self.pipeline.set_state(gst::State::Null).unwrap();
        (self.buffers.load(Ordering::SeqCst), error)
    }
}

fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

#[test]
fn beds_with_the_same_models_share_them() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let files = models(dir.path());
    let recording = sample("1.txt");
    let (pools, sessions) = (model_pool::loaded(), sessions_made());

    let first = Bed::new(&bed(&recording, &files));
    first.pause().unwrap();
    // Encoder, decoder and posture model: one pool and one session each.
    assert_eq!(model_pool::loaded() - pools, 3);
    assert_eq!(sessions_made() - sessions, 3);

    // More beds load no model; a pool gains a session per bed only while there are more beds
    // than cores (a session runs one frame at a time; more than one per core only waits).
    let mut beds = vec![first];
    for n in 2..=4u64 {
        let before = sessions_made();
        let next = Bed::new(&bed(&recording, &files));
        next.pause().unwrap();
        beds.push(next);
        assert_eq!(model_pool::loaded() - pools, 3, "bed {n}");
        let grown = u64::from(n <= cores());
        assert_eq!(sessions_made() - before, 3 * grown, "bed {n}");
    }

    let frames = usable_frames(&recording) as usize;
    for bed in &beds {
        assert_eq!(bed.finish(), (frames, None));
    }
    // The last bed to stop frees the models.
    drop(beds);
    assert_eq!(model_pool::loaded(), pools);
}

#[test]
fn a_bad_model_fails_only_its_own_bed() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let files = models(dir.path());
    let recording = sample("1.txt");
    let good = Bed::new(&bed(&recording, &files));
    good.pause().unwrap();

    let missing = dir.path().join("missing.onnx");
    let bad = Bed::new(&bed(
        &recording,
        &[missing.clone(), files[1].clone(), files[2].clone()],
    ));
    assert!(bad.pause().is_err());
    let (_, error) = bad.finish();
    let error = error.expect("the bad bed reports an error");
    assert!(
        error.contains(&format!("cannot read the model {}", missing.display())),
        "{error}"
    );

    assert_eq!(good.finish(), (usable_frames(&recording) as usize, None));
}

/// What a pipeline with a swap gave: the model of each record at the sink, the `spmkd-model`
/// messages, the warnings, the error.
struct Swapped {
    models: Vec<String>,
    messages: Vec<gst::Structure>,
    warnings: Vec<String>,
    error: Option<String>,
}

/// Plays `frames` frames of a looped recording at 100 frames/s through `pmatsrc ! <chain> !
/// fakesink`; after 30 frames at the sink, sets `props` on the element named `target` from
/// another thread.
fn swap_while_playing(
    chain: &str,
    target: &'static str,
    props: Vec<(&'static str, String)>,
) -> Swapped {
    let description = format!(
        "pmatsrc location={} loop=true framerate=100/1 num-buffers=150 ! {chain} ! fakesink name=sink sync=true",
        sample("1.txt").display()
    );
    let pipeline = pipeline(&description);
    let element = pipeline.by_name(target).unwrap();
    let models = Arc::new(Mutex::new(Vec::new()));
    let props = Mutex::new(Some(props));
    let seen = models.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let record = PoseMeta::read(buffer).unwrap().unwrap();
            // The record names its encoder; a posture has no version of its own, but the probe
            // runs on the streaming thread right after the element handled the buffer, so the
            // version the element reports now is the one that classified it.
            let version = match target {
                "pose" => record.model,
                _ => element.property::<Option<String>>("model-version").unwrap(),
            };
            let mut seen = seen.lock().unwrap();
            seen.push(version);
            if seen.len() == 30
                && let Some(props) = props.lock().unwrap().take()
            {
                let element = element.clone();
                std::thread::spawn(move || {
                    for (name, value) in props {
                        element.set_property(name, value);
                    }
                });
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut messages, mut warnings, mut error) = (Vec::new(), Vec::new(), None);
    for msg in pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::from_seconds(60))
    {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                error = Some(e.error().to_string());
                break;
            }
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => messages.extend(
                e.structure()
                    .filter(|s| s.name() == MODEL_MESSAGE)
                    .map(|s| s.to_owned()),
            ),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let models = std::mem::take(&mut *models.lock().unwrap());
    Swapped {
        models,
        messages,
        warnings,
        error,
    }
}

/// How many times the label changes along `labels`, and the labels in the order they came.
fn runs(labels: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for l in labels {
        if out.last() != Some(&l.as_str()) {
            out.push(l);
        }
    }
    out
}

fn text(s: &gst::Structure, field: &str) -> String {
    s.get::<String>(field).unwrap()
}

#[test]
fn an_encoder_set_while_playing_takes_over_at_a_frame_boundary() {
    let _serial = serial();
    let plain = repo_root().join("models/plain");
    // One lane, and three on their threads: there the frames in flight when the new model is
    // ready leave first, each with the pose of the model that inferred it.
    for chain in [
        "spmkdpose name=pose",
        "spmkdpose name=pose parallel-frames=3",
    ] {
        let out = swap_while_playing(
            chain,
            "pose",
            vec![
                // The decoder first, then its encoder: the pair is loaded once, together.
                ("decoder", plain.join("decoder.onnx").display().to_string()),
                ("model", plain.join("encoder.onnx").display().to_string()),
            ],
        );
        assert_eq!(out.error, None, "{chain}");
        assert_eq!(out.warnings, Vec::<String>::new(), "{chain}");
        // Every frame came out, first all of the old model, then all of the new one.
        assert_eq!(out.models.len(), 150, "{chain}");
        assert_eq!(
            runs(&out.models),
            ["spmkd-default-4", "spmkd-default-2"],
            "{chain}"
        );
        assert!(out.models[..30].iter().all(|m| m == "spmkd-default-4"));
        let [message] = &out.messages[..] else {
            panic!("{chain}: one spmkd-model message: {:?}", out.messages);
        };
        assert_eq!(text(message, "model-version"), "spmkd-default-2");
        assert_eq!(text(message, "previous-version"), "spmkd-default-4");
        assert!(text(message, "origin").ends_with("encoder.onnx"));
    }
}

#[test]
fn a_posture_model_set_while_playing_takes_over() {
    let _serial = serial();
    let plain = repo_root().join("models/plain/posture.onnx");
    let out = swap_while_playing(
        "spmkdpose ! spmkdposture name=posture",
        "posture",
        vec![("model", plain.display().to_string())],
    );
    assert_eq!((out.error, out.warnings), (None, Vec::<String>::new()));
    assert_eq!(out.models.len(), 150);
    assert_eq!(runs(&out.models), ["spmkd-posture-4", "spmkd-posture-1"]);
    let [message] = &out.messages[..] else {
        panic!("one spmkd-model message: {:?}", out.messages);
    };
    assert_eq!(text(message, "model-version"), "spmkd-posture-1");
}

#[test]
fn a_model_that_cannot_load_while_playing_leaves_the_old_one_running() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.onnx");
    std::fs::write(&broken, b"not a model").unwrap();
    let out = swap_while_playing(
        "spmkdpose name=pose",
        "pose",
        vec![("model", broken.display().to_string())],
    );
    assert_eq!(out.error, None);
    assert_eq!(out.models.len(), 150);
    assert_eq!(runs(&out.models), ["spmkd-default-4"]);
    assert!(out.messages.is_empty(), "{:?}", out.messages);
    let [warning] = &out.warnings[..] else {
        panic!("one warning: {:?}", out.warnings);
    };
    assert!(
        warning.contains("cannot switch models")
            && warning.contains("not a model ONNX Runtime can load")
            && warning.contains("still running spmkd-default-4"),
        "{warning}"
    );
}
