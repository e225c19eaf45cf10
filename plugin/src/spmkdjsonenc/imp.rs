//! `spmkdjsonenc` implementation: a chain function from posed video buffers to NDJSON
//! buffers; timestamps kept, caps `application/x-ndjson`.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use spmkd_core::ndjson::MEDIA_TYPE;

use crate::posemeta::PoseMeta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdjsonenc",
        gst::DebugColorFlags::empty(),
        Some("Pose records as NDJSON"),
    )
});

pub struct SpmkdJsonEnc {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    /// Buffers that came without a pose (warned about once per stream).
    unposed: AtomicU64,
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
        self.srcpad.push(out)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Caps(_) => {
                let caps = gst::Caps::builder(MEDIA_TYPE).build();
                self.srcpad.push_event(gst::event::Caps::new(&caps))
            }
            gst::EventView::StreamStart(_) => {
                self.unposed.store(0, Ordering::Relaxed);
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
            unposed: AtomicU64::new(0),
        }
    }
}

impl ObjectImpl for SpmkdJsonEnc {
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
                 (schema, pts_ns, duration_ns, width, height, model, inference_us, stale, \
                 quality, posture, keypoints), timestamps kept; read back with \
                 spmkd_core::ndjson",
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
