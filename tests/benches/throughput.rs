//! Benchmarks: spmkdpose against a bare ONNX Runtime session in the same process, the offline
//! pipeline over all of experiment-i, the encoder's FLOP rate against the machine's peak,
//! Burn inference beside ONNX Runtime, and training speed.
//!
//!     cargo bench -p spmkd-tests --bench throughput            (docs/BENCHMARKS.md holds a run)
//!
//! A benchmark, not a test: it asserts nothing, it prints what it measured. Run it on an
//! otherwise idle machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use burn::prelude::*;
use gst::prelude::*;
use gst_check::Harness;
use onnx_ir::Message;
use spmkd_core::Frame;
use spmkd_core::dataset::{DatasetIndex, Experiment};
use spmkd_core::engine::{self, EngineOptions, ModelSource};
use spmkd_core::model_meta::ModelKind;
use spmkd_core::preprocess::{Letterbox, preprocess_into};
use spmkd_tests::{data_root, init, sample, sample_frames};
use spmkd_training::data::FrameSet;
use spmkd_training::model::{Efd, EfdConfig, Phase};
use spmkd_training::train::{Run, TrainingConfig};

const CHILD_ARG: &str = "--pipeline-child";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD_ARG) {
        pipeline_child(
            args.get(i + 1).map_or("", String::as_str),
            args.get(i + 2).map(String::as_str),
        );
        return;
    }
    init();
    println!("# spmkd benchmarks\n");
    let peak = machine();
    let frames = sample_frames();
    println!(
        "Frames: the {} usable frames of data/sample/experiment-i/S12/{{1,2,3}}.txt (32 x 64), cycled.\n",
        frames.len()
    );

    println!("## spmkdpose against a bare ONNX Runtime session\n");
    println!(
        "Element: a gst-check Harness pushing GRAY16_LE buffers through `spmkdpose` (recon_src \
         not linked) and pulling each output; per-frame latency is push to pull. Bare: the same \
         model in an ONNX Runtime session of the same options, run on inputs preprocessed \
         beforehand (`spmkd_core::engine::Encoder::run`). The two take turns, {ROUNDS} rounds \
         each. Overhead: element mean / bare mean - 1.\n"
    );
    println!(
        "| model | threads | element frames/s | element median | element p99 | bare frames/s | bare median | bare p99 | overhead |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let s256 = export_untrained(dir.path(), 256, 128);
    let mut shipped_bare_fps = 0.0;
    for (name, model, size, n) in [
        ("shipped, S = 64, k = 32", None, 64, 3000),
        (
            "untrained, S = 256, k = 128",
            Some(s256.as_path()),
            256,
            300,
        ),
    ] {
        for threads in [1u32, 2] {
            // Taken in turns, so that a drift of the machine's speed falls on both alike.
            let (mut element, mut bare) = (Timings(Vec::new()), Timings(Vec::new()));
            for _ in 0..ROUNDS {
                element
                    .0
                    .extend(element_run(&frames, model, threads, n / ROUNDS).0);
                bare.0
                    .extend(bare_run(&frames, model, size, threads, n / ROUNDS).0);
            }
            if model.is_none() && threads == 1 {
                shipped_bare_fps = bare.fps();
            }
            println!(
                "| {name} | {threads} | {:.0} | {} | {} | {:.0} | {} | {} | {:+.1} % |",
                element.fps(),
                ms(element.quantile(0.5)),
                ms(element.quantile(0.99)),
                bare.fps(),
                ms(bare.quantile(0.5)),
                ms(bare.quantile(0.99)),
                100.0 * (element.mean() / bare.mean() - 1.0)
            );
        }
    }

    let device = Device::flex();
    let shipped = EfdConfig::new();
    let model = shipped.init(Phase::Regression, &device);
    let macs = model.encoder.macs();
    let flops = 2.0 * macs as f64;

    println!("\n## The offline pipeline over all of experiment-i\n");
    pipeline_report(&frames, dir.path(), flops, peak);

    println!();
    rewrites_report(&frames, dir.path());

    println!("\n## Encoder FLOPs against the machine's peak\n");
    println!(
        "Encoder at S = 64, k = 32: {:.1} M multiply-accumulates = {:.1} MFLOP per frame \
         (`spmkd-train info`). At the bare session's 1-thread rate ({shipped_bare_fps:.0} \
         frames/s): {:.1} GFLOP/s, {:.1} % of the {peak:.1} GFLOP/s peak.",
        macs as f64 / 1e6,
        flops / 1e6,
        flops * shipped_bare_fps / 1e9,
        100.0 * flops * shipped_bare_fps / 1e9 / peak
    );

    println!("\n## Burn inference beside ONNX Runtime (same architecture, S = 64)\n");
    burn_inference(&frames, &model.valid(), &device);

    println!("\n## Training speed (shipped configuration: S = 64, k = 32, batch 32)\n");
    training_speed();
}

