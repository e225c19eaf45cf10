//! `rtppmatdepay` implementation: a chain function over datagrams. Each packet's RTP header is
//! read here and the rest decided by core's [`Receiver`] (which sender, which place in the
//! sequence, which size), then acted on; frames keep the arrival time `udpsrc` gave them. A single-shot clock id on the system clock watches
//! for silence while PLAYING.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;

use spmkd_core::transport::{Counts, Dropped, FrameFormat, Packet, Receiver};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rtppmatdepay",
        gst::DebugColorFlags::empty(),
        Some("Pressure frames from RTP packets"),
    )
});

/// The `sensor-lost-action` property.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstRtpPmatDepaySensorLostAction")]
pub enum SensorLostAction {
    /// Post `spmkd-sensor-lost` and keep waiting (a monitor that must see the mat come back).
    #[default]
    #[enum_value(
        name = "Post spmkd-sensor-lost and keep waiting for the sensor",
        nick = "message"
    )]
    Message,
    /// Post `spmkd-sensor-lost`, then fail the stream with an error (a script that must not
    /// mistake a dead sender for a finished one).
    #[enum_value(
        name = "Post spmkd-sensor-lost, then an error that stops the pipeline",
        nick = "error"
    )]
    Error,
}

const DEFAULT_SENSOR_TIMEOUT: u64 = 5_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Settings {
    framerate: gst::Fraction,
    sensor_timeout: u64,
    sensor_lost_action: SensorLostAction,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            framerate: gst::Fraction::new(0, 1),
            sensor_timeout: DEFAULT_SENSOR_TIMEOUT,
            sensor_lost_action: SensorLostAction::Message,
        }
    }
}

/// The stream as it goes: sequence numbers, the output's format, the held-back segment.
#[derive(Default)]
struct State {
    receiver: Receiver,
    /// The output format, once a frame has set it.
    format: Option<(FrameFormat, gst_video::VideoInfo)>,
    /// Upstream's segment, sent after the first caps (caps come from the first frame).
    segment: Option<gst::Event>,
    /// The sender's end-of-stream mark was received.
    ended: bool,
    /// Frames since the last one, reported in the next one's DISCONT flag.
    discont: bool,
}

/// The silence watch: when the last frame came, whether the sensor is reported lost.
#[derive(Default)]
struct Watch {
    last_frame: Option<gst::ClockTime>,
    last_pts: Option<gst::ClockTime>,
    lost: bool,
    /// The pending check, while PLAYING and a sensor has been seen.
    check: Option<gst::SingleShotClockId>,
    playing: bool,
}

pub struct RtpPmatDepay {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    watch: Mutex<Watch>,
}

