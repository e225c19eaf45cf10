//! `spmkd-train`: training, evaluation and inspection of SPMKD models, and the data survey.
//! One module per command; what several commands share (the data, the model shape, which
//! model to use) is in `args` and `choice`.

mod adapt;
mod args;
mod augment;
mod calibrate;
mod calibrate_protocol;
mod choice;
mod convention;
mod data;
mod eval;
mod export;
mod info;
mod keypoints;
mod optimize;
mod plot;
mod posture;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "spmkd-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a new mat with one volunteer: recordings of them on their back, left and right
    /// side find which way the mat lies and recalibrate the posture model; writes a model
    /// directory the elements load as it is.
    Calibrate(calibrate::CalibrateArgs),
    /// The new-mat protocol on experiment-ii: each subject the volunteer, the mat laid each of
    /// the eight ways, the orientation found and the posture read on the other subjects.
    CalibrateProtocol(calibrate_protocol::ProtocolArgs),
    /// Count frames, capture artifacts and usable frames per experiment and split.
    Data(data::DataSurveyArgs),
    /// Which way the models expect a mat to lie, checked on PmatData's lateral recordings (and
    /// drawn, with --plot).
    Convention(convention::ConventionArgs),
    /// One frame as read and as the training's augmentation shows it, side by side (PNG).
    Augment(augment::AugmentArgs),
    /// Train with CRWT: phase 1 (classification), weight transfer, phase 2 (regression).
    Train(train::TrainArgs),
    /// Adapt a trained model to a new mat from unlabelled recordings of it (self-supervised),
    /// refit the posture network through it; writes a model directory the elements load.
    Adapt(adapt::AdaptArgs),
    /// Evaluate a run's model: phase 1 F-score, phase 2 L1, L2 and SSIM.
    Eval(eval::EvalArgs),
    /// Export a run's model (or an untrained one) as encoder.onnx and decoder.onnx.
    Export(export::ExportArgs),
    /// Rewrite an exported model file to run faster, computing the same (h-swish as one
    /// HardSwish node); for files exported before `export` did it.
    Optimize(optimize::OptimizeArgs),
    /// Keypoints of every frame of a recording by the Burn model, as NDJSON (the records
    /// spmkdpose attaches, for comparing the two).
    Keypoints(keypoints::KeypointsArgs),
    /// Posture: train a classifier on keypoint graphs (or raw images) of experiment-i S1..S10,
    /// evaluate on S11..S13 and on experiment-ii's Air and Sponge mats.
    Posture(posture::PostureArgs),
    /// The accuracies of posture runs as one Markdown table (RESULTS.md's Tables A and B).
    PostureTable(posture::TableArgs),
    /// Parameters and FLOPs of the encoder and decoder at an input size.
    Info(info::InfoArgs),
    /// Plot the smoothed step losses of runs side by side into a PNG.
    Plot(plot::PlotArgs),
}

fn main() -> Result<()> {
    spmkd_training::memory::keep_freed_memory();
    match Cli::parse().command {
        Command::Data(args) => data::run(&args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::CalibrateProtocol(args) => calibrate_protocol::run(&args),
        Command::Convention(args) => convention::run(&args),
        Command::Augment(args) => augment::run(&args),
        Command::Train(args) => train::run(args),
        Command::Adapt(args) => adapt::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Optimize(args) => optimize::run(&args),
        Command::Keypoints(args) => keypoints::run(args),
        Command::Posture(args) => posture::run(args),
        Command::PostureTable(args) => posture::table(&args),
        Command::Info(args) => info::run(&args),
        Command::Plot(args) => plot::run(&args),
    }
}
