//! `spmkd-train calibrate-protocol`: the new-mat protocol of docs/RESULTS.md "A new mat" on
//! PmatData experiment-ii. Per mattress each subject in turn is the volunteer (their B1..B3
//! supine, C1..C3 right and D1..D3 left frames, or the first of each), the mat is laid each of
//! the eight ways (every frame of volunteer and test subjects alike), calibration finds the
//! orientation and recalibrates the posture model on the volunteer's frames, and the other
//! seven subjects' labelled frames are read. Volunteers S1..S4 choose the settings, S5..S8 only
//! report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::Args;
use spmkd_core::dataset::{Entry, Experiment, Mat};
use spmkd_core::orientation::Orientation;
use spmkd_training::calibrate::{self, LabelledFrame, MIN_MARGIN, MIN_SIDES, Reader, SHRINK};
use spmkd_training::export::scaling::Scaling;
use spmkd_training::posture::checkpoint;
use spmkd_training::posture::few_shot::{self, FewShotConfig};
use spmkd_training::posture::fit::{Classifier, predict};
use spmkd_training::posture::graphs::GraphSet;
use spmkd_training::progress::Progress;

use crate::args::DataArgs;

#[derive(Args)]
pub struct ProtocolArgs {
    /// The model directory calibrated from (its encoder.onnx and posture.onnx).
    #[arg(long, default_value = "models/default")]
    from: PathBuf,
    /// Frames of each posture the volunteer gives: 3 (B1..B3, C1..C3, D1..D3) or 1 (B1, C1, D1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    frames: u8,
    /// Recalibration pulls toward the model as it is, one row each (the default is calibrate's).
    #[arg(long, value_delimiter = ',', default_values_t = [SHRINK])]
    shrink: Vec<f32>,
    /// The least margin of the orientation found over the next (calibrate's default).
    #[arg(long, default_value_t = MIN_MARGIN)]
    min_margin: f32,
    /// The least lean of the left frames to the left over the right frames (calibrate's default).
    #[arg(long, default_value_t = MIN_SIDES)]
    min_sides: f32,
    /// Few-shot fits of the posture network on the volunteer's frames and their mirror images,
    /// one column each: `net:EPOCHS:LEARNING_RATE` trains every weight on (batch norms too),
    /// `heads:STEPS:LEARNING_RATE:PULL` only the last layer, pulled toward where it started;
    /// `heads-bound:...` the same fitted on the test frames themselves (a bound, not a method).
    /// Needs the posture run of --from (its posture/: classifier.bpk, classifier.json).
    #[arg(long, value_delimiter = ',')]
    fine_tune: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

/// A few-shot fit of the posture network (`--fine-tune`).
enum Tune {
    Net(FewShotConfig),
    Heads(FewShotConfig, f32),
    /// [`Tune::Heads`] fitted on the test frames.
    HeadsBound(FewShotConfig, f32),
}

impl Tune {
    fn parse(spec: &str) -> Result<Self> {
        let bad = || {
            format!(
                "--fine-tune {spec:?}: expected net:EPOCHS:LEARNING_RATE or heads:STEPS:LEARNING_RATE:PULL"
            )
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let config = |n: &str, lr: &str| -> Result<FewShotConfig> {
            Ok(FewShotConfig::new()
                .with_epochs(n.parse().with_context(bad)?)
                .with_learning_rate(lr.parse().with_context(bad)?))
        };
        match parts[..] {
            ["net", n, lr] => Ok(Tune::Net(config(n, lr)?)),
            ["heads", n, lr, pull] => {
                Ok(Tune::Heads(config(n, lr)?, pull.parse().with_context(bad)?))
            }
            ["heads-bound", n, lr, pull] => Ok(Tune::HeadsBound(
                config(n, lr)?,
                pull.parse().with_context(bad)?,
            )),
            _ => anyhow::bail!(bad()),
        }
    }

    /// The network of the posture run `dir` fitted on `train` (or, for a bound, on `test`).
    fn fit(
        &self,
        dir: &Path,
        train: &GraphSet,
        test: &GraphSet,
        autodiff: &Device,
    ) -> Result<Classifier> {
        match self {
            Tune::Net(config) => {
                few_shot::fine_tune(checkpoint::load(dir, autodiff)?, train, config, autodiff)
            }
            Tune::Heads(config, pull) | Tune::HeadsBound(config, pull) => {
                few_shot::fine_tune_heads(
                    checkpoint::load(dir, &Device::flex())?,
                    &checkpoint::load(dir, autodiff)?,
                    if matches!(self, Tune::HeadsBound(..)) {
                        test
                    } else {
                        train
                    },
                    config,
                    *pull,
                    autodiff,
                )
            }
        }
    }
}

/// A volunteer's recording IDs.
fn volunteer_ids(frames: u8) -> Vec<String> {
    ["B", "C", "D"]
        .iter()
        .flat_map(|p| (1..=frames).map(move |i| format!("{p}{i}")))
        .collect()
}

/// One volunteer's outcome.
struct Outcome {
    subject: u8,
    /// Of the eight lays, those whose orientation was found right, and refused.
    found: usize,
    refused: usize,
    /// The least margin of the best orientation over the next (or its mirror) over the lays.
    least_margin: f32,
    /// The least lean of the left frames over the right frames, laid as found.
    least_sides: f32,
    /// Test frames read right, laid by the orientation found (over the eight lays): before
    /// calibration and after it, one per shrink.
    before: usize,
    after: Vec<usize>,
    /// Read right after a recalibration fitted on the test frames themselves (the shrink of
    /// calibrate): what the best per-class rescaling could do, a bound, not a method.
    bound: usize,
    /// Read right after each few-shot fine-tune.
    tuned: Vec<usize>,
    tested: usize,
}

pub fn run(args: &ProtocolArgs) -> Result<()> {
    let index = args.data.index()?;
    let mut reader = Reader::new(
        &args.from.join("encoder.onnx"),
        &args.from.join("posture.onnx"),
    )?;
    let ids = volunteer_ids(args.frames);
    let tunes: Vec<Tune> = args
        .fine_tune
        .iter()
        .map(|s| Tune::parse(s))
        .collect::<Result<_>>()?;
    let posture_run = match tunes.is_empty() {
        true => None,
        false => Some(checkpoint::beside(&args.from).with_context(|| {
            format!(
                "--fine-tune needs {}/posture/ (classifier.bpk and classifier.json)",
                args.from.display()
            )
        })?),
    };
    let (keypoints, node_features) = (
        reader.metadata().0.keypoints,
        reader.metadata().1.features + spmkd_core::posture::BASE_FEATURES,
    );
    let autodiff = Device::flex().autodiff();
    let plain = Device::flex();
    println!(
        "Volunteer frames: {} a posture ({}); orientation margin {}; shrink {:?}",
        args.frames,
        ids.join(" "),
        args.min_margin,
        args.shrink
    );
    for (mat, name) in [(Mat::Air, "Air"), (Mat::Sponge, "Sponge")] {
        let entries: Vec<&Entry> = index
            .entries
            .iter()
            .filter(|e| e.experiment == Experiment::II && e.mat == mat && e.posture.is_some())
            .collect();
        // Each recorded frame's log-probabilities, laid each of the eight ways (as recorded).
        let mut frames: Vec<LabelledFrame> = Vec::new();
        for e in &entries {
            let mut f = calibrate::load(
                std::slice::from_ref(&e.path),
                e.posture.expect("labelled"),
                None,
            )?;
            frames.push(f.remove(0));
        }
        let mut read: HashMap<(usize, Orientation), calibrate::Reading> = HashMap::new();
        let mut graphs: HashMap<(usize, Orientation), Vec<f32>> = HashMap::new();
        let mut bar = Progress::items(
            &format!("reading {name}"),
            (frames.len() * 8) as u64,
            "frames",
        );
        for (i, f) in frames.iter().enumerate() {
            for o in Orientation::ALL {
                let (reading, nodes) = reader.read_graph(f, o)?;
                read.insert((i, o), reading);
                if posture_run.is_some() {
                    graphs.insert((i, o), nodes);
                }
                bar.inc();
            }
        }
        bar.finish();
        let mut outcomes = Vec::new();
        for subject in 1..=8u8 {
            let volunteer: Vec<usize> = (0..entries.len())
                .filter(|&i| entries[i].subject == subject && ids.contains(&entries[i].label))
                .collect();
            let tests: Vec<usize> = (0..entries.len())
                .filter(|&i| entries[i].subject != subject)
                .collect();
            let mut outcome = Outcome {
                subject,
                found: 0,
                refused: 0,
                least_margin: f32::INFINITY,
                least_sides: f32::INFINITY,
                before: 0,
                after: vec![0; args.shrink.len()],
                bound: 0,
                tuned: vec![0; tunes.len()],
                tested: 0,
            };
            for lay in Orientation::ALL {
                // The volunteer's frames as the mat laid `lay` delivers them (their readings are
                // those of the recorded frames laid `o.after(lay)`, read once above).
                let vf: Vec<LabelledFrame> = volunteer
                    .iter()
                    .map(|&i| {
                        let f = &frames[i];
                        let mut data = Vec::new();
                        let (width, height) = lay.apply(&f.data, f.width, f.height, &mut data);
                        LabelledFrame {
                            posture: f.posture,
                            width,
                            height,
                            data,
                        }
                    })
                    .collect();
                // The volunteer's frame j laid by `o` after the mat laid them by `lay`.
                let at = |j: usize, o: Orientation| read[&(volunteer[j], o.after(lay))];
                let finding = calibrate::rank(&vf, |j, o| Ok(at(j, o)))?;
                outcome.least_margin = outcome
                    .least_margin
                    .min(finding.margin().min(finding.mirror_margin()));
                outcome.least_sides = outcome.least_sides.min(finding.ranked[0].sides);
                let Ok(found) = finding.decided(args.min_margin, args.min_sides) else {
                    outcome.refused += 1;
                    continue;
                };
                outcome.found += usize::from(found.after(lay) == Experiment::II.orientation());
                let samples = calibrate::samples(&vf, found, |j, o| Ok(at(j, o)))?;
                let fits: Vec<Scaling> = args
                    .shrink
                    .iter()
                    .map(|&s| Scaling::fit(&samples, s))
                    .collect();
                let test_samples: Vec<([f32; 3], usize)> = tests
                    .iter()
                    .map(|&t| {
                        (
                            read[&(t, found.after(lay))].log_p,
                            frames[t].posture.index(),
                        )
                    })
                    .collect();
                let bound = Scaling::fit(&test_samples, SHRINK);
                for &(log_p, truth) in &test_samples {
                    outcome.bound += usize::from(bound.class(&log_p) == truth);
                }
                // Fine-tunes on the volunteer laid as found (and mirrored), read on the tests.
                if let Some(dir) = &posture_run {
                    let laid = found.after(lay);
                    let mirror = Orientation::FlipHorizontal.after(laid);
                    let train = few_shot::graph_set(
                        keypoints,
                        node_features,
                        volunteer.iter().flat_map(|&i| {
                            let p = frames[i].posture;
                            [
                                (graphs[&(i, laid)].clone(), p),
                                (graphs[&(i, mirror)].clone(), p.mirrored()),
                            ]
                        }),
                    );
                    let test = few_shot::graph_set(
                        keypoints,
                        node_features,
                        tests
                            .iter()
                            .map(|&t| (graphs[&(t, laid)].clone(), frames[t].posture)),
                    );
                    for (k, tune) in tunes.iter().enumerate() {
                        let tuned = tune.fit(dir, &train, &test, &autodiff)?;
                        let p = predict(&tuned, &test, &plain);
                        outcome.tuned[k] += p
                            .iter()
                            .zip(&test.labels)
                            .filter(|(p, l)| Scaling::default().class(&p.map(f32::ln)) == l.index())
                            .count();
                    }
                }
                for &t in &tests {
                    let log_p = read[&(t, found.after(lay))].log_p;
                    let truth = frames[t].posture.index();
                    outcome.before += usize::from(Scaling::default().class(&log_p) == truth);
                    for (k, fit) in fits.iter().enumerate() {
                        outcome.after[k] += usize::from(fit.class(&log_p) == truth);
                    }
                    outcome.tested += 1;
                }
            }
            outcomes.push(outcome);
        }
        report(name, &outcomes, &args.shrink, &args.fine_tune);
    }
    Ok(())
}

fn report(mat: &str, outcomes: &[Outcome], shrink: &[f32], tunes: &[String]) {
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    println!("\n{mat}");
    let mut heads: Vec<String> = shrink
        .iter()
        .map(|s| format!("after, shrink {s}"))
        .collect();
    heads.extend(tunes.iter().map(|t| format!("fine-tuned {t}")));
    println!(
        "| volunteer | orientation found (of 8) | refused | least margin | least sides | before | {} | bound: rescaled on the test frames |",
        heads.join(" | ")
    );
    println!(
        "|---|---|---|---|---|---|{}---|",
        "---|".repeat(heads.len())
    );
    for o in outcomes {
        let after: Vec<String> = o
            .after
            .iter()
            .chain(&o.tuned)
            .map(|&a| format!("{:.1} %", pct(a, o.tested)))
            .collect();
        println!(
            "| S{} | {} | {} | {:.2} | {:.2} | {:.1} % | {} | {:.1} % |",
            o.subject,
            o.found,
            o.refused,
            o.least_margin,
            o.least_sides,
            pct(o.before, o.tested),
            after.join(" | "),
            pct(o.bound, o.tested)
        );
    }
    for (side, range) in [("validation S1..S4", 1..=4u8), ("test S5..S8", 5..=8u8)] {
        let part: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| range.contains(&o.subject))
            .collect();
        let found: usize = part.iter().map(|o| o.found).sum();
        let summary: Vec<String> = (0..shrink.len() + tunes.len())
            .map(|k| {
                let each: Vec<f64> = part
                    .iter()
                    .map(|o| {
                        pct(
                            o.after.iter().chain(&o.tuned).nth(k).copied().unwrap_or(0),
                            o.tested,
                        )
                    })
                    .collect();
                format!(
                    "mean {:.1} % / worst {:.1} %",
                    each.iter().sum::<f64>() / each.len() as f64,
                    each.iter().copied().fold(f64::INFINITY, f64::min)
                )
            })
            .collect();
        let before: Vec<f64> = part.iter().map(|o| pct(o.before, o.tested)).collect();
        let bound: Vec<f64> = part.iter().map(|o| pct(o.bound, o.tested)).collect();
        println!(
            "| {side} | {found} of {} | {} | {:.2} | {:.2} | mean {:.1} % | {} | mean {:.1} % |",
            8 * part.len(),
            part.iter().map(|o| o.refused).sum::<usize>(),
            part.iter()
                .map(|o| o.least_margin)
                .fold(f32::INFINITY, f32::min),
            part.iter()
                .map(|o| o.least_sides)
                .fold(f32::INFINITY, f32::min),
            before.iter().sum::<f64>() / before.len() as f64,
            summary.join(" | "),
            bound.iter().sum::<f64>() / bound.len() as f64
        );
    }
}