/// The machine, and its fp32 peak: cores x FMA units x lanes x 2 x clock.
fn machine() -> f64 {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flags = field("flags");
    // Zen 4 (AMD family 25 with AVX-512) runs 512-bit instructions on its 256-bit units, one
    // half after the other: its fp32 peak is AVX2's.
    let double_pumped = field("vendor_id") == "AuthenticAMD" && field("cpu family") == "25";
    let lanes = if flags.contains("avx512f") && !double_pumped {
        16
    } else if flags.contains("avx2") && flags.contains(" fma") {
        8
    } else {
        4
    };
    // BogoMIPS is twice the TSC clock on x86 (the base clock under KVM, where cpu MHz may be
    // the host's figure); two FMA pipes per core is true of the Zen and recent Intel cores.
    let ghz = field("bogomips").parse::<f64>().unwrap_or(0.0) / 2000.0;
    let fma_units = 2;
    let peak = cores as f64 * fma_units as f64 * lanes as f64 * 2.0 * ghz;
    println!(
        "Machine: {}, {cores} cores, {ghz:.2} GHz (BogoMIPS / 2), {} fp32 lanes per FMA. \
         fp32 peak = {cores} cores x {fma_units} FMA units x {lanes} lanes x 2 FLOP x {ghz:.2} GHz \
         = {peak:.1} GFLOP/s. ONNX Runtime {}.\n",
        field("model name"),
        if lanes == 16 {
            "AVX-512: 16"
        } else if lanes == 8 && flags.contains("avx512f") {
            "AVX-512 on 256-bit units: 8"
        } else if lanes == 8 {
            "AVX2: 8"
        } else {
            "SSE: 4"
        },
        ort_version()
    );
    peak
}

fn ort_version() -> String {
    let lib = spmkd_core::runtime::onnxruntime_library();
    std::fs::canonicalize(&lib)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| lib.display().to_string())
}

fn gray16(frame: &Frame, index: u64) -> gst::Buffer {
    let bytes: Vec<u8> = frame.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut b = gst::Buffer::from_mut_slice(bytes);
    let b_mut = b.get_mut().expect("new buffer");
    b_mut.set_pts(gst::ClockTime::from_mseconds(index * 100));
    b_mut.set_duration(gst::ClockTime::from_mseconds(100));
    b
}

/// Per-frame times of a run.
struct Timings(Vec<Duration>);

