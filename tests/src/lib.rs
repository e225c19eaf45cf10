//! Shared helpers of the integration tests: plugin registration and data locations.

use std::path::{Path, PathBuf};
use std::sync::Once;

pub mod broker;

use spmkd_core::dataset::DatasetIndex;

/// Initializes GStreamer and registers the `spmkd` plugin from this build (no install needed).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initializes");
        gstspmkd::plugin_register_static().expect("the spmkd plugin registers");
    });
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The full PmatData tree (`$SPMKD_DATA` or `../shared/data/pmatdata`). Tests that need it fail
/// with this message rather than pass without it.
pub fn data_root() -> PathBuf {
    let root = DatasetIndex::locate(&repo_root());
    assert!(
        root.join("experiment-i").is_dir(),
        "PmatData not found at {}: set SPMKD_DATA to the pmatdata folder",
        root.display()
    );
    root
}

/// The sample recordings committed with the project.
pub fn sample(name: &str) -> PathBuf {
    repo_root().join("data/sample/experiment-i/S12").join(name)
}

/// An `.npy` file holding `data` (little-endian, C order) as an array of `descr` and `shape`.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = spmkd_core::reader::npy_header(descr, shape);
    out.extend_from_slice(data);
    out
}

/// How a pipeline run by [`run_pipeline`] ended, and what it posted on the way.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The pipeline reached EOS (false: an error, or nothing before the timeout).
    pub eos: bool,
    /// The first error, as text, if one was posted (or the state change failed).
    pub error: Option<String>,
    /// Every warning's text.
    pub warnings: Vec<String>,
    /// Every element message's structure.
    pub elements: Vec<gst::Structure>,
    /// Buffers seen at the sink pad of each element named in `sinks`, at the end.
    pub buffers: Vec<usize>,
    /// The same counts at the moment the first error was posted: what had reached the sinks
    /// before the application learnt of the failure (and could tear the pipeline down).
    pub buffers_at_error: Option<Vec<usize>>,
}

