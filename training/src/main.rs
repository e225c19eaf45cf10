//! `spmkd-train`: training, evaluation and inspection of SPMKD models, and the data survey.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spmkd_core::dataset::{DatasetIndex, Entry, Experiment};
use spmkd_training::data::FrameSet;
use spmkd_training::eval::evaluate;
use spmkd_training::model::{EfdConfig, Phase};
use spmkd_training::train::{Run, TrainingConfig, phase_name};
use spmkd_training::{plot, survey};

#[derive(Parser)]
#[command(name = "spmkd-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Count frames, capture artifacts and usable frames per experiment and split.
    Data {
        #[command(flatten)]
        data: DataArgs,
        /// One row per subject.
        #[arg(long)]
        per_subject: bool,
        /// List every artifact frame found.
        #[arg(long)]
        list_artifacts: bool,
    },
    /// Train with CRWT: phase 1 (classification), weight transfer, phase 2 (regression).
    Train(TrainArgs),
    /// Evaluate a run's model: phase 1 F-score, phase 2 L1, L2 and SSIM.
    Eval(EvalArgs),
    /// Export a run's model (or an untrained one) as encoder.onnx and decoder.onnx.
    Export(ExportArgs),
    /// Keypoints of every frame of a recording by the Burn model, as NDJSON (the records
    /// spmkdpose attaches, for comparing the two).
    Keypoints(KeypointsArgs),
    /// Posture: train a classifier on keypoint graphs (or raw images) of experiment-i S1..S10,
    /// evaluate on S11..S13 and on experiment-ii's Air and Sponge mats.
    Posture(PostureArgs),
    /// The accuracies of posture runs as one Markdown table (RESULTS.md's Tables A and B).
    PostureTable {
        /// Run directories of `posture`.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
    /// Parameters and FLOPs of the encoder and decoder at an input size.
    Info {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Plot the smoothed step losses of runs side by side into a PNG.
    Plot {
        /// `NAME=RUN_DIR[:PHASE]` per curve (PHASE: classification or regression).
        #[arg(required = true)]
        curves: Vec<String>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "CRWT loss curves")]
        title: String,
        /// Running-mean window in steps.
        #[arg(long, default_value_t = 25)]
        window: usize,
    },
}

#[derive(Args, Clone)]
struct DataArgs {
    /// The pmatdata folder (default: $SPMKD_DATA, else ../shared/data/pmatdata).
    #[arg(long)]
    data: Option<PathBuf>,
}

impl DataArgs {
    fn index(&self) -> Result<DatasetIndex> {
        let root = match &self.data {
            Some(r) => r.clone(),
            None => DatasetIndex::locate(&std::env::current_dir()?),
        };
        Ok(DatasetIndex::scan(&root)?)
    }
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Model input side S (frames are letterboxed into S x S).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Keypoints k.
    #[arg(long, default_value_t = 32)]
    keypoints: usize,
    /// Features f per cell.
    #[arg(long, default_value_t = 16)]
    features: usize,
    /// Channels of the decoder branches.
    #[arg(long, default_value_t = 16)]
    decoder_width: usize,
    /// Ablation: decoder without dilated convolutions.
    #[arg(long)]
    no_dilation: bool,
    /// Ablation: decoder without exchange layers.
    #[arg(long)]
    no_exchange: bool,
}

