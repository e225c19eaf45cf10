//! `spmkdoverlay` implementation: a `VideoFilter` from GRAY8/GRAY16_LE to RGBA `scale` times
//! larger. The pose meta goes on to the output rescaled to its size.

use std::sync::{LazyLock, Mutex, MutexGuard};

use ab_glyph::FontVec;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::colormap::Colormap;
use super::draw::{Canvas, Readings};
use super::mode::{Mode, legend_text};
use crate::posemeta::PoseMeta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdoverlay",
        gst::DebugColorFlags::empty(),
        Some("Pressure frame and pose as a picture"),
    )
});

const DEFAULT_SCALE: u32 = 8;
/// Two hours at the top of the exposure colour scale: the usual repositioning interval.
const DEFAULT_EXPOSURE_MAX_NS: u64 = 2 * 3600 * 1_000_000_000;
const MAX_SCALE: u32 = 64;
/// The widest and tallest picture drawn (the common upper bound of GStreamer's video caps):
/// beyond it a frame is refused with a message saying so, not left to fail negotiation.
const MAX_PICTURE_SIDE: i32 = 32767;

#[derive(Debug, Clone)]
struct Settings {
    colormap: Colormap,
    scale: u32,
    keypoints: bool,
    min_confidence: f32,
    label: bool,
    max_pressure: u32,
    font: String,
    mode: Mode,
    exposure_max: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Pressure,
            exposure_max: DEFAULT_EXPOSURE_MAX_NS,
            colormap: Colormap::Viridis,
            scale: DEFAULT_SCALE,
            keypoints: true,
            min_confidence: 0.0,
            label: true,
            max_pressure: 0,
            font: spmkd_core::assets::FONT.to_owned(),
        }
    }
}

struct State {
    /// The font of the posture label (None: it could not be read; labels are left out).
    font: Option<FontVec>,
    /// The lookup table of the colormap in use, made again only when the property changes.
    table: (Colormap, [[u8; 4]; 256]),
}

/// What a frame needs of the settings: copied, so no frame clones the font path.
#[derive(Debug, Clone, Copy)]
struct FrameSettings {
    colormap: Colormap,
    scale: u32,
    keypoints: bool,
    min_confidence: f32,
    label: bool,
    max_pressure: u32,
    mode: Mode,
    exposure_max: u64,
}

#[derive(Default)]
pub struct SpmkdOverlay {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The last frame size (and scale) refused as too large, so it is reported once.
    refused: Mutex<Option<(i32, i32, i32)>>,
    /// The last frame size (and scale) drawn smaller than asked, likewise.
    scaled_down: Mutex<Option<(i32, i32, i32)>>,
    /// The pose of the buffer being drawn, from copy_metadata to transform_frame.
    pose: Mutex<Option<spmkd_core::schema::PoseRecord>>,
    /// Its exposure map (mode=exposure), likewise.
    exposure: Mutex<Option<Vec<f32>>>,
    /// mode=exposure met a frame without an exposure map, and said so.
    warned_no_map: std::sync::atomic::AtomicBool,
}

impl SpmkdOverlay {
    /// Says, once per frame size, that a frame is drawn at a smaller scale than asked.
    fn scaled_down(&self, w: i32, h: i32, scale: i32, fitted: i32) {
        let mut said = self.scaled_down.lock().unwrap_or_else(|e| e.into_inner());
        if *said == Some((w, h, scale)) {
            return;
        }
        *said = Some((w, h, scale));
        gst::element_imp_warning!(
            self,
            gst::CoreError::Negotiation,
            (
                "a {}x{} frame at scale={} would be larger than {} pixels a side: drawn at \
                 scale={}",
                w,
                h,
                scale,
                MAX_PICTURE_SIDE,
                fitted
            )
        );
    }

    /// Says, once per frame size, why a frame this large cannot be drawn at all: the
    /// negotiation that fails next would otherwise give no reason.
    fn too_large(&self, caps: &gst::Caps, scale: i32) {
        let Some(s) = caps.structure(0) else { return };
        let (w, h) = (
            s.get::<i32>("width").unwrap_or(0),
            s.get::<i32>("height").unwrap_or(0),
        );
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if *refused == Some((w, h, scale)) {
            return;
        }
        *refused = Some((w, h, scale));
        gst::element_imp_error!(
            self,
            gst::CoreError::Negotiation,
            (
                "a {}x{} frame is larger than {} pixels a side even at scale=1: it cannot be drawn",
                w,
                h,
                MAX_PICTURE_SIDE
            )
        );
    }

    fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn frame_settings(&self) -> FrameSettings {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        FrameSettings {
            colormap: s.colormap,
            scale: s.scale,
            keypoints: s.keypoints,
            min_confidence: s.min_confidence,
            label: s.label,
            max_pressure: s.max_pressure,
            mode: s.mode,
            exposure_max: s.exposure_max,
        }
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The scale a `width x height` frame is drawn at: `scale`, or the largest below it whose
/// picture stays within [`MAX_PICTURE_SIDE`] (a frame far longer than wide, from a mat
/// announcing an odd size); `None` when not even 1 does.
fn fitted_scale(scale: i32, width: i32, height: i32) -> Option<i32> {
    let most = MAX_PICTURE_SIDE / width.max(height).max(1);
    // Not `then_some`: `clamp` panics for `most` 0, and its argument is evaluated regardless.
    if most >= 1 {
        Some(scale.clamp(1, most))
    } else {
        None
    }
}

/// Width/height fields scaled by `scale` (up: multiplied, when the picture stays within
/// [`MAX_PICTURE_SIDE`]; down: divided when it divides). `Err` holds a fixed size up that the
/// picture cannot have.
fn scale_dimension(
    s: &mut gst::StructureRef,
    field: &str,
    scale: i32,
    up: bool,
) -> Result<bool, i32> {
    match s.get::<i32>(field) {
        Ok(v) if up => match v.checked_mul(scale).filter(|&n| n <= MAX_PICTURE_SIDE) {
            Some(n) => {
                s.set(field, n);
                Ok(true)
            }
            None => Err(v),
        },
        Ok(v) if v % scale == 0 => {
            s.set(field, v / scale);
            Ok(true)
        }
        Ok(_) => Ok(false),
        // Not fixed yet: any size the picture can have (the fixed caps decide later).
        Err(_) => {
            let most = if up { MAX_PICTURE_SIDE } else { i32::MAX };
            s.set(field, gst::IntRange::new(1, most));
            Ok(true)
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpmkdOverlay {
    const NAME: &'static str = "GstSpmkdOverlay";
    type Type = super::SpmkdOverlay;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for SpmkdOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("colormap", Colormap::Viridis)
                    .nick("Colormap")
                    .blurb("How pressure becomes colour")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("scale")
                    .nick("Scale")
                    .blurb("Output pixels per sensor cell along each axis (the picture may be at most 32767 pixels a side)")
                    .minimum(1)
                    .maximum(MAX_SCALE)
                    .default_value(DEFAULT_SCALE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("keypoints")
                    .nick("Keypoints")
                    .blurb("Draw the keypoints of the pose meta: size and opacity grow with confidence")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("min-confidence")
                    .nick("Minimum confidence")
                    .blurb("Leave out keypoints less confident than this")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("label")
                    .nick("Posture label")
                    .blurb("Write the posture (when the meta has one) in the top-left corner")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-pressure")
                    .nick("Maximum pressure")
                    .blurb("Reading shown with the colormap's last colour; 0: each frame's own maximum")
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", Mode::Pressure)
                    .nick("Mode")
                    .blurb("What is painted: the pressure, or each cell's time under load from spmkdmonitor exposure-map=true upstream (with a legend bar at the bottom)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("exposure-max")
                    .nick("Exposure maximum")
                    .blurb("mode=exposure: time under load shown with the colormap's last colour (ns; default 2 hours)")
                    .minimum(1_000_000_000)
                    .default_value(DEFAULT_EXPOSURE_MAX_NS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("font")
                    .nick("Font")
                    .blurb("TrueType font of the label (default: DejaVu Sans from fonts-dejavu-core)")
                    .default_value(Some(spmkd_core::assets::FONT))
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "colormap" => s.colormap = value.get().expect("type checked upstream"),
            "scale" => s.scale = value.get().expect("type checked upstream"),
            "keypoints" => s.keypoints = value.get().expect("type checked upstream"),
            "min-confidence" => s.min_confidence = value.get().expect("type checked upstream"),
            "label" => s.label = value.get().expect("type checked upstream"),
            "max-pressure" => s.max_pressure = value.get().expect("type checked upstream"),
            "mode" => s.mode = value.get().expect("type checked upstream"),
            "exposure-max" => s.exposure_max = value.get().expect("type checked upstream"),
            "font" => {
                s.font = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| spmkd_core::assets::FONT.to_owned())
            }
            other => unreachable!("no property {other}"),
        }
        drop(s);
        if pspec.name() == "scale" {
            self.obj().reconfigure_src();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "colormap" => s.colormap.to_value(),
            "scale" => s.scale.to_value(),
            "keypoints" => s.keypoints.to_value(),
            "min-confidence" => s.min_confidence.to_value(),
            "label" => s.label.to_value(),
            "max-pressure" => s.max_pressure.to_value(),
            "mode" => s.mode.to_value(),
            "exposure-max" => s.exposure_max.to_value(),
            "font" => s.font.to_value(),
            other => unreachable!("no property {other}"),
        }
    }
}

impl GstObjectImpl for SpmkdOverlay {}

impl ElementImpl for SpmkdOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pressure-mat overlay",
                "Filter/Effect/Converter/Video",
                "Draws a pressure frame with a colormap, scale times larger, and the keypoints \
                 of its SpmkdPoseMeta on top (size and opacity by confidence); writes the posture \
                 label with the font property's TrueType font when the meta has a posture. \
                 mode=exposure paints each cell's time under load instead (spmkdmonitor \
                 exposure-map=true upstream), 0 to exposure-max, with a legend bar",
                "spmkd developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let gray = crate::caps::pressure_frames();
            let rgba = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Rgba)
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
                    &rgba,
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for SpmkdOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings();
        let font = if settings.label {
            match std::fs::read(&settings.font)
                .map_err(|e| e.to_string())
                .and_then(|b| FontVec::try_from_vec(b).map_err(|e| e.to_string()))
            {
                Ok(f) => Some(f),
                Err(e) => {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::OpenRead,
                        (
                            "cannot use the font {}: {}; posture labels are left out",
                            settings.font,
                            e
                        )
                    );
                    None
                }
            }
        } else {
            None
        };
        let table = (settings.colormap, settings.colormap.table());
        *self.state() = Some(State { font, table });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state() = None;
        *self.pose.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let scale = self.frame_settings().scale as i32;
        let up = direction == gst::PadDirection::Sink;
        let mut out = gst::Caps::new_empty();
        {
            let out = out.get_mut().expect("new caps are writable");
            for s in caps.iter() {
                let mut s = s.to_owned();
                if up {
                    s.set("format", gst_video::VideoFormat::Rgba.to_str());
                } else {
                    s.set(
                        "format",
                        gst::List::new([
                            gst_video::VideoFormat::Gray8.to_str(),
                            gst_video::VideoFormat::Gray16Le.to_str(),
                        ]),
                    );
                }
                // Grey has no colour space to carry over; RGBA gets the default one.
                s.remove_fields(["colorimetry", "chroma-site"]);
                let fixed = s.get::<i32>("width").ok().zip(s.get::<i32>("height").ok());
                if let Some((w, h)) = fixed {
                    if up {
                        // A frame too large at `scale` is drawn smaller, and said so once.
                        match fitted_scale(scale, w, h) {
                            Some(k) => {
                                if k < scale {
                                    self.scaled_down(w, h, scale, k);
                                }
                                s.set("width", w * k);
                                s.set("height", h * k);
                                out.append_structure(s);
                            }
                            None => self.too_large(caps, scale),
                        }
                    } else {
                        // Every frame size this picture is drawn from: the sizes whose fitted
                        // scale makes it.
                        for k in (1..=scale).rev() {
                            if w % k == 0
                                && h % k == 0
                                && fitted_scale(scale, w / k, h / k) == Some(k)
                            {
                                let mut s = s.clone();
                                s.set("width", w / k);
                                s.set("height", h / k);
                                out.append_structure(s);
                            }
                        }
                    }
                    continue;
                }
                match (
                    scale_dimension(&mut s, "width", scale, up),
                    scale_dimension(&mut s, "height", scale, up),
                ) {
                    (Ok(true), Ok(true)) => out.append_structure(s),
                    (Err(_), _) | (_, Err(_)) => self.too_large(caps, scale),
                    _ => {}
                }
            }
        }
        gst::debug!(CAT, imp = self, "{direction:?} {caps} -> {out}");
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }

    fn copy_metadata(
        &self,
        inbuf: &gst::BufferRef,
        outbuf: &mut gst::BufferRef,
    ) -> Result<(), gst::LoggableError> {
        self.parent_copy_metadata(inbuf, outbuf)?;
        // The pose follows the picture: coordinates in output pixels. It is read once per
        // buffer, here, and kept for transform_frame, which BaseTransform calls next.
        let pose = match PoseMeta::read(inbuf) {
            Ok(Some(pose)) => {
                let scale = self.frame_settings().scale as i32;
                let scale = fitted_scale(scale, pose.width as i32, pose.height as i32)
                    .unwrap_or(scale) as u32;
                let (w, h) = (pose.width * scale, pose.height * scale);
                let pose = pose.rescaled(w, h);
                PoseMeta::set(outbuf, &pose).map_err(|e| gst::loggable_error!(CAT, "{e}"))?;
                Some(pose)
            }
            Ok(None) => None,
            Err(e) => {
                gst::warning!(CAT, imp = self, "unreadable pose: {e}");
                None
            }
        };
        *self.pose.lock().unwrap_or_else(|e| e.into_inner()) = pose;
        let exposure = match self.frame_settings().mode {
            Mode::Exposure => PoseMeta::exposure_map(inbuf).unwrap_or_else(|e| {
                gst::warning!(CAT, imp = self, "unreadable exposure map: {e}");
                None
            }),
            Mode::Pressure => None,
        };
        *self.exposure.lock().unwrap_or_else(|e| e.into_inner()) = exposure;
        Ok(())
    }
}

impl VideoFilterImpl for SpmkdOverlay {
    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.frame_settings();
        let mut state = self.state();
        let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
        if state.table.0 != settings.colormap {
            state.table = (settings.colormap, settings.colormap.table());
        }
        let (w, h) = (inframe.width() as usize, inframe.height() as usize);
        let (ow, oh) = (outframe.width() as usize, outframe.height() as usize);
        let fitted = fitted_scale(settings.scale as i32, w as i32, h as i32).unwrap_or(0) as usize;
        if fitted == 0 || ow != w * fitted || oh != h * fitted {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "{}x{} to {}x{} is not scale={}",
                    w,
                    h,
                    ow,
                    oh,
                    settings.scale
                )
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        let scale = fitted;
        let readings = Readings {
            data: inframe.plane_data(0).map_err(|_| gst::FlowError::Error)?,
            width: w,
            height: h,
            stride: inframe.plane_stride()[0] as usize,
            gray8: inframe.format() == gst_video::VideoFormat::Gray8,
        };
        let max = match settings.max_pressure {
            0 => readings.max(),
            m => m,
        };
        let out_stride = outframe.plane_stride()[0] as usize;
        let mut canvas = Canvas {
            data: outframe
                .plane_data_mut(0)
                .map_err(|_| gst::FlowError::Error)?,
            width: ow,
            height: oh,
            stride: out_stride,
        };
        let exposure = self
            .exposure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|map| map.len() == w * h);
        let legend = match (settings.mode, exposure) {
            (Mode::Exposure, Some(map)) => {
                let top = settings.exposure_max as f32 * 1e-9;
                canvas.paint_values(&map, w, scale, &state.table.1, top);
                true
            }
            (mode, _) => {
                if mode == Mode::Exposure
                    && !self
                        .warned_no_map
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("mode=exposure needs spmkdmonitor exposure-map=true upstream: a frame without an exposure map is drawn as pressure")
                    );
                }
                canvas.paint(&readings, scale, &state.table.1, max);
                false
            }
        };
        if legend {
            // The bar across the bottom, "0" at its left end and exposure-max at its right.
            let bar = scale.max(4);
            canvas.legend_bar(&state.table.1, bar);
            if let Some(font) = state.font.as_ref() {
                let height = (2.0 * scale as f32).max(12.0);
                let y = oh as f32 - bar as f32 - height - 1.0;
                let top = legend_text(settings.exposure_max);
                let right = ow as f32 - Canvas::text_width(font, &top, height) - 3.0;
                canvas.text(font, "0", 3.0, y, height);
                canvas.text(font, &top, right, y, height);
            }
        }

        // The pose copy_metadata read (and rescaled to this picture) for this buffer.
        let pose = self.pose.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(pose) = pose {
            if settings.keypoints {
                let s = scale as f32;
                for k in pose
                    .keypoints
                    .iter()
                    .filter(|k| k.confidence >= settings.min_confidence)
                {
                    let c = k.confidence.clamp(0.0, 1.0);
                    let radius = (s * (0.15 + 0.35 * c)).max(1.5);
                    canvas.disc(k.x, k.y, radius, [255, 255, 255], 0.35 + 0.65 * c);
                }
            }
            if settings.label
                && let Some(posture) = &pose.posture
                && let Some(font) = state.font.as_ref()
            {
                let height = (3.0 * scale as f32).max(16.0);
                canvas.text(font, &posture.label.to_string(), 3.0, 2.0, height);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
