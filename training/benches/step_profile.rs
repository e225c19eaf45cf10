//! Where a training step's time goes: each part of the shipped network (S = 64, k = 32, f = 16,
//! decoder width 16) at batch 32, forward and backward, timed on its own, and each distinct
//! convolution of it alone; then whole CRWT steps of both phases as `spmkd-train train` runs
//! them (forward, loss, backward, Adam).
//!
//! ```sh
//! cargo bench -p spmkd-training --bench step_profile            # all of it, about 2 minutes
//! cargo bench -p spmkd-training --bench step_profile -- --quick # fewer repetitions
//! SPMKD_KERNELS=burn cargo bench -p spmkd-training --bench step_profile  # Burn's operations only
//! SPMKD_MALLOC=default cargo bench -p spmkd-training --bench step_profile # malloc as glibc sets it
//! ```
//!
//! A part is timed by giving it an input that requires a gradient and taking the backward of
//! the sum of its output against a fixed random tensor: the backward time is the part's own
//! (its parameters' and its input's gradients), the one a full step spends on it. Burn's CPU
//! backend runs each operation as it is called, so a forward time is the part's compute. Times
//! are medians over the repetitions; the first run of each is discarded (allocation, caches).

use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use spmkd_training::kernels::extension::{conv2d_same, depthwise_conv2d};
use spmkd_training::model::exchange::resample;
use spmkd_training::model::{Efd, EfdConfig, Phase};
use spmkd_training::{crwt, kernels, memory};

const BATCH: usize = 32;

/// One distinct convolution of the network: its shape and how often it occurs.
struct Conv {
    name: &'static str,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    dilation: usize,
    /// Side of its (square) input.
    size: usize,
    times: usize,
}

impl Conv {
    fn new(name: &'static str, cin: usize, cout: usize, kernel: usize, size: usize) -> Self {
        Self {
            name,
            cin,
            cout,
            kernel,
            stride: 1,
            groups: 1,
            dilation: 1,
            size,
            times: 1,
        }
    }

    fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    fn depthwise(self) -> Self {
        Self {
            groups: self.cin,
            ..self
        }
    }

    fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    fn times(self, times: usize) -> Self {
        Self { times, ..self }
    }
}

struct Timing {
    forward: Duration,
    backward: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(0.0, 1.0), device)
}

/// Times `part` on inputs of `shape`: forward, then the backward of its output's weighted sum.
fn time_part<const D: usize, const E: usize>(
    reps: usize,
    shape: [usize; D],
    device: &Device,
    part: impl Fn(Tensor<D>) -> Tensor<E>,
) -> Timing {
    let (mut forward, mut backward) = (Vec::new(), Vec::new());
    for rep in 0..=reps {
        let x = random(shape, device).require_grad();
        let t = Instant::now();
        let y = part(x);
        let f = t.elapsed();
        let weights = random(y.dims(), device);
        let loss = (y * weights).sum();
        let t = Instant::now();
        let grads = loss.backward();
        let b = t.elapsed();
        drop(grads);
        if rep > 0 {
            forward.push(f);
            backward.push(b);
        }
    }
    Timing {
        forward: median(forward),
        backward: median(backward),
    }
}

fn row(name: &str, what: &str, t: &Timing, step: Duration) {
    let total = t.forward + t.backward;
    println!(
        "| {name} | {what} | {:.2} | {:.2} | {:.2} | {:.1} % |",
        ms(t.forward),
        ms(t.backward),
        ms(total),
        100.0 * total.as_secs_f64() / step.as_secs_f64()
    );
}