impl ModelArgs {
    fn config(&self) -> Result<EfdConfig> {
        if self.size == 0 || !self.size.is_multiple_of(4) || self.size < 16 {
            bail!(
                "--size must be a multiple of 4, at least 16 (got {})",
                self.size
            );
        }
        if self.keypoints == 0 || self.features == 0 || self.decoder_width == 0 {
            bail!("--keypoints, --features and --decoder-width must be positive");
        }
        Ok(EfdConfig::new()
            .with_input_size(self.size)
            .with_keypoints(self.keypoints)
            .with_features(self.features)
            .with_decoder_width(self.decoder_width)
            .with_dilation(!self.no_dilation)
            .with_exchange(!self.no_exchange))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PhaseArg {
    /// Phase 1, transfer, phase 2.
    Both,
    Classification,
    Regression,
}

#[derive(Args)]
struct TrainArgs {
    /// Run directory (config, metrics, checkpoints, plots).
    #[arg(long)]
    run: PathBuf,
    #[arg(long, value_enum, default_value_t = PhaseArg::Both)]
    phase: PhaseArg,
    /// Phase 2 from a fresh network instead of the transferred phase-1 weights (the CRWT
    /// ablation).
    #[arg(long)]
    from_scratch: bool,
    /// Continue a run from its last checkpoint.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 6)]
    classification_epochs: usize,
    #[arg(long, default_value_t = 6)]
    regression_epochs: usize,
    /// a of a * L2 + b * (1 - SSIM).
    #[arg(long, default_value_t = 1.0)]
    l2_weight: f32,
    /// b of a * L2 + b * (1 - SSIM).
    #[arg(long, default_value_t = 1.0)]
    ssim_weight: f32,
    /// Use every n-th usable frame of each recording.
    #[arg(long, default_value_t = 4)]
    frame_stride: usize,
    /// Cap the steps of every epoch (same budget for every ablation).
    #[arg(long)]
    steps_per_epoch: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Experiment-i subjects to train on, e.g. 1-10 or 1,3,5.
    #[arg(long, default_value = "1-10")]
    train_subjects: String,
    /// Experiment-i subjects to validate on after every epoch (default: none).
    #[arg(long, default_value = "")]
    val_subjects: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    /// Experiment-i S11..S13.
    HeldOut,
    /// Experiment-i S1..S10.
    Train,
    /// Experiment-ii (another mat and mattress).
    Unfamiliar,
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long)]
    run: PathBuf,
    /// Which phase's checkpoint (default: regression when the run has one).
    #[arg(long, value_enum)]
    phase: Option<PhaseArg>,
    #[arg(long, value_enum, default_value_t = SplitArg::HeldOut)]
    split: SplitArg,
    #[command(flatten)]
    data: DataArgs,
    /// Use every n-th usable frame.
    #[arg(long, default_value_t = 1)]
    frame_stride: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

/// Which model a command uses: a run's phase-2 checkpoint, or a freshly initialized one.
#[derive(Args)]
struct ModelChoice {
    /// Run whose regression (phase 2) checkpoint to use.
    #[arg(
        long,
        required_unless_present = "untrained",
        conflicts_with = "untrained"
    )]
    run: Option<PathBuf>,
    /// A freshly initialized model of the given shape (for tests of the plugin).
    #[arg(long)]
    untrained: bool,
    #[command(flatten)]
    model: ModelArgs,
    /// Seed of the untrained model's weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Model id written into `spmkd.version` (default: derived from the shape and run).
    #[arg(long)]
    version: Option<String>,
}

/// A chosen model with what its files say about it.
struct Chosen {
    model: spmkd_training::model::Efd,
    config: EfdConfig,
    version: String,
    trained_on: String,
}

