//! `spmkd-train augment`: one frame of a recording as it is and as the training's label-free
//! augmentation shows it, side by side in a PNG: to see what the encoder is trained on.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use rand::SeedableRng;
use rand::rngs::StdRng;
use spmkd_core::{Format, Recording};
use spmkd_training::augment::{AugmentConfig, RawFrame, augment};

#[derive(Args)]
pub struct AugmentArgs {
    /// A pressure recording (any format pmatsrc reads).
    #[arg(long)]
    recording: PathBuf,
    /// Which usable frame (capture artifacts skipped), from 0.
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Augmented versions beside the original.
    #[arg(long, default_value_t = 15)]
    count: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Leave a family out, as `train --augment --no-...` does.
    #[arg(long)]
    no_geometry: bool,
    #[arg(long)]
    no_sensor: bool,
    #[arg(long)]
    no_mat: bool,
    /// The PNG to write.
    #[arg(long, default_value = "augment.png")]
    out: PathBuf,
}

pub fn run(args: &AugmentArgs) -> Result<()> {
    let mut recording = Recording::open(&args.recording, Format::Auto, None)?;
    let mut usable = 0;
    let frame = loop {
        let Some(f) = recording.next_frame()? else {
            bail!(
                "{} has {usable} usable frames: --frame {} is past its end",
                args.recording.display(),
                args.frame
            );
        };
        if f.artifact.is_some() {
            continue;
        }
        if usable == args.frame {
            break f.frame;
        }
        usable += 1;
    };
    let original = RawFrame {
        width: frame.width(),
        height: frame.height(),
        values: frame.data().iter().map(|&v| f32::from(v)).collect(),
    };
    let config = AugmentConfig::new()
        .with_geometry(!args.no_geometry)
        .with_sensor(!args.no_sensor)
        .with_mat(!args.no_mat);
    let mut tiles = vec![(
        format!("as read, {}x{}", original.width, original.height),
        original.clone(),
    )];
    for i in 0..args.count {
        let mut rng =
            StdRng::seed_from_u64(args.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let seen = augment(&original, &config, &mut rng);
        tiles.push((format!("{}x{}", seen.width, seen.height), seen));
    }
    spmkd_training::plot::frames_grid(&args.out, &tiles, 8, 4)
        .with_context(|| format!("drawing {}", args.out.display()))?;
    eprintln!("{} frames in {}", tiles.len(), args.out.display());
    Ok(())
}
