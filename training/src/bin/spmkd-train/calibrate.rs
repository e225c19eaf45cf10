//! `spmkd-train calibrate`: a new mat set up with one volunteer. Short recordings of them on
//! their back, on their left side and on their right side find which way the mat lies and
//! recalibrate the posture model to it; the model directory it writes loads in `spmkdpose` and
//! `spmkdposture` with no other property (the orientation is in the encoder's metadata).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use spmkd_core::posture::Posture;
use spmkd_core::{Format, Recording};
use spmkd_training::calibrate::{self, LabelledFrame, MIN_MARGIN};

use crate::adapt::AdaptArgs;
use crate::args::DataArgs;

#[derive(Args)]
pub struct CalibrateArgs {
    /// The model directory to start from (its encoder.onnx, decoder.onnx and posture.onnx).
    #[arg(long, default_value = "models/default")]
    from: PathBuf,
    /// Recordings of the volunteer lying on their back (any format pmatsrc reads).
    #[arg(long, required = true, num_args = 1..)]
    supine: Vec<PathBuf>,
    /// Recordings of the volunteer lying on their left side.
    #[arg(long, required = true, num_args = 1..)]
    left: Vec<PathBuf>,
    /// Recordings of the volunteer lying on their right side.
    #[arg(long, required = true, num_args = 1..)]
    right: Vec<PathBuf>,
    /// WIDTHxHEIGHT of .raw recordings.
    #[arg(long, value_parser = crate::adapt::parse_size)]
    raw_size: Option<(usize, usize)>,
    /// The model directory to write: encoder.onnx, decoder.onnx, posture.onnx, calibration.json.
    #[arg(long)]
    out: PathBuf,
    /// Write into --out even if it exists (its models are replaced).
    #[arg(long)]
    replace: bool,
    /// Model id of the calibrated models (default: the encoder's id + "-calibrated").
    #[arg(long)]
    version: Option<String>,
    /// Unlabelled recordings of the new mat (a night of patients on it; files, or directories
    /// searched as `adapt` searches them): the encoder is first adapted to them as
    /// `spmkd-train adapt` does, laid as the volunteer's frames show, into --out/adapted; the
    /// calibration then starts from there. Its posture refit reads PmatData (--data).
    #[arg(long, num_args = 1..)]
    recordings: Vec<PathBuf>,
    /// With --recordings: adapt on every n-th usable frame (`adapt --frame-stride`). Default:
    /// the least stride that leaves at most 1,500 frames (a night at 1 Hz: every 20th), which
    /// keeps calibrate within 15 minutes on 2 cores.
    #[arg(long, requires = "recordings", value_parser = clap::value_parser!(u32).range(1..))]
    frame_stride: Option<u32>,
    #[command(flatten)]
    data: DataArgs,
}

/// The most unlabelled frames `--recordings` adapts on by default: the adaptation's 20 epochs
/// take about 0.015 s a frame on 2 cores (8 min for 1,500), and the posture refit 6 min more.
const MAX_ADAPT_FRAMES: usize = 1500;

/// The usable frames of the recordings (files, or directories as `adapt` searches them).
fn usable_frames(paths: &[PathBuf], raw_size: Option<(usize, usize)>) -> Result<usize> {
    let mut n = 0;
    for file in spmkd_training::adapt::recordings(paths)? {
        let mut recording = Recording::open(&file, Format::Auto, raw_size)
            .with_context(|| format!("the recording {}", file.display()))?;
        while let Some(f) = recording
            .next_frame()
            .with_context(|| format!("the recording {}", file.display()))?
        {
            n += usize::from(f.artifact.is_none());
        }
    }
    Ok(n)
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    if args.out.exists() && !args.replace {
        bail!(
            "{} exists: give another --out, or --replace to write over its models",
            args.out.display()
        );
    }
    let mut frames: Vec<LabelledFrame> = Vec::new();
    for (files, posture) in [
        (&args.supine, Posture::Supine),
        (&args.left, Posture::Left),
        (&args.right, Posture::Right),
    ] {
        frames.extend(calibrate::load(files, posture, args.raw_size)?);
    }
    calibrate::check(&frames)?;
    let usable = frames.len();
    let frames = calibrate::thin(frames);
    let count = |p: Posture| frames.iter().filter(|f| f.posture == p).count();
    let (w, h) = (frames[0].width, frames[0].height);
    eprintln!(
        "calibrating {} on a {w}x{h} mat: {} supine, {} left, {} right frame(s) (of {usable} usable; at most {} a posture, evenly spaced)",
        args.from.display(),
        count(Posture::Supine),
        count(Posture::Left),
        count(Posture::Right),
        calibrate::MAX_FRAMES
    );
    let mut from = args.from.clone();
    if !args.recordings.is_empty() {
        let (orientation, _) = calibrate::find_orientation(&args.from, &frames)?;
        let adapted = args.out.join("adapted");
        eprintln!(
            "the mat lies {orientation}: adapting the encoder to the recordings first, into {}",
            adapted.display()
        );
        let stride = match args.frame_stride {
            Some(n) => n as usize,
            None => {
                let usable = usable_frames(&args.recordings, args.raw_size)?;
                usable.div_ceil(MAX_ADAPT_FRAMES).max(1)
            }
        };
        crate::adapt::run(AdaptArgs::defaults(
            &args.from,
            &args.recordings,
            &adapted,
            orientation,
            args.raw_size,
            stride,
            &args.data,
        )?)?;
        from = adapted;
    }
    let files: Vec<PathBuf> = args
        .supine
        .iter()
        .chain(&args.left)
        .chain(&args.right)
        .cloned()
        .collect();
    let report = calibrate::calibrate(&from, &frames, &files, &args.out, args.version.clone())?;
    let orientation = report.orientation;
    let (before, after) = (report.held_back_before, report.held_back_after);
    println!("orientation: {orientation}");
    println!(
        "| orientation | mean log-probability of the labels | frames read as labelled | ruled out |"
    );
    println!("|---|---|---|---|");
    for r in &report.finding.ranked {
        let ruled_out = match (r.across, r.head_to_foot) {
            (true, _) => "the mat's long side across",
            (false, true) => "head to foot (the encoder's layout)",
            (false, false) => "",
        };
        println!(
            "| {} | {:.2} | {} of {} | {ruled_out} |",
            r.orientation,
            r.score,
            r.correct,
            frames.len()
        );
    }
    println!(
        "margin over the next: {:.2} (over its mirror image {:.2}; {MIN_MARGIN} needed)",
        report.margin, report.mirror_margin
    );
    println!(
        "volunteer's frames, each held back from the recalibration: {before} of {n} read right before, {after} of {n} after",
        n = frames.len()
    );
    println!(
        "{dir}: spmkdpose model={dir}/encoder.onnx decoder={dir}/decoder.onnx ! spmkdposture model={dir}/posture.onnx",
        dir = args.out.display()
    );
    Ok(())
}
