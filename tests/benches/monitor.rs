//! What bed monitoring adds per frame: `spmkdposture` alone against `spmkdmonitor !
//! spmkdposture` (and with the exposure map written for the overlay) on the same posed
//! buffers, made beforehand by `spmkdpose` from the sample recordings.
//!
//!     cargo bench -p spmkd-tests --bench monitor            (docs/BENCHMARKS.md holds a run)
//!
//! A benchmark, not a test: it asserts nothing, it prints what it measured. The configurations
//! take turns, three rounds, so a slow spell of the machine does not fall on one of them.

use std::time::{Duration, Instant};

use gst_check::Harness;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::monitor::{Monitor, MonitorConfig, MonitorInput};
use spmkd_tests::{init, sample_frames};

const CAPS: &str = "video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=1/1";
const FRAMES: usize = 3000;
const WARM_UP: usize = 100;
const ROUNDS: usize = 3;

/// The sample recordings' frames through `spmkdpose`: buffers with their pose, one a second.
fn posed_buffers() -> Vec<gst::Buffer> {
    let frames = sample_frames();
    let mut h = Harness::new("spmkdpose");
    h.play();
    h.set_src_caps_str(CAPS);
    (0..FRAMES + WARM_UP)
        .map(|i| {
            let bytes: Vec<u8> = frames[i % frames.len()]
                .data()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            let mut b = gst::Buffer::from_mut_slice(bytes);
            let m = b.get_mut().expect("new buffer");
            m.set_pts(gst::ClockTime::from_seconds(i as u64));
            m.set_duration(gst::ClockTime::SECOND);
            h.push(b).expect("spmkdpose takes the buffer");
            h.pull().expect("a posed buffer")
        })
        .collect()
}

/// Per-frame push-to-pull times of `description` over `buffers` (copies: each run starts from
/// the same posed buffers).
fn run(description: &str, buffers: &[gst::Buffer]) -> Vec<Duration> {
    let mut h = Harness::new_parse(description);
    h.play();
    h.set_src_caps_str(CAPS);
    let mut times = Vec::with_capacity(FRAMES);
    for (i, b) in buffers.iter().enumerate() {
        let b = b.copy();
        let t = Instant::now();
        h.push(b).expect("the elements take the buffer");
        let out = h.pull().expect("one buffer out");
        let dt = t.elapsed();
        drop(out);
        if i >= WARM_UP {
            times.push(dt);
        }
    }
    times
}

/// `spmkd_core::monitor::Monitor::push` alone on the same frames and poses, read beforehand:
/// the monitor's arithmetic without GStreamer.
fn core_only(buffers: &[gst::Buffer]) -> Vec<Duration> {
    let inputs: Vec<(Vec<f32>, spmkd_core::schema::PoseRecord)> = buffers
        .iter()
        .map(|b| {
            let map = b.map_readable().expect("readable");
            let values = map
                .chunks_exact(2)
                .map(|v| f32::from(u16::from_le_bytes([v[0], v[1]])))
                .collect();
            (values, PoseMeta::read(b).expect("a pose").expect("a pose"))
        })
        .collect();
    let mut monitor = Monitor::new(MonitorConfig::default());
    let mut events = Vec::new();
    let mut times = Vec::with_capacity(FRAMES);
    for (i, (values, pose)) in inputs.iter().enumerate() {
        let t = Instant::now();
        let record = monitor.push(
            &MonitorInput {
                values,
                width: 32,
                height: 64,
                keypoints: &pose.keypoints,
                fresh: !pose.stale,
                quality: pose.quality,
                confidence_reference: pose.confidence_reference,
                layout: pose.layout,
                layout_ramp: pose.layout_ramp,
                now_ns: i as u64 * 1_000_000_000,
            },
            &mut events,
        );
        let dt = t.elapsed();
        std::hint::black_box(record);
        events.clear();
        if i >= WARM_UP {
            times.push(dt);
        }
    }
    times
}

fn mean_us(t: &[Duration]) -> f64 {
    t.iter().map(Duration::as_secs_f64).sum::<f64>() / t.len() as f64 * 1e6
}

fn quantile_us(t: &[Duration], q: f64) -> f64 {
    let mut v = t.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6
}

fn main() {
    init();
    let buffers = posed_buffers();
    let configurations = [
        "spmkdposture",
        "spmkdmonitor ! spmkdposture",
        "spmkdmonitor exposure-map=true ! spmkdposture",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); configurations.len()];
    for _ in 0..ROUNDS {
        for (t, description) in times.iter_mut().zip(configurations) {
            t.extend(run(description, &buffers));
        }
    }
    println!("# Bed monitoring per frame\n");
    println!(
        "{FRAMES} posed buffers (the sample recordings through `spmkdpose`, 32 x 64, one a \
         second) pushed through each configuration with a gst-check Harness, {ROUNDS} rounds \
         taking turns; push to pull per frame. Added: mean against `spmkdposture` alone.\n"
    );
    println!("| elements | mean | median | p99 | added |");
    println!("|---|---|---|---|---|");
    let base = mean_us(&times[0]);
    for (t, description) in times.iter().zip(configurations) {
        println!(
            "| `{description}` | {:.1} us | {:.1} us | {:.1} us | {:+.1} us |",
            mean_us(t),
            quantile_us(t, 0.5),
            quantile_us(t, 0.99),
            mean_us(t) - base
        );
    }
    let core = core_only(&buffers);
    println!(
        "| (`spmkd_core::monitor::Monitor::push` alone, no GStreamer) | {:.1} us | {:.1} us | {:.1} us | |",
        mean_us(&core),
        quantile_us(&core, 0.5),
        quantile_us(&core, 0.99)
    );
}