impl ModelChoice {
    fn load(&self, device: &Device) -> Result<Chosen> {
        let (model, config, name, trained_on) = match &self.run {
            Some(dir) => {
                let config_path = dir.join("config.json");
                let training = TrainingConfig::load(&config_path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", config_path.display()))?;
                let run = Run::open(dir, training, true)?;
                let model = run.load(Phase::Regression, device)?;
                let c = &run.config;
                let trained_on = format!(
                    "PmatData experiment-i S{} (every {}th usable frame), CRWT {} + {} epochs, seed {}",
                    c.train_subjects,
                    c.frame_stride,
                    c.classification_epochs,
                    c.regression_epochs,
                    c.seed
                );
                let name = dir
                    .file_name()
                    .map_or("run".into(), |n| n.to_string_lossy().into_owned());
                (model, c.model.clone(), name, trained_on)
            }
            None => {
                let config = self.model.config()?;
                device.seed(self.seed);
                let model = config.init(Phase::Regression, device);
                (
                    model,
                    config,
                    format!("untrained-seed{}", self.seed),
                    "nothing (untrained)".to_owned(),
                )
            }
        };
        let version = self.version.clone().unwrap_or_else(|| {
            format!(
                "spmkd-efd-s{}-k{}-f{}-w{}-{name}",
                config.input_size, config.keypoints, config.features, config.decoder_width
            )
        });
        Ok(Chosen {
            model: model.valid(),
            config,
            version,
            trained_on,
        })
    }
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    choice: ModelChoice,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct KeypointsArgs {
    #[command(flatten)]
    choice: ModelChoice,
    /// A pressure recording (any format pmatsrc reads; see `--format`).
    #[arg(long)]
    recording: PathBuf,
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Frame size of raw recordings.
    #[arg(long)]
    raw_size: Option<String>,
    /// Keep the capture artifacts (pmatsrc skip-artifacts=false).
    #[arg(long)]
    keep_artifacts: bool,
    /// NDJSON output (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

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
struct PostureArgs {
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

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    PmatI,
    PmatIi,
    Npy,
    Raw,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Data {
            data,
            per_subject,
            list_artifacts,
        } => data_survey(&data, per_subject, list_artifacts),
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
        Command::Export(args) => export(args),
        Command::Keypoints(args) => keypoints(args),
        Command::Posture(args) => posture(args),
        Command::PostureTable { runs } => posture_table(&runs),
        Command::Info { model } => info(&model),
        Command::Plot {
            curves,
            out,
            title,
            window,
        } => plot_runs(&curves, &out, &title, window),
    }
}

fn data_survey(data: &DataArgs, per_subject: bool, list_artifacts: bool) -> Result<()> {
    let index = data.index()?;
    let bar = ProgressBar::new(index.entries.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {eta}")?,
    );
    let mut flagged = Vec::new();
    let groups = survey::survey(&index, per_subject, |entry, file| {
        bar.inc(1);
        for (i, a) in &file.artifacts {
            flagged.push(format!("{}: frame {i}: {a}", entry.path.display()));
        }
    })?;
    bar.finish_and_clear();

    println!("PmatData at {}", index.root.display());
    println!(
        "{:<14} {:<11} {:>7} {:>6} {:>7} {:>12} {:>9} {:>7}",
        "experiment", "split", "subject", "files", "frames", "partial-scan", "quantized", "usable"
    );
    let row = |exp: String, split: &str, subject: String, c: &survey::Counts| {
        println!(
            "{exp:<14} {split:<11} {subject:>7} {:>6} {:>7} {:>12} {:>9} {:>7}",
            c.files,
            c.frames,
            c.partial_scan,
            c.quantized,
            c.usable()
        )
    };
    for (g, c) in &groups {
        let subject = g.subject.map_or("all".to_owned(), |s| format!("S{s}"));
        row(g.experiment.to_string(), g.split, subject, c);
    }
    for (exp, c) in survey::totals(&groups) {
        row(exp.to_string(), "total", "all".into(), &c);
    }
    if list_artifacts {
        println!();
        flagged.iter().for_each(|l| println!("{l}"));
    }
    println!("\n{}", spmkd_core::pmat::ATTRIBUTION);
    Ok(())
}

/// `1-10`, `1,3,5`, `11-13,2` or empty.
fn parse_subjects(spec: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("bad subject list {spec:?}: expected e.g. 1-10 or 1,3,5");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u8, u8) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// Preprocessed frames of `entries`, with a progress bar.
fn load(entries: &[&Entry], size: usize, every: usize, what: &str) -> Result<FrameSet> {
    let bar = ProgressBar::new(entries.len() as u64).with_style(ProgressStyle::with_template(
        "{spinner} loading {msg} {pos}/{len} recordings {wide_bar} {eta}",
    )?);
    bar.set_message(what.to_owned());
    let mut set = FrameSet::new(size);
    for entry in entries {
        set.add_recording(entry, every)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "{what}: {} frames from {} recordings",
        set.len(),
        entries.len()
    );
    Ok(set)
}

fn experiment_i<'a>(index: &'a DatasetIndex, subjects: &[u8]) -> Vec<&'a Entry> {
    index
        .entries
        .iter()
        .filter(|e| e.experiment == Experiment::I && subjects.contains(&e.subject))
        .collect()
}

