//! `pmatsrc` implementation: a `PushSrc` over a [`spmkd_core::Recording`].

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;

use spmkd_core::{Format, Position, ReadError, RecordedFrame, Recording, pmat};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "pmatsrc",
        gst::DebugColorFlags::empty(),
        Some("Pressure recording source"),
    )
});

/// The `format` property.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPmatSrcFormat")]
pub enum RecordingFormat {
    #[default]
    #[enum_value(
        name = "Auto: .npy magic, .raw extension, else the first text line",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "PmatData experiment-i: one 64x32 frame per tab-separated line",
        nick = "pmat-i"
    )]
    PmatI,
    #[enum_value(
        name = "PmatData experiment-ii: one 64x27 frame per file",
        nick = "pmat-ii"
    )]
    PmatII,
    #[enum_value(
        name = "NumPy .npy stack: N x H x W, u8/u16/f32 little endian",
        nick = "npy"
    )]
    Npy,
    #[enum_value(name = "Raw GRAY16_LE frames of width x height", nick = "raw")]
    Raw,
}

impl From<RecordingFormat> for Format {
    fn from(f: RecordingFormat) -> Self {
        match f {
            RecordingFormat::Auto => Format::Auto,
            RecordingFormat::PmatI => Format::PmatI,
            RecordingFormat::PmatII => Format::PmatII,
            RecordingFormat::Npy => Format::Npy,
            RecordingFormat::Raw => Format::Raw,
        }
    }
}

const DEFAULT_FRAMERATE: gst::Fraction = gst::Fraction::from_integer(pmat::FRAME_RATE.0);

#[derive(Debug, Clone)]
struct Settings {
    location: Option<String>,
    format: RecordingFormat,
    width: u32,
    height: u32,
    framerate: gst::Fraction,
    looping: bool,
    skip_artifacts: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            location: None,
            format: RecordingFormat::Auto,
            width: 0,
            height: 0,
            framerate: DEFAULT_FRAMERATE,
            looping: false,
            skip_artifacts: true,
        }
    }
}

/// Everything that exists between `start` and `stop`.
struct State {
    recording: Recording,
    info: gst_video::VideoInfo,
    /// Frames pushed so far (timestamps are counted in these, so skipped artifacts leave no gap).
    pushed: u64,
    /// Frames pushed in the current pass over the file (a pass with none ends a loop).
    pushed_this_pass: u64,
    skipped: u64,
}

#[derive(Default)]
pub struct PmatSrc {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

impl PmatSrc {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, settings: &Settings) -> Result<Recording, gst::ErrorMessage> {
        let location = settings.location.as_deref().ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No location set: give pmatsrc a recording to read")
            )
        })?;
        let raw_size = (settings.width > 0 && settings.height > 0)
            .then_some((settings.width as usize, settings.height as usize));
        Recording::open(location, settings.format.into(), raw_size).map_err(|e| {
            let kind =
                if e.position == spmkd_core::Position::File && e.message.starts_with("I/O error") {
                    gst::ResourceError::OpenRead
                } else {
                    gst::ResourceError::Read
                };
            gst::error_msg!(kind, ("{}", e))
        })
    }

    /// The next frame to push: artifacts skipped (and reported) when asked, the file reopened
    /// at its end when looping. `Ok(None)` at the end of the stream.
    fn next_frame(&self, state: &mut State) -> Result<Option<RecordedFrame>, ReadError> {
        let (skip, looping) = {
            let s = self.settings();
            (s.skip_artifacts, s.looping)
        };
        loop {
            match state.recording.next_frame()? {
                Some(f) if skip && f.artifact.is_some() => {
                    self.report_artifact(state, &f);
                    state.skipped += 1;
                }
                Some(f) => {
                    state.pushed_this_pass += 1;
                    return Ok(Some(f));
                }
                None if looping && state.pushed_this_pass > 0 => {
                    gst::debug!(CAT, imp = self, "End of file, looping");
                    let path = state.recording.path().to_path_buf();
                    let format = state.recording.format();
                    let size = (state.recording.width(), state.recording.height());
                    state.recording = Recording::open(path, format, Some(size))?;
                    state.pushed_this_pass = 0;
                }
                None => return Ok(None),
            }
        }
    }

    /// Skipped artifacts are logged and posted as an element message, so an application can
    /// count what was left out and why.
    fn report_artifact(&self, state: &State, f: &RecordedFrame) {
        let kind = f.artifact.map_or("", |a| a.as_str());
        gst::info!(
            CAT,
            imp = self,
            "Skipping frame {} ({}{}): {kind} artifact",
            f.index,
            state.recording.path().display(),
            f.position
        );
        let mut s = gst::Structure::builder("spmkd-artifact")
            .field("location", state.recording.path().display().to_string())
            .field("frame", f.index)
            .field("kind", kind);
        s = match f.position {
            Position::Line(line) => s.field("line", line),
            Position::Byte(offset) => s.field("byte", offset),
            Position::File => s,
        };
        let s = s.build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// PTS and duration of the `n`th frame pushed; `None` when that time is beyond what a
    /// clock time holds (a header promising absurdly many frames).
    fn timestamps(info: &gst_video::VideoInfo, n: u64) -> Option<(gst::ClockTime, gst::ClockTime)> {
        let fps = info.fps();
        let (num, den) = (fps.numer() as u64, fps.denom() as u64);
        let at = |n: u64| gst::ClockTime::SECOND.mul_div_floor(n.checked_mul(den)?, num);
        let pts = at(n)?;
        Some((pts, at(n.checked_add(1)?)?.checked_sub(pts)?))
    }

    /// Lets everything downstream still holds (frames waiting for a batch, queues) reach its
    /// sinks before the error that stops the pipeline is posted: an application tears the
    /// pipeline down on the error, and every good frame before the bad one must be out by then.
    fn drain_downstream(&self) {
        let mut drain = gst::query::Drain::new();
        let drained = self.obj().src_pad().peer_query(&mut drain);
        gst::debug!(
            CAT,
            imp = self,
            "drained downstream before the error: {drained}"
        );
    }

    /// Posts a stream error after draining what downstream holds.
    fn fail(&self, error: gst::StreamError, message: String) -> gst::FlowError {
        self.drain_downstream();
        gst::element_imp_error!(self, error, ("{}", message));
        gst::FlowError::Error
    }
}

