//! `spmkdpose` implementation: one sink pad, the main `src` pad (input buffers with a pose meta)
//! and `recon_src` (the decoder's reconstruction), flows combined as demuxers do.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;

use spmkd_core::keypoints;
use spmkd_core::model_meta::ModelKind;
use spmkd_core::preprocess::{Letterbox, preprocess_into};
use spmkd_core::schema::{Keypoint, PoseRecord, SCHEMA_VERSION};
use spmkd_core::ssim::Ssim;

use crate::posemeta::PoseMeta;
use spmkd_core::engine::{self, Decoder, Encoder, EngineError, EngineOptions, ModelSource};

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

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    decoder: Option<PathBuf>,
    ort_library: Option<PathBuf>,
    device: DeviceChoice,
    allow_fallback: bool,
    threads: u32,
    inference_interval: u32,
    quality: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            decoder: None,
            ort_library: None,
            device: DeviceChoice::Cpu,
            allow_fallback: false,
            threads: DEFAULT_THREADS,
            inference_interval: DEFAULT_INTERVAL,
            quality: false,
        }
    }
}

/// The negotiated input and what follows from it.
struct Stream {
    info: gst_video::VideoInfo,
    recon_info: gst_video::VideoInfo,
    letterbox: Letterbox,
}

/// The last pose computed, carried onto frames that inference-interval skips.
struct LastPose {
    keypoints: Vec<Keypoint>,
    quality: Option<f32>,
    /// The reconstruction pushed with it, if one was made.
    recon: Option<gst::Buffer>,
    /// The frame's pressure range, to bring a later reconstruction back to its units.
    range: (f32, f32),
}

/// Everything made in start and dropped in stop.
struct State {
    encoder: Encoder,
    decoder: Option<Decoder>,
    stream: Option<Stream>,
    /// Frames since the caps or the last flush: inference runs when `frames % interval == 0`.
    frames: u64,
    last: Option<LastPose>,
    /// The frame as floats, the normalized frame, the model input, the reconstruction on the
    /// sensor grid: reused from frame to frame.
    raw: Vec<f32>,
    normalized: Vec<f32>,
    input: Vec<f32>,
    sensor_map: Vec<f32>,
    ssim: Ssim,
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
    model_version: Mutex<Option<String>>,
}

