//! `spmkd-train adapt`: a trained model fitted to a new mat from unlabelled recordings of it
//! (self-supervised phase 2), then the posture network refitted on experiment-i's labels through
//! the adapted encoder. Writes a model directory the elements load as it is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, FromArgMatches};
use spmkd_training::adapt::{self, AdaptOptions, AdaptReport, Unlabelled};
use spmkd_training::augment::AugmentConfig;
use spmkd_training::export::{Provenance, trust_references};
use spmkd_training::posture::classifier::GraphKind;
use spmkd_training::posture::experiment::{self, Kind, NewMat};
use spmkd_training::posture::fit::FitConfig;
use spmkd_training::posture::graphs::{Augment, NodeSource};
use spmkd_training::train::Run;

use spmkd_core::orientation::Orientation;

use crate::args::{DataArgs, OrientationArgs};

#[derive(Args)]
pub struct AdaptArgs {
    /// The model to adapt: a training run (`spmkd-train train --run`), or a model directory
    /// holding one in run/ (models/default, or an earlier adaptation).
    #[arg(long)]
    from: PathBuf,
    /// Unlabelled recordings of the new mat: files any format pmatsrc reads, or directories
    /// searched for .txt, .npy and .raw files.
    #[arg(long, required = true, num_args = 1..)]
    recordings: Vec<PathBuf>,
    /// The model directory to write: encoder.onnx, decoder.onnx, posture.onnx,
    /// adaptation.json, and the adaptation's run (run/) and posture run (posture/).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    orientation: OrientationArgs,
    /// WIDTHxHEIGHT of .raw recordings.
    #[arg(long, value_parser = parse_size)]
    raw_size: Option<(usize, usize)>,
    /// Use every n-th usable frame (a night at 1 Hz has tens of thousands of near-identical
    /// frames).
    #[arg(long, default_value_t = 1)]
    frame_stride: usize,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    #[arg(long, default_value_t = 5e-4, value_parser = crate::args::learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Adapt on the frames as read, without the label-free augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Continue an adaptation in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Model id of the adapted models (default: the base run's id + "-adapted").
    #[arg(long)]
    version: Option<String>,
    /// Skip refitting the posture network (no posture.onnx).
    #[arg(long)]
    no_posture: bool,
    /// Posture refit: epochs, and every n-th usable experiment-i S1..S10 frame.
    #[arg(long, default_value_t = 12)]
    posture_epochs: usize,
    #[arg(long, default_value_t = 2)]
    posture_stride: usize,
    /// Posture refit: self-training on the new mat's frames (the refitted classifier, its batch
    /// norms recalibrated on them unless --no-recalibrate, labels them; those it gives at least
    /// --pseudo-threshold and on which all --posture-ensemble fits agree join the training set,
    /// mirrored too, and it is trained again). No true label of the new mat is used.
    #[arg(long)]
    pseudo_labels: bool,
    #[arg(long, default_value_t = 0.9, requires = "pseudo_labels")]
    pseudo_threshold: f32,
    /// Posture refit: keep the batch-norm statistics of experiment-i's graphs. By default they
    /// are measured afresh on the new mat's frames and their mirror images after training
    /// (AdaBN; no label is used), which did better on the validation side of issue 14's
    /// protocol (docs/RESULTS.md, "Adaptation").
    #[arg(long)]
    no_recalibrate: bool,
    /// After phase 2, measure the encoder's batch norms afresh on the new mat's frames and their
    /// mirror images (AdaBN; no label is used, no weight changes). The posture network is then
    /// trained on keypoints of the encoder as phase 2 left it (run/encoder-phase2.onnx) and
    /// tested and recalibrated through the recalibrated one, which the model directory holds.
    /// Off by default: it did worse on the validation side of issue 14's protocol
    /// (docs/RESULTS.md, "Adaptation").
    #[arg(long)]
    recalibrate_encoder: bool,
    /// Posture refit: feed the node features as they are. By default they are standardized
    /// over each graph (`posture --graph-norm`), chosen on the validation side of issue 14's
    /// protocol like --no-recalibrate's default.
    #[arg(long)]
    no_graph_norm: bool,
    /// Posture refit: N fits from successive seeds read as one (`posture --ensemble`). The
    /// default is the built-in posture model's recipe (docs/RESULTS.md, "Ensembles, stacked").
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=32))]
    posture_ensemble: u16,
    /// Posture refit: the widths of the graph layers (`posture --hidden`); the default is the
    /// built-in posture model's.
    #[arg(long, value_delimiter = ',', default_values_t = [64u16, 128, 64, 32],
          value_parser = clap::value_parser!(u16).range(1..))]
    posture_hidden: Vec<u16>,
    /// Where experiment-i's labelled frames are (for the posture refit).
    #[command(flatten)]
    data: DataArgs,
}

