//! `spmkdposture` implementation: an always-in-place BaseTransform. Per buffer: the pose meta's
//! keypoints and features become a graph ([`spmkd_core::posture::nodes`]), the posture model
//! gives probabilities, a [`Tracker`] smooths them over `smoothing` frames and times postures by
//! running time (so a recording, a concatenation of recordings or a live mat behave alike).
//! With `spmkdmonitor` upstream the meta also says whether anyone is on the mat (if not: posture
//! `none`, no model run, the clock paused), how far the frame can be trusted (below
//! `min-trust`: `uncertain`, the clock paused) and whether a movement offloaded the body.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use spmkd_core::engine::{EngineError, EngineOptions, PostureModel};
use spmkd_core::model_pool::{self, Lease};
use spmkd_core::posture::{Event, Tracker, nodes};
use spmkd_core::schema::Keypoint;

use crate::hot_swap::{HotSwap, MODEL_MESSAGE};
use crate::posemeta::PoseMeta;
use crate::running_time::Clock;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdposture",
        gst::DebugColorFlags::empty(),
        Some("Posture from pressure-mat keypoints"),
    )
});

/// Element message posted when the smoothed posture changes (and for the first posture).
pub const POSTURE_MESSAGE: &str = "spmkd-posture";
/// Element message posted once a posture has lasted `reposition-interval`.
pub const REPOSITION_MESSAGE: &str = "spmkd-reposition";
/// Element message posted when a movement offloaded what the posture loaded (a reposition
/// without a change of posture; `spmkdmonitor` upstream decides).
pub const REPOSITIONED_MESSAGE: &str = "spmkd-repositioned";

/// Trust below which a posture is withheld as `uncertain`, chosen on validation data only:
/// three in four frames of experiment-i S9..S10 turned head to foot fall below it (0.368 with
/// the decoder's quality, 0.378 on keypoint confidence alone), none of the same frames as
/// recorded (pipelines/monitor-calibration.sh; docs/RESULTS.md "Trust"). In core, because
/// export fits an encoder's layout ramp to it.
const DEFAULT_MIN_TRUST: f64 = spmkd_core::monitor::trust::DEFAULT_MIN_TRUST;

const DEFAULT_SMOOTHING: u32 = 5;
/// Two hours: the usual repositioning schedule for pressure-injury prevention.
const DEFAULT_REPOSITION_NS: u64 = 2 * 3600 * 1_000_000_000;

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    smoothing: u32,
    reposition_interval: u64,
    min_trust: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            smoothing: DEFAULT_SMOOTHING,
            reposition_interval: DEFAULT_REPOSITION_NS,
            min_trust: DEFAULT_MIN_TRUST,
        }
    }
}

/// Made in start, dropped in stop.
struct State {
    /// The process's shared sessions of the model.
    model: Lease<PostureModel>,
    /// The last frame's probabilities.
    probabilities: Vec<f32>,
    tracker: Tracker,
    /// The graph of the current frame and its keypoints as the encoder saw them, reused.
    nodes: Vec<f32>,
    keypoints: Vec<Keypoint>,
    /// Buffers without a pose, warned about once.
    warned_unposed: bool,
    clock: Clock,
}

#[derive(Default)]
pub struct SpmkdPosture {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// A model set while playing, loaded off the streaming thread.
    swap: HotSwap<Lease<PostureModel>>,
    /// spmkd.version of the model in use, outside `state` so reading it never waits for a frame.
    model_version: Mutex<Option<String>>,
}

impl SpmkdPosture {
    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The posture model `settings` name, from the process's shared pool.
    fn open_model(settings: &Settings) -> Result<Lease<PostureModel>, EngineError> {
        // One intra-op thread: a graph of k nodes is far too small to split.
        model_pool::lease::<PostureModel>(settings.model.as_deref(), &EngineOptions::cpu(1), 1)
    }

    /// Loads the model the settings name now on a thread of its own; the streaming thread
    /// switches at the next buffer. A model that cannot be loaded is a warning, the old one
    /// goes on.
    fn request_swap(&self) {
        let running = match self.state().as_ref() {
            Some(state) => state.model.meta.version.clone(),
            None => return, // Not started: start loads what the settings say.
        };
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let generation = self.swap.begin();
        let element = self.obj().downgrade();
        let loader = move || {
            let Some(element) = element.upgrade() else {
                return;
            };
            match Self::open_model(&settings) {
                Ok(model) => {
                    element.imp().swap.finish(generation, model);
                }
                Err(_) if !element.imp().swap.is_current(generation) => {}
                Err(err) => gst::element_warning!(
                    element,
                    gst::LibraryError::Settings,
                    (
                        "cannot switch posture models: {}; still running {}",
                        err,
                        running
                    )
                ),
            }
        };
        if let Err(err) = std::thread::Builder::new()
            .name("spmkdposture-swap".into())
            .spawn(loader)
        {
            gst::element_imp_warning!(
                self,
                gst::CoreError::Thread,
                ("cannot start the thread that loads the new model: {}", err)
            );
        }
    }

