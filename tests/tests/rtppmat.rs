//! gst-check tests of the live transport: `rtppmatpay` and `rtppmatdepay` on real frames, and
//! the depayloader fed what a bad network delivers (short, long, late, duplicated, foreign
//! datagrams), and a sender that goes silent.

use std::path::Path;

use gst::prelude::*;
use gst_check::Harness;
use gst_video::prelude::*;
use spmkd_core::transport::{ENCODING_NAME, Payload};
use spmkd_core::{Format, Frame, Recording};
use spmkd_tests::{init, sample};

fn frames(path: &Path) -> Vec<Frame> {
    Recording::open(path, Format::Auto, None)
        .unwrap()
        .map(|f| f.unwrap())
        .filter(|f| f.artifact.is_none())
        .map(|f| f.frame)
        .collect()
}

/// The cells of a GRAY16_LE video buffer, rows unpadded.
fn cells(buffer: &gst::BufferRef, caps: &gst::Caps) -> Vec<u16> {
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    (0..info.height() as usize)
        .flat_map(|y| {
            data[y * stride..][..2 * info.width() as usize]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
        })
        .collect()
}

fn rtp_caps() -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("payload", 96i32)
        .field("clock-rate", 90_000i32)
        .field("encoding-name", ENCODING_NAME)
        .build()
}

/// An RTP packet with sequence number `seq` and `payload`.
fn packet(seq: u16, payload: &[u8], pts: u64) -> gst::Buffer {
    use gst_rtp::prelude::*;
    let mut b = gst::Buffer::new_rtp_with_sizes(payload.len() as u32, 0, 0).unwrap();
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(pts));
        let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(b).unwrap();
        rtp.set_seq(seq);
        rtp.set_payload_type(96);
        rtp.set_marker(true);
        rtp.payload_mut().unwrap().copy_from_slice(payload);
    }
    b
}

/// The payload of a `w x h` 16-bit frame whose every cell is `value`.
fn frame_payload(w: u16, h: u16, value: u16) -> Vec<u8> {
    let mut p = Payload::header(w, h, 16, false).to_vec();
    for _ in 0..usize::from(w) * usize::from(h) {
        p.extend_from_slice(&value.to_le_bytes());
    }
    p
}

fn depay(props: &[(&str, glib::Value)]) -> (Harness, gst::Bus) {
    init();
    let mut builder = gst::ElementFactory::make("rtppmatdepay");
    for (name, value) in props {
        builder = builder.property(name, value.clone());
    }
    let element = builder.build().unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps(rtp_caps());
    h.play();
    (h, bus)
}

fn stats(h: &Harness) -> gst::Structure {
    h.element().unwrap().property::<gst::Structure>("stats")
}

fn count(stats: &gst::Structure, field: &str) -> u64 {
    stats.get::<u64>(field).unwrap()
}

use gst::glib;

#[test]
fn frames_go_through_pay_and_depay_unchanged() {
    init();
    // 32 x 64 (experiment-i) and 27 x 64 (experiment-ii: rows padded to 56 bytes in GStreamer,
    // unpadded on the wire), one after the other: the size comes with the packets.
    let a = frames(&sample("3.txt"));
    let b = frames(&spmkd_tests::data_root().join("experiment-ii/S1/Air_Mat/Matrix_Air_B1.txt"));
    let pay = gst::ElementFactory::make("rtppmatpay").build().unwrap();
    let depay = gst::ElementFactory::make("rtppmatdepay").build().unwrap();
    let bin = gst::Bin::new();
    bin.add_many([&pay, &depay]).unwrap();
    pay.link(&depay).unwrap();
    bin.add_pad(&gst::GhostPad::with_target(&pay.static_pad("sink").unwrap()).unwrap())
        .unwrap();
    bin.add_pad(&gst::GhostPad::with_target(&depay.static_pad("src").unwrap()).unwrap())
        .unwrap();
    let mut h = Harness::with_element(&bin, Some("sink"), Some("src"));
    h.play();
    let (mut sent, mut got) = (Vec::new(), Vec::new());
    for (i, frame) in a.iter().take(5).chain(b.iter()).enumerate() {
        let (w, h_) = (frame.width() as u32, frame.height() as u32);
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray16Le, w, h_)
            .fps(gst::Fraction::new(1, 1))
            .build()
            .unwrap();
        h.set_src_caps(info.to_caps().unwrap());
        let stride = info.stride()[0] as usize;
        let mut data = vec![0u8; info.size()];
        for y in 0..frame.height() {
            for (x, v) in frame.row(y).iter().enumerate() {
                data[y * stride + 2 * x..][..2].copy_from_slice(&v.to_le_bytes());
            }
        }
        let mut buffer = gst::Buffer::from_mut_slice(data);
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_seconds(i as u64));
        h.push(buffer).unwrap();
        sent.push(frame.data().to_vec());
        // Pulled at once: the caps in force are this frame's.
        let out = h.pull().unwrap();
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        got.push(cells(&out, &caps));
    }
    assert_eq!(got.len(), 6);
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert!(g == s, "frame {i} changed on the way");
    }
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!((info.width(), info.height()), (27, 64));
}