/// What the chain function pushes after the state lock is released.
struct Output {
    buffer: gst::Buffer,
    recon: Option<gst::Buffer>,
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

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings();
        let options = EngineOptions {
            library: settings.ort_library.clone(),
            device: match settings.device {
                DeviceChoice::Cpu => engine::Device::Cpu,
                DeviceChoice::Cuda => engine::Device::Cuda,
            },
            allow_fallback: settings.allow_fallback,
            threads: settings.threads as usize,
        };
        let engine_error = |e: EngineError| match e {
            EngineError::Read { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)),
            EngineError::Library { .. } | EngineError::LibraryMismatch { .. } => {
                gst::error_msg!(gst::LibraryError::Init, ("{}", e))
            }
            _ => gst::error_msg!(gst::LibraryError::Settings, ("{}", e)),
        };
        let source = |path: &Option<PathBuf>, kind| match path {
            Some(p) => ModelSource::file(p),
            None => Ok(ModelSource::embedded(kind)),
        };
        let encoder = Encoder::new(
            &source(&settings.model, ModelKind::Encoder).map_err(engine_error)?,
            &options,
        )
        .map_err(engine_error)?;
        // The built-in decoder only fits the built-in encoder.
        let decoder = if settings.decoder.is_some() || settings.model.is_none() {
            Some(
                Decoder::new(
                    &source(&settings.decoder, ModelKind::Decoder).map_err(engine_error)?,
                    &options,
                    &encoder.meta,
                )
                .map_err(engine_error)?,
            )
        } else {
            None
        };
        if settings.quality && decoder.is_none() {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("quality=true needs a decoder: set the decoder property next to model")
            ));
        }
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
            "encoder {} from {} (S = {}, k = {}), decoder: {}",
            encoder.meta.version,
            encoder.info.origin,
            encoder.meta.input_size,
            encoder.meta.keypoints,
            decoder.as_ref().map_or("none", |d| d.info.origin.as_str())
        );
        *self.model_version.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(encoder.meta.version.clone());
        let s = encoder.input_size();
        let mut state = State {
            encoder,
            decoder,
            stream: None,
            frames: 0,
            last: None,
            raw: Vec::new(),
            normalized: Vec::new(),
            input: vec![0.0; s * s],
            sensor_map: Vec::new(),
            ssim: Ssim::default(),
            cost_total_ns: 0,
            cost_frames: 0,
        };
        // A first run on an empty frame: ONNX Runtime's first inference allocates, and its
        // cost is the latency reported before any frame has been seen.
        let t = Instant::now();
        state.encoder.run(&state.input).map_err(engine_error)?;
        if let Some(d) = state.decoder.as_mut() {
            d.run(&state.encoder.fused).map_err(engine_error)?;
        }
        self.latency_ns
            .store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        *self.state() = Some(state);
        self.flow_combiner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
        Ok(())
    }

    fn stop(&self) {
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
        let mut state = self.state();
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        let letterbox = Letterbox::new(
            info.width() as usize,
            info.height() as usize,
            state.encoder.input_size(),
        );
        gst::debug!(
            CAT,
            imp = self,
            "{}x{} {:?}: content {}x{} in {}",
            info.width(),
            info.height(),
            info.format(),
            letterbox.content_width,
            letterbox.content_height,
            letterbox.size
        );
        let cells = (info.width() * info.height()) as usize;
        state.raw.resize(cells, 0.0);
        state.normalized.resize(cells, 0.0);
        state.sensor_map.resize(cells, 0.0);
        // Another grid: the carried pose and the interval count start again.
        state.stream = Some(Stream {
            info,
            recon_info,
            letterbox,
        });
        state.frames = 0;
        state.last = None;
        Ok(recon_caps)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
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
                    state.frames = 0;
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
        gst::ClockTime::from_nseconds(self.latency_ns.load(Ordering::Relaxed))
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

    /// The frame's values as floats, rows packed (the buffer's rows may be padded).
    fn read_frame(
        buffer: &gst::BufferRef,
        info: &gst_video::VideoInfo,
        out: &mut [f32],
    ) -> Result<(), gst::FlowError> {
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
            .map_err(|_| gst::FlowError::Error)?;
        let width = info.width() as usize;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
        for (row, dst) in out.chunks_exact_mut(width).enumerate() {
            let src = &data[row * stride..];
            match info.format() {
                gst_video::VideoFormat::Gray8 => {
                    for (d, &v) in dst.iter_mut().zip(&src[..width]) {
                        *d = v as f32;
                    }
                }
                _ => {
                    for (d, v) in dst.iter_mut().zip(src[..2 * width].chunks_exact(2)) {
                        *d = u16::from_le_bytes([v[0], v[1]]) as f32;
                    }
                }
            }
        }
        Ok(())
    }

    /// The reconstruction on the sensor grid, in the input's units, as a GRAY16_LE buffer.
    fn recon_buffer(
        map: &[f32],
        stream: &Stream,
        sensor_map: &mut [f32],
        (min, max): (f32, f32),
    ) -> Result<gst::Buffer, gst::FlowError> {
        stream.letterbox.unapply(map, sensor_map);
        let info = &stream.recon_info;
        let mut buffer = gst::Buffer::with_size(info.size()).map_err(|_| gst::FlowError::Error)?;
        {
            let b = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(b, info)
                .map_err(|_| gst::FlowError::Error)?;
            let width = info.width() as usize;
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
            for (row, src) in sensor_map.chunks_exact(width).enumerate() {
                let dst = &mut data[row * stride..][..2 * width];
                for (d, &v) in dst.chunks_exact_mut(2).zip(src) {
                    let units = (min + v * (max - min)).round().clamp(0.0, 65535.0) as u16;
                    d.copy_from_slice(&units.to_le_bytes());
                }
            }
        }
        Ok(buffer)
    }

    /// Computes the pose of `buffer` (or carries the last one) and attaches it.
    fn process(&self, mut buffer: gst::Buffer) -> Result<Output, gst::FlowError> {
        // Two numbers, not a clone of the settings (which hold paths): nothing allocated here.
        let (inference_interval, want_quality) = {
            let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            (s.inference_interval, s.quality)
        };
        let want_recon = self.recon_srcpad.is_linked();
        let mut guard = self.state();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let Some(stream) = state.stream.as_ref() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("a buffer arrived before any caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let interval = u64::from(inference_interval.max(1));
        let infer = state.last.is_none() || state.frames % interval == 0;
        state.frames += 1;
        let (width, height) = (stream.info.width(), stream.info.height());

        let mut inference_us = 0;
        if infer {
            let t = Instant::now();
            Self::read_frame(&buffer, &stream.info, &mut state.raw).inspect_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("cannot map the buffer as {}x{}", width, height)
                )
            })?;
            let range = state
                .raw
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            preprocess_into(
                &state.raw,
                &stream.letterbox,
                &mut state.normalized,
                &mut state.input,
            );
            state.encoder.run(&state.input).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                gst::FlowError::Error
            })?;
            let mut pose = state.last.take().map_or_else(Vec::new, |l| l.keypoints);
            keypoints::decode(
                &state.encoder.keypoints,
                &state.encoder.confidence,
                &stream.letterbox,
                &state.normalized,
                &mut pose,
            );
            inference_us = t.elapsed().as_micros() as u64;

            let mut quality = None;
            let mut recon = None;
            if let Some(decoder) = state
                .decoder
                .as_mut()
                .filter(|_| want_recon || want_quality)
            {
                decoder.run(&state.encoder.fused).map_err(|e| {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                    gst::FlowError::Error
                })?;
                if want_quality {
                    let s = stream.letterbox.size;
                    quality = state.ssim.compute(&decoder.map, &state.input, s, s);
                }
                if want_recon {
                    recon = Some(Self::recon_buffer(
                        &decoder.map,
                        stream,
                        &mut state.sensor_map,
                        range,
                    )?);
                }
            }
            let cost = t.elapsed().as_nanos() as u64;
            state.cost_total_ns += cost;
            state.cost_frames += 1;
            self.latency_ns
                .store(state.cost_total_ns / state.cost_frames, Ordering::Relaxed);
            state.last = Some(LastPose {
                keypoints: pose,
                quality,
                recon,
                range,
            });
        } else if want_recon {
            // A skipped frame: the last reconstruction again, made now if it was not then.
            let last = state.last.as_mut().ok_or(gst::FlowError::Error)?;
            if last.recon.is_none()
                && let Some(decoder) = state.decoder.as_mut()
            {
                decoder.run(&state.encoder.fused).map_err(|e| {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                    gst::FlowError::Error
                })?;
                last.recon = Some(Self::recon_buffer(
                    &decoder.map,
                    stream,
                    &mut state.sensor_map,
                    last.range,
                )?);
            }
        }

        let last = state.last.as_ref().ok_or(gst::FlowError::Error)?;
        let record = PoseRecord {
            schema: SCHEMA_VERSION,
            pts_ns: None,
            duration_ns: None,
            width,
            height,
            model: state.encoder.meta.version.clone(),
            inference_us,
            stale: !infer,
            quality: last.quality,
            posture: None,
            keypoints: last.keypoints.clone(),
        };
        let recon = match (&last.recon, want_recon) {
            (Some(r), true) => {
                // Shares the memory of the reconstruction; only the timestamps are new.
                let mut r = r.copy();
                let rb = r.make_mut();
                rb.set_pts(buffer.pts());
                rb.set_dts(buffer.dts());
                rb.set_duration(buffer.duration());
                rb.set_offset(buffer.offset());
                Some(r)
            }
            _ => None,
        };
        drop(guard);

        PoseMeta::add(buffer.make_mut(), &record).map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ("attaching the pose: {}", e));
            gst::FlowError::Error
        })?;
        Ok(Output { buffer, recon })
    }

    fn chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Output { buffer, recon } = self.process(buffer)?;
        let main = self.srcpad.push(buffer);
        let recon = match recon {
            Some(r) => self.recon_srcpad.push(r),
            None => Err(gst::FlowError::NotLinked),
        };
        let mut combiner = self.flow_combiner.lock().unwrap_or_else(|e| e.into_inner());
        combiner.update_pad_flow(&self.srcpad, main)?;
        combiner.update_pad_flow(&self.recon_srcpad, recon)
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
            model_version: Mutex::new(None),
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
                    .blurb("ONNX encoder exported by spmkd-train (with spmkd.* metadata); unset: the built-in default model")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("decoder")
                    .nick("Decoder model")
                    .blurb("ONNX decoder matching the encoder, for recon_src and quality; unset: the built-in one when model is unset, none otherwise")
                    .mutable_ready()
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
        match pspec.name() {
            "model" => s.model = path_property(value),
            "decoder" => s.decoder = path_property(value),
            "ort-library" => s.ort_library = path_property(value),
            "device" => s.device = value.get().expect("type checked upstream"),
            "allow-fallback" => s.allow_fallback = value.get().expect("type checked upstream"),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "inference-interval" => {
                s.inference_interval = value.get().expect("type checked upstream")
            }
            "quality" => s.quality = value.get().expect("type checked upstream"),
            other => unreachable!("no property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match pspec.name() {
            "model" => path(&s.model).to_value(),
            "decoder" => path(&s.decoder).to_value(),
            "ort-library" => path(&s.ort_library).to_value(),
            "device" => s.device.to_value(),
            "allow-fallback" => s.allow_fallback.to_value(),
            "threads" => s.threads.to_value(),
            "inference-interval" => s.inference_interval.to_value(),
            "quality" => s.quality.to_value(),
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
                 confidence, pressure); recon_src carries the decoder's reconstruction of the frame \
                 from its keypoints while it is linked. The built-in model was trained on PmatData \
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