/// One training step as `Run::train_phase` takes it; returns its time.
fn step(
    model: &mut Option<Efd>,
    optim: &mut ModuleOptimizer,
    phase: Phase,
    x: &Tensor<4>,
) -> Duration {
    let t = Instant::now();
    let m = model.take().expect("a model");
    let output = m.forward(x.clone()).output;
    let loss = match phase {
        Phase::Classification => crwt::classification_loss(output, crwt::pressure_mask(x.clone())),
        Phase::Regression => {
            crwt::regression_loss(crwt::regression_map(output), x.clone(), 1.0, 1.0)
        }
    };
    let _value: f32 = loss.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), &m);
    *model = Some(optim.step(2e-3, m, grads));
    t.elapsed()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 10 };
    // As `spmkd-train` does: the step's freed tensors kept for the next step.
    let kept = memory::keep_freed_memory();
    let device = Device::flex().autodiff();
    device.seed(1);
    let config = EfdConfig::new();
    let s = config.input_size;
    let x = random([BATCH, 1, s, s], &device);

    println!("# A training step of the shipped network, part by part\n");
    println!(
        "S = {s}, k = {}, f = {}, decoder width {}, batch {BATCH}, Burn 0.22 flex backend ({}), {}, {} cores, {} repetitions, medians.\n",
        config.keypoints,
        config.features,
        config.decoder_width,
        if kernels::enabled() {
            "with spmkd's kernels"
        } else {
            "Burn's operations only, SPMKD_KERNELS=burn"
        },
        if kept {
            "malloc keeping freed memory"
        } else {
            "malloc's own settings"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        reps
    );

    // Whole steps first: the reference the parts are shares of.
    let mut steps = Vec::new();
    for phase in [Phase::Classification, Phase::Regression] {
        let mut model = Some(config.init(phase, &device));
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        let mut times = Vec::new();
        for rep in 0..=reps {
            let t = step(&mut model, &mut optim, phase, &x);
            if rep > 0 {
                times.push(t);
            }
        }
        steps.push((phase, median(times)));
    }
    println!("| phase | step | samples/s |");
    println!("|---|---|---|");
    for (phase, t) in &steps {
        println!(
            "| {} | {:.1} ms | {:.1} |",
            match phase {
                Phase::Classification => "1 (classification)",
                Phase::Regression => "2 (regression)",
            },
            ms(*t),
            BATCH as f64 / t.as_secs_f64()
        );
    }
    let step1 = steps[0].1;

    println!("\n## Parts (phase 1 network; shares of the phase-1 step)\n");
    println!("| part | input | forward ms | backward ms | total ms | share of step |");
    println!("|---|---|---|---|---|---|");
    let model = config.init(Phase::Classification, &device);
    let e = &model.encoder;
    let t = time_part(reps, [BATCH, 1, s, s], &device, |x| e.stem.forward(x));
    row(
        "encoder stem (3x3, 1 -> 16)",
        &format!("{s}x{s}"),
        &t,
        step1,
    );
    let mut shape = [BATCH, 16, s, s];
    for (i, block) in e.blocks.iter().enumerate() {
        let t = time_part(reps, shape, &device, |x| block.forward(x));
        let out = {
            let probe = random(shape, &device.clone().inner());
            block.valid().forward(probe).dims()
        };
        row(
            &format!(
                "encoder block {} ({} -> {}, depthwise {}x{}{})",
                i + 1,
                shape[1],
                out[1],
                block.depthwise.conv.weight.dims()[2],
                block.depthwise.conv.weight.dims()[3],
                if out[2] < shape[2] { ", stride 2" } else { "" }
            ),
            &format!("{}x{}", shape[2], shape[3]),
            &t,
            step1,
        );
        shape = out;
    }
    let t = time_part(reps, shape, &device, |x| e.heatmaps.forward(x));
    row(
        "encoder heatmaps (1x1)",
        &format!("{}x{}", shape[2], shape[3]),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, 1, s, s], &device, |x| model.encode(x).fused);
    row("encoder + fuser", &format!("{s}x{s}"), &t, step1);
    let fused = [BATCH, config.keypoints, 2 * config.features];
    let d = &model.decoder;
    let t = time_part(reps, fused, &device, |f| d.forward(f));
    row("decoder whole", "k x 2f", &t, step1);
    let t = time_part(reps, fused, &device, |f| {
        let [b, k, f2] = f.dims();
        burn::tensor::activation::relu(d.fc.forward(f.reshape([b, k * f2])))
    });
    row("decoder fc", "k x 2f", &t, step1);
    let base = s / 4;
    let c = config.decoder_width;
    let t = time_part(reps, [BATCH, c, base, base], &device, |x| {
        d.expand[0].forward(x)
    });
    row(
        "decoder expansion 1 (3 dilated 3x3, x2, 3x3)",
        &format!("{base}x{base}"),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, c, 2 * base, 2 * base], &device, |x| {
        d.expand[1].forward(x)
    });
    row(
        "decoder expansion 2",
        &format!("{}x{}", 2 * base, 2 * base),
        &t,
        step1,
    );
    // The other branches are made once, outside the timing.
    let x1 = random([BATCH, c, 2 * base, 2 * base], &device);
    let x2 = random([BATCH, c, s, s], &device);
    let t = time_part(reps, [BATCH, c, base, base], &device, |x| {
        let out = d.exchange[0].forward(vec![x, x1.clone()]);
        Tensor::cat(out.into_iter().map(|t| t.flatten::<2>(1, 3)).collect(), 1)
    });
    row(
        "decoder exchange 1 (2 branches)",
        &format!("{base}, {}", 2 * base),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, c, base, base], &device, |x| {
        let out = d.exchange[1].forward(vec![x, x1.clone(), x2.clone()]);
        Tensor::cat(out.into_iter().map(|t| t.flatten::<2>(1, 3)).collect(), 1)
    });
    row(
        "decoder exchange 2 (3 branches)",
        &format!("{base}, {}, {s}", 2 * base),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, 3 * c, 2 * base, 2 * base], &device, |x| {
        resample(x, [s, s])
    });
    row(
        "bilinear resample (expansion 2's, 48 channels)",
        &format!("{} -> {s}", 2 * base),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, c, base, base], &device, |x| {
        resample(x, [s, s])
    });
    row(
        "bilinear resample (exchange 2's, 16 channels)",
        &format!("{base} -> {s}"),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, 2, s, s], &device, |logits| {
        crwt::classification_loss(logits, crwt::pressure_mask(x.clone()))
    });
    row(
        "phase-1 loss (cross-entropy)",
        &format!("{s}x{s}"),
        &t,
        step1,
    );
    let t = time_part(reps, [BATCH, 1, s, s], &device, |out| {
        crwt::regression_loss(crwt::regression_map(out), x.clone(), 1.0, 1.0)
    });
    row(
        "phase-2 loss (sigmoid, L2 + SSIM)",
        &format!("{s}x{s}"),
        &t,
        step1,
    );

    println!("\n## Convolutions alone (no norm, no activation; shares of the phase-1 step)\n");
    println!(
        "Run as the network runs them: {}\n",
        if kernels::enabled() {
            "dense stride-1 (1x1 as a matrix product) and depthwise convolutions through the \
             kernels of `spmkd_training::kernels`."
        } else {
            "Burn's own convolutions (`SPMKD_KERNELS=burn`)."
        }
    );
    println!(
        "Every distinct convolution shape of the network with more than 1 % of the step, and how \
         often it occurs; the share counts every occurrence.\n"
    );
    println!(
        "| convolution | in -> out | input | times | forward ms | backward ms | share of step |"
    );
    println!("|---|---|---|---|---|---|---|");
    let convs = [
        Conv::new("stem 3x3", 1, 16, 3, s),
        Conv::new("depthwise 3x3 stride 2", 16, 16, 3, s)
            .stride(2)
            .depthwise(),
        Conv::new("depthwise 3x3 stride 2", 72, 72, 3, s / 2)
            .stride(2)
            .depthwise(),
        Conv::new("depthwise 5x5", 240, 240, 5, s / 4).depthwise(),
        Conv::new("depthwise 5x5", 288, 288, 5, s / 4).depthwise(),
        Conv::new("1x1 expansion", 40, 240, 1, s / 4),
        Conv::new("1x1 expansion", 48, 288, 1, s / 4),
        Conv::new("1x1 projection", 288, 96, 1, s / 4),
        Conv::new("decoder 3x3 (upsample, mix)", 48, 16, 3, s).times(2),
        Conv::new("decoder 3x3 (upsample, mix)", 48, 16, 3, s / 2).times(2),
        Conv::new("decoder 3x3 dilated (1, 3, 5)", 16, 16, 3, s / 2)
            .dilation(3)
            .times(3),
    ];
    for c in convs {
        let Conv {
            name,
            cin,
            cout,
            kernel: k,
            stride,
            groups,
            dilation,
            size,
            times,
        } = c;
        let pad = dilation * (k / 2);
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_dilation([dilation, dilation])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(false)
            .init(&device);
        // As the network runs it: dense stride-1 convolutions through the kernels.
        let t = time_part(reps, [BATCH, cin, size, size], &device, |x| {
            if groups == 1 && stride == 1 {
                conv2d_same(x, conv.weight.val(), dilation)
            } else if groups == cin && dilation == 1 {
                depthwise_conv2d(x, conv.weight.val(), stride)
            } else {
                conv.forward(x)
            }
        });
        let total = (t.forward + t.backward) * times as u32;
        println!(
            "| {name} | {cin} -> {cout} | {size}x{size} | {times} | {:.2} | {:.2} | {:.1} % |",
            ms(t.forward),
            ms(t.backward),
            100.0 * total.as_secs_f64() / step1.as_secs_f64()
        );
    }
}