#[glib::object_subclass]
impl ObjectSubclass for PmatSrc {
    const NAME: &'static str = "GstPmatSrc";
    type Type = super::PmatSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for PmatSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Recording to read: PmatData text (either experiment), .npy or raw")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("format", RecordingFormat::Auto)
                    .nick("Format")
                    .blurb("Recording format; auto looks at the file")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("width")
                    .nick("Width")
                    .blurb("Frame width in cells, for raw recordings (0 = unset)")
                    .maximum(4096)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("height")
                    .nick("Height")
                    .blurb("Frame height in cells, for raw recordings (0 = unset)")
                    .maximum(4096)
                    .mutable_ready()
                    .build(),
                gst::ParamSpecFraction::builder("framerate")
                    .nick("Frame rate")
                    .blurb("Rate the frames are timestamped at (PmatData: 1/1)")
                    .minimum(gst::Fraction::new(1, 3600))
                    .maximum(gst::Fraction::new(10_000, 1))
                    .default_value(DEFAULT_FRAMERATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("loop")
                    .nick("Loop")
                    .blurb("Start again at the end of the file, timestamps going on")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("skip-artifacts")
                    .nick("Skip artifacts")
                    .blurb(
                        "Leave out the capture artifacts of PmatData experiment-i (partial scans \
                         and frames quantized to multiples of 256), each reported in an \
                         'spmkd-artifact' element message (location, frame, line, kind)",
                    )
                    .default_value(true)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        match pspec.name() {
            "location" => s.location = value.get().expect("type checked upstream"),
            "format" => s.format = value.get().expect("type checked upstream"),
            "width" => s.width = value.get().expect("type checked upstream"),
            "height" => s.height = value.get().expect("type checked upstream"),
            "framerate" => s.framerate = value.get().expect("type checked upstream"),
            "loop" => s.looping = value.get().expect("type checked upstream"),
            "skip-artifacts" => s.skip_artifacts = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            "location" => s.location.to_value(),
            "format" => s.format.to_value(),
            "width" => s.width.to_value(),
            "height" => s.height.to_value(),
            "framerate" => s.framerate.to_value(),
            "loop" => s.looping.to_value(),
            "skip-artifacts" => s.skip_artifacts.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_format(gst::Format::Time);
        obj.set_live(false);
    }
}

impl GstObjectImpl for PmatSrc {}

impl ElementImpl for PmatSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pressure recording source",
                "Source/File/Video",
                "Reads pressure-mat recordings (PmatData text of experiment i or ii, NumPy .npy \
                 stacks, raw GRAY16_LE) as timestamped GRAY16_LE frames, one cell per pixel, \
                 row 0 at the head end",
                "spmkd developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Gray16Le)
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for PmatSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings().clone();
        if settings.looping
            && let Some(location) = settings.location.as_deref()
            && std::fs::metadata(location).is_ok_and(|m| !m.is_file())
        {
            // A pipe cannot be read twice, and reopening a FIFO would wait for a new writer.
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "loop=true needs a regular file; {} is a pipe or device",
                    location
                )
            ));
        }
        let recording = self.open(&settings)?;
        let info = gst_video::VideoInfo::builder(
            gst_video::VideoFormat::Gray16Le,
            recording.width() as u32,
            recording.height() as u32,
        )
        .fps(settings.framerate)
        .build()
        .map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Negotiation,
                ("Cannot describe the frames as video: {}", e)
            )
        })?;
        gst::info!(
            CAT,
            imp = self,
            "Opened {} as {} ({}x{})",
            recording.path().display(),
            recording.format(),
            recording.width(),
            recording.height()
        );
        *self.state() = Some(State {
            recording,
            info,
            pushed: 0,
            pushed_this_pass: 0,
            skipped: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(state) = self.state().take() {
            gst::info!(
                CAT,
                imp = self,
                "Stopped after {} frames, {} artifacts skipped",
                state.pushed,
                state.skipped
            );
        }
        Ok(())
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = match &*self.state() {
            Some(state) => state.info.to_caps().ok()?,
            None => self.obj().src_pad().pad_template_caps(),
        };
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Duration(q) = query.view_mut()
            && q.format() == gst::Format::Time
        {
            let state = self.state();
            let settings = self.settings();
            if let Some(state) = state.as_ref()
                && !settings.looping
                && let Some(n) = state.recording.frame_count_hint()
            {
                // The end of the last frame; unknown when it is beyond a clock time.
                if let Some((pts, dur)) = Self::timestamps(&state.info, n.saturating_sub(1)) {
                    q.set(pts + dur);
                    return true;
                }
                gst::debug!(
                    CAT,
                    imp = self,
                    "{n} frames: no duration a clock time holds"
                );
                return false;
            }
        }
        BaseSrcImplExt::parent_query(self, query)
    }
}