    /// Puts a swapped-in model in use and says so on the bus. The tracker stays: the person's
    /// postures so far do not depend on the model that classified them.
    fn switch(&self, state: &mut State, model: Lease<PostureModel>) {
        let previous = std::mem::replace(&mut state.model, model);
        let (version, origin) = (&state.model.meta.version, &state.model.info.origin);
        self.set_model_version(Some(version.clone()));
        gst::info!(
            CAT,
            imp = self,
            "switched from {} to {version} ({origin})",
            previous.meta.version
        );
        let s = gst::Structure::builder(MODEL_MESSAGE)
            .field("model-version", version)
            .field("previous-version", &previous.meta.version)
            .field("origin", origin)
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    fn set_model_version(&self, version: Option<String>) {
        *self.model_version.lock().unwrap_or_else(|e| e.into_inner()) = version;
    }

    /// The buffer's running time in ns (the last one known if it has no timestamp).
    fn running_time(&self, buffer: &gst::BufferRef, state: &mut State) -> u64 {
        let (now, untimed) = state.clock.now(&self.obj().segment(), buffer);
        if untimed {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("a buffer without a timestamp (or outside the segment): postures are timed by buffer time, so this one counts as the frame before it")
            );
        }
        now
    }

    fn post(&self, event: &Event) {
        let s = match *event {
            Event::Change {
                posture,
                previous,
                at_ns,
            } => {
                let mut s = gst::Structure::builder(POSTURE_MESSAGE)
                    .field("posture", posture.to_string())
                    .field("running-time", gst::ClockTime::from_nseconds(at_ns));
                if let Some((p, lasted)) = previous {
                    s = s
                        .field("previous", p.to_string())
                        .field("previous-duration", gst::ClockTime::from_nseconds(lasted));
                }
                s.build()
            }
            Event::Offloaded {
                posture,
                lasted_ns,
                at_ns,
            } => gst::Structure::builder(REPOSITIONED_MESSAGE)
                .field("posture", posture.to_string())
                .field("reason", "offloading")
                .field("duration", gst::ClockTime::from_nseconds(lasted_ns))
                .field("running-time", gst::ClockTime::from_nseconds(at_ns))
                .build(),
            Event::Reposition {
                posture,
                since_ns,
                lasted_ns,
                at_ns,
            } => gst::Structure::builder(REPOSITION_MESSAGE)
                .field("posture", posture.to_string())
                .field("since", gst::ClockTime::from_nseconds(since_ns))
                .field("duration", gst::ClockTime::from_nseconds(lasted_ns))
                .field("running-time", gst::ClockTime::from_nseconds(at_ns))
                .build(),
        };
        gst::info!(CAT, imp = self, "{s}");
        let obj = self.obj();
        crate::announce::announce(obj.upcast_ref(), obj.src_pad(), s);
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpmkdPosture {
    const NAME: &'static str = "GstSpmkdPosture";
    type Type = super::SpmkdPosture;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for SpmkdPosture {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Posture model")
                    .blurb("ONNX posture model exported by `spmkd-train posture` (spmkd.kind = posture, for the keypoints of the encoder upstream); unset: the built-in one, for spmkdpose's built-in encoder. Instances in one process with the same model share its sessions. Set while playing: loaded on another thread, used from the next buffer on (element message spmkd-model); a model that cannot be loaded is a warning and the old one goes on")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("smoothing")
                    .nick("Smoothing window")
                    .blurb("Frames whose probabilities are averaged to decide the posture (1: none): one noisy frame does not flip it")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_SMOOTHING)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("reposition-interval")
                    .nick("Reposition interval")
                    .blurb("A spmkd-reposition message is posted once a posture has lasted this long (ns of running time; default 2 hours)")
                    .minimum(1)
                    .default_value(DEFAULT_REPOSITION_NS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-trust")
                    .nick("Minimum trust")
                    .blurb("With spmkdmonitor upstream: a frame whose trust (reconstruction quality, keypoint confidence, and for encoders with a layout reference how the keypoints lie head to foot) is below this gets the posture \"uncertain\" instead of a class, and does not count toward the reposition interval (0: never)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MIN_TRUST)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("model-version")
                    .nick("Model version")
                    .blurb("spmkd.version of the posture model in use (known once started)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let model = s.model.clone();
        match pspec.name() {
            "model" => {
                s.model = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
            }
            "smoothing" => s.smoothing = value.get().expect("type checked upstream"),
            "reposition-interval" => {
                s.reposition_interval = value.get().expect("type checked upstream");
                if let Some(state) = self.state().as_mut() {
                    state.tracker.set_reposition_interval(s.reposition_interval);
                }
            }
            "min-trust" => s.min_trust = value.get().expect("type checked upstream"),
            other => unreachable!("no property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
        let swap = s.model != model;
        drop(s);
        if swap {
            self.request_swap();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "model" => s.model.as_ref().map(|p| p.display().to_string()).to_value(),
            "smoothing" => s.smoothing.to_value(),
            "reposition-interval" => s.reposition_interval.to_value(),
            "min-trust" => s.min_trust.to_value(),
            "model-version" => self
                .model_version
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .to_value(),
            other => unreachable!("no property {other}"),
        }
    }
}

impl GstObjectImpl for SpmkdPosture {}

impl ElementImpl for SpmkdPosture {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pressure-mat posture",
                "Filter/Analyzer/Video",
                "Classifies the posture (supine, left, right) of each frame from the keypoints \
                 and features in its SpmkdPoseMeta with a graph network (ONNX Runtime) and \
                 writes it, smoothed, into the meta. With spmkdmonitor upstream an empty bed \
                 gets posture none (no model run) and a frame below min-trust uncertain; the \
                 reposition clock counts occupied, trusted time only. Posts element messages \
                 spmkd-posture (posture, previous, previous-duration, running-time) on each \
                 change, spmkd-reposition (posture, since, duration, running-time) once a \
                 posture has been held for reposition-interval, and spmkd-repositioned \
                 (posture, reason, duration, running-time) when a movement offloaded the body, \
                 timed by buffer running time. The built-in model was trained on PmatData \
                 (PhysioNet pmd 1.0.0, ODC-By 1.0)",
                "spmkd developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // Any video: only the meta is read, so it may sit after spmkdoverlay too.
            let caps = gst::Caps::builder("video/x-raw").build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for SpmkdPosture {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let model = Self::open_model(&settings).map_err(crate::errors::start_error)?;
        gst::info!(
            CAT,
            imp = self,
            "posture model {} from {} (k = {}, f = {}, {} shared session(s))",
            model.meta.version,
            model.info.origin,
            model.meta.keypoints,
            model.meta.features,
            model.sessions()
        );
        if let Some(adapted) = &model.meta.adapted_on {
            gst::info!(CAT, imp = self, "its encoder was adapted to {adapted}");
        }
        self.set_model_version(Some(model.meta.version.clone()));
        *self.state() = Some(State {
            model,
            probabilities: Vec::new(),
            tracker: Tracker::new(settings.smoothing as usize, settings.reposition_interval),
            nodes: Vec::new(),
            keypoints: Vec::new(),
            warned_unposed: false,
            clock: Clock::default(),
        });
        // A model set while this start was loading the one before: load it as a swap.
        let current = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .model
            .clone();
        if current != settings.model {
            self.request_swap();
        }
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.swap.cancel();
        *self.state() = None;
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(state) = self.state().as_mut()
        {
            // After a seek the postures before it say nothing about the time after it.
            state.tracker.reset();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if let Some(model) = self.swap.take() {
            self.switch(state, model);
        }
        let record = match PoseMeta::read(buffer) {
            Ok(Some(r)) => r,
            Ok(None) => {
                if !state.warned_unposed {
                    state.warned_unposed = true;
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("a buffer without SpmkdPoseMeta (is spmkdpose upstream?): passed on without a posture")
                    );
                }
                return Ok(gst::FlowSuccess::Ok);
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        let (k, f) = (state.model.meta.keypoints, state.model.meta.features);
        if record.keypoints.len() != k || record.features_per_keypoint() != f {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "the pose has {} keypoints with {} features each (model {}), the posture model {} reads {} with {}: set spmkdposture's model to one trained on that encoder's keypoints",
                    record.keypoints.len(),
                    record.features_per_keypoint(),
                    record.model,
                    state.model.meta.version,
                    k,
                    f
                )
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        let now = self.running_time(buffer, state);
        let min_trust = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .min_trust as f32;
        let monitor = record.monitor.as_ref();
        // The monitor's occupancy (with its hysteresis) when there is one, else the frame's own.
        let occupied = monitor.map(|m| m.occupied).or(record.occupied);
        let (estimate, mut events) = if occupied == Some(false) {
            // No one on the mat: no class guess, and no model run either.
            state.tracker.empty(now)
        } else {
            state.nodes.clear();
            // The posture model reads the keypoints as the encoder saw them: laid as the
            // models expect, not as the stream's cells run.
            let (width, height) = record.laid_keypoints(&mut state.keypoints);
            nodes(
                &state.keypoints,
                &record.features,
                width,
                height,
                &mut state.nodes,
            );
            let (nodes, probabilities) = (&state.nodes, &mut state.probabilities);
            state
                .model
                .with(|model| {
                    let p = model.run(nodes)?;
                    probabilities.clear();
                    probabilities.extend_from_slice(p);
                    Ok::<_, EngineError>(())
                })
                .map_err(|e| {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                    gst::FlowError::Error
                })?;
            if monitor.is_some_and(|m| m.trust < min_trust) {
                (state.tracker.uncertain(probabilities), Vec::new())
            } else {
                state.tracker.push(probabilities, now)
            }
        };
        if monitor.is_some_and(|m| m.offloaded) {
            events.extend(state.tracker.offloaded(now));
        }
        drop(guard);

        // Only the posture fields change: the keypoint arrays stay as spmkdpose wrote them.
        PoseMeta::set_posture(buffer, Some(&estimate));
        for event in &events {
            self.post(event);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
