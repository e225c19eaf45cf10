//! `spmkdmonitor` implementation: an always-in-place BaseTransform over pressure frames. Per
//! buffer: the frame's values and its pose (if any) go through a [`Monitor`]; the findings are
//! written into the pose meta and what happened is posted on the bus.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use spmkd_core::monitor::{
    ExposureConfig, Monitor, MonitorConfig, MonitorEvent, MonitorInput, OccupancyConfig,
    OccupancyEvent, Region,
};

use crate::posemeta::PoseMeta;
use crate::running_time::Clock;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdmonitor",
        gst::DebugColorFlags::empty(),
        Some("Bed monitoring from pressure frames"),
    )
});

/// Element message on entering and leaving the bed.
pub const OCCUPANCY_MESSAGE: &str = "spmkd-occupancy";
/// Element message once the bed has been empty for `exit-delay`.
pub const EXIT_MESSAGE: &str = "spmkd-bed-exit";
/// Element message when the load gathers at a long edge.
pub const EDGE_MESSAGE: &str = "spmkd-edge";
/// Element message when a region has been under load for `exposure-limit`.
pub const EXPOSURE_MESSAGE: &str = "spmkd-exposure";

#[derive(Debug, Clone, Copy, Default)]
struct Settings {
    config: MonitorConfig,
    exposure_map: bool,
}

/// Made in start, dropped in stop.
struct State {
    monitor: Monitor,
    info: Option<gst_video::VideoInfo>,
    values: Vec<f32>,
    map: Vec<f32>,
    clock: Clock,
    warned_unposed: bool,
}

#[derive(Default)]
pub struct SpmkdMonitor {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

impl SpmkdMonitor {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Thresholds that only make sense together, checked where a user sees the error.
    fn check(config: &MonitorConfig) -> Result<(), String> {
        let o = &config.occupancy;
        if o.leave_area >= o.enter_area {
            return Err(format!(
                "leave-area ({}) must be below enter-area ({}): between the two the state holds",
                o.leave_area, o.enter_area
            ));
        }
        Ok(())
    }

    fn post(&self, s: gst::Structure) {
        gst::info!(CAT, imp = self, "{s}");
        let obj = self.obj();
        crate::announce::announce(obj.upcast_ref(), obj.src_pad(), s);
    }

