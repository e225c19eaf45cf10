//! A ward in one process: N beds, each its own pipeline `pmatsrc loop=true framerate=1/1 !
//! spmkdpose ! spmkdmonitor ! spmkdposture ! spmkdmqttsink sync=true` (real time, a frame a
//! second), publishing to a real broker (mosquitto on a loopback port) and one subscriber that
//! takes every message. For each N, in a process of its own (so RSS is that N's alone):
//! peak RSS, RSS per added bed (against N = 1), CPU per bed, latency from a frame's due time
//! (its running time on the pipeline clock) to its pose message at the subscriber, and what
//! was lost (postures and alerts by `seq`; poses against the frames rendered).
//!
//!     cargo bench -p spmkd-tests --bench ward                     (1, 10, 100, 500 beds, 20 s)
//!     cargo bench -p spmkd-tests --bench ward -- --beds 1,50 --seconds 10
//!     cargo bench -p spmkd-tests --bench ward -- --spread     (frames spread over each second)
//!
//! A benchmark, not a test: it prints what it measured (docs/BENCHMARKS.md holds a run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use rumqttc::{Client, Event, Packet, QoS};
use spmkd_core::broker::{EventMessage, PoseMessage};
use spmkd_core::mqtt;
use spmkd_tests::broker::Broker;
use spmkd_tests::{init, sample};

/// Reads a `VmRSS`/`VmHWM` line of /proc/self/status, KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    let hz: u64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100);
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// Pose latencies, ms, after the warm-up: from the frame's due time, and from the sink's
    /// render (its wall clock, ms resolution).
    latencies: Vec<f64>,
    from_render: Vec<f64>,
    poses: usize,
    /// Per bed: the event seqs received.
    seqs: HashMap<String, Vec<u64>>,
}

