//! `spmkdjsonenc`: one JSON line per posed buffer, timestamps kept, read back by
//! `spmkd_core::ndjson` into the very records the buffers carried.

use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_check::Harness;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::ndjson::{self, PoseReader};
use spmkd_core::posture::Posture;
use spmkd_core::schema::{
    ExposedRegion, Keypoint, MonitorRecord, PoseRecord, PostureEstimate, SCHEMA_VERSION,
};
use spmkd_tests::{init, sample};

fn record(i: u32) -> PoseRecord {
    PoseRecord {
        schema: SCHEMA_VERSION,
        pts_ns: None,
        duration_ns: None,
        running_time_ns: None,
        width: 32,
        height: 64,
        model: "m".into(),
        inference_us: 100 + i as u64,
        stale: i % 2 == 1,
        quality: (i == 0).then_some(0.75),
        confidence_reference: Some(0.5),
        layout: (i == 1).then_some(-0.5),
        layout_ramp: (i == 1).then_some((0.625, 0.8125)),
        orientation: Default::default(),
        occupied: None,
        posture: (i == 2).then(|| PostureEstimate {
            label: Posture::Left.into(),
            probabilities: vec![0.1, 0.8, 0.1],
        }),
        // The monitor's nested structure goes through the meta and out as JSON too.
        monitor: (i == 1).then(|| MonitorRecord {
            occupied: true,
            contact: 0.375,
            edge: 0.25,
            edge_side: "right".into(),
            at_edge: true,
            floor: 44.0,
            noise: 2.5,
            movement: 0.5,
            moved: true,
            still_ns: 0,
            pressure_change: 0.5,
            keypoint_shift: Some(3.0),
            loaded_cells: 120,
            regions: vec![ExposedRegion {
                x: 10.5,
                y: 30.25,
                cells: 12,
                under_load_ns: 5_000_000_000,
                dose: 2.5,
            }],
            offloaded: true,
            trust: 0.75,
        }),
        keypoints: vec![Keypoint {
            x: i as f32 + 0.5,
            y: 2.25,
            confidence: 0.5,
            pressure: 0.125,
        }],
        features: vec![i as f32; 3],
    }
}

#[test]
fn each_posed_buffer_becomes_one_line_and_reads_back_equal() {
    init();
    let mut h = Harness::new("spmkdjsonenc");
    h.set_src_caps_str("video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=1/1");
    for i in 0..3u32 {
        let mut b = gst::Buffer::with_size(8).unwrap();
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_seconds(i as u64));
            b.set_duration(gst::ClockTime::SECOND);
            PoseMeta::add(b, &record(i)).unwrap();
        }
        h.push(b).unwrap();
    }
    // A buffer with no pose is left out (with a warning), not an error.
    h.push(gst::Buffer::with_size(8).unwrap()).unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(caps.structure(0).unwrap().name(), ndjson::MEDIA_TYPE);

    let mut text = Vec::new();
    while let Some(b) = h.try_pull() {
        let map = b.map_readable().unwrap();
        assert_eq!(map.iter().filter(|&&c| c == b'\n').count(), 1);
        assert_eq!(map.last(), Some(&b'\n'));
        text.extend_from_slice(&map);
    }
    let read: Vec<PoseRecord> = PoseReader::new("out.ndjson".as_ref(), text.as_slice())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read.len(), 3);
    for (i, r) in read.into_iter().enumerate() {
        let expected = PoseRecord {
            pts_ns: Some(i as u64 * 1_000_000_000),
            duration_ns: Some(1_000_000_000),
            running_time_ns: Some(i as u64 * 1_000_000_000),
            ..record(i as u32)
        };
        assert_eq!(r, expected);
    }
}

#[test]
fn a_recording_to_a_file_and_back() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poses.ndjson");
    let pipeline = gst::parse::launch(&format!(
        "pmatsrc location={} ! spmkdpose inference-interval=2 ! tee name=t \
         t. ! queue ! spmkdjsonenc ! filesink location={} \
         t. ! queue ! fakesink name=sink",
        sample("1.txt").display(),
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                s.lock().unwrap().push(PoseMeta::read(b).unwrap().unwrap());
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let mut from_file = ndjson::read_all(&path).unwrap();
    let seen = seen.lock().unwrap();
    assert!(from_file.len() > 100);
    // One file from 0: the running time is the PTS. The meta has no running time.
    for r in &mut from_file {
        assert_eq!(r.running_time_ns, r.pts_ns);
        r.running_time_ns = None;
    }
    assert_eq!(*seen, from_file);
    assert!(from_file.iter().any(|r| r.stale) && from_file.iter().any(|r| !r.stale));
}

#[test]
fn running_time_goes_on_across_the_files_of_a_concat() {
    // Each file's PTS starts at 0 again; the running time is the pipeline's timeline.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poses.ndjson");
    let outcome = spmkd_tests::run_pipeline(
        &format!(
            "concat name=c ! spmkdpose ! spmkdjsonenc ! filesink name=sink location={} \
             pmatsrc location={} ! c. pmatsrc location={} ! c.",
            path.display(),
            sample("1.txt").display(),
            sample("2.txt").display()
        ),
        &["sink"],
        gst::ClockTime::from_seconds(60),
    );
    assert!(outcome.eos, "{outcome:?}");
    let records = ndjson::read_all(&path).unwrap();
    assert_eq!(records.len(), 117 + 102);
    let second = &records[117];
    assert_eq!(second.pts_ns, Some(0));
    assert_eq!(second.running_time_ns, Some(117_000_000_000));
    let running: Vec<u64> = records.iter().map(|r| r.running_time_ns.unwrap()).collect();
    assert!(running.windows(2).all(|w| w[1] == w[0] + 1_000_000_000));
}
