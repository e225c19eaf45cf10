//! `spmkd-train posture` (train and evaluate a posture classifier) and `posture-table` (runs
//! side by side, from their typed `results.json`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use spmkd_training::posture::classifier::GraphKind;
use spmkd_training::posture::experiment::{self, Kind, Report};
use spmkd_training::posture::fit::FitConfig;
use spmkd_training::posture::graphs::{Augment, NodeSource, Part};

use crate::args::DataArgs;

#[derive(Clone, Copy, ValueEnum)]
enum ClassifierArg {
    Gcn,
    Gat,
    Sage,
    /// The raw-image baseline (a small CNN on the preprocessed frames).
    Cnn,
}

#[derive(Clone, Copy, ValueEnum)]
enum NodeArg {
    /// The shipped SPMKD encoder (models/default/encoder.onnx, through ONNX Runtime).
    Spmkd,
    /// The strongest pressure peaks (non-learned).
    Peaks,
}

#[derive(Args)]
pub struct PostureArgs {
    #[arg(long, value_enum)]
    classifier: ClassifierArg,
    /// Where the graph nodes come from (ignored by the CNN).
    #[arg(long, value_enum, default_value_t = NodeArg::Spmkd)]
    keypoints: NodeArg,
    /// Run directory: classifier.bpk and results.json.
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Use every n-th usable training frame (test frames: all).
    #[arg(long, default_value_t = 2)]
    frame_stride: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Add the mirror image of every training frame with left and right swapped.
    #[arg(long)]
    mirror: bool,
    /// Graph networks: no learned embedding of the keypoint index (the ablation of
    /// `GnnConfig::identity`).
    #[arg(long)]
    no_identity: bool,
    /// Add a copy of every training frame (and mirror image) shifted sideways by a random
    /// 1..=N columns.
    #[arg(long, default_value_t = 0)]
    shift: usize,
    /// Model id written into posture.onnx (graph networks on SPMKD keypoints).
    #[arg(long, default_value = "spmkd-posture-dev")]
    version: String,
}

#[derive(Args)]
pub struct TableArgs {
    /// Run directories of `posture`.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
}

pub fn run(args: PostureArgs) -> Result<()> {
    let kind = match args.classifier {
        ClassifierArg::Gcn => Kind::Graph(GraphKind::Gcn),
        ClassifierArg::Gat => Kind::Graph(GraphKind::Gat),
        ClassifierArg::Sage => Kind::Graph(GraphKind::Sage),
        ClassifierArg::Cnn => Kind::Image,
    };
    let source = match args.keypoints {
        NodeArg::Spmkd => NodeSource::Spmkd,
        NodeArg::Peaks => NodeSource::Peaks,
    };
    let config = FitConfig::new()
        .with_epochs(args.epochs)
        .with_batch_size(args.batch)
        .with_learning_rate(args.lr)
        .with_seed(args.seed);
    let index = args.data.index()?;
    let options = experiment::Options {
        kind,
        source,
        train_stride: args.frame_stride,
        augment: Augment {
            mirror: args.mirror,
            shift: args.shift,
        },
        version: args.version.clone(),
        identity: !args.no_identity,
    };
    let report = experiment::run(&index, &options, &config, &args.run)?;
    println!(
        "{} on {} keypoints, {} parameters, {} training frames:",
        report.classifier, report.keypoints, report.parameters, report.train_frames
    );
    for p in &report.parts {
        println!(
            "  {:<24} {:>5} frames  accuracy {:.2} %",
            p.part,
            p.frames,
            100.0 * p.accuracy
        );
    }
    println!("{}/results.json", args.run.display());
    if let Some(path) = &report.exported {
        println!("{} (for spmkdposture's model property)", path.display());
    }
    Ok(())
}

/// The parts of the table, in its column order.
const COLUMNS: [Part; 5] = [
    Part::HeldOut,
    Part::Air,
    Part::Sponge,
    Part::AirTurned,
    Part::SpongeTurned,
];

pub fn table(args: &TableArgs) -> Result<()> {
    println!(
        "| run | classifier | keypoints | augmentation | parameters | S11..S13 | Air | Sponge | Air, turned | Sponge, turned |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for run in &args.runs {
        let r = Report::read(run)?;
        let accuracies: Vec<String> = COLUMNS
            .iter()
            .map(|&part| {
                r.part(part)
                    .map_or("?".to_owned(), |p| format!("{:.1} %", 100.0 * p.accuracy))
            })
            .collect();
        let name = run
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let augment = if r.augment.is_empty() {
            "none"
        } else {
            &r.augment
        };
        println!(
            "| {name} | {} | {} | {augment} | {} | {} |",
            r.classifier,
            r.keypoints,
            r.parameters,
            accuracies.join(" | ")
        );
    }
    Ok(())
}