fn train(args: TrainArgs) -> Result<()> {
    let config = TrainingConfig::new(args.model.config()?)
        .with_batch_size(args.batch)
        .with_learning_rate(args.lr)
        .with_classification_epochs(args.classification_epochs)
        .with_regression_epochs(args.regression_epochs)
        .with_l2_weight(args.l2_weight)
        .with_ssim_weight(args.ssim_weight)
        .with_frame_stride(args.frame_stride)
        .with_steps_per_epoch(args.steps_per_epoch)
        .with_seed(args.seed)
        .with_train_subjects(args.train_subjects.clone());
    let train_subjects = parse_subjects(&args.train_subjects)?;
    let val_subjects = parse_subjects(&args.val_subjects)?;
    if let Some(s) = train_subjects
        .iter()
        .chain(&val_subjects)
        .find(|&&s| s > spmkd_core::dataset::LAST_TRAIN_SUBJECT)
    {
        bail!("S{s} is held out for reported results: train and validate on S1..S10 only");
    }
    let index = args.data.index()?;
    let size = config.model.input_size;
    let train_set = load(
        &experiment_i(&index, &train_subjects),
        size,
        config.frame_stride,
        "training",
    )?;
    let val_set = load(
        &experiment_i(&index, &val_subjects),
        size,
        config.frame_stride,
        "validation",
    )?;

    let device = training_device();
    let mut run = Run::open(&args.run, config, args.resume)?;
    let mut model = None;
    if matches!(args.phase, PhaseArg::Both | PhaseArg::Classification) {
        let start = run.phase_start(Phase::Classification, None, &device);
        model =
            Some(run.train_phase(Phase::Classification, start, &train_set, &val_set, &device)?);
    }
    if matches!(args.phase, PhaseArg::Both | PhaseArg::Regression) {
        let phase1 = match (args.from_scratch, model) {
            (true, _) => None,
            (false, Some(m)) => Some(m),
            (false, None) => Some(run.load(Phase::Classification, &device).context(
                "phase 2 with CRWT starts from phase 1: train it first, or pass --from-scratch",
            )?),
        };
        let start = run.phase_start(Phase::Regression, phase1, &device);
        run.train_phase(Phase::Regression, start, &train_set, &val_set, &device)?;
    }
    let series = plot::step_losses(&run.dir.join("steps.csv"), 25)?;
    let png = run.dir.join("loss.png");
    plot::line_chart(
        &png,
        "Training loss",
        "step",
        "loss (running mean of 25 steps)",
        &series,
    )?;
    eprintln!(
        "run in {}; loss curves in {}",
        run.dir.display(),
        png.display()
    );
    Ok(())
}

/// The device training runs on: Burn's CPU backend, or the first CUDA GPU with `--features cuda`.
fn training_device() -> Device {
    #[cfg(feature = "cuda")]
    let device = Device::cuda(0);
    #[cfg(not(feature = "cuda"))]
    let device = Device::flex();
    device.autodiff()
}

