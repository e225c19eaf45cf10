//! `spmkd-train data`: frames, capture artifacts and usable frames of the PmatData tree.

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use spmkd_training::survey;

use crate::args::DataArgs;

#[derive(Args)]
pub struct DataSurveyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// One row per subject.
    #[arg(long)]
    per_subject: bool,
    /// List every artifact frame found.
    #[arg(long)]
    list_artifacts: bool,
}

pub fn run(args: &DataSurveyArgs) -> Result<()> {
    let index = args.data.index()?;
    let bar = ProgressBar::new(index.entries.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {eta}")?,
    );
    let mut flagged = Vec::new();
    let groups = survey::survey(&index, args.per_subject, |entry, file| {
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
    if args.list_artifacts {
        println!();
        flagged.iter().for_each(|l| println!("{l}"));
    }
    println!("\n{}", spmkd_core::pmat::ATTRIBUTION);
    Ok(())
}