impl AdaptArgs {
    /// `spmkd-train adapt --from FROM --recordings ... --out OUT --orientation ...` with every
    /// other option at its default: what `calibrate --recordings` runs first.
    pub fn defaults(
        from: &Path,
        recordings: &[PathBuf],
        out: &Path,
        orientation: Orientation,
        raw_size: Option<(usize, usize)>,
        frame_stride: usize,
        data: &DataArgs,
    ) -> Result<Self> {
        let mut argv: Vec<OsString> = vec!["adapt".into(), "--from".into(), from.into()];
        argv.push("--recordings".into());
        argv.extend(recordings.iter().map(OsString::from));
        argv.extend(["--out".into(), out.into()]);
        argv.extend(["--orientation".into(), orientation.as_str().into()]);
        argv.extend(["--frame-stride".into(), frame_stride.to_string().into()]);
        if let Some((w, h)) = raw_size {
            argv.extend(["--raw-size".into(), format!("{w}x{h}").into()]);
        }
        if let Some(root) = &data.data {
            argv.extend(["--data".into(), root.into()]);
        }
        let command = Self::augment_args(clap::Command::new("adapt"));
        let matches = command
            .try_get_matches_from(argv)
            .context("the adaptation's options")?;
        Ok(Self::from_arg_matches(&matches)?)
    }
}

pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("expected WIDTHxHEIGHT such as 27x64, got {s:?}");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    match (w.trim().parse(), h.trim().parse()) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(bad()),
    }
}

