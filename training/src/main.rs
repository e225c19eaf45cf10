//! `spmkd-train`: training, evaluation and export of spmkd models, and the data survey.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spmkd_core::dataset::DatasetIndex;
use spmkd_training::survey;

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
        /// The pmatdata folder (default: $SPMKD_DATA, else ../shared/data/pmatdata).
        #[arg(long)]
        root: Option<PathBuf>,
        /// One row per subject.
        #[arg(long)]
        per_subject: bool,
        /// List every artifact frame found.
        #[arg(long)]
        list_artifacts: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Data {
            root,
            per_subject,
            list_artifacts,
        } => data(root, per_subject, list_artifacts),
    }
}

fn data(root: Option<PathBuf>, per_subject: bool, list_artifacts: bool) -> Result<()> {
    let root = match root {
        Some(r) => r,
        None => DatasetIndex::locate(&std::env::current_dir()?),
    };
    let index = DatasetIndex::scan(&root)?;
    let bar = ProgressBar::new(index.entries.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {eta}")
            .context("progress template")?,
    );
    let mut flagged = Vec::new();
    let groups = survey::survey(&index, per_subject, |entry, file| {
        bar.inc(1);
        for (i, a) in &file.artifacts {
            flagged.push(format!("{}: frame {i}: {a}", entry.path.display()));
        }
    })?;
    bar.finish_and_clear();

    println!("PmatData at {}", root.display());
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
