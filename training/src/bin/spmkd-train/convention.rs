//! `spmkd-train convention`: the models' convention (row 0 at the head end, a patient on their
//! back with their right side at the last column) checked on PmatData's lateral recordings,
//! experiment-i as recorded and experiment-ii as recorded and as installed, with the picture
//! of the convention.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use spmkd_core::dataset::{Experiment, Mat};
use spmkd_core::orientation::Orientation;
use spmkd_core::posture::Posture;
use spmkd_training::augment::RawFrame;
use spmkd_training::convention::{SubjectCheck, bands, check, mean_frame};
use spmkd_training::plot::ConventionFrame;

use crate::args::DataArgs;

#[derive(Args)]
pub struct ConventionArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Also draw the convention on a subject's supine and right-lateral frames (PNG).
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn report(title: &str, checks: &[SubjectCheck]) -> (usize, usize) {
    println!("\n{title}");
    println!("| subject | right: knee shift | left: knee shift | right - left | agrees |");
    println!("|---|---|---|---|---|");
    let shifts = |v: &[f32]| {
        v.iter()
            .map(|s| format!("{s:+.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for c in checks {
        println!(
            "| S{} | {} | {} | {:+.1} | {} |",
            c.subject,
            shifts(&c.right),
            shifts(&c.left),
            c.separation(),
            if c.agrees() { "yes" } else { "**no**" }
        );
    }
    let agree = checks.iter().filter(|c| c.agrees()).count();
    let (recordings, of) = checks
        .iter()
        .map(SubjectCheck::recordings_agreeing)
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    println!(
        "{agree} of {} subjects agree; {recordings} of {of} lateral recordings on their own",
        checks.len()
    );
    (agree, checks.len())
}

pub fn run(args: &ConventionArgs) -> Result<()> {
    let index = args.data.index()?;
    println!(
        "The models' convention: row 0 at the head end; a patient lying on their back has their \
         left side at column 0 and their right side at the last column.\nChecked on the lateral \
         recordings: the knees bend toward the side a patient lies on, so a right-lateral \
         recording's knees lie toward the last column from the hips (knee shift > 0, in cells), a \
         left-lateral one's toward column 0."
    );
    let experiment_i = check(&index, Experiment::I, Orientation::Identity)?;
    report("experiment-i, as recorded (identity)", &experiment_i);
    for (mat, name) in [(Mat::Air, "Air"), (Mat::Sponge, "Sponge")] {
        for orientation in [Orientation::Identity, Experiment::II.orientation()] {
            let checks: Vec<SubjectCheck> = check(&index, Experiment::II, orientation)?
                .into_iter()
                .filter(|c| c.mat == mat)
                .collect();
            let how = if orientation == Experiment::II.orientation() {
                format!("as installed ({orientation})")
            } else {
                format!("as recorded ({orientation})")
            };
            report(&format!("experiment-ii {name}, {how}"), &checks);
        }
    }
    if let Some(path) = &args.plot {
        let of = |subject: u8, posture: Posture| {
            index
                .entries
                .iter()
                .find(|e| {
                    e.experiment == Experiment::I
                        && e.subject == subject
                        && e.posture == Some(posture)
                })
                .map(|e| e.path.clone())
        };
        let mut frames = Vec::new();
        for (posture, caption) in [
            (
                Posture::Supine,
                "experiment-i S1, on their back (mean frame)",
            ),
            (
                Posture::Right,
                "S1 on their right side: knees (red) toward the last column from the hips (white)",
            ),
        ] {
            let Some(file) = of(1, posture) else {
                anyhow::bail!("experiment-i S1 has no {posture} recording in the index");
            };
            let (values, width, height) = mean_frame(&file, Orientation::Identity)?;
            let marked = (posture == Posture::Right)
                .then(|| bands(&values, width, height))
                .flatten();
            frames.push(ConventionFrame {
                caption: caption.to_owned(),
                frame: RawFrame {
                    width,
                    height,
                    values,
                },
                bands: marked,
            });
        }
        spmkd_training::plot::mat_convention(path, &frames, 8)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
