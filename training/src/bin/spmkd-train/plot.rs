//! `spmkd-train plot`: the smoothed step losses of runs side by side, as a PNG.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use spmkd_training::plot;

#[derive(Args)]
pub struct PlotArgs {
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
}

pub fn run(args: &PlotArgs) -> Result<()> {
    let mut series = Vec::new();
    for spec in &args.curves {
        let (name, rest) = spec
            .split_once('=')
            .with_context(|| format!("{spec:?}: expected NAME=RUN_DIR[:PHASE]"))?;
        let (dir, phase) = match rest.rsplit_once(':') {
            Some((d, p)) => (d, Some(p)),
            None => (rest, None),
        };
        for s in plot::step_losses(&Path::new(dir).join("steps.csv"), args.window)? {
            if phase.is_none_or(|p| p == s.name) {
                series.push(plot::Series {
                    name: format!("{name} ({})", s.name),
                    points: s.points,
                });
            }
        }
    }
    plot::line_chart(&args.out, &args.title, "step", "loss", &series)?;
    println!("{}", args.out.display());
    Ok(())
}