/// One N, in this process; prints one result line. With `spread`, the beds start 1/N s apart,
/// so their frames fall evenly over each second as a ward's mats would; without, they start as
/// fast as they can and their frames come in one burst a second (the harder case).
fn one(beds: usize, seconds: u64, spread: bool) {
    init();
    let broker = Broker::started();
    let queue = tempfile::tempdir().expect("a queue directory");
    let before = status_kib("VmRSS:");

    // Base times of the pipelines by bed, for the latency of each pose.
    let base: Arc<Mutex<HashMap<String, u64>>> = Default::default();
    let seen: Arc<Mutex<Seen>> = Default::default();
    let warm = Arc::new(Mutex::new(None::<Instant>));
    let options = mqtt::Connection::new("127.0.0.1", broker.port, "ward-bench")
        .options()
        .expect("a plain connection needs no file");
    let (client, mut connection) = Client::new(options, 100_000);
    mqtt::no_delay(&mut connection.eventloop);
    client
        .subscribe("bench/#", QoS::AtLeastOnce)
        .expect("subscribe");
    let clock = gst::SystemClock::obtain();
    {
        let (base, seen, warm, clock) = (base.clone(), seen.clone(), warm.clone(), clock.clone());
        std::thread::spawn(move || {
            for event in connection.iter() {
                let Ok(Event::Incoming(Packet::Publish(p))) = event else {
                    continue;
                };
                let now = clock.time().nseconds();
                let mut seen = seen.lock().unwrap();
                if p.topic.ends_with("/pose") {
                    seen.poses += 1;
                    let Ok(m) = serde_json::from_slice::<PoseMessage>(&p.payload) else {
                        continue;
                    };
                    let started = warm.lock().unwrap().is_some_and(|w| Instant::now() >= w);
                    if let (true, Some(b), Some(rt)) = (
                        started,
                        base.lock().unwrap().get(&m.bed),
                        m.record.running_time_ns,
                    ) {
                        seen.latencies.push((now as f64 - (b + rt) as f64) / 1e6);
                        let wall = spmkd_core::broker::wall_time_ms();
                        seen.from_render
                            .push(wall.saturating_sub(m.wall_time_ms) as f64);
                    }
                } else if let Ok(e) = serde_json::from_slice::<EventMessage>(&p.payload) {
                    seen.seqs.entry(e.bed).or_default().push(e.seq);
                }
            }
        });
    }

    let rendered = Arc::new(AtomicUsize::new(0));
    let recording = sample("1.txt");
    let t0 = Instant::now();
    let mut pipelines = Vec::with_capacity(beds);
    for i in 0..beds {
        let bed = format!("b{i}");
        let pipeline = gst::parse::launch(&format!(
            "pmatsrc location={} loop=true framerate=1/1 ! spmkdpose ! spmkdmonitor ! spmkdposture \
             ! spmkdmqttsink name=sink port={} topic-prefix=bench bed={bed} queue-dir={}",
            recording.display(),
            broker.port,
            queue.path().display()
        ))
        .expect("the pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let r = rendered.clone();
        pipeline
            .by_name("sink")
            .and_then(|s| s.static_pad("sink"))
            .expect("the sink's pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                r.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        if spread {
            let due = t0 + Duration::from_secs(1).mul_f64(i as f64 / beds as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        pipeline
            .set_state(gst::State::Playing)
            .expect("the bed plays");
        pipelines.push((bed, pipeline));
    }
    for (bed, p) in &pipelines {
        let _ = p.state(gst::ClockTime::from_seconds(30));
        if let Some(t) = p.base_time() {
            base.lock().unwrap().insert(bed.clone(), t.nseconds());
        }
    }
    let started_in = t0.elapsed();
    // Two seconds to settle, then the measured window.
    std::thread::sleep(Duration::from_secs(2));
    *warm.lock().unwrap() = Some(Instant::now());
    let (cpu0, wall0, frames0) = (cpu_time(), Instant::now(), rendered.load(Ordering::Relaxed));
    let rss_running = status_kib("VmRSS:");
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu, wall, frames) = (
        cpu_time() - cpu0,
        wall0.elapsed(),
        rendered.load(Ordering::Relaxed) - frames0,
    );
    let mut errors = 0;
    for (_, p) in &pipelines {
        let bus = p.bus().expect("a bus");
        while let Some(m) = bus.pop() {
            if let gst::MessageView::Error(e) = m.view() {
                errors += 1;
                eprintln!("error: {}", e.error());
            }
        }
        p.set_state(gst::State::Null).expect("to NULL");
    }
    let peak = status_kib("VmHWM:");
    // Everything in flight arrives.
    std::thread::sleep(Duration::from_secs(2));
    let seen = seen.lock().unwrap();
    let mut lat = seen.latencies.clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let mut from_render = seen.from_render.clone();
    from_render.sort_by(|a, b| a.total_cmp(b));
    let lost_events: u64 = seen
        .seqs
        .values()
        .map(|s| {
            let mut s = s.clone();
            s.sort_unstable();
            s.dedup();
            s.last().copied().unwrap_or(0) - s.len() as u64
        })
        .sum();
    let events: usize = seen.seqs.values().map(Vec::len).sum();
    println!(
        "{}",
        serde_json::json!({
            "beds": beds,
            "started_s": started_in.as_secs_f64(),
            "rss_before_kib": before,
            "rss_running_kib": rss_running,
            "peak_rss_kib": peak,
            "cpu_per_bed_percent": 100.0 * cpu.as_secs_f64() / wall.as_secs_f64() / beds as f64,
            "frames_per_s": frames as f64 / wall.as_secs_f64(),
            "latency_p50_ms": percentile(&lat, 0.5),
            "latency_p99_ms": percentile(&lat, 0.99),
            "latency_max_ms": lat.last().copied().unwrap_or(f64::NAN),
            "render_to_subscriber_p99_ms": percentile(&from_render, 0.99),
            "poses_received": seen.poses,
            "events_received": events,
            "events_lost": lost_events,
            "errors": errors,
        })
    );
    drop(client);
    drop(broker);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = arg("--seconds").map_or(20, |s| s.parse().expect("--seconds N"));
    let spread = args.iter().any(|a| a == "--spread");
    if let Some(n) = arg("--one") {
        one(n.parse().expect("--one N"), seconds, spread);
        return;
    }
    let beds: Vec<usize> = arg("--beds")
        .unwrap_or_else(|| "1,10,100,500".into())
        .split(',')
        .map(|n| n.parse().expect("--beds N,N,..."))
        .collect();
    let exe = std::env::current_exe().expect("this benchmark's path");
    println!(
        "{:>5} {:>9} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9} {:>12} {:>8} {:>6}",
        "beds",
        "start s",
        "peak MiB",
        "MiB/bed+",
        "CPU %/bed",
        "frames/s",
        "p50 ms",
        "p99 ms",
        "render p99",
        "events",
        "lost"
    );
    let mut first: Option<(usize, f64)> = None;
    for n in beds {
        let out = std::process::Command::new(&exe)
            .args(["--one", &n.to_string(), "--seconds", &seconds.to_string()])
            .args(spread.then_some("--spread"))
            .output()
            .expect("the benchmark runs itself");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(r) = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        else {
            eprintln!(
                "{n} beds: no result\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        };
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let peak = f("peak_rss_kib") / 1024.0;
        let per_bed = match first {
            Some((n0, p0)) if n > n0 => format!("{:.2}", (peak - p0) / (n - n0) as f64),
            _ => "-".into(),
        };
        if first.is_none() {
            first = Some((n, peak));
        }
        println!(
            "{:>5} {:>9.1} {:>10.1} {:>11} {:>9.2} {:>9.1} {:>9.2} {:>9.2} {:>12.0} {:>8} {:>6}",
            n,
            f("started_s"),
            peak,
            per_bed,
            f("cpu_per_bed_percent"),
            f("frames_per_s"),
            f("latency_p50_ms"),
            f("latency_p99_ms"),
            f("render_to_subscriber_p99_ms"),
            r["events_received"],
            r["events_lost"],
        );
        if r["errors"].as_u64().unwrap_or(0) > 0 {
            println!("      ({} pipeline errors)", r["errors"]);
        }
    }
}
