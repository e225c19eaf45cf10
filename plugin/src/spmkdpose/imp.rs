//! `spmkdpose` implementation: one sink pad, the main `src` pad (input buffers with a pose meta)
//! and `recon_src` (the decoder's reconstruction), flows combined as demuxers do.
//!
//! The glue between GStreamer and GStreamer-free parts: the [`Interval`] decides which frames
//! are inferred, the [`Lanes`] infer them (up to `parallel-frames` at once), [`InFlight`] when
//! each leaves (in the order they came in). Serialized events and queries (a drain query among
//! them) let the frames in flight out first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::carried::{Carried, Recon};
use super::frame::Stream;
use super::in_flight::{Flight, InFlight};
use super::interval::Interval;
use super::lane::{LaneError, ModelFiles, Want};
use super::lanes::{Lanes, OpenError, auto_lanes};
use super::orientation::OrientationChoice;
use super::workers::Ticket;
use crate::hot_swap::{HotSwap, MODEL_MESSAGE};
use crate::posemeta::PoseMeta;
use spmkd_core::engine::{self, EngineOptions};
use spmkd_core::layout::{HeadFoot, HeadFootCheck, message as head_foot};
use spmkd_core::orientation::Orientation;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdpose",
        gst::DebugColorFlags::empty(),
        Some("Pressure-mat keypoints"),
    )
});

/// The `device` property.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpmkdDevice")]
pub enum DeviceChoice {
    #[default]
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu,
    #[enum_value(name = "CUDA execution provider of ONNX Runtime", nick = "cuda")]
    Cuda,
}

const DEFAULT_THREADS: u32 = 1;
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_PARALLEL_FRAMES: u32 = 1;
/// Occupied frames the head-to-foot check decides on (30 s at PmatData's 1 Hz).
const DEFAULT_ORIENTATION_CHECK: u32 = 30;
const MAX_PARALLEL_FRAMES: u32 = 64;

#[derive(Debug, Clone)]
struct Settings {
    models: ModelFiles,
    ort_library: Option<PathBuf>,
    device: DeviceChoice,
    allow_fallback: bool,
    threads: u32,
    parallel_frames: u32,
    inference_interval: u32,
    quality: bool,
    orientation: OrientationChoice,
    orientation_check: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            models: ModelFiles::default(),
            ort_library: None,
            device: DeviceChoice::Cpu,
            allow_fallback: false,
            threads: DEFAULT_THREADS,
            parallel_frames: DEFAULT_PARALLEL_FRAMES,
            inference_interval: DEFAULT_INTERVAL,
            quality: false,
            orientation: OrientationChoice::Auto,
            orientation_check: DEFAULT_ORIENTATION_CHECK,
        }
    }
}

/// Everything made in start and dropped in stop.
struct State {
    lanes: Lanes,
    model_version: String,
    /// How frames are laid before the model: the property, or with `auto` the encoder's own.
    orientation: Orientation,
    /// Whether the mat lies head to foot, from the first occupied frames (and again after a
    /// caps change or a new model).
    head_foot: HeadFootCheck,
    /// Shared with the frames in flight on the lanes' threads.
    stream: Option<Arc<Stream>>,
    interval: Interval,
    in_flight: InFlight<(Ticket, Want), (gst::Buffer, Want)>,
    last: Option<Carried>,
    /// Mean cost of a frame's inference (encoder, and decoder when it ran), for latency.
    cost_total_ns: u64,
    cost_frames: u64,
}

pub struct SpmkdPose {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    recon_srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    flow_combiner: Mutex<gst_base::UniqueFlowCombiner>,
    /// The latency the element reports (ns): its mean inference cost. Outside `state` so a
    /// latency query never waits for a frame in progress.
    latency_ns: AtomicU64,
    /// How long a frame may wait for later frames (ns): those in flight behind it
    /// (`Lanes::depth` - 1 inferred frames), at the stream's frame rate. Part of the reported
    /// latency.
    in_flight_wait_ns: AtomicU64,
    model_version: Mutex<Option<String>>,
    /// Whether the warning that recon_src carries only gaps (no decoder) was posted.
    warned_no_decoder: AtomicBool,
    /// Models set while playing, loaded off the streaming thread.
    swap: HotSwap<Lanes>,
}