#[test]
fn each_bad_datagram_costs_at_most_its_frame_and_is_counted() {
    let (mut h, bus) = depay(&[]);
    let mut seq = 1000u16;
    let mut next = |value: u16| {
        seq += 1;
        (seq, frame_payload(32, 64, value))
    };
    let mut pushed = Vec::new();
    let mut send = |h: &mut Harness, seq: u16, payload: &[u8]| {
        pushed.push(seq);
        let _ = h.push(packet(seq, payload, u64::from(seq)));
    };
    // In order; then a short one, a long one; a lost one; a swap; a duplicate; noise.
    let (s, p) = next(1);
    send(&mut h, s, &p);
    let (s, p) = next(2);
    send(&mut h, s, &p[..p.len() - 7]);
    let (s, mut p) = next(3);
    p.extend_from_slice(&[0; 5]);
    send(&mut h, s, &p);
    let _lost = next(4);
    let (s5, p5) = next(5);
    let (s6, p6) = next(6);
    send(&mut h, s6, &p6);
    send(&mut h, s5, &p5);
    let (s, p) = next(7);
    send(&mut h, s, &p);
    send(&mut h, s, &p);
    let _ = h.push(gst::Buffer::from_slice(b"not a packet at all".to_vec()));
    let (s, p) = next(8);
    send(&mut h, s, &p);

    // Frames 1, 6, 7, 8 come out, each whole and unshifted.
    let mut values = Vec::new();
    while let Some(b) = h.try_pull() {
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        let c = cells(&b, &caps);
        assert!(c.iter().all(|&v| v == c[0]), "a frame of mixed cells");
        values.push(c[0]);
    }
    assert_eq!(values, [1, 6, 7, 8]);
    let st = stats(&h);
    assert_eq!(
        [
            "frames",
            "lost",
            "late",
            "duplicates",
            "malformed",
            "restarts"
        ]
        .map(|f| count(&st, f)),
        [4, 1, 1, 1, 3, 0],
        "{st}"
    );
    // Each is reported on the bus.
    let events: Vec<String> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == "spmkd-transport")
                .map(|s| s.get::<String>("event").unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        [
            "malformed",
            "malformed",
            "lost",
            "late",
            "duplicate",
            "malformed"
        ]
    );
}

#[test]
fn the_senders_end_mark_ends_the_stream() {
    let (mut h, bus) = depay(&[]);
    h.push(packet(1, &frame_payload(4, 2, 9), 0)).unwrap();
    assert_eq!(
        h.push(packet(2, &Payload::header(0, 0, 0, true), 1)),
        Err(gst::FlowError::Eos)
    );
    assert!(h.pull().is_ok());
    // EOS went downstream, with the stats posted.
    let mut eos = false;
    while let Some(event) = h.try_pull_event() {
        eos |= event.type_() == gst::EventType::Eos;
    }
    assert!(eos);
    let posted = std::iter::from_fn(|| bus.pop()).any(|m| {
        matches!(m.view(), gst::MessageView::Element(e)
            if e.structure().is_some_and(|s| s.name() == "spmkd-transport-stats"))
    });
    assert!(posted);
}

#[test]
fn a_silent_sensor_is_reported_and_its_return_too() {
    let (mut h, bus) = depay(&[("sensor-timeout", 300_000_000u64.to_value())]);
    h.push(packet(1, &frame_payload(4, 2, 9), 0)).unwrap();
    let lost = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .expect("spmkd-sensor-lost within 5 s");
    let s = lost.structure().unwrap();
    assert_eq!(s.name(), "spmkd-sensor-lost");
    assert_eq!(s.get::<u64>("frames").unwrap(), 1);
    assert_eq!(s.get::<u64>("silence").unwrap(), 300_000_000);
    h.push(packet(2, &frame_payload(4, 2, 9), 1)).unwrap();
    let back = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .expect("spmkd-sensor-back");
    assert_eq!(back.structure().unwrap().name(), "spmkd-sensor-back");
    assert!(back.structure().unwrap().get::<u64>("silence").unwrap() >= 300_000_000);

    // With sensor-lost-action=error the silence is an error, which stops a pipeline.
    let (mut h, bus) = depay(&[
        ("sensor-timeout", 200_000_000u64.to_value()),
        (
            "sensor-lost-action",
            gstspmkd::rtppmatdepay::SensorLostAction::Error.to_value(),
        ),
    ]);
    h.push(packet(1, &frame_payload(4, 2, 9), 0)).unwrap();
    let error = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error within 5 s");
    let gst::MessageView::Error(e) = error.view() else {
        unreachable!()
    };
    assert!(
        e.error().to_string().contains("the sensor went silent"),
        "{}",
        e.error()
    );
}

