//! `spmkdjsonenc` implementation: a chain function from posed video buffers to NDJSON
//! buffers; timestamps kept, caps `application/x-ndjson`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use spmkd_core::ndjson::MEDIA_TYPE;
use spmkd_core::schema::EndRecord;

use crate::posemeta::PoseMeta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdjsonenc",
        gst::DebugColorFlags::empty(),
        Some("Pose records as NDJSON"),
    )
});

#[derive(Debug, Clone, Copy, Default)]
struct Settings {
    end_record: bool,
}

pub struct SpmkdJsonEnc {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    /// Records written in this stream, for the end record.
    records: AtomicU64,
    /// Buffers that came without a pose (warned about once per stream).
    unposed: AtomicU64,
    /// The input's time segment, for each record's running time.
    segment: Mutex<gst::FormattedSegment<gst::ClockTime>>,
}

impl SpmkdJsonEnc {
    fn chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let record = match PoseMeta::read(&buffer) {
            Ok(Some(r)) => r,
            Ok(None) => {
                if self.unposed.fetch_add(1, Ordering::Relaxed) == 0 {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("a buffer without SpmkdPoseMeta (is spmkdpose upstream?); such buffers are left out")
                    );
                }
                return Ok(gst::FlowSuccess::Ok);
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        let mut record = record;
        record.running_time_ns = buffer.pts().and_then(|pts| {
            self.segment
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .to_running_time(pts)
                .map(gst::ClockTime::nseconds)
        });
        let mut line = record.to_json_line().into_bytes();
        line.push(b'\n');
        let mut out = gst::Buffer::from_mut_slice(line);
        {
            let out = out.get_mut().ok_or(gst::FlowError::Error)?;
            out.set_pts(buffer.pts());
            out.set_dts(buffer.dts());
            out.set_duration(buffer.duration());
            out.set_offset(buffer.offset());
        }
        gst::trace!(CAT, imp = self, "record at {:?}", buffer.pts());
        self.records.fetch_add(1, Ordering::Relaxed);
        self.srcpad.push(out)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Caps(_) => {
                let caps = gst::Caps::builder(MEDIA_TYPE).build();
                self.srcpad.push_event(gst::event::Caps::new(&caps))
            }
            gst::EventView::Eos(_) => {
                let end_record = self
                    .settings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .end_record;
                if end_record {
                    let records = self.records.load(Ordering::Relaxed);
                    let mut line = EndRecord::new(records).to_json_line().into_bytes();
                    line.push(b'\n');
                    if let Err(e) = self.srcpad.push(gst::Buffer::from_mut_slice(line)) {
                        gst::debug!(CAT, imp = self, "end record not written: {e:?}");
                    }
                }
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            gst::EventView::StreamStart(_) => {
                self.unposed.store(0, Ordering::Relaxed);
                self.records.store(0, Ordering::Relaxed);
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            gst::EventView::Segment(e) => {
                // Only time segments give running times; another format leaves them out.
                let segment = e
                    .segment()
                    .downcast_ref::<gst::ClockTime>()
                    .cloned()
                    .unwrap_or_default();
                *self.segment.lock().unwrap_or_else(|e| e.into_inner()) = segment;
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            gst::EventView::FlushStop(_) => {
                *self.segment.lock().unwrap_or_else(|e| e.into_inner()) = Default::default();
                gst::Pad::event_default(pad, Some(&*self.obj()), event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            // Any video goes in; its format is not ours to negotiate downstream.
            gst::QueryViewMut::Caps(q) => {
                let template = pad.pad_template_caps();
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&template, gst::CapsIntersectMode::First),
                    None => template,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::Allocation(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpmkdJsonEnc {
    const NAME: &'static str = "GstSpmkdJsonEnc";
    type Type = super::SpmkdJsonEnc;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink"))
            .chain_function(|pad, parent, buffer| {
                SpmkdJsonEnc::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                SpmkdJsonEnc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                SpmkdJsonEnc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .build();
        let srcpad =
            gst::Pad::builder_from_template(&klass.pad_template("src").expect("src")).build();
        Self {
            sinkpad,
            srcpad,
            settings: Mutex::new(Settings::default()),
            records: AtomicU64::new(0),
            unposed: AtomicU64::new(0),
            segment: Mutex::new(Default::default()),
        }
    }
}

impl ObjectImpl for SpmkdJsonEnc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder("end-record")
                    .nick("End record")
                    .blurb("At EOS write one last line {\"end\":true,\"records\":N}: a reader at the other end of a connection can tell a stream that ended from one that broke off (spmkd_core::ndjson::PoseReader::end)")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "end-record" => s.end_record = value.get().expect("type checked upstream"),
            other => unreachable!("no property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "end-record" => s.end_record.to_value(),
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

impl GstObjectImpl for SpmkdJsonEnc {}

impl ElementImpl for SpmkdJsonEnc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pose records as NDJSON",
                "Encoder/Metadata",
                "Writes the SpmkdPoseMeta of each frame as one JSON object per line \
                 (schema, pts_ns, duration_ns, running_time_ns, width, height, model, \
                 inference_us, stale, quality, posture, keypoints, features), timestamps kept; \
                 read back with spmkd_core::ndjson",
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
                    &gst::Caps::builder("video/x-raw").build(),
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &gst::Caps::builder(MEDIA_TYPE).build(),
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}