    fn post_event(&self, event: &MonitorEvent) {
        let t = gst::ClockTime::from_nseconds;
        let s = match *event {
            MonitorEvent::Occupancy(OccupancyEvent::Entered { at_ns }) => {
                gst::Structure::builder(OCCUPANCY_MESSAGE)
                    .field("occupied", true)
                    .field("running-time", t(at_ns))
                    .build()
            }
            MonitorEvent::Occupancy(OccupancyEvent::Left { at_ns, occupied_ns }) => {
                gst::Structure::builder(OCCUPANCY_MESSAGE)
                    .field("occupied", false)
                    .field("running-time", t(at_ns))
                    .field("occupied-duration", t(occupied_ns))
                    .build()
            }
            MonitorEvent::Occupancy(OccupancyEvent::Exit { since_ns, at_ns }) => {
                gst::Structure::builder(EXIT_MESSAGE)
                    .field("since", t(since_ns))
                    .field("duration", t(at_ns.saturating_sub(since_ns)))
                    .field("running-time", t(at_ns))
                    .build()
            }
            MonitorEvent::Occupancy(OccupancyEvent::Edge {
                side,
                share_milli,
                at_ns,
            }) => gst::Structure::builder(EDGE_MESSAGE)
                .field("side", side.as_str())
                .field("share", f64::from(share_milli) / 1000.0)
                .field("running-time", t(at_ns))
                .build(),
            MonitorEvent::Exposure {
                region:
                    Region {
                        x,
                        y,
                        cells,
                        under_load_ns,
                        dose,
                    },
                at_ns,
            } => gst::Structure::builder(EXPOSURE_MESSAGE)
                .field("x", x)
                .field("y", y)
                .field("cells", cells)
                .field("duration", t(under_load_ns))
                .field("dose", dose)
                .field("running-time", t(at_ns))
                .build(),
        };
        self.post(s);
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpmkdMonitor {
    const NAME: &'static str = "GstSpmkdMonitor";
    type Type = super::SpmkdMonitor;
    type ParentType = gst_base::BaseTransform;
}

fn share(name: &str, nick: &str, blurb: &str, min: f64, default: f32) -> glib::ParamSpec {
    glib::ParamSpecDouble::builder(name)
        .nick(nick)
        .blurb(blurb)
        .minimum(min)
        .maximum(1.0)
        .default_value(f64::from(default))
        .mutable_playing()
        .build()
}

fn duration(name: &str, nick: &str, blurb: &str, default: u64) -> glib::ParamSpec {
    glib::ParamSpecUInt64::builder(name)
        .nick(nick)
        .blurb(blurb)
        .minimum(0)
        .default_value(default)
        .mutable_playing()
        .build()
}

impl ObjectImpl for SpmkdMonitor {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let o = OccupancyConfig::default();
            let e = ExposureConfig::default();
            let m = MonitorConfig::default();
            vec![
                share(
                    "enter-area",
                    "Enter area",
                    "Share of the mat's cells in contact (above the mat's own noise floor, estimated from the frames) at which an empty bed becomes occupied",
                    0.001,
                    o.enter_area,
                ),
                share(
                    "leave-area",
                    "Leave area",
                    "Share of the cells in contact below which an occupied bed becomes empty (below enter-area: in between, the state holds)",
                    0.0,
                    o.leave_area,
                ),
                glib::ParamSpecUInt::builder("hold-frames")
                    .nick("Hold frames")
                    .blurb("Consecutive frames a new occupancy must hold before it is taken (one odd frame changes nothing)")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(o.hold_frames)
                    .mutable_playing()
                    .build(),
                duration(
                    "exit-delay",
                    "Exit delay",
                    "A spmkd-bed-exit message is posted once the bed has been empty this long after being occupied (ns of running time)",
                    o.exit_delay_ns,
                ),
                share(
                    "edge-share",
                    "Edge share",
                    "Share of the load on one long edge (the outer edge-width of the columns) at which an occupied bed warns spmkd-edge: sitting or lying at the edge precedes most exits",
                    0.05,
                    o.edge_share,
                ),
                glib::ParamSpecDouble::builder("edge-width")
                    .nick("Edge width")
                    .blurb("Share of the mat's width on each side that is its long edge")
                    .minimum(0.01)
                    .maximum(0.5)
                    .default_value(f64::from(m.edge_width))
                    .mutable_playing()
                    .build(),
                share(
                    "movement-threshold",
                    "Movement threshold",
                    "Movement score (share of the load that moved, or confidence-weighted median keypoint displacement as a share of half the mat's diagonal) at which a frame counts as moved",
                    0.001,
                    m.movement_threshold,
                ),
                share(
                    "load-threshold",
                    "Load threshold",
                    "Load (as a share of the mat's recent peak load above its floor) at which a cell is under load for the exposure",
                    0.01,
                    e.load_threshold,
                ),
                duration(
                    "offload-time",
                    "Offload time",
                    "A cell unloaded this long is offloaded: its time under load starts again (ns)",
                    e.offload_ns,
                ),
                glib::ParamSpecUInt64::builder("exposure-limit")
                    .nick("Exposure limit")
                    .blurb("A spmkd-exposure message is posted once a contact region has been under load this long, once per loading (ns; default 2 hours)")
                    .minimum(1)
                    .default_value(e.limit_ns)
                    .mutable_playing()
                    .build(),
                share(
                    "offload-share",
                    "Offload share",
                    "Share of the cells loaded before a movement that must be unloaded after it for the movement to count as a reposition",
                    0.01,
                    e.offload_share,
                ),
                glib::ParamSpecBoolean::builder("exposure-map")
                    .nick("Exposure map")
                    .blurb("Also write each cell's seconds under load into the pose meta (exposure_map), for spmkdoverlay mode=exposure")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        let c = &mut s.config;
        let f = || value.get::<f64>().expect("type checked upstream") as f32;
        let u = || value.get::<u64>().expect("type checked upstream");
        match pspec.name() {
            "enter-area" => c.occupancy.enter_area = f(),
            "leave-area" => c.occupancy.leave_area = f(),
            "hold-frames" => c.occupancy.hold_frames = value.get().expect("type checked upstream"),
            "exit-delay" => c.occupancy.exit_delay_ns = u(),
            "edge-share" => c.occupancy.edge_share = f(),
            "edge-width" => c.edge_width = f(),
            "movement-threshold" => c.movement_threshold = f(),
            "load-threshold" => c.exposure.load_threshold = f(),
            "offload-time" => c.exposure.offload_ns = u(),
            "exposure-limit" => c.exposure.limit_ns = u(),
            "offload-share" => c.exposure.offload_share = f(),
            "exposure-map" => s.exposure_map = value.get().expect("type checked upstream"),
            other => unreachable!("no property {other}"),
        }
        let config = s.config;
        drop(s);
        if let Some(state) = self.state().as_mut() {
            match Self::check(&config) {
                Ok(()) => state.monitor.set_config(config),
                Err(e) => gst::warning!(CAT, imp = self, "not applied while running: {e}"),
            }
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        let c = &s.config;
        let f = |v: f32| f64::from(v).to_value();
        match pspec.name() {
            "enter-area" => f(c.occupancy.enter_area),
            "leave-area" => f(c.occupancy.leave_area),
            "hold-frames" => c.occupancy.hold_frames.to_value(),
            "exit-delay" => c.occupancy.exit_delay_ns.to_value(),
            "edge-share" => f(c.occupancy.edge_share),
            "edge-width" => f(c.edge_width),
            "movement-threshold" => f(c.movement_threshold),
            "load-threshold" => f(c.exposure.load_threshold),
            "offload-time" => c.exposure.offload_ns.to_value(),
            "exposure-limit" => c.exposure.limit_ns.to_value(),
            "offload-share" => f(c.exposure.offload_share),
            "exposure-map" => s.exposure_map.to_value(),
            other => unreachable!("no property {other}"),
        }
    }
}

impl GstObjectImpl for SpmkdMonitor {}

impl ElementImpl for SpmkdMonitor {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pressure-mat bed monitor",
                "Filter/Analyzer/Video",
                "Occupancy and bed exit, movement, pressure exposure and trust of each pressure \
                 frame, against the mat's own noise floor (estimated from the frames, again \
                 after a caps change). Writes them into the SpmkdPoseMeta (field monitor) when \
                 spmkdpose is upstream, for spmkdposture (posture none on an empty bed, \
                 uncertain below its min-trust, offloading movements as repositions), \
                 spmkdjsonenc and spmkdoverlay. Posts element messages spmkd-occupancy \
                 (occupied, running-time[, occupied-duration]), spmkd-bed-exit (since, \
                 duration, running-time) once the bed has been empty for exit-delay, \
                 spmkd-edge (side, share, running-time) and spmkd-exposure (x, y, cells, \
                 duration, dose, running-time), timed by buffer running time",
                "spmkd developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = crate::caps::pressure_frames();
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

impl BaseTransformImpl for SpmkdMonitor {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let config = self.settings().config;
        Self::check(&config)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        *self.state() = Some(State {
            monitor: Monitor::new(config),
            info: None,
            values: Vec::new(),
            map: Vec::new(),
            clock: Clock::default(),
            warned_unposed: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state() = None;
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "not pressure-frame caps: {incaps}"))?;
        let mut guard = self.state();
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        if state.info.as_ref() != Some(&info) {
            // Another size or format may be another mat: its floor and noise are found anew.
            if state.info.is_some() {
                gst::info!(
                    CAT,
                    imp = self,
                    "caps changed to {incaps}: the mat's levels are estimated again"
                );
            }
            state.monitor.reset();
            state.values = vec![0.0; info.width() as usize * info.height() as usize];
            state.info = Some(info);
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(state) = self.state().as_mut()
        {
            // After a seek the past says nothing about the time after it; the mat is the same.
            state.monitor.reset_history();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let exposure_map = self.settings().exposure_map;
        let segment = self.obj().segment();
        let mut guard = self.state();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let Some(info) = state.info.as_ref() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("a buffer arrived before any caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let (width, height) = (info.width() as usize, info.height() as usize);
        if let Err(e) = crate::pressure::read_values(info, buffer, &mut state.values) {
            gst::element_imp_error!(self, gst::StreamError::Decode, ("{}", e));
            return Err(gst::FlowError::Error);
        }
        let pose = match PoseMeta::read(buffer) {
            Ok(p) => p,
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        if pose.is_none() && !state.warned_unposed {
            state.warned_unposed = true;
            gst::info!(
                CAT,
                imp = self,
                "frames without a pose (no spmkdpose upstream): occupancy, movement and exposure from the pressure alone, posted on the bus only"
            );
        }
        let (now, untimed) = state.clock.now(&segment, buffer);
        if untimed {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("a buffer without a timestamp (or outside the segment): it counts as the frame before it")
            );
        }
        let input = MonitorInput {
            values: &state.values,
            width,
            height,
            keypoints: pose.as_ref().map_or(&[][..], |p| p.keypoints.as_slice()),
            fresh: pose.as_ref().is_some_and(|p| !p.stale),
            quality: pose.as_ref().and_then(|p| p.quality),
            confidence_reference: pose.as_ref().and_then(|p| p.confidence_reference),
            layout: pose.as_ref().and_then(|p| p.layout),
            layout_ramp: pose.as_ref().and_then(|p| p.layout_ramp),
            now_ns: now,
        };
        // Empty on almost every frame (an empty Vec does not allocate).
        let mut events = Vec::new();
        let record = state.monitor.push(&input, &mut events);
        if pose.is_some() {
            let map = exposure_map.then(|| {
                state.monitor.seconds_under_load(now, &mut state.map);
                state.map.as_slice()
            });
            PoseMeta::set_monitor(buffer, &record, map);
        }
        drop(guard);
        for event in &events {
            self.post_event(event);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
