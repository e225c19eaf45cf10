//! `spmkd-train keypoints`: the keypoints the Burn model finds in each frame of a recording,
//! as the NDJSON records spmkdpose attaches (to compare the two).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::{Args, ValueEnum};
use spmkd_core::Format;

use crate::args::OrientationArgs;
use crate::choice::ModelChoice;

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    PmatI,
    PmatIi,
    Npy,
    Raw,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Auto => Format::Auto,
            FormatArg::PmatI => Format::PmatI,
            FormatArg::PmatIi => Format::PmatII,
            FormatArg::Npy => Format::Npy,
            FormatArg::Raw => Format::Raw,
        }
    }
}

#[derive(Args)]
pub struct KeypointsArgs {
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
    #[command(flatten)]
    orientation: OrientationArgs,
    /// NDJSON output (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: KeypointsArgs) -> Result<()> {
    let device = Device::flex();
    let c = args.choice.load(&device)?;
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
    let mut recording = spmkd_core::Recording::open(&args.recording, args.format.into(), raw_size)?;
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
        let points = spmkd_training::keypoints::frame_keypoints(
            &c.model,
            c.config.is_body_centred(),
            args.orientation.orientation,
            f.frame.data(),
            w,
            h,
            &device,
        );
        let record = spmkd_training::keypoints::record(
            &c.version,
            (w, h),
            args.orientation.orientation,
            points,
        );
        writeln!(out, "{}", record.to_json_line())?;
        frames += 1;
    }
    out.flush()?;
    eprintln!("{frames} frames of {}", args.recording.display());
    Ok(())
}