impl RtpPmatDepay {
    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn watch(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counts(&self) -> Counts {
        self.state().receiver.counts()
    }

    /// Reports a dropped or missing packet: a debug line, and an `spmkd-transport` message
    /// an application can count or log.
    fn report(&self, event: &str, count: u64, seqnum: Option<u16>, reason: Option<String>) {
        gst::debug!(
            CAT,
            imp = self,
            "{event}: {count} packet(s) at seqnum {seqnum:?} {}",
            reason.as_deref().unwrap_or("")
        );
        let mut s = gst::Structure::builder("spmkd-transport")
            .field("event", event)
            .field("count", count);
        if let Some(seq) = seqnum {
            s = s.field("seqnum", u32::from(seq));
        }
        if let Some(reason) = reason {
            s = s.field("reason", reason);
        }
        let _ = self.obj().post_message(
            gst::message::Element::builder(s.build())
                .src(&*self.obj())
                .build(),
        );
    }

    /// The stats as an `spmkd-transport-stats` element message, at the end of the stream.
    fn post_stats(&self) {
        let mut s = self.stats();
        s.set_name("spmkd-transport-stats");
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    fn stats(&self) -> gst::Structure {
        let c = self.counts();
        gst::Structure::builder("application/x-rtppmatdepay-stats")
            .field("frames", c.frames)
            .field("lost", c.lost)
            .field("late", c.late)
            .field("duplicates", c.duplicates)
            .field("malformed", c.malformed)
            .field("restarts", c.restarts)
            .field("other-source", c.other_source)
            .field("wrong-size", c.wrong_size)
            .field("refused-ends", c.refused_ends)
            .build()
    }

    fn chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut state = self.state();
        if state.ended {
            return Err(gst::FlowError::Eos);
        }
        let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(&buffer) else {
            drop(state);
            self.malformed_datagram(buffer.size());
            return Ok(gst::FlowSuccess::Ok);
        };
        let seq = rtp.seq();
        // The arrival time tells a silent sender from an interleaved one; without timestamps,
        // the clock's.
        let now = buffer
            .pts()
            .unwrap_or_else(|| gst::SystemClock::obtain().time())
            .nseconds();
        let packet =
            state
                .receiver
                .classify(rtp.ssrc(), seq, rtp.payload().unwrap_or_default(), now);
        match packet {
            Packet::Dropped(why) => {
                // A frame missing from the stream: the next one says so (DISCONT).
                if matches!(why, Dropped::Malformed(_) | Dropped::WrongSize(_)) {
                    state.discont = true;
                }
                drop(state);
                self.dropped(&why, seq);
                Ok(gst::FlowSuccess::Ok)
            }
            Packet::End => {
                state.ended = true;
                drop(state);
                gst::info!(CAT, imp = self, "the sender ended its stream");
                self.stop_watch();
                self.post_stats();
                self.srcpad.push_event(gst::event::Eos::new());
                Err(gst::FlowError::Eos)
            }
            Packet::Frame {
                format,
                cells,
                lost,
                restart,
                new_format,
            } => {
                let mut events = Vec::new();
                if new_format || state.format.as_ref().is_none_or(|f| f.0 != format) {
                    let info = self.video_info(format)?;
                    let caps = info.to_caps().map_err(|_| gst::FlowError::NotNegotiated)?;
                    gst::info!(CAT, imp = self, "frames of {format:?}: {caps}");
                    events.push(gst::event::Caps::new(&caps));
                    state.format = Some((format, info));
                    // The segment waited for the first caps.
                    if let Some(segment) = state.segment.take() {
                        events.push(segment);
                    }
                }
                let discont = std::mem::take(&mut state.discont) || lost > 0 || restart;
                let Some((_, info)) = state.format.as_ref() else {
                    return Err(gst::FlowError::NotNegotiated);
                };
                let out = Self::frame(info, format, cells, &buffer, discont)?;
                drop(rtp);
                drop(state);
                if lost > 0 {
                    self.report("lost", u64::from(lost), Some(seq), None);
                }
                if restart {
                    self.report("restart", 1, Some(seq), None);
                }
                self.saw_frame(buffer.pts());
                for event in events {
                    self.srcpad.push_event(event);
                }
                self.srcpad.push(out)
            }
        }
    }

    /// A datagram that is not even an RTP packet.
    fn malformed_datagram(&self, size: usize) {
        self.state().receiver.sequence.counts.malformed += 1;
        self.report(
            "malformed",
            1,
            None,
            Some(format!("{size}-byte datagram is not an RTP packet")),
        );
    }

    fn dropped(&self, why: &Dropped, seq: u16) {
        let reason = match why {
            Dropped::Malformed(reason) => Some(reason.clone()),
            Dropped::OtherSource(ssrc) => Some(format!(
                "from SSRC {ssrc:#010x}, not the sender this stream follows"
            )),
            Dropped::WrongSize((w, h, bits)) => Some(format!(
                "a {w}x{h} frame of {bits}-bit cells, not the stream's size, and not announced"
            )),
            Dropped::RefusedEnd => {
                Some("an end-of-stream mark out of the sender's sequence".to_owned())
            }
            Dropped::Late | Dropped::Duplicate => None,
        };
        self.report(why.event(), 1, Some(seq), reason);
    }

    fn video_info(
        &self,
        (width, height, bits): FrameFormat,
    ) -> Result<gst_video::VideoInfo, gst::FlowError> {
        let format = if bits == 8 {
            gst_video::VideoFormat::Gray8
        } else {
            gst_video::VideoFormat::Gray16Le
        };
        gst_video::VideoInfo::builder(format, width.into(), height.into())
            .fps(self.settings().framerate)
            .build()
            .map_err(|_| gst::FlowError::NotNegotiated)
    }

    /// The output buffer of a frame's `cells` (rows unpadded, as on the wire), timed as the
    /// datagram arrived.
    fn frame(
        info: &gst_video::VideoInfo,
        (width, _, bits): FrameFormat,
        cells: &[u8],
        datagram: &gst::Buffer,
        discont: bool,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let mut out = gst::Buffer::with_size(info.size()).map_err(|_| gst::FlowError::Error)?;
        {
            let out = out.get_mut().ok_or(gst::FlowError::Error)?;
            out.set_pts(datagram.pts());
            out.set_dts(datagram.dts());
            out.set_duration(crate::caps::frame_duration(info.fps()));
            if discont {
                out.set_flags(gst::BufferFlags::DISCONT);
            }
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(out, info)
                .map_err(|_| gst::FlowError::Error)?;
            let row = usize::from(width) * usize::from(bits / 8);
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
            for (dst, src) in data.chunks_mut(stride).zip(cells.chunks_exact(row)) {
                dst[..row].copy_from_slice(src);
            }
        }
        Ok(out)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            // Our caps come from the frames; the segment waits for them.
            gst::EventView::Caps(_) => true,
            gst::EventView::Segment(_) => {
                let mut state = self.state();
                if state.format.is_none() {
                    state.segment = Some(event);
                    return true;
                }
                drop(state);
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            gst::EventView::Eos(_) => {
                // After the sender's end mark, EOS went downstream already.
                if self.state().ended {
                    return true;
                }
                self.stop_watch();
                self.post_stats();
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            gst::EventView::FlushStop(_) => {
                let mut state = self.state();
                state.receiver.resync();
                state.ended = false;
                drop(state);
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// A frame arrived: the sensor is alive (again); the silence check is armed if it is not.
    fn saw_frame(&self, pts: Option<gst::ClockTime>) {
        let clock = gst::SystemClock::obtain();
        let now = clock.time();
        let timeout = self.settings().sensor_timeout;
        let mut watch = self.watch();
        let silence = watch.last_frame.map(|t| now.saturating_sub(t));
        watch.last_frame = Some(now);
        watch.last_pts = pts;
        if std::mem::take(&mut watch.lost) {
            let silence = silence.unwrap_or_default();
            gst::info!(CAT, imp = self, "the sensor is back after {silence}");
            let s = gst::Structure::builder("spmkd-sensor-back")
                .field("silence", silence.nseconds())
                .build();
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        if watch.playing && watch.check.is_none() && timeout > 0 {
            self.arm(
                &mut watch,
                &clock,
                now + gst::ClockTime::from_nseconds(timeout),
            );
        }
    }

    /// Schedules the silence check at `at`.
    fn arm(&self, watch: &mut Watch, clock: &gst::Clock, at: gst::ClockTime) {
        let id = clock.new_single_shot_id(at);
        let element = self.obj().downgrade();
        let scheduled = id.wait_async(move |_, _, _| {
            if let Some(element) = element.upgrade() {
                element.imp().check_silence();
            }
        });
        match scheduled {
            Ok(_) => watch.check = Some(id),
            Err(e) => gst::warning!(CAT, imp = self, "cannot watch for silence: {e:?}"),
        }
    }

    /// The clock's callback: the sensor is lost if no frame came for `sensor-timeout`; else
    /// the check moves to `sensor-timeout` after the last frame.
    fn check_silence(&self) {
        let Settings {
            sensor_timeout,
            sensor_lost_action,
            ..
        } = self.settings();
        let clock = gst::SystemClock::obtain();
        let now = clock.time();
        let mut watch = self.watch();
        watch.check = None;
        let (Some(last), true) = (watch.last_frame, watch.playing) else {
            return;
        };
        let timeout = gst::ClockTime::from_nseconds(sensor_timeout);
        if sensor_timeout == 0 {
            return;
        }
        if now.saturating_sub(last) < timeout {
            self.arm(&mut watch, &clock, last + timeout);
            return;
        }
        watch.lost = true;
        let last_pts = watch.last_pts;
        drop(watch);
        let frames = self.counts().frames;
        gst::warning!(CAT, imp = self, "no frame for {timeout}: sensor lost");
        let mut s = gst::Structure::builder("spmkd-sensor-lost")
            .field("silence", sensor_timeout)
            .field("frames", frames);
        if let Some(pts) = last_pts {
            s = s.field("last-pts", pts.nseconds());
        }
        let _ = self.obj().post_message(
            gst::message::Element::builder(s.build())
                .src(&*self.obj())
                .build(),
        );
        if sensor_lost_action == SensorLostAction::Error {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Read,
                (
                    "the sensor went silent: no frame for {} after {} frames",
                    timeout,
                    frames
                ),
                [
                    "sensor-timeout={}; sensor-lost-action=message keeps waiting",
                    sensor_timeout
                ]
            );
        }
    }

    fn stop_watch(&self) {
        let mut watch = self.watch();
        watch.playing = false;
        if let Some(id) = watch.check.take() {
            id.unschedule();
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RtpPmatDepay {
    const NAME: &'static str = "GstRtpPmatDepay";
    type Type = super::RtpPmatDepay;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink"))
            .chain_function(|pad, parent, buffer| {
                RtpPmatDepay::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                RtpPmatDepay::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .build();
        let srcpad =
            gst::Pad::builder_from_template(&klass.pad_template("src").expect("src")).build();
        Self {
            sinkpad,
            srcpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            watch: Mutex::new(Watch::default()),
        }
    }
}

impl ObjectImpl for RtpPmatDepay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                gst::ParamSpecFraction::builder("framerate")
                    .nick("Frame rate")
                    .blurb("The mat's frame rate, for the output caps and frame durations (0/1: variable)")
                    .minimum(gst::Fraction::new(0, 1))
                    .maximum(gst::Fraction::new(10_000, 1))
                    .default_value(gst::Fraction::new(0, 1))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("sensor-timeout")
                    .nick("Sensor timeout")
                    .blurb("Nanoseconds without a frame, once frames have come, after which the sensor is reported lost (spmkd-sensor-lost); 0: never")
                    .default_value(DEFAULT_SENSOR_TIMEOUT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "sensor-lost-action",
                    SensorLostAction::Message,
                )
                .nick("Sensor lost action")
                .blurb("What follows spmkd-sensor-lost: keep waiting (spmkd-sensor-back when frames return), or fail the stream with an error")
                .mutable_playing()
                .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Packets by what became of them: frames (passed on), lost (never received), late (after a later one, dropped), duplicates, malformed (not a packet of this payload: short, long, not RTP), restarts (the sender's sequence started again, or another sender took over after the first was silent 2 s), other-source (packets of a second sender, dropped), wrong-size (frames of another size than the stream's, not announced, dropped; a size lasting 3 frames is taken), refused-ends (end-of-stream marks out of the sender's sequence)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "framerate" => s.framerate = value.get().expect("type checked upstream"),
            "sensor-timeout" => s.sensor_timeout = value.get().expect("type checked upstream"),
            "sensor-lost-action" => {
                s.sensor_lost_action = value.get().expect("type checked upstream")
            }
            other => unreachable!("no property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            "framerate" => s.framerate.to_value(),
            "sensor-timeout" => s.sensor_timeout.to_value(),
            "sensor-lost-action" => s.sensor_lost_action.to_value(),
            "stats" => self.stats().to_value(),
            other => unreachable!("no property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("sink added once");
        obj.add_pad(&self.srcpad).expect("src added once");
    }
}

impl GstObjectImpl for RtpPmatDepay {}

impl ElementImpl for RtpPmatDepay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "RTP pressure-frame depayloader",
                "Codec/Depayloader/Network/RTP",
                "Reads pressure frames sent by rtppmatpay (or a mat speaking its payload: one \
                 frame per RTP packet, X-PMAT) as GRAY8 / GRAY16_LE video, each datagram on its \
                 own: a lost, short, long, late or duplicated one costs at most its frame and is \
                 counted in stats and posted as spmkd-transport (event, count, seqnum, reason). \
                 The frame size comes from the packets and may change. spmkd-sensor-lost after \
                 sensor-timeout without a frame (then spmkd-sensor-back, or an error with \
                 sensor-lost-action=error); the sender's end-of-stream packet ends the stream, \
                 and the stats are posted as spmkd-transport-stats at the end",
                "spmkd developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &crate::caps::pmat_rtp(),
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &crate::caps::pressure_frames(),
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::ReadyToPaused => *self.state() = State::default(),
            gst::StateChange::PlayingToPaused => self.stop_watch(),
            _ => {}
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToPlaying {
            let mut watch = self.watch();
            watch.playing = true;
            // A sensor seen before a pause is watched again from now.
            if let Some(last) = watch.last_frame.as_mut() {
                let clock = gst::SystemClock::obtain();
                *last = clock.time();
                let timeout = self.settings().sensor_timeout;
                if timeout > 0 {
                    let at = *last + gst::ClockTime::from_nseconds(timeout);
                    self.arm(&mut watch, &clock, at);
                }
            }
        }
        if transition == gst::StateChange::PausedToReady {
            *self.watch() = Watch::default();
        }
        Ok(ret)
    }
}