/// The bytes of an RTP packet of sender `ssrc`.
fn datagram(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = packet(seq, payload, 0);
    {
        let b = b.get_mut().unwrap();
        let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(b).unwrap();
        rtp.set_ssrc(ssrc);
    }
    b.map_readable().unwrap().to_vec()
}

/// A real receiver on a loopback UDP port, and what a hostile network sends it: forged ends
/// (another SSRC, out of sequence), random junk, a second sender interleaved, frames of an odd
/// size and bad-size packets with wild sequence numbers, among 300 frames of the real sender.
/// Every real frame comes out, the stream ends only at the real end, and nothing reads as lost.
#[test]
fn a_hostile_network_neither_ends_nor_disturbs_the_stream() {
    init();
    let port = spmkd_tests::broker::free_port();
    let pipeline = gst::parse::launch(&format!(
        "udpsrc port={port} address=127.0.0.1 buffer-size=8388608 caps=\"application/x-rtp,media=video,clock-rate=90000,encoding-name={ENCODING_NAME},payload=96\" \
         ! rtppmatdepay name=depay ! fakesink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let frames = frames.clone();
        pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                frames.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |bytes: &[u8]| {
        socket.send_to(bytes, ("127.0.0.1", port)).unwrap();
    };
    let (real, other) = (0x1111_1111u32, 0x2222_2222u32);
    let end = Payload::header(0, 0, 0, true);
    let frame = frame_payload(32, 64, 5);
    let mut junk_state = 0x9e37_79b9_7f4a_7c15u64;
    let mut junk = move || {
        junk_state ^= junk_state << 13;
        junk_state ^= junk_state >> 7;
        junk_state ^= junk_state << 17;
        let len = 12 + (junk_state % 64) as usize;
        let mut bytes: Vec<u8> = (0..len)
            .map(|i| (junk_state >> (i % 8 * 8)) as u8 ^ i as u8)
            .collect();
        // RTP version 2 and our payload's version 1 with the end flag: the likeliest forgery.
        bytes[0] = 0x80;
        if let Some(header) = bytes.get_mut(12..14) {
            header.copy_from_slice(&[1, 1]);
        }
        bytes
    };
    let mut seq = 500u16;
    let mut next = || {
        seq += 1;
        seq
    };
    for i in 0..300u16 {
        let s = next();
        send(&datagram(real, s, &frame));
        if i % 10 == 0 {
            send(&datagram(other, s + 1, &end));
            send(&datagram(real, s.wrapping_add(20_000), &end));
        }
        send(&junk());
        send(&junk());
        send(&junk());
        send(&datagram(other, 9_000 + i, &frame));
        if i % 50 == 25 {
            send(&datagram(real, s.wrapping_add(7_000), &frame[..100]));
            // One valid frame of an odd size, with its own place in the sequence.
            send(&datagram(real, next(), &frame_payload(1, 1, 9)));
        }
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
    send(&datagram(real, next(), &end));
    let bus = pipeline.bus().unwrap();
    let mut ended = false;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(20)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                ended = true;
                break;
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    let stats = pipeline
        .by_name("depay")
        .unwrap()
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(ended, "the real end ended the stream: {stats}");
    assert_eq!(
        frames.load(std::sync::atomic::Ordering::SeqCst),
        300,
        "{stats}"
    );
    for (field, want) in [("frames", 300), ("lost", 0), ("late", 0), ("restarts", 0)] {
        assert_eq!(count(&stats, field), want, "{field}: {stats}");
    }
    assert_eq!(count(&stats, "wrong-size"), 6, "{stats}");
    // The second sender's 300 frames and 30 ends, and the junk that names a sender.
    assert!(count(&stats, "other-source") >= 330, "{stats}");
    assert_eq!(count(&stats, "refused-ends"), 30, "{stats}");
}