impl PushSrcImpl for PmatSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let mut guard = self.state();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        // A failure is reported after the state lock is released: draining downstream may
        // query this element (position, duration) from another thread.
        let recorded = match self.next_frame(state) {
            Ok(Some(f)) => f,
            Ok(None) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "End of recording after {} frames",
                    state.pushed
                );
                return Err(gst::FlowError::Eos);
            }
            Err(e) => {
                drop(guard);
                return Err(self.fail(gst::StreamError::Decode, e.to_string()));
            }
        };
        let frame = &recorded.frame;
        if (frame.width(), frame.height())
            != (state.info.width() as usize, state.info.height() as usize)
        {
            let message = format!(
                "Frame {} is {}x{}, the stream is {}x{}",
                recorded.index,
                frame.width(),
                frame.height(),
                state.info.width(),
                state.info.height()
            );
            drop(guard);
            return Err(self.fail(gst::StreamError::Format, message));
        }
        let Some((pts, duration)) = Self::timestamps(&state.info, state.pushed) else {
            let message = format!(
                "Frame {} at {} frames/s is beyond the largest timestamp",
                state.pushed,
                state.info.fps()
            );
            drop(guard);
            return Err(self.fail(gst::StreamError::Failed, message));
        };

        let mut buffer =
            gst::Buffer::with_size(state.info.size()).map_err(|_| gst::FlowError::Error)?;
        {
            let buffer = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            buffer.set_pts(pts);
            buffer.set_dts(pts);
            buffer.set_duration(duration);
            buffer.set_offset(state.pushed);
            buffer.set_offset_end(state.pushed + 1);
            let mut vframe =
                gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &state.info)
                    .map_err(|_| gst::FlowError::Error)?;
            let stride = vframe.plane_stride()[0] as usize;
            let plane = vframe
                .plane_data_mut(0)
                .map_err(|_| gst::FlowError::Error)?;
            for (y, dst) in plane
                .chunks_exact_mut(stride)
                .take(frame.height())
                .enumerate()
            {
                for (d, &v) in dst.chunks_exact_mut(2).zip(frame.row(y)) {
                    d.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        state.pushed += 1;
        gst::trace!(
            CAT,
            imp = self,
            "Frame {} ({}) as buffer {}",
            recorded.index,
            recorded.position,
            state.pushed - 1
        );
        Ok(CreateSuccess::NewBuffer(buffer))
    }
}
