//! `spmkd-train posture` (train and evaluate a posture classifier) and `posture-table` (runs
//! side by side, from their typed `results.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use spmkd_core::dataset::natural_key;
use spmkd_training::posture::classifier::GraphKind;
use spmkd_training::posture::experiment::{self, Kind, PartResult, Report};
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
    /// SPMKD keypoints (the shipped encoder, or --encoder; through ONNX Runtime).
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
    /// The SPMKD encoder: an encoder.onnx, or a directory holding one (as `spmkd-train export`
    /// and `adapt` write); default: the shipped encoder.
    #[arg(long)]
    encoder: Option<PathBuf>,
    /// Run directory: classifier.bpk and results.json.
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3, value_parser = crate::args::learning_rate)]
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
    /// Graph networks: standardize each node feature over the graph's nodes before the first
    /// layer (position, size and the mat's gain taken out; exported with the network).
    #[arg(long)]
    graph_norm: bool,
    /// Letterbox every frame (training and test) with the body, not the mat, in the middle of
    /// the encoder's input. An encoder trained so (`train --body-centred`) is always run so;
    /// for one trained on mat-centred frames this is an experiment (spmkdpose letterboxes the
    /// mat for it).
    #[arg(long)]
    body_centred: bool,
    /// Graph networks: fit the recipe N times, from seeds --seed, --seed + 1, ..., and export
    /// the mean of their logits as one model.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=32))]
    ensemble: u16,
    /// Graph networks: the widths of the graph layers, e.g. 64,128,64,32 (default: the
    /// reference's 128,256,64,32).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    hidden: Option<Vec<u16>>,
    /// Add a copy of every training frame (and mirror image) shifted sideways by a random
    /// 1..=N columns.
    #[arg(long, default_value_t = 0)]
    shift: usize,
    /// Add N copies of every training frame (and mirror image) through the encoders' label-free
    /// augmentation (another mat, geometry, sensor; no flip), seen through the encoder.
    #[arg(long, default_value_t = 0)]
    label_free: usize,
    /// Model id written into posture.onnx (graph networks on SPMKD keypoints).
    #[arg(long, default_value = "spmkd-posture-dev")]
    version: String,
}

#[derive(Args)]
pub struct TableArgs {
    /// Run directories of `posture`.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Experiment-ii columns over these subjects only (e.g. 1-4 to choose on, 5-8 to report),
    /// from each run's per-subject results.
    #[arg(long)]
    unfamiliar_subjects: Option<String>,
    /// Then, for each run, experiment-ii turned broken down by posture ID (B1, E3, ...): how
    /// its frames were read.
    #[arg(long)]
    by_variant: bool,
}

