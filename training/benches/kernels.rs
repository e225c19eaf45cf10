//! spmkd's training kernels alone (`training/src/kernels/`), on plain slices at the shipped
//! network's shapes and batch 32: the dense 3x3 convolutions (forward, input gradient, weight
//! gradient) and the batch norm fused with each activation (forward, backward). What
//! `step_profile` times inside a step, without Burn around it, so a change to one kernel can be
//! measured on its own:
//!
//! ```sh
//! cargo bench -p spmkd-training --bench kernels
//! # an earlier revision's kernels timed by this benchmark (their public functions are the same):
//! git checkout REV -- training/src/kernels && cargo bench -p spmkd-training --bench kernels
//! git checkout HEAD -- training/src/kernels
//! ```
//!
//! Medians of 15 repetitions after one discarded; inputs are fixed pseudo-random values.

use std::time::{Duration, Instant};

use spmkd_training::kernels::activation::Activation;
use spmkd_training::kernels::{dense, norm};

const BATCH: usize = 32;
const REPS: usize = 15;

/// Fixed values in [-2, 2), different per `seed`.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 250.0 - 2.0)
        .collect()
}

/// The median time of `f` over [`REPS`] runs after one discarded, in ms.
fn time(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<Duration> = (0..=REPS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .skip(1)
        .collect();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    println!("# spmkd's training kernels alone\n");
    println!(
        "Batch {BATCH}, {} cores, medians of {REPS} repetitions, ms.\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("## Dense 3x3 convolutions (kernels/dense.rs)\n");
    println!("| convolution | in -> out | input | forward | input gradient | weight gradient |");
    println!("|---|---|---|---|---|---|");
    for (name, cin, cout, side, dilation) in [
        ("stem", 1, 16, 64, 1),
        ("decoder (upsample, mix)", 48, 16, 64, 1),
        ("decoder (upsample, mix)", 48, 16, 32, 1),
        ("decoder dilated", 16, 16, 32, 3),
    ] {
        let s = dense::Shape {
            batch: BATCH,
            cin,
            cout,
            height: side,
            width: side,
            kernel: 3,
            dilation,
        };
        let support = dense::supported(&s);
        if !support.forward {
            println!("| {name} | {cin} -> {cout} | {side}x{side} | (not on this machine) | | |");
            continue;
        }
        let (x, w, dy) = (
            values(s.input_len(), 1),
            values(s.weight_len(), 2),
            values(s.output_len(), 3),
        );
        let (mut out, mut dx, mut dw) = (
            vec![0.0; s.output_len()],
            vec![0.0; s.input_len()],
            vec![0.0; s.weight_len()],
        );
        let forward = time(|| dense::forward(&x, &w, &s, &mut out));
        let input_grad = if support.input_grad {
            format!("{:.2}", time(|| dense::input_grad(&dy, &w, &s, &mut dx)))
        } else {
            "(Burn's)".into()
        };
        let weight_grad = time(|| dense::weight_grad(&x, &dy, &s, &mut dw));
        println!(
            "| {name} | {cin} -> {cout} | {side}x{side} | {forward:.2} | {input_grad} | {weight_grad:.2} |"
        );
    }

    println!("\n## Batch norm with its activation (kernels/norm.rs)\n");
    println!("| where | channels | plane | activation | forward | backward |");
    println!("|---|---|---|---|---|---|");
    for (name, channels, side, activation) in [
        ("stem", 16, 64, Activation::HardSwish),
        ("block 2 expansion", 72, 32, Activation::Relu),
        ("block 7 expansion", 288, 16, Activation::HardSwish),
        ("block 7 projection", 96, 16, Activation::Identity),
    ] {
        let s = norm::Shape {
            batch: BATCH,
            channels,
            plane: side * side,
        };
        let (x, dy) = (values(s.len(), 4), values(s.len(), 5));
        let (gamma, beta) = (vec![1.1; channels], vec![0.1; channels]);
        let (mut y, mut dx) = (vec![0.0; s.len()], vec![0.0; s.len()]);
        let (mut mean, mut var) = (vec![0.0; channels], vec![0.0; channels]);
        let (mut dgamma, mut dbeta) = (vec![0.0; channels], vec![0.0; channels]);
        let forward = time(|| {
            norm::forward(
                &x, &gamma, &beta, 1e-5, activation, &s, &mut y, &mut mean, &mut var,
            )
        });
        let backward = time(|| {
            norm::backward(
                &x,
                &gamma,
                &beta,
                &mean,
                &var,
                1e-5,
                activation,
                &dy,
                &s,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            )
        });
        println!(
            "| {name} | {channels} | {side}x{side} | {activation:?} | {forward:.2} | {backward:.2} |"
        );
    }
}