/// What is pushed after the state lock is released: a buffer and what goes on `recon_src`.
struct Output {
    buffer: gst::Buffer,
    recon: Recon,
}

impl SpmkdPose {
    fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens `settings`' models for its lanes (from the process's shared pools), checked as
    /// start and a hot swap need them.
    fn open_lanes(&self, settings: &Settings) -> Result<Lanes, OpenError> {
        let options = EngineOptions {
            library: settings.ort_library.clone(),
            device: match settings.device {
                DeviceChoice::Cpu => engine::Device::Cpu,
                DeviceChoice::Cuda => engine::Device::Cuda,
            },
            allow_fallback: settings.allow_fallback,
            threads: settings.threads as usize,
        };
        let requested = settings.parallel_frames as usize;
        let lanes = match requested {
            0 => auto_lanes(options.threads, MAX_PARALLEL_FRAMES as usize),
            n => n,
        };
        if requested == 0 {
            gst::info!(
                CAT,
                imp = self,
                "parallel-frames=0: {lanes} lane(s) of {} thread(s) on {} core(s)",
                options.threads,
                std::thread::available_parallelism().map_or(1, |n| n.get())
            );
        }
        let lanes = Lanes::open(lanes, &settings.models, &options)?;
        if settings.quality && lanes.models.decoder.is_none() {
            return Err(OpenError::NoDecoder);
        }
        let encoder = lanes.encoder();
        if let Some(reason) = &encoder.info.fell_back {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("CUDA is not available, running on the CPU: {}", reason)
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "encoder {} from {} (S = {}, k = {}, {} shared session(s)), decoder: {}, {} lane(s)",
            encoder.meta.version,
            encoder.info.origin,
            encoder.meta.input_size,
            encoder.meta.keypoints,
            encoder.sessions(),
            lanes
                .models
                .decoder
                .as_ref()
                .map_or("none", |d| d.info.origin.as_str()),
            lanes.len()
        );
        if let Some(adapted) = &encoder.meta.adapted_on {
            gst::info!(CAT, imp = self, "the encoder was adapted to {adapted}");
        }
        Ok(lanes)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings();
        let lanes = self
            .open_lanes(&settings)
            .map_err(OpenError::into_message)?;
        let meta = &lanes.encoder().meta;
        let model_version = meta.version.clone();
        let orientation = settings.orientation.resolve(meta.orientation);
        gst::info!(CAT, imp = self, "frames laid by orientation {orientation}");
        *self.model_version.lock().unwrap_or_else(|e| e.into_inner()) = Some(model_version.clone());
        self.latency_ns.store(lanes.warm_up_ns, Ordering::Relaxed);
        self.in_flight_wait_ns.store(0, Ordering::Relaxed);
        self.warned_no_decoder.store(false, Ordering::Relaxed);
        let in_flight = InFlight::new(lanes.depth());
        *self.state() = Some(State {
            lanes,
            model_version,
            orientation,
            head_foot: HeadFootCheck::new(settings.orientation_check as usize),
            stream: None,
            interval: Interval::default(),
            in_flight,
            last: None,
            cost_total_ns: 0,
            cost_frames: 0,
        });
        self.flow_combiner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
        // A model set while this start was loading the one before: load it as a swap.
        if self.settings().models != settings.models {
            self.request_swap();
        }
        Ok(())
    }

    fn stop(&self) {
        self.swap.cancel();
        *self.state() = None;
        gst::debug!(CAT, imp = self, "stopped");
    }

    fn set_caps(&self, caps: &gst::CapsRef) -> Result<gst::Caps, gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "not video caps: {caps}"))?;
        if !matches!(
            info.format(),
            gst_video::VideoFormat::Gray8 | gst_video::VideoFormat::Gray16Le
        ) {
            return Err(gst::loggable_error!(CAT, "unsupported format in {caps}"));
        }
        let recon_info = gst_video::VideoInfo::builder(
            gst_video::VideoFormat::Gray16Le,
            info.width(),
            info.height(),
        )
        .fps(info.fps())
        .par(info.par())
        .build()
        .map_err(|_| gst::loggable_error!(CAT, "no reconstruction caps for {caps}"))?;
        let recon_caps = recon_info
            .to_caps()
            .map_err(|_| gst::loggable_error!(CAT, "no reconstruction caps for {caps}"))?;
        let interval = u64::from(
            self.settings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .inference_interval
                .max(1),
        );
        let mut state = self.state();
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        let stream = Stream::new(
            info,
            recon_info,
            state.orientation,
            state.lanes.encoder().meta.input_size,
        );
        let (info, letterbox) = (&stream.info, &stream.letterbox);
        gst::debug!(
            CAT,
            imp = self,
            "{}x{} {:?}, laid {}: content {}x{} in {}",
            info.width(),
            info.height(),
            info.format(),
            stream.orientation,
            letterbox.content_width,
            letterbox.content_height,
            letterbox.size
        );
        // A frame waits for up to depth - 1 inferred frames after it.
        let frame_ns = crate::caps::frame_duration(info.fps()).map_or(0, |d| d.nseconds());
        let behind = state.lanes.depth() as u64 - 1;
        self.in_flight_wait_ns.store(
            frame_ns.saturating_mul(interval).saturating_mul(behind),
            Ordering::Relaxed,
        );
        if frame_ns == 0 && behind > 0 {
            gst::warning!(
                CAT,
                imp = self,
                "variable frame rate: the latency reported leaves out the wait of parallel-frames"
            );
        }
        // Another grid: the carried pose and the interval count start again (the frames in
        // flight were drained before the caps event; if that failed they are dropped).
        // Another mat may lie another way; the same caps again (a concat's next file) is the
        // same mat.
        let same_mat = state
            .stream
            .as_ref()
            .is_some_and(|s| s.size() == stream.size());
        if !same_mat {
            state.head_foot.reset();
        }
        state.stream = Some(Arc::new(stream));
        state.in_flight.clear();
        state.interval.reset();
        state.last = None;
        Ok(recon_caps)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
        // A serialized event comes after the buffers before it: those still in flight leave
        // first (a flush drops them instead).
        if event.is_serialized()
            && event.type_() != gst::EventType::FlushStop
            && let Err(err) = self.drain()
        {
            gst::debug!(
                CAT,
                imp = self,
                "draining before {:?}: {err:?}",
                event.type_()
            );
        }
        match event.view() {
            EventView::StreamStart(s) => {
                let id = self
                    .recon_srcpad
                    .create_stream_id(&*self.obj(), Some("recon"));
                let mut recon = gst::event::StreamStart::builder(&id).flags(s.stream_flags());
                if let Some(group) = s.group_id() {
                    recon = recon.group_id(group);
                }
                self.recon_srcpad.push_event(recon.build());
                self.srcpad.push_event(event)
            }
            EventView::Caps(c) => match self.set_caps(c.caps()) {
                Ok(recon_caps) => {
                    self.recon_srcpad
                        .push_event(gst::event::Caps::new(&recon_caps));
                    self.srcpad.push_event(event)
                }
                Err(err) => {
                    err.log_with_imp(self);
                    false
                }
            },
            EventView::FlushStop(_) => {
                if let Some(state) = self.state().as_mut() {
                    state.in_flight.clear();
                    state.interval.reset();
                    state.last = None;
                }
                self.flow_combiner
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .reset();
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        // Serialized queries (a drain query from a source about to fail among them) come after
        // the frames before them: those still in flight leave first.
        if query.is_serialized()
            && let Err(err) = self.drain()
        {
            gst::debug!(CAT, imp = self, "draining before a query: {err:?}");
        }
        if let gst::QueryViewMut::Caps(q) = query.view_mut() {
            // The main output is the input: what the main downstream accepts, within our
            // formats. The reconstruction is always GRAY16_LE and does not constrain it.
            let template = pad.pad_template_caps();
            let peer = self.srcpad.peer_query_caps(q.filter_owned().as_ref());
            let caps = peer.intersect_with_mode(&template, gst::CapsIntersectMode::First);
            q.set_result(&caps);
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn latency(&self) -> gst::ClockTime {
        gst::ClockTime::from_nseconds(
            self.latency_ns.load(Ordering::Relaxed)
                + self.in_flight_wait_ns.load(Ordering::Relaxed),
        )
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                let mut upstream = gst::query::Latency::new();
                if !self.sinkpad.peer_query(&mut upstream) {
                    return false;
                }
                let (live, min, max) = upstream.result();
                let ours = self.latency();
                gst::debug!(CAT, imp = self, "latency: upstream {min}, ours {ours}");
                q.set(live, min + ours, max.map(|m| m + ours));
                true
            }
            gst::QueryViewMut::Caps(q) if *pad == self.recon_srcpad => {
                let caps = self
                    .state()
                    .as_ref()
                    .and_then(|s| s.stream.as_ref())
                    .and_then(|s| s.recon_info.to_caps().ok())
                    .unwrap_or_else(|| pad.pad_template_caps());
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::Caps(q) => {
                let template = pad.pad_template_caps();
                let peer = self.sinkpad.peer_query_caps(q.filter_owned().as_ref());
                let caps = peer.intersect_with_mode(&template, gst::CapsIntersectMode::First);
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        // QoS from the reconstruction's branch says nothing about the main stream's timing.
        if *pad == self.recon_srcpad && event.type_() == gst::EventType::Qos {
            return true;
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    /// Posts the element error for a frame that could not be inferred.
    fn lane_error(&self, err: LaneError) -> gst::FlowError {
        match err {
            LaneError::Frame(e) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e))
            }
            LaneError::Engine(e) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e))
            }
            LaneError::Stopped => {
                gst::element_imp_error!(self, gst::CoreError::Thread, ("{}", err))
            }
        }
        gst::FlowError::Error
    }

    /// What this frame's inference is to make beyond the keypoints.
    fn want(&self, quality: bool, turned: bool) -> Want {
        Want {
            recon: self.recon_srcpad.is_linked(),
            quality,
            turned,
        }
    }

    /// Tells the bus, once, that the frames read as if the mat lay head to foot.
    fn report_turned(
        &self,
        orientation: Orientation,
        evidence: f32,
        frames: u32,
        at: Option<gst::ClockTime>,
    ) {
        let suggested = Orientation::Rotate180.after(orientation);
        gst::element_imp_warning!(
            self,
            gst::StreamError::Format,
            (
                "the mat seems to lie head to foot: over {} occupied frames its keypoints lie as the model learned only with the frames turned half way round (median layout agreement {:+.2} higher); set orientation={}, or calibrate the mat with one volunteer (spmkd-train calibrate; README \"Your own mat\")",
                frames,
                evidence,
                suggested
            )
        );
        let s = gst::Structure::builder(head_foot::NAME)
            .field(head_foot::ORIENTATION, orientation.as_str())
            .field(head_foot::SUGGESTED, suggested.as_str())
            .field(head_foot::EVIDENCE, evidence)
            .field(head_foot::FRAMES, frames)
            .field(head_foot::RUNNING_TIME, at)
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// Takes `buffer` in; hands what can leave now, in order, to `outputs`.
    fn accept(&self, buffer: gst::Buffer, outputs: &mut Vec<Output>) -> Result<(), gst::FlowError> {
        // Two numbers, not a clone of the settings (which hold paths): nothing allocated here.
        let (interval, quality) = {
            let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            (s.inference_interval, s.quality)
        };
        let mut guard = self.state();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        // A frame boundary: where a swapped model starts, once the frames in flight have left
        // with the poses of the model that inferred them.
        if let Some(lanes) = self.swap.take() {
            self.leave_all(state, outputs)?;
            self.switch(state, lanes);
        }
        let Some(stream) = state.stream.as_ref() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("a buffer arrived before any caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let want = self.want(quality, state.head_foot.wants());
        if state.interval.infer(interval) {
            let ticket = state.lanes.submit(buffer, stream, want);
            state.in_flight.push(Flight::Inferring((ticket, want)));
        } else {
            state.in_flight.push(Flight::Carrying((buffer, want)));
        }
        while let Some(frame) = state.in_flight.next_ready() {
            outputs.push(self.leave(state, frame)?);
        }
        Ok(())
    }

    /// Loads the models the settings name now on a thread of its own; the streaming thread
    /// switches to them at the next frame boundary ([`Self::switch`]). A model that cannot be
    /// loaded is a warning: the element goes on with the one it has.
    fn request_swap(&self) {
        if self.state().is_none() {
            return; // Not started: start loads what the settings say.
        }
        let settings = self.settings();
        let generation = self.swap.begin();
        let element = self.obj().downgrade();
        let loader = move || {
            let Some(element) = element.upgrade() else {
                return;
            };
            let imp = element.imp();
            match imp.open_lanes(&settings) {
                Ok(lanes) => {
                    if imp.swap.finish(generation, lanes) {
                        gst::debug!(
                            CAT,
                            imp = imp,
                            "new model loaded, switching at the next frame"
                        );
                    }
                }
                // A later request supersedes this one (a decoder set before its model).
                Err(_) if !imp.swap.is_current(generation) => {}
                Err(err) => {
                    let running = imp.obj().property::<Option<String>>("model-version");
                    gst::element_warning!(
                        element,
                        gst::LibraryError::Settings,
                        (
                            "cannot switch models: {}; still running {}",
                            err,
                            running.as_deref().unwrap_or("none")
                        )
                    );
                }
            }
        };
        if let Err(err) = std::thread::Builder::new()
            .name("spmkdpose-swap".into())
            .spawn(loader)
        {
            gst::element_imp_warning!(
                self,
                gst::CoreError::Thread,
                ("cannot start the thread that loads the new model: {}", err)
            );
        }
    }

    /// Puts swapped-in `lanes` in use (nothing is in flight), then says so on the bus.
    fn switch(&self, state: &mut State, lanes: Lanes) {
        let meta = &lanes.encoder().meta;
        let previous = std::mem::replace(&mut state.model_version, meta.version.clone());
        let origin = lanes.encoder().info.origin.clone();
        state.lanes = lanes;
        // With `auto`, the new encoder may be for a mat laid another way.
        let meta = &state.lanes.encoder().meta;
        state.orientation = self.settings().orientation.resolve(meta.orientation);
        if let Some(stream) = state.stream.as_mut() {
            // The new encoder may see another input size (nothing in flight shares the
            // stream: the frames left before the switch).
            *stream = Arc::new(Stream::new(
                stream.info.clone(),
                stream.recon_info.clone(),
                state.orientation,
                meta.input_size,
            ));
        }
        // Parallel-frames is fixed while playing: as many lanes; the next frame is inferred by
        // the new model, not carried from the old one.
        state.in_flight = InFlight::new(state.lanes.depth());
        state.interval.reset();
        state.head_foot.reset();
        state.last = None;
        state.cost_total_ns = 0;
        state.cost_frames = 0;
        *self.model_version.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(state.model_version.clone());
        gst::info!(
            CAT,
            imp = self,
            "switched from {previous} to {} ({origin})",
            state.model_version
        );
        let s = gst::Structure::builder(MODEL_MESSAGE)
            .field("model-version", &state.model_version)
            .field("previous-version", previous)
            .field("origin", origin)
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// Pushes every frame in flight (before a serialized event or query).
    fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut outputs = Vec::new();
        let left = match self.state().as_mut() {
            Some(state) => self.leave_all(state, &mut outputs),
            None => Ok(()),
        };
        // What left before a failure is pushed all the same.
        let pushed = self.push(outputs);
        left?;
        pushed
    }

    /// Every frame in flight, in order, to `outputs`; each waited for if inferred.
    fn leave_all(
        &self,
        state: &mut State,
        outputs: &mut Vec<Output>,
    ) -> Result<(), gst::FlowError> {
        while let Some(frame) = state.in_flight.pop() {
            outputs.push(self.leave(state, frame)?);
        }
        Ok(())
    }

    /// `frame` with its pose attached (its own, waited for if it is still being inferred, or
    /// the last one, which it carries), and what goes on `recon_src` with it. A failed
    /// inference drops the frames in flight behind it.
    fn leave(
        &self,
        state: &mut State,
        frame: Flight<(Ticket, Want), (gst::Buffer, Want)>,
    ) -> Result<Output, gst::FlowError> {
        let stream = state.stream.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
        let (mut buffer, want, infer) = match frame {
            Flight::Inferring((ticket, want)) => match ticket.wait() {
                Ok((buffer, Ok(inferred))) => (buffer, want, Some(inferred)),
                Ok((_, Err(err))) | Err(err) => {
                    state.in_flight.clear();
                    return Err(self.lane_error(err));
                }
            },
            Flight::Carrying((buffer, want)) => (buffer, want, None),
        };
        let stale = infer.is_none();
        let mut inference_us = 0;
        if let Some(inferred) = infer {
            inference_us = inferred.keypoints_us;
            if let (Some(as_laid), Some(turned)) = (inferred.layout, inferred.turned_layout)
                && let Some(HeadFoot::Turned { evidence }) = state.head_foot.push(as_laid, turned)
            {
                let frames = self.settings().orientation_check;
                let at = self
                    .sinkpad
                    .sticky_event::<gst::event::Segment>(0)
                    .and_then(|e| {
                        e.segment()
                            .downcast_ref::<gst::ClockTime>()
                            .and_then(|s| s.to_running_time(buffer.pts()))
                    });
                self.report_turned(stream.orientation, evidence, frames, at);
            }
            state.cost_total_ns += inferred.cost_ns;
            state.cost_frames += 1;
            self.latency_ns
                .store(state.cost_total_ns / state.cost_frames, Ordering::Relaxed);
            state.last = Some(inferred.into());
        } else if want.recon && state.lanes.models.decoder.is_some() {
            // A carried frame: the last reconstruction again, made now if it was not then.
            let last = state.last.as_mut().ok_or(gst::FlowError::Error)?;
            if last.recon.is_none() {
                last.recon = state
                    .lanes
                    .reconstruct(&last.fused, stream, &last.letterbox, last.range)
                    .map_err(|e| self.lane_error(e))?;
            }
        }
        let last = state.last.as_ref().ok_or(gst::FlowError::Error)?;
        let size = (stream.info.width(), stream.info.height());
        let mut record = last.record(
            &state.model_version,
            size,
            stream.orientation,
            inference_us,
            stale,
        );
        // What trust measures the frame against: the encoder's own references.
        let meta = &state.lanes.encoder().meta;
        record.confidence_reference = meta.confidence_reference;
        record.layout_ramp = meta.layout_ramp.filter(|_| record.layout.is_some());
        let recon = last.recon_for(&buffer, want.recon);
        PoseMeta::add(buffer.make_mut(), &record).map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ("attaching the pose: {}", e));
            gst::FlowError::Error
        })?;
        Ok(Output { buffer, recon })
    }

    /// A gap on `recon_src` for `buffer`'s time; warns once that recon_src carries only gaps.
    fn push_gap(&self, buffer: &gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        if !self.warned_no_decoder.swap(true, Ordering::Relaxed) {
            gst::element_imp_warning!(
                self,
                gst::CoreError::Negotiation,
                ("recon_src is linked but there is no decoder (set the decoder property next \
                     to model): it carries gap events, no reconstructions")
            );
        }
        let Some(pts) = buffer.pts() else {
            // A gap needs a time; without one there is nothing to say downstream.
            return Err(gst::FlowError::NotLinked);
        };
        let gap = gst::event::Gap::builder(pts)
            .duration(buffer.duration())
            .build();
        if self.recon_srcpad.push_event(gap) {
            Ok(gst::FlowSuccess::Ok)
        } else {
            Err(gst::FlowError::NotLinked)
        }
    }

    /// Pushes frames (and their reconstructions) in order; the flows combined as a demuxer does.
    fn push(&self, outputs: Vec<Output>) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut flow = Ok(gst::FlowSuccess::Ok);
        for Output { buffer, recon } in outputs {
            let recon = match recon {
                Recon::Buffer(r) => {
                    let main = self.srcpad.push(buffer);
                    (main, self.recon_srcpad.push(r))
                }
                Recon::Gap => {
                    let gap = self.push_gap(&buffer);
                    (self.srcpad.push(buffer), gap)
                }
                Recon::None => (self.srcpad.push(buffer), Err(gst::FlowError::NotLinked)),
            };
            let mut combiner = self.flow_combiner.lock().unwrap_or_else(|e| e.into_inner());
            combiner.update_pad_flow(&self.srcpad, recon.0)?;
            flow = combiner.update_pad_flow(&self.recon_srcpad, recon.1);
            flow?;
        }
        flow
    }

    fn chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut outputs = Vec::new();
        let accepted = self.accept(buffer, &mut outputs);
        // What could leave before a failure is pushed all the same.
        let pushed = self.push(outputs);
        accepted?;
        pushed
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpmkdPose {
    const NAME: &'static str = "GstSpmkdPose";
    type Type = super::SpmkdPose;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink"))
            .chain_function(|pad, parent, buffer| {
                SpmkdPose::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                SpmkdPose::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                SpmkdPose::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .build();
        let src = |name: &str| {
            gst::Pad::builder_from_template(&klass.pad_template(name).expect("src template"))
                .event_function(|pad, parent, event| {
                    SpmkdPose::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_event(pad, event),
                    )
                })
                .query_function(|pad, parent, query| {
                    SpmkdPose::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_query(pad, query),
                    )
                })
                .build()
        };
        let srcpad = src("src");
        let recon_srcpad = src("recon_src");
        let mut combiner = gst_base::UniqueFlowCombiner::new();
        combiner.add_pad(&srcpad);
        combiner.add_pad(&recon_srcpad);
        Self {
            sinkpad,
            srcpad,
            recon_srcpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            flow_combiner: Mutex::new(combiner),
            latency_ns: AtomicU64::new(0),
            in_flight_wait_ns: AtomicU64::new(0),
            model_version: Mutex::new(None),
            warned_no_decoder: AtomicBool::new(false),
            swap: HotSwap::default(),
        }
    }
}