fn eval(args: EvalArgs) -> Result<()> {
    let config_path = args.run.join("config.json");
    let config = TrainingConfig::load(&config_path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", config_path.display()))?;
    let run = Run::open(&args.run, config, true)?;
    let phase = match args.phase {
        Some(PhaseArg::Classification) => Phase::Classification,
        Some(PhaseArg::Regression) => Phase::Regression,
        Some(PhaseArg::Both) => bail!("evaluate one phase: classification or regression"),
        None if run.checkpoint(Phase::Regression).exists() => Phase::Regression,
        None => Phase::Classification,
    };
    let device = Device::flex();
    let model = run.load(phase, &device)?.valid();
    let index = args.data.index()?;
    let (entries, name): (Vec<&Entry>, &str) = match args.split {
        SplitArg::HeldOut => (experiment_i(&index, &[11, 12, 13]), "held-out S11..S13"),
        SplitArg::Train => (
            experiment_i(&index, &(1..=10).collect::<Vec<_>>()),
            "train S1..S10",
        ),
        SplitArg::Unfamiliar => (
            index
                .entries
                .iter()
                .filter(|e| e.experiment == Experiment::II)
                .collect(),
            "experiment-ii",
        ),
    };
    let set = load(
        &entries,
        run.config.model.input_size,
        args.frame_stride,
        name,
    )?;
    let e = evaluate(
        &model,
        phase,
        &set,
        args.batch,
        run.config.loss_weights(),
        &device,
    );
    println!(
        "run {} phase {} on {name}: {} frames",
        args.run.display(),
        phase_name(phase),
        e.frames
    );
    println!("  loss {:.5}", e.loss);
    match e.fscore {
        Some(f) => println!(
            "  F-score {:.2} %  (precision {:.2} %, recall {:.2} %)",
            100.0 * f.f1(),
            100.0 * f.precision(),
            100.0 * f.recall()
        ),
        None => println!("  L1 {:.5}  L2 {:.5}  SSIM {:.4}", e.l1, e.l2, e.ssim),
    }
    Ok(())
}

fn export(args: ExportArgs) -> Result<()> {
    let device = Device::flex();
    let c = args.choice.load(&device)?;
    spmkd_training::export::export(
        &c.model,
        &c.config,
        &c.version,
        &c.trained_on,
        &args.out,
        &device,
    )?;
    println!(
        "{}/encoder.onnx and decoder.onnx: {}, trained on {}",
        args.out.display(),
        c.version,
        c.trained_on
    );
    Ok(())
}

fn keypoints(args: KeypointsArgs) -> Result<()> {
    use spmkd_core::Format;
    use std::io::Write;

    let device = Device::flex();
    let c = args.choice.load(&device)?;
    let format = match args.format {
        FormatArg::Auto => Format::Auto,
        FormatArg::PmatI => Format::PmatI,
        FormatArg::PmatIi => Format::PmatII,
        FormatArg::Npy => Format::Npy,
        FormatArg::Raw => Format::Raw,
    };
    let raw_size = match &args.raw_size {
        Some(s) => {
            let (w, h) = s
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                .with_context(|| format!("--raw-size {s:?}: expected WIDTHxHEIGHT"))?;
            Some((w, h))
        }
        None => None,
    };
    let mut recording = spmkd_core::Recording::open(&args.recording, format, raw_size)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut frames = 0;
    while let Some(f) = recording.next_frame()? {
        if f.artifact.is_some() && !args.keep_artifacts {
            continue;
        }
        let (w, h) = (f.frame.width(), f.frame.height());
        let points =
            spmkd_training::keypoints::frame_keypoints(&c.model, f.frame.data(), w, h, &device);
        let record = spmkd_training::keypoints::record(&c.version, w, h, points);
        writeln!(out, "{}", record.to_json_line())?;
        frames += 1;
    }
    out.flush()?;
    eprintln!("{frames} frames of {}", args.recording.display());
    Ok(())
}

fn posture(args: PostureArgs) -> Result<()> {
    use spmkd_training::posture::classifier::GraphKind;
    use spmkd_training::posture::experiment::{self, Kind};
    use spmkd_training::posture::fit::FitConfig;
    use spmkd_training::posture::graphs::NodeSource;

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
        augment: spmkd_training::posture::graphs::Augment {
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

fn posture_table(runs: &[PathBuf]) -> Result<()> {
    println!(
        "| run | classifier | keypoints | augmentation | parameters | S11..S13 | Air | Sponge | Air, turned | Sponge, turned |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let path = run.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let r: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let accuracy = |part: &str| {
            r["parts"]
                .as_array()
                .and_then(|parts| parts.iter().find(|p| p["part"].as_str() == Some(part)))
                .and_then(|p| p["accuracy"].as_f64())
                .map_or("?".to_owned(), |a| format!("{:.1} %", 100.0 * a))
        };
        let name = run
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["classifier"].as_str().unwrap_or("?"),
            r["keypoints"].as_str().unwrap_or("?"),
            r["augment"].as_str().unwrap_or("none"),
            r["parameters"],
            accuracy("experiment-i S11..S13"),
            accuracy("experiment-ii Air"),
            accuracy("experiment-ii Sponge"),
            accuracy("experiment-ii Air, turned"),
            accuracy("experiment-ii Sponge, turned"),
        );
    }
    Ok(())
}

fn info(args: &ModelArgs) -> Result<()> {
    let config = args.config()?;
    let device = Device::flex();
    let model = config.init(Phase::Regression, &device);
    let s = config.input_size;
    println!(
        "SPMKD at S = {s}, k = {}, f = {}, decoder width {}",
        config.keypoints, config.features, config.decoder_width
    );
    println!(
        "{:<10} {:>12} {:>14} {:>12}",
        "part", "parameters", "MACs/frame", "GFLOPs"
    );
    for (name, params, macs) in [
        (
            "encoder",
            model.encoder.num_params() + model.fuser.num_params(),
            model.encoder.macs(),
        ),
        ("decoder", model.decoder.num_params(), model.decoder.macs()),
    ] {
        println!(
            "{name:<10} {params:>12} {macs:>14} {:>12.4}",
            2.0 * macs as f64 / 1e9
        );
    }
    if s == 256 {
        println!(
            "paper (S = 256, k = 128): encoder 0.613 GFLOPs, 0.07 M parameters; the reference code measures 0.613 G MACs and 138,400 parameters"
        );
    }
    Ok(())
}

fn plot_runs(curves: &[String], out: &Path, title: &str, window: usize) -> Result<()> {
    let mut series = Vec::new();
    for spec in curves {
        let (name, rest) = spec
            .split_once('=')
            .with_context(|| format!("{spec:?}: expected NAME=RUN_DIR[:PHASE]"))?;
        let (dir, phase) = match rest.rsplit_once(':') {
            Some((d, p)) => (d, Some(p)),
            None => (rest, None),
        };
        for s in plot::step_losses(&Path::new(dir).join("steps.csv"), window)? {
            if phase.is_none_or(|p| p == s.name) {
                series.push(plot::Series {
                    name: format!("{name} ({})", s.name),
                    points: s.points,
                });
            }
        }
    }
    plot::line_chart(out, title, "step", "loss", &series)?;
    println!("{}", out.display());
    Ok(())
}