impl Timings {
    fn mean(&self) -> f64 {
        self.0.iter().map(Duration::as_secs_f64).sum::<f64>() / self.0.len() as f64
    }
    fn fps(&self) -> f64 {
        1.0 / self.mean()
    }
    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

const WARM_UP: usize = 50;

/// The frames as the encoder takes them: preprocessed by core into the model's `size x size`.
fn model_inputs(frames: &[Frame], size: usize) -> Vec<Vec<f32>> {
    let letterbox = Letterbox::new(32, 64, size);
    let mut scratch = Vec::new();
    frames
        .iter()
        .map(|f| {
            let mut input = vec![0.0; size * size];
            preprocess_into(f.data(), &letterbox, &mut scratch, &mut input);
            input
        })
        .collect()
}
/// Rounds the element and the bare session take in turns.
const ROUNDS: usize = 3;

fn element_run(frames: &[Frame], model: Option<&Path>, threads: u32, n: usize) -> Timings {
    let mut builder = gst::ElementFactory::make("spmkdpose").property("threads", threads);
    if let Some(m) = model {
        builder = builder.property("model", m.to_str().expect("UTF-8 path"));
    }
    let element = builder.build().expect("spmkdpose");
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=GRAY16_LE,width=32,height=64,framerate=10/1");
    // Buffers made beforehand: the source's cost is not the element's.
    let buffers: Vec<gst::Buffer> = (0..n + WARM_UP)
        .map(|i| gray16(&frames[i % frames.len()], i as u64))
        .collect();
    let mut times = Vec::with_capacity(n);
    for (i, b) in buffers.into_iter().enumerate() {
        let t = Instant::now();
        h.push(b).expect("spmkdpose takes the buffer");
        let out = h.pull().expect("one buffer out");
        let dt = t.elapsed();
        drop(out);
        if i >= WARM_UP {
            times.push(dt);
        }
    }
    Timings(times)
}

fn bare_run(
    frames: &[Frame],
    model: Option<&Path>,
    size: usize,
    threads: u32,
    n: usize,
) -> Timings {
    let source = match model {
        Some(p) => ModelSource::file(p).expect("model file"),
        None => ModelSource::embedded(ModelKind::Encoder),
    };
    let options = EngineOptions {
        library: None,
        device: engine::Device::Cpu,
        allow_fallback: false,
        threads: threads as usize,
    };
    let mut encoder = engine::Encoder::new(&source, &options).expect("session");
    let inputs = model_inputs(frames, size);
    let mut times = Vec::with_capacity(n);
    for i in 0..n + WARM_UP {
        let t = Instant::now();
        encoder.run(&inputs[i % inputs.len()]).expect("inference");
        if i >= WARM_UP {
            times.push(t.elapsed());
        }
    }
    Timings(times)
}

/// `graphs` (name, file name, ONNX bytes), each in a bare one-thread session for 1000 frames,
/// three runs each taken in turn so all see the same machine: frames/s of each run.
fn alternate(frames: &[Frame], dir: &Path, graphs: Vec<(&str, &str, Vec<u8>)>) -> Vec<Vec<f64>> {
    let paths: Vec<PathBuf> = graphs
        .iter()
        .map(|(_, file, bytes)| {
            let path = dir.join(file);
            std::fs::write(&path, bytes).expect("write the model");
            path
        })
        .collect();
    let mut fps = vec![Vec::new(); paths.len()];
    for _ in 0..3 {
        for (i, path) in paths.iter().enumerate() {
            fps[i].push(bare_run(frames, Some(path), 64, 1, 1000).fps());
        }
    }
    println!("| graph | frames/s (three runs) |");
    println!("|---|---|");
    for ((name, _, _), runs) in graphs.iter().zip(&fps) {
        let runs: Vec<String> = runs.iter().map(|f| format!("{f:.0}")).collect();
        println!("| {name} | {} |", runs.join(", "));
    }
    fps
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The shipped encoder's shape (untrained weights) as Burn's exporter writes it, and after
/// each of `spmkd-train export`'s rewrites: h-swish as one `HardSwish` node, then the fuser's
/// soft-argmax as `Softmax`, `ReduceMax` and `MatMul` (`spmkd_training::export::optimize`).
fn rewrites_report(frames: &[Frame], dir: &Path) {
    use spmkd_training::export::{hard_swish, soft_argmax};
    let device = Device::flex();
    let config = EfdConfig::new();
    let model = config.init(Phase::Regression, &device);
    let meta = spmkd_training::export::metadata(&config, ModelKind::Encoder, "bench", "nothing");
    let raw = spmkd_training::export::encoder_graph(&model, &meta, &device).expect("export");
    let raw = spmkd_training::export::with_metadata(&raw, &meta).expect("metadata");
    let mut proto = onnx_ir::ModelProto::parse_from_bytes(&raw).expect("the exported model");
    let count = hard_swish::fuse(&mut proto).expect("h-swish");
    let hard_swish = proto.write_to_bytes().expect("serialize");
    let rewritten = soft_argmax::rewrite(&mut proto).expect("fuser");
    let fuser = proto.write_to_bytes().expect("serialize");

    println!("## h-swish as one node\n");
    println!(
        "An untrained encoder of the shipped shape (S = 64, k = 32; {count} h-swish), bare \
         session of one thread, 1000 frames, three alternating runs of each graph.\n"
    );
    let fps = alternate(
        frames,
        dir,
        vec![
            ("h-swish in seven nodes each", "encoder-seven.onnx", raw),
            ("HardSwish", "encoder-hardswish.onnx", hard_swish.clone()),
        ],
    );
    println!(
        "\nHardSwish / seven nodes: {:.2}x.",
        mean(&fps[1]) / mean(&fps[0])
    );

    println!("\n## The fuser in three operators\n");
    println!(
        "The same encoder with h-swish as `HardSwish`, its fuser as exported (softmax as TopK, \
         Sub, Exp, ReduceSum, Div; confidence as TopK; features as a broadcast Mul and a \
         ReduceSum) and rewritten ({} Softmax, {} ReduceMax, {} Transpose + MatMul), bare \
         session of one thread, 1000 frames, three alternating runs of each graph.\n",
        rewritten.softmax, rewritten.max, rewritten.matmul
    );
    let fps = alternate(
        frames,
        dir,
        vec![
            (
                "fuser as exported",
                "encoder-fuser-exported.onnx",
                hard_swish,
            ),
            ("fuser rewritten", "encoder-fuser-rewritten.onnx", fuser),
        ],
    );
    println!(
        "\nRewritten / as exported: {:.2}x.",
        mean(&fps[1]) / mean(&fps[0])
    );
}

fn export_untrained(dir: &Path, size: usize, keypoints: usize) -> PathBuf {
    let device = Device::flex();
    let config = EfdConfig::new()
        .with_input_size(size)
        .with_keypoints(keypoints);
    let model = config.init(Phase::Regression, &device);
    let meta =
        spmkd_training::export::metadata(&config, ModelKind::Encoder, "bench-s256", "nothing");
    let bytes = spmkd_training::export::encoder_onnx(&model, &meta, &device).expect("export");
    let path = dir.join("encoder-s256.onnx");
    std::fs::write(&path, bytes).expect("write the model");
    path
}

fn experiment_i_files() -> Vec<PathBuf> {
    let index = DatasetIndex::scan(data_root()).expect("PmatData");
    index
        .entries
        .iter()
        .filter(|e| e.experiment == Experiment::I)
        .map(|e| e.path.clone())
        .collect()
}

/// The offline pipeline's configurations: the elements between the recordings and `fakesink`
/// (none: the source alone, to see what reading the recordings costs), and whether the
/// recordings are read as the dataset's text (`concat` of a `pmatsrc` per file) or from one
/// `.npy` holding the same frames (no parsing).
const PIPELINES: [(&str, Source); 11] = [
    ("", Source::Text),
    ("spmkdpose threads=1", Source::Text),
    ("spmkdpose threads=2", Source::Text),
    ("spmkdpose parallel-frames=0", Source::Text),
    ("queue ! spmkdpose parallel-frames=0", Source::Text),
    ("spmkdpose parallel-frames=0 ! spmkdposture", Source::Text),
    (
        "spmkdpose parallel-frames=0 ! queue ! spmkdposture",
        Source::Text,
    ),
    (
        "spmkdpose parallel-frames=0 ! queue ! spmkdmonitor ! spmkdposture",
        Source::Text,
    ),
    ("", Source::Npy),
    ("spmkdpose threads=2", Source::Npy),
    ("spmkdpose parallel-frames=0", Source::Npy),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Text,
    Npy,
}

/// The usable frames of every experiment-i recording (what `pmatsrc` gives of them), written
/// to one `.npy` (u16, N x 64 x 32) in `dir`.
fn experiment_i_npy(dir: &Path) -> PathBuf {
    let mut data: Vec<u8> = Vec::new();
    let mut count = 0;
    let mut shape = (0, 0);
    for file in experiment_i_files() {
        let mut rec = spmkd_core::Recording::open(&file, spmkd_core::Format::Auto, None)
            .expect("a recording");
        while let Some(f) = rec.next_frame().expect("its frames") {
            if f.artifact.is_none() {
                shape = (f.frame.height(), f.frame.width());
                data.extend(f.frame.data().iter().flat_map(|v| v.to_le_bytes()));
                count += 1;
            }
        }
    }
    let mut bytes = spmkd_core::reader::npy_header("<u2", &[count, shape.0, shape.1]);
    bytes.extend(data);
    let path = dir.join("experiment-i.npy");
    std::fs::write(&path, bytes).expect("write the .npy");
    path
}

/// What lanes of the encoder alone can give: one bare one-thread session per core, each in a
/// thread of its own on inputs preprocessed beforehand, 3000 frames each (no GStreamer, no
/// reading, no keypoint decoding). Frames/s of all of them together.
fn bare_lanes(frames: &[Frame], lanes: usize) -> f64 {
    let n = 3000;
    let inputs = model_inputs(frames, 64);
    let barrier = std::sync::Barrier::new(lanes);
    let t = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..lanes)
            .map(|_| {
                scope.spawn(|| {
                    let mut encoder = engine::Encoder::new(
                        &ModelSource::embedded(ModelKind::Encoder),
                        &EngineOptions::cpu(1),
                    )
                    .expect("session");
                    for input in inputs.iter().take(WARM_UP) {
                        encoder.run(input).expect("inference");
                    }
                    barrier.wait();
                    let t = Instant::now();
                    for i in 0..n {
                        encoder.run(&inputs[i % inputs.len()]).expect("inference");
                    }
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a lane"))
            .max()
            .unwrap_or_default()
    });
    (lanes * n) as f64 / t.as_secs_f64()
}

/// Runs each configuration in a child process so its peak RSS is the pipeline's alone.
/// `flops`: the encoder's per frame; `peak`: the machine's fp32 peak (GFLOP/s).
fn pipeline_report(frames: &[Frame], dir: &Path, flops: f64, peak: f64) {
    let files = experiment_i_files();
    let npy = experiment_i_npy(dir);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lanes = cores.min(64);
    let ceiling = bare_lanes(frames, lanes);
    println!(
        "Text: `concat` of {} `pmatsrc` (every experiment-i recording, parsed from text) `! \
         <elements> ! fakesink sync=false`; .npy: `pmatsrc location=experiment-i.npy` (the same \
         frames, u16) in their place. Peak RSS is the child process's VmHWM. \
         `parallel-frames=0` chose {lanes} lane(s) of one thread on this machine's {cores} \
         core(s). Of peak: the encoder's FLOPs at the pipeline's frame rate against the \
         machine's fp32 peak. Of lanes: against {lanes} bare one-thread session(s) of the \
         built-in encoder, one per core, each in a thread of its own on preprocessed inputs \
         (no GStreamer, no reading): {ceiling:.0} frames/s, the most lanes of this encoder give \
         here.\n",
        files.len(),
    );
    println!("| elements | source | frames | seconds | frames/s | peak RSS | of peak | of lanes |");
    println!("|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("own path");
    for (elements, source) in PIPELINES {
        let mut child = Command::new(&exe);
        child.arg(CHILD_ARG).arg(elements);
        if source == Source::Npy {
            child.arg(&npy);
        }
        let out = child.output().expect("the pipeline child runs");
        let name = if elements.is_empty() {
            "(none: pmatsrc alone)".to_owned()
        } else {
            format!("`{elements}`")
        };
        let source = match source {
            Source::Text => "text",
            Source::Npy => ".npy",
        };
        if out.status.success() {
            let row = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            // The row is "frames | seconds | frames/s | RSS |".
            let fps: Option<f64> = row.split('|').nth(2).and_then(|f| f.trim().parse().ok());
            let (of_peak, of_lanes) = match fps {
                Some(fps) if !elements.is_empty() => (
                    format!("{:.1} %", 100.0 * flops * fps / 1e9 / peak),
                    format!("{:.0} %", 100.0 * fps / ceiling),
                ),
                _ => ("-".to_owned(), "-".to_owned()),
            };
            println!("| {name} | {source} | {row} {of_peak} | {of_lanes} |");
        } else {
            println!(
                "| {name} | {source} | failed: {} |||||",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// The child: one pipeline over all of experiment-i; prints the rest of its table row.
fn pipeline_child(elements: &str, npy: Option<&str>) {
    init();
    let middle = if elements.is_empty() {
        String::new()
    } else {
        format!("{elements} ! ")
    };
    let description = match npy {
        Some(npy) => format!("pmatsrc location=\"{npy}\" ! {middle}fakesink name=sink sync=false"),
        None => {
            // One pipeline: `concat` plays the recordings one after another, as a batch job
            // over a folder would.
            let sources: String = experiment_i_files()
                .iter()
                .map(|f| format!(" pmatsrc location=\"{}\" ! c.", f.display()))
                .collect();
            format!("concat name=c ! {middle}fakesink name=sink sync=false{sources}")
        }
    };
    let pipeline = gst::parse::launch(&description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = count.clone();
    pipeline
        .by_name("sink")
        .expect("sink")
        .static_pad("sink")
        .expect("pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let t = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let bus = pipeline.bus().expect("bus");
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                eprintln!("{}: {:?}", e.error(), e.debug());
                std::process::exit(1);
            }
            _ => {}
        }
    }
    let elapsed = t.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null).expect("null");
    let frames = count.load(std::sync::atomic::Ordering::Relaxed);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map_or("?".into(), |l| {
            l.split_whitespace().nth(1).unwrap_or("?").to_owned()
        });
    println!(
        "{frames} | {elapsed:.2} | {:.0} | {:.1} MB |",
        frames as f64 / elapsed,
        hwm.parse::<f64>().unwrap_or(0.0) / 1024.0
    );
}

fn burn_inference(frames: &[Frame], model: &Efd, device: &Device) {
    let inputs = model_inputs(&frames[..frames.len().min(64)], 64);
    for batch in [1usize, 32] {
        let n = if batch == 1 { 200 } else { 20 };
        let mut times = Vec::new();
        for i in 0..n + 5 {
            let data: Vec<f32> = (0..batch)
                .flat_map(|b| inputs[(i * batch + b) % inputs.len()].clone())
                .collect();
            let t = Instant::now();
            let input = Tensor::<4>::from_data(TensorData::new(data, [batch, 1, 64, 64]), device);
            let e = model.encode(input);
            let _: Vec<f32> = e.keypoints.into_data().try_to_vec().expect("f32");
            if i >= 5 {
                times.push(t.elapsed() / batch as u32);
            }
        }
        let t = Timings(times);
        println!(
            "Burn 0.22 flex backend (rayon, SIMD), encoder + fuser, batch {batch}: {:.0} frames/s, \
             median {} per frame.",
            t.fps(),
            ms(t.quantile(0.5))
        );
    }
}

fn training_speed() {
    // As `spmkd-train` does (last in this benchmark: the settings stay for the process).
    spmkd_training::memory::keep_freed_memory();
    let device = Device::flex().autodiff();
    device.seed(1);
    let config = EfdConfig::new();
    let mut data = FrameSet::new(config.input_size);
    for name in ["1.txt", "2.txt", "3.txt"] {
        data.add_file(&sample(name), None, 12, 1).expect("sample");
    }
    let steps = 8;
    let dir = tempfile::tempdir().expect("temporary run");
    let training = TrainingConfig::new(config.clone())
        .with_classification_epochs(1)
        .with_regression_epochs(1)
        .with_steps_per_epoch(Some(steps));
    let batch = training.batch_size;
    let mut run = Run::open(dir.path(), training, false).expect("run");
    let empty = FrameSet::new(config.input_size);
    let t = Instant::now();
    let phase1 = run
        .train_phase(
            Phase::Classification,
            config.init(Phase::Classification, &device),
            &data,
            &empty,
            &device,
        )
        .expect("phase 1");
    let t1 = t.elapsed().as_secs_f64();
    let phase2 = phase1.transfer(&config, Phase::Regression, &device);
    let t = Instant::now();
    run.train_phase(Phase::Regression, phase2, &data, &empty, &device)
        .expect("phase 2");
    let t2 = t.elapsed().as_secs_f64();
    let samples = (steps * batch) as f64;
    println!(
        "{steps} steps of {batch} frames per phase (checkpoint writing included): phase 1 \
         (classification) {:.1} samples/s, phase 2 (regression, L2 + SSIM) {:.1} samples/s.",
        samples / t1,
        samples / t2
    );
}