fn path_property(value: &glib::Value) -> Option<PathBuf> {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

impl ObjectImpl for SpmkdPose {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Encoder model")
                    .blurb("ONNX encoder exported by spmkd-train (with spmkd.* metadata); unset: the built-in default model. Instances in one process with the same model and options share its sessions. Set while playing: loaded on another thread, used from the next frame on (element message spmkd-model); a model that cannot be loaded is a warning and the old one goes on")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("decoder")
                    .nick("Decoder model")
                    .blurb("ONNX decoder matching the encoder, for recon_src and quality; unset: the built-in one when model is unset, none otherwise. Set while playing as model is (set it before model when both change)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("ort-library")
                    .nick("ONNX Runtime library")
                    .blurb("Path of libonnxruntime.so; unset: $ORT_DYLIB_PATH, else $SPMKD_ORT_DIR/lib, else /opt/spmkd/onnxruntime/lib (scripts/setup). Loaded once per process")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("device", DeviceChoice::Cpu)
                    .nick("Device")
                    .blurb("Where inference runs")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("allow-fallback")
                    .nick("Allow CPU fallback")
                    .blurb("With device=cuda and no CUDA: run on the CPU with a warning instead of failing")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("ONNX Runtime intra-op threads (0: its default, one per core)")
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("parallel-frames")
                    .nick("Parallel frames")
                    .blurb("Frames inferred at once, each by its own ONNX Runtime session on its own thread (each with `threads` intra-op threads). Above 1, the streaming thread hands frames over and goes on, a frame leaving (in order) once parallel-frames later frames are in flight: more frames/s on several cores, latency grows by parallel-frames inferred frames. 0: one per `threads` cores the process may use (for offline work; 1 with threads=0)")
                    .minimum(0)
                    .maximum(MAX_PARALLEL_FRAMES)
                    .default_value(DEFAULT_PARALLEL_FRAMES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("inference-interval")
                    .nick("Inference interval")
                    .blurb("Run the model on every Nth frame; the others carry the last keypoints, marked stale")
                    .minimum(1)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("quality")
                    .nick("Reconstruction quality")
                    .blurb("Run the decoder on every inferred frame and write the SSIM of its reconstruction against the input into the meta")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("orientation", OrientationChoice::Auto)
                    .nick("Orientation")
                    .blurb("How the mat lies: the transform, named as videoflip's video-direction, that brings each frame into the models' convention (row 0 at the head end; column 0 at the left, the last column at the right of a patient lying on their back; README \"Which way a mat lies\"). Applied before the model only: keypoints, reconstructions and everything downstream stay in the stream's own cells. auto: the encoder's spmkd.orientation (identity for the built-in model; spmkd-train calibrate writes the one it finds)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("orientation-check")
                    .nick("Head-to-foot check")
                    .blurb("Occupied frames over which the element checks that the mat does not lie head to foot (each also inferred turned half way round, with an encoder that carries spmkd.layout_reference); if the frames read better turned, it posts the element message spmkd-orientation (orientation, suggested, evidence, frames, running-time) and a warning, once. Checked again after a caps change or a new model. 0: never")
                    .default_value(DEFAULT_ORIENTATION_CHECK)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-version")
                    .nick("Model version")
                    .blurb("spmkd.version of the encoder in use (known once started)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let models = s.models.clone();
        match pspec.name() {
            "model" => s.models.encoder = path_property(value),
            "decoder" => s.models.decoder = path_property(value),
            "ort-library" => s.ort_library = path_property(value),
            "device" => s.device = value.get().expect("type checked upstream"),
            "allow-fallback" => s.allow_fallback = value.get().expect("type checked upstream"),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "parallel-frames" => s.parallel_frames = value.get().expect("type checked upstream"),
            "inference-interval" => {
                s.inference_interval = value.get().expect("type checked upstream")
            }
            "quality" => s.quality = value.get().expect("type checked upstream"),
            "orientation" => s.orientation = value.get().expect("type checked upstream"),
            "orientation-check" => {
                s.orientation_check = value.get().expect("type checked upstream")
            }
            other => unreachable!("no property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
        let swap = s.models != models;
        drop(s);
        if swap {
            self.request_swap();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match pspec.name() {
            "model" => path(&s.models.encoder).to_value(),
            "decoder" => path(&s.models.decoder).to_value(),
            "ort-library" => path(&s.ort_library).to_value(),
            "device" => s.device.to_value(),
            "allow-fallback" => s.allow_fallback.to_value(),
            "threads" => s.threads.to_value(),
            "parallel-frames" => s.parallel_frames.to_value(),
            "inference-interval" => s.inference_interval.to_value(),
            "quality" => s.quality.to_value(),
            "orientation" => s.orientation.to_value(),
            "orientation-check" => s.orientation_check.to_value(),
            "model-version" => self
                .model_version
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .to_value(),
            other => unreachable!("no property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        for pad in [&self.sinkpad, &self.srcpad, &self.recon_srcpad] {
            obj.add_pad(pad).expect("pads are added once");
        }
    }
}

impl GstObjectImpl for SpmkdPose {}

impl ElementImpl for SpmkdPose {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pressure-mat keypoints",
                "Filter/Analyzer/Video",
                "Finds body keypoints in pressure-mat frames with the SPMKD encoder (ONNX Runtime): \
                 each buffer leaves on src unchanged with a SpmkdPoseMeta (x, y in sensor cells, \
                 confidence, pressure; with an encoder that carries spmkd.layout_reference, the \
                 layout: how the keypoints lie head to foot against it, which trust counts). The \
                 models expect a mat laid as PmatData's: row 0 at the head end, column 0 at the \
                 left and the last column at the right of a patient lying on their back; \
                 orientation lays another mat so before the model (the keypoints stay in the \
                 stream's cells), and a mat that reads as laid head to foot is reported once \
                 (spmkd-orientation: orientation, suggested, evidence, frames, running-time); \
                 recon_src carries the decoder's reconstruction of the frame from its keypoints \
                 while it is linked. The built-in model was trained on PmatData \
                 (PhysioNet pmd 1.0.0, ODC-By 1.0)",
                "spmkd developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let gray = crate::caps::pressure_frames();
            let recon = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Gray16Le)
                .build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &gray,
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &gray,
                )
                .expect("src template"),
                gst::PadTemplate::new(
                    "recon_src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &recon,
                )
                .expect("recon_src template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused
            && let Err(msg) = self.start()
        {
            self.post_error_message(msg);
            return Err(gst::StateChangeError);
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        Ok(ret)
    }
}