/// Runs `description` until EOS, an error or `timeout`, counting buffers at the sink pads of
/// the elements named in `sinks`.
pub fn run_pipeline(description: &str, sinks: &[&str], timeout: gst::ClockTime) -> Outcome {
    use gst::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    init();
    let pipeline = gst::parse::launch(description)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(sinks.iter().map(|_| AtomicUsize::new(0)).collect());
    for (i, name) in sinks.iter().enumerate() {
        let counts = counts.clone();
        pipeline
            .by_name(name)
            .unwrap_or_else(|| panic!("no element named {name}"))
            .static_pad("sink")
            .expect("a sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counts[i].fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
    }
    let snapshot = |counts: &[AtomicUsize]| -> Vec<usize> {
        counts.iter().map(|c| c.load(Ordering::SeqCst)).collect()
    };
    // Taken in the thread that posts the error, before anyone could react to it.
    let at_error: Arc<Mutex<Option<Vec<usize>>>> = Arc::new(Mutex::new(None));
    let bus = pipeline.bus().expect("a bus");
    {
        let (counts, at_error) = (counts.clone(), at_error.clone());
        bus.set_sync_handler(move |_, msg| {
            if let gst::MessageView::Error(_) = msg.view() {
                let mut slot = at_error.lock().unwrap();
                if slot.is_none() {
                    *slot = Some(snapshot(&counts));
                }
            }
            gst::BusSyncReply::Pass
        });
    }
    let mut outcome = Outcome::default();
    // A failed state change leaves its reason on the bus, read below.
    let _ = pipeline.set_state(gst::State::Playing);
    let deadline = std::time::Instant::now() + std::time::Duration::from_nanos(timeout.nseconds());
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                outcome.eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                outcome.error = Some(e.error().to_string());
                break;
            }
            gst::MessageView::Warning(w) => outcome.warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => {
                outcome.elements.extend(e.structure().map(|s| s.to_owned()))
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("to NULL");
    bus.unset_sync_handler();
    outcome.buffers = snapshot(&counts);
    outcome.buffers_at_error = at_error.lock().unwrap().take();
    outcome
}

/// The event an element message announces, when `spmkdposture` or `spmkdmonitor` posted it:
/// what they also send downstream ([`gstspmkd::announce`]), for `spmkdmqttsink` to publish.
pub fn announced(msg: &gst::MessageRef) -> Option<gst::Structure> {
    use gst::prelude::*;
    let gst::MessageView::Element(e) = msg.view() else {
        return None;
    };
    let factory = msg.src()?.downcast_ref::<gst::Element>()?.factory()?.name();
    let s = e.structure()?;
    (["spmkdposture", "spmkdmonitor"].contains(&factory.as_str()) && s.name() != "spmkd-model")
        .then(|| s.to_owned())
}

/// Usable frames of a recording: what `pmatsrc` pushes (capture artifacts skipped).
pub fn usable_frames(path: &Path) -> u64 {
    let mut rec = spmkd_core::Recording::open(path, spmkd_core::Format::Auto, None)
        .expect("the recording opens");
    let mut n = 0;
    while let Some(f) = rec.next_frame().expect("the recording reads") {
        n += u64::from(f.artifact.is_none());
    }
    n
}

/// Plays `description` to EOS (panicking on an error, or after two minutes), calling `each` on
/// every buffer that reaches the sink pad of the element named `sink`. Returns what `each`
/// gave, in order, and every `spmkd-*` element message, in the order they were posted.
pub fn play<T: Send + 'static>(
    description: &str,
    each: impl Fn(&gst::BufferRef) -> T + Send + Sync + 'static,
) -> (Vec<T>, Vec<gst::Structure>) {
    use gst::prelude::*;
    use std::sync::{Arc, Mutex};

    init();
    let pipeline = gst::parse::launch(description)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    pipeline
        .by_name("sink")
        .expect("an element named sink")
        .static_pad("sink")
        .expect("a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                s.lock().expect("not poisoned").push(each(b));
            }
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().expect("a bus");
    pipeline
        .set_state(gst::State::Playing)
        .expect("the pipeline plays");
    let mut messages = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}: {:?}", e.error(), e.debug()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name().starts_with("spmkd-")) {
                    messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipeline
        .set_state(gst::State::Null)
        .expect("the pipeline stops");
    let seen = std::mem::take(&mut *seen.lock().expect("not poisoned"));
    (seen, messages)
}

/// The usable frames of the three sample recordings (data/sample/experiment-i/S12), in order.
pub fn sample_frames() -> Vec<spmkd_core::Frame> {
    let mut out = Vec::new();
    for name in ["1.txt", "2.txt", "3.txt"] {
        let mut rec = spmkd_core::Recording::open(sample(name), spmkd_core::Format::Auto, None)
            .expect("sample");
        while let Some(f) = rec.next_frame().expect("sample frames") {
            if f.artifact.is_none() {
                out.push(f.frame);
            }
        }
    }
    out
}

/// `frames` empty frames of `width x height` as GRAY16 `.npy`: `floor` plus deterministic
/// noise, or, with `floor` 0, what experiment-i reads where no one lies (mostly 0, a tenth of
/// the cells 1..7).
pub fn empty_npy(
    dir: &Path,
    name: &str,
    frames: usize,
    (width, height): (usize, usize),
    floor: u16,
) -> PathBuf {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut data = Vec::with_capacity(frames * width * height * 2);
    for _ in 0..frames * width * height {
        let r = next();
        let v: u16 = if floor == 0 {
            if r % 10 == 0 {
                1 + (r >> 8) as u16 % 7
            } else {
                0
            }
        } else {
            // Sum of four uniforms in -2..=2: about 2.8 units of spread around the floor.
            let d: i32 = (0..4).map(|i| ((r >> (i * 8)) & 0xff) as i32 % 5 - 2).sum();
            (i32::from(floor) + d) as u16
        };
        data.extend_from_slice(&v.to_le_bytes());
    }
    let path = dir.join(name);
    std::fs::write(&path, npy_bytes("<u2", &[frames, height, width], &data)).unwrap();
    path
}