/// The accuracy of `p` over `subjects` (all of its frames when `None`), and its frame count.
fn accuracy_over(p: &PartResult, subjects: Option<&[u8]>) -> (f64, usize) {
    let Some(subjects) = subjects else {
        return (p.accuracy, p.frames);
    };
    let (correct, frames) = p
        .per_subject
        .iter()
        .filter(|(s, _, _)| subjects.contains(s))
        .fold((0.0, 0), |(c, n), &(_, acc, t)| (c + acc * t as f64, n + t));
    (correct / frames.max(1) as f64, frames)
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
        deployed_encoder: None,
        encoder: args.encoder.as_deref().map(encoder_file),
        augment: Augment {
            mirror: args.mirror,
            shift: args.shift,
            label_free: args.label_free,
        },
        version: args.version.clone(),
        identity: !args.no_identity,
        graph_norm: args.graph_norm,
        body_centred: args.body_centred,
        ensemble: usize::from(args.ensemble),
        hidden: crate::args::widths(args.hidden.as_deref()),
        new_mat: None,
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

/// `path` itself, or the encoder.onnx in it when it is a directory.
pub fn encoder_file(path: &std::path::Path) -> PathBuf {
    if path.is_dir() {
        path.join("encoder.onnx")
    } else {
        path.to_owned()
    }
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
    let subjects = args
        .unfamiliar_subjects
        .as_deref()
        .map(crate::args::parse_subjects)
        .transpose()?;
    if let Some(s) = &args.unfamiliar_subjects {
        println!("Experiment-ii columns: subjects {s} only.\n");
    }
    println!(
        "| run | classifier | keypoints | augmentation | parameters | S11..S13 | Air | Sponge | Air, turned | Sponge, turned |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for run in &args.runs {
        let r = Report::read(run)?;
        let accuracies: Vec<String> = COLUMNS
            .iter()
            .map(|&part| {
                let only = (part != Part::HeldOut)
                    .then_some(subjects.as_deref())
                    .flatten();
                r.part(part).map_or("?".to_owned(), |p| {
                    let (accuracy, frames) = accuracy_over(p, only);
                    if frames == 0 {
                        "-".to_owned()
                    } else {
                        format!("{:.1} %", 100.0 * accuracy)
                    }
                })
            })
            .collect();
        // An adaptation's posture run is <model>/posture: name it by the model.
        let name = match (run.file_name(), run.parent().and_then(|p| p.file_name())) {
            (Some(n), Some(parent)) if n == "posture" => {
                format!("{}/posture", parent.to_string_lossy())
            }
            (Some(n), _) => n.to_string_lossy().into_owned(),
            (None, _) => String::new(),
        };
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
    if args.by_variant {
        for run in &args.runs {
            by_variant(run, &Report::read(run)?, subjects.as_deref());
        }
    }
    Ok(())
}

/// One posture ID's frames by the class they were read as.
struct Read {
    id: String,
    posture: String,
    read_as: [usize; 3],
}

/// Frames read as each class, summed by variant over `subjects` (all when `None`).
fn read_by_variant(
    part: Option<&PartResult>,
    subjects: Option<&[u8]>,
) -> BTreeMap<(String, u64), Read> {
    let mut out: BTreeMap<_, Read> = BTreeMap::new();
    for r in part.into_iter().flat_map(|p| &p.per_recording) {
        if subjects.is_some_and(|s| !s.contains(&r.subject)) {
            continue;
        }
        let entry = out.entry(natural_key(&r.variant)).or_insert_with(|| Read {
            id: r.variant.clone(),
            posture: r.posture.clone(),
            read_as: [0; 3],
        });
        for (total, n) in entry.read_as.iter_mut().zip(r.read_as) {
            *total += n;
        }
    }
    out
}

fn by_variant(run: &std::path::Path, r: &Report, subjects: Option<&[u8]>) {
    let air = read_by_variant(r.part(Part::AirTurned), subjects);
    let sponge = read_by_variant(r.part(Part::SpongeTurned), subjects);
    println!("\n{}: experiment-ii turned, by posture ID", run.display());
    if air.is_empty() && sponge.is_empty() {
        println!("(no per-recording results: made before they were recorded)");
        return;
    }
    let classes = spmkd_core::posture::Posture::ALL.map(|p| p.to_string());
    println!(
        "\n| ID | posture | Air, turned | read as {0} / {1} / {2} | Sponge, turned | read as {0} / {1} / {2} |",
        classes[0], classes[1], classes[2]
    );
    println!("|---|---|---|---|---|---|");
    let mut keys: Vec<_> = air.keys().chain(sponge.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let cell = |m: &BTreeMap<_, Read>| match m.get(key) {
            Some(Read {
                id,
                posture,
                read_as: read,
            }) => {
                let total: usize = read.iter().sum();
                let truth = classes.iter().position(|c| c == posture);
                let correct = truth.map_or(0, |t| read[t]);
                (
                    format!("| {id} | {posture}"),
                    format!("{:.0} %", 100.0 * correct as f64 / total.max(1) as f64),
                    format!("{} / {} / {}", read[0], read[1], read[2]),
                )
            }
            None => (String::new(), "-".to_owned(), "-".to_owned()),
        };
        let (a, s) = (cell(&air), cell(&sponge));
        let id = if a.0.is_empty() { &s.0 } else { &a.0 };
        println!("{id} | {} | {} | {} | {} |", a.1, a.2, s.1, s.2);
    }
}

#[cfg(test)]
mod tests {
    use spmkd_core::dataset::natural_key;

    #[test]
    fn posture_ids_sort_by_their_number() {
        let mut ids = vec!["B10", "B2", "E1", "B1", "F3a"];
        ids.sort_by_key(|id| natural_key(id));
        assert_eq!(ids, ["B1", "B2", "B10", "E1", "F3a"]);
    }
}