pub fn run(args: AdaptArgs) -> Result<()> {
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let base = Run::open_existing(&adapt::run_dir(&args.from))?;
    let files = adapt::recordings(&args.recordings)?;
    let data = Unlabelled::load(
        files,
        &base.config.model,
        args.frame_stride,
        args.orientation.orientation,
        args.raw_size,
    )?;
    eprintln!(
        "adapting {} to {} frames of {} recording(s), no labels",
        args.from.display(),
        data.frames.len(),
        data.files.len()
    );
    let options = AdaptOptions {
        epochs: args.epochs,
        learning_rate: args.lr,
        batch_size: args.batch,
        seed: args.seed,
        every: args.frame_stride,
        augment: (!args.no_augment).then(AugmentConfig::new),
        recalibrate_encoder: args.recalibrate_encoder,
    };
    let device = crate::train::training_device();
    let adapt::Adapted {
        run,
        model,
        trained,
        before,
        after,
    } = adapt::adapt(
        &args.from,
        &data,
        &options,
        &args.out.join("run"),
        args.resume,
        &device,
    )?;
    let base_version = run
        .config
        .adaptation
        .as_ref()
        .map_or_else(String::new, |a| a.base_version.clone());
    let version = args
        .version
        .clone()
        .unwrap_or_else(|| format!("{base_version}-adapted"));
    let plain = Device::flex();
    let config = &run.config;
    // Trust measures confidence and layout against the new mat's own frames now.
    let provenance = Provenance {
        version: version.clone(),
        trained_on: config.trained_on(),
        adapted_on: config.adapted_on(Some(data.frames.len())),
        references: trust_references(&model, &data.frames, &plain),
    };
    spmkd_training::export::export(&model, &config.model, &provenance, &args.out, &plain)?;
    // The keypoints the posture network learns experiment-i's labels from come from the encoder
    // whose norms follow experiment-i's frames.
    let phase2_encoder = match &trained {
        Some(trained) => {
            let meta = spmkd_training::export::metadata(
                &config.model,
                spmkd_core::model_meta::ModelKind::Encoder,
                &format!("{version}-phase2"),
                &config.trained_on(),
            );
            let path = args.out.join("run").join("encoder-phase2.onnx");
            let bytes = spmkd_training::export::encoder_onnx(trained, &meta, &plain)?;
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    let report = AdaptReport {
        base: args.from.display().to_string(),
        base_version,
        version: version.clone(),
        recordings: data.files.len(),
        frames: data.frames.len(),
        epochs: args.epochs,
        before,
        after,
    };
    let path = args.out.join("adaptation.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "reconstruction of the new mat's frames: loss {:.4} -> {:.4}, L1 {:.4} -> {:.4}, SSIM {:.3} -> {:.3}",
        before.loss, after.loss, before.l1, after.l1, before.ssim, after.ssim
    );
    if !args.no_posture {
        refit_posture(&args, &version, &data, phase2_encoder)?;
    }
    println!(
        "{dir}: spmkdpose model={dir}/encoder.onnx decoder={dir}/decoder.onnx{posture}",
        dir = args.out.display(),
        posture = if args.no_posture {
            String::new()
        } else {
            format!(" ! spmkdposture model={}/posture.onnx", args.out.display())
        }
    );
    Ok(())
}

/// The posture recipe of the built-in model (`models/default`) (GraphSAGE, mirror images, shifts of up to 4
/// columns, node features standardized per graph) trained on experiment-i S1..S10 labels
/// through the adapted encoder, its batch norms then measured on the new mat's frames. When the
/// adapted encoder's own norms were measured on the new mat, the training keypoints come from
/// the encoder as phase 2 left it (`phase2_encoder`), and the adapted one is what it is tested
/// and recalibrated through.
fn refit_posture(
    args: &AdaptArgs,
    version: &str,
    data: &Unlabelled,
    phase2_encoder: Option<PathBuf>,
) -> Result<()> {
    let adapted = args.out.join("encoder.onnx");
    let index = args.data.index()?;
    let options = experiment::Options {
        kind: Kind::Graph(GraphKind::Sage),
        source: NodeSource::Spmkd,
        deployed_encoder: phase2_encoder.is_some().then(|| adapted.clone()),
        encoder: Some(phase2_encoder.unwrap_or(adapted)),
        train_stride: args.posture_stride,
        augment: Augment {
            mirror: true,
            shift: 4,
            label_free: 0,
        },
        version: format!("{version}-posture"),
        identity: true,
        graph_norm: !args.no_graph_norm,
        body_centred: false,
        ensemble: usize::from(args.posture_ensemble),
        hidden: crate::args::widths(Some(&args.posture_hidden)),
        new_mat: (args.pseudo_labels || !args.no_recalibrate).then(|| NewMat {
            frames: data.frames.raw.clone(),
            pseudo_labels: args.pseudo_labels.then_some(args.pseudo_threshold),
            recalibrate: !args.no_recalibrate,
        }),
    };
    let fit = FitConfig::new()
        .with_epochs(args.posture_epochs)
        .with_seed(args.seed);
    let dir = args.out.join("posture");
    let report = experiment::run(&index, &options, &fit, &dir)?;
    let exported = report
        .exported
        .context("the posture run exported no model")?;
    let target = args.out.join("posture.onnx");
    std::fs::copy(&exported, &target)
        .with_context(|| format!("copying {} to {}", exported.display(), target.display()))?;
    if let Some(p) = &report.pseudo_labels {
        eprintln!(
            "  self-training: {} of {} new-mat frames labelled with p >= {}, {} fit(s) agreeing (supine / left / right: {} / {} / {})",
            p.kept.iter().sum::<usize>(),
            p.frames,
            p.threshold,
            p.members,
            p.kept[0],
            p.kept[1],
            p.kept[2]
        );
    }
    if let Some(n) = report.recalibrated_on {
        eprintln!("  batch norms recalibrated on {n} new-mat graphs (frames and mirror images)");
    }
    for p in &report.parts {
        eprintln!(
            "  posture {:<28} {:>5} frames  {:.1} %",
            p.part,
            p.frames,
            100.0 * p.accuracy
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_nonsense_is_refused() {
        assert_eq!(parse_size("27x64"), Ok((27, 64)));
        assert_eq!(parse_size("32X64"), Ok((32, 64)));
        for bad in ["27", "0x64", "x", "27x-1", "axb"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calibrate_adapts_with_adapts_own_defaults_and_what_it_found() {
        let data = DataArgs {
            data: Some("pmat".into()),
        };
        let args = AdaptArgs::defaults(
            Path::new("models/default"),
            &["a.raw".into(), "nights".into()],
            Path::new("out/adapted"),
            Orientation::FlipHorizontal,
            Some((27, 64)),
            20,
            &data,
        )
        .unwrap();
        assert_eq!(args.recordings, [PathBuf::from("a.raw"), "nights".into()]);
        assert_eq!(args.orientation.orientation, Orientation::FlipHorizontal);
        assert_eq!((args.frame_stride, args.raw_size), (20, Some((27, 64))));
        assert_eq!(args.data.data, Some("pmat".into()));
        // Everything else as `spmkd-train adapt` defaults it.
        assert_eq!((args.epochs, args.posture_ensemble), (20, 3));
        assert!(!args.no_posture && !args.resume);
    }
}
