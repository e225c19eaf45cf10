//! `rtppmatpay` implementation: an `RTPBasePayload` (sequence numbers, SSRC, payload type and
//! RTP timestamps from the base class) that writes each frame as one packet, rows unpadded.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_rtp::prelude::*;
use gst_rtp::subclass::prelude::*;
use gst_video::prelude::*;

use spmkd_core::transport::{self, HEADER_BYTES, MAX_PAYLOAD_BYTES, Payload};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rtppmatpay",
        gst::DebugColorFlags::empty(),
        Some("Pressure frames as RTP packets"),
    )
});

/// End-of-stream packets sent at EOS: UDP may lose one, the receiver needs only one.
const END_PACKETS: usize = 3;
/// Frames after a size change that carry `FLAG_NEW_SIZE`: UDP may lose some, the receiver
/// needs one (and takes a size lasting `transport::SIZE_CONFIRM` frames anyway).
const SIZE_ANNOUNCEMENTS: u32 = 3;

#[derive(Default)]
pub struct RtpPmatPay {
    /// The negotiated frames (set in set_caps), and how many frames are still to announce
    /// their size as new.
    info: Mutex<Option<(gst_video::VideoInfo, u32)>>,
}

impl RtpPmatPay {
    /// One packet: the payload header, then `cells` (already without row padding).
    fn packet(
        &self,
        header: [u8; HEADER_BYTES],
        cells: impl FnOnce(&mut [u8]),
        cell_bytes: usize,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let len = HEADER_BYTES + cell_bytes;
        let mut packet = self.obj().allocate_output_buffer(len as u32, 0, 0);
        {
            let packet = packet.get_mut().ok_or(gst::FlowError::Error)?;
            let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(packet)
                .map_err(|_| gst::FlowError::Error)?;
            // Every packet is a whole frame.
            rtp.set_marker(true);
            let payload = rtp.payload_mut().map_err(|_| gst::FlowError::Error)?;
            payload[..HEADER_BYTES].copy_from_slice(&header);
            cells(&mut payload[HEADER_BYTES..]);
        }
        Ok(packet)
    }

    /// Sends the end of the stream, timed just after the last frame.
    fn send_end(&self, pts: Option<gst::ClockTime>) {
        for _ in 0..END_PACKETS {
            let Ok(mut packet) = self.packet(Payload::header(0, 0, 0, true), |_| {}, 0) else {
                return;
            };
            if let Some(p) = packet.get_mut() {
                p.set_pts(pts);
            }
            if let Err(e) = self.obj().push(packet) {
                gst::debug!(CAT, imp = self, "end of stream not sent: {e:?}");
                return;
            }
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RtpPmatPay {
    const NAME: &'static str = "GstRtpPmatPay";
    type Type = super::RtpPmatPay;
    type ParentType = gst_rtp::RTPBasePayload;
}

impl ObjectImpl for RtpPmatPay {}

impl GstObjectImpl for RtpPmatPay {}

impl ElementImpl for RtpPmatPay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "RTP pressure-frame payloader",
                "Codec/Payloader/Network/RTP",
                "Sends each GRAY8 / GRAY16_LE pressure frame as one RTP packet (encoding name \
                 X-PMAT, clock rate 90000): an 8-byte header (version, flags, bits per cell, \
                 width, height) and the cells, rows unpadded; at EOS an end-of-stream packet \
                 (three times). Frames above 65 495 bytes do not fit a datagram and are refused. \
                 rtppmatdepay is the receiving end",
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
                    &crate::caps::pressure_frames(),
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &crate::caps::pmat_rtp(),
                )
                .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl RTPBasePayloadImpl for RtpPmatPay {
    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "not video caps: {caps}"))?;
        let cell = info.format_info().pixel_stride()[0] as usize;
        let bytes = info.width() as usize * info.height() as usize * cell;
        if u16::try_from(info.width()).is_err()
            || u16::try_from(info.height()).is_err()
            || HEADER_BYTES + bytes > MAX_PAYLOAD_BYTES
        {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                (
                    "a {}x{} frame ({} bytes) does not fit one datagram (at most {} bytes of \
                     cells)",
                    info.width(),
                    info.height(),
                    bytes,
                    MAX_PAYLOAD_BYTES - HEADER_BYTES
                )
            );
            return Err(gst::loggable_error!(CAT, "frame too large for a datagram"));
        }
        let obj = self.obj();
        obj.set_options(
            "video",
            true,
            transport::ENCODING_NAME,
            transport::CLOCK_RATE,
        );
        obj.set_outcaps(None)
            .map_err(|e| gst::loggable_error!(CAT, "cannot set the RTP caps: {e}"))?;
        gst::debug!(
            CAT,
            imp = self,
            "{}x{} {:?}",
            info.width(),
            info.height(),
            info.format()
        );
        let mut negotiated = self.info.lock().unwrap_or_else(|e| e.into_inner());
        // A size other than the last is announced (the first is the stream's anyway).
        let announce = match negotiated.as_ref() {
            Some((old, left))
                if (old.width(), old.height(), old.format())
                    == (info.width(), info.height(), info.format()) =>
            {
                *left
            }
            Some(_) => SIZE_ANNOUNCEMENTS,
            None => 0,
        };
        *negotiated = Some((info, announce));
        Ok(())
    }

    fn handle_buffer(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (info, announce) = {
            let mut negotiated = self.info.lock().unwrap_or_else(|e| e.into_inner());
            let (info, left) = negotiated.as_mut().ok_or(gst::FlowError::NotNegotiated)?;
            let announce = *left > 0;
            *left = left.saturating_sub(1);
            (info.clone(), announce)
        };
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info)
            .map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "a {}-byte buffer is not a {}x{} {} frame",
                        buffer.size(),
                        info.width(),
                        info.height(),
                        info.format().to_str()
                    )
                );
                gst::FlowError::Error
            })?;
        let cell = info.format_info().pixel_stride()[0] as usize;
        let row = info.width() as usize * cell;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
        let mut header = Payload::header(
            info.width() as u16,
            info.height() as u16,
            8 * cell as u8,
            false,
        );
        if announce {
            header[1] |= transport::FLAG_NEW_SIZE;
        }
        let mut packet = self.packet(
            header,
            |cells| {
                for (dst, src) in cells.chunks_exact_mut(row).zip(data.chunks(stride)) {
                    dst.copy_from_slice(&src[..row]);
                }
            },
            row * info.height() as usize,
        )?;
        {
            // The base class makes the RTP timestamp from the PTS.
            let packet = packet.get_mut().ok_or(gst::FlowError::Error)?;
            packet.set_pts(buffer.pts());
            packet.set_duration(buffer.duration());
        }
        drop(frame);
        self.obj().push(packet)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            let last = self.obj().src_pad().current_caps().is_some();
            if last {
                self.send_end(None);
            }
        }
        self.parent_sink_event(event)
    }
}
