//! A new mat set up from one volunteer (`spmkd-train calibrate`): a few labelled frames of each
//! posture tell which way the mat lies (which of the eight orientations reads them as
//! labelled) and recalibrate the posture model's answers to the mat ([`Scaling`]).
//!
//! Which way: every orientation lays the frames, the built-in (or given) encoder and posture
//! model read them. Two things need no labels: a lay that puts the mat's long side across is
//! ruled out, and so is one the encoder's layout calls head to foot (core's
//! [`HeadFootCheck`], as `spmkdpose orientation-check` uses it). Among the rest the labels
//! decide, by the mean log-probability the model gives them: they are what a mirror image
//! cannot hide (mirrored, a left-lateral frame reads right). The best must beat the next by
//! [`MIN_MARGIN`] and its left frames lean left more than its right frames by [`MIN_SIDES`],
//! or the recordings cannot tell.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use spmkd_core::engine::{EngineOptions, ModelSource, PostureModel};
use spmkd_core::layout::{self, HeadFoot, HeadFootCheck};
use spmkd_core::model_meta::ModelMetadata;
use spmkd_core::orientation::Orientation;
use spmkd_core::posture::Posture;
use spmkd_core::{Format, Recording};

use std::collections::HashMap;

use crate::export::scaling::{Scaling, scaled};
use crate::export::with_metadata;
use crate::posture::graphs::{GraphBuilder, NodeSource};
use crate::progress::Progress;

/// How much better (mean log-probability of the labels, nats) the orientation found must read
/// the volunteer's frames than any other not ruled out (its mirror image, in practice). Chosen
/// on the validation side of the protocol (experiment-ii S1..S4 as volunteers, every lay, 3
/// frames a posture: the least margin was 4.9; docs/RESULTS.md "A new mat"): a fifth of it.
pub const MIN_MARGIN: f32 = 1.0;

/// How much more the volunteer's left frames must lean left than their right frames do (mean
/// log-probability of left over right, nats), laid as found: the same recording given as both
/// sides leans 0. Chosen on the same validation side (the least was 14.4): a third of it.
pub const MIN_SIDES: f32 = 5.0;

/// How strongly the recalibration is pulled toward leaving the model as it is (the weight of
/// the squared distance of [`Scaling`] from the identity), chosen on the same validation side
/// among 0.05, 0.2 and 1.
pub const SHRINK: f32 = 0.2;

/// The fewest frames of each posture a calibration takes: a few seconds of recording. The
/// protocol finds every orientation from 1 (docs/RESULTS.md "A new mat"), but then no frame is
/// left to check a posture on.
pub const MIN_FRAMES: usize = 3;

/// The most frames of each posture a calibration reads (evenly spaced over the recordings;
/// [`thin`]): half a minute of a mat at 10 Hz, read eight ways, in well under a minute.
pub const MAX_FRAMES: usize = 60;

/// One labelled frame of the volunteer, as the mat delivers it.
#[derive(Debug, Clone)]
pub struct LabelledFrame {
    pub posture: Posture,
    pub width: usize,
    pub height: usize,
    pub data: Vec<u16>,
}

/// The usable frames of `files`, each labelled `posture`; every file must hold one.
pub fn load(
    files: &[PathBuf],
    posture: Posture,
    raw_size: Option<(usize, usize)>,
) -> Result<Vec<LabelledFrame>> {
    let mut out = Vec::new();
    for file in files {
        let mut recording = Recording::open(file, Format::Auto, raw_size)
            .with_context(|| format!("the {posture} recording {}", file.display()))?;
        let before = out.len();
        while let Some(f) = recording
            .next_frame()
            .with_context(|| format!("the {posture} recording {}", file.display()))?
        {
            if f.artifact.is_some() {
                continue;
            }
            out.push(LabelledFrame {
                posture,
                width: f.frame.width(),
                height: f.frame.height(),
                data: f.frame.into_data(),
            });
        }
        if out.len() == before {
            bail!(
                "the {posture} recording {} has no usable frame (empty, or capture artifacts only)",
                file.display()
            );
        }
    }
    Ok(out)
}

/// Checks what a calibration needs: [`MIN_FRAMES`] of every posture, all of one mat size.
pub fn check(frames: &[LabelledFrame]) -> Result<()> {
    for p in Posture::ALL {
        let n = frames.iter().filter(|f| f.posture == p).count();
        if n == 0 {
            bail!(
                "no {p} frame: calibration needs the volunteer on their back, on their left side and on their right side"
            );
        }
        if n < MIN_FRAMES {
            bail!(
                "only {n} usable {p} frame(s): calibration needs at least {MIN_FRAMES} of each posture (record a few seconds more)"
            );
        }
    }
    let (w, h) = (frames[0].width, frames[0].height);
    if let Some(other) = frames.iter().find(|f| (f.width, f.height) != (w, h)) {
        bail!(
            "the recordings are of different mat sizes ({w}x{h} and {}x{}): calibrate one mat at a time",
            other.width,
            other.height
        );
    }
    Ok(())
}

/// What the models read in one frame laid one way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Log-probabilities of supine, left, right.
    pub log_p: [f32; 3],
    /// The keypoints' agreement with the encoder's layout ([`layout::agreement`]; `None`
    /// without a layout reference in its metadata).
    pub layout: Option<f32>,
}

/// At most [`MAX_FRAMES`] of each posture, evenly spaced (in the order given), the rest as they
/// are.
pub fn thin(frames: Vec<LabelledFrame>) -> Vec<LabelledFrame> {
    let mut out = Vec::with_capacity(frames.len().min(3 * MAX_FRAMES));
    for p in Posture::ALL {
        let of: Vec<&LabelledFrame> = frames.iter().filter(|f| f.posture == p).collect();
        let keep = of.len().min(MAX_FRAMES);
        out.extend((0..keep).map(|i| of[i * of.len() / keep].clone()));
    }
    out
}

/// Reads postures of frames laid any way: an encoder's keypoint graphs into a posture model.
pub struct Reader {
    graphs: GraphBuilder,
    posture: PostureModel,
    laid: Vec<u16>,
}

impl Reader {
    /// The encoder and posture model of `dir` (its `encoder.onnx` and `posture.onnx`).
    pub fn new(encoder: &Path, posture: &Path) -> Result<Self> {
        let graphs = GraphBuilder::new(NodeSource::Spmkd, Some(encoder))?;
        let posture = PostureModel::new(&ModelSource::file(posture)?, &EngineOptions::cpu(0))
            .with_context(|| format!("the posture model {}", posture.display()))?;
        let meta = graphs.encoder_metadata();
        if (posture.meta.keypoints, posture.meta.features) != (meta.keypoints, meta.features) {
            bail!(
                "the posture model reads {} keypoints of {} features, the encoder gives {} of {}",
                posture.meta.keypoints,
                posture.meta.features,
                meta.keypoints,
                meta.features
            );
        }
        Ok(Self {
            graphs,
            posture,
            laid: Vec::new(),
        })
    }

    /// The encoder's and the posture model's metadata.
    pub fn metadata(&self) -> (&ModelMetadata, &ModelMetadata) {
        (self.graphs.encoder_metadata(), &self.posture.meta)
    }

    /// What the models read in `frame` laid by `orientation`.
    pub fn read(&mut self, frame: &LabelledFrame, orientation: Orientation) -> Result<Reading> {
        Ok(self.read_graph(frame, orientation)?.0)
    }

    /// [`Self::read`], and the graph the posture model read (`k x node features`).
    pub fn read_graph(
        &mut self,
        frame: &LabelledFrame,
        orientation: Orientation,
    ) -> Result<(Reading, Vec<f32>)> {
        let mut set = self.graphs.empty_set();
        self.graphs.add_laid(
            &mut set,
            (&frame.data, frame.width, frame.height),
            orientation,
            frame.posture,
            &mut self.laid,
        )?;
        let p = self.posture.run(&set.nodes)?;
        let log_p = std::array::from_fn(|c| p[c].max(f32::MIN_POSITIVE).ln());
        let layout = self
            .graphs
            .encoder_metadata()
            .layout_reference
            .as_deref()
            .and_then(|reference| layout::agreement(self.graphs.last_keypoints(), reference));
        Ok((Reading { log_p, layout }, set.nodes))
    }
}

/// How each orientation read the volunteer's frames.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ranked {
    #[serde(serialize_with = "as_name")]
    pub orientation: Orientation,
    /// Mean log-probability of the labels.
    pub score: f32,
    /// Frames read as labelled.
    pub correct: usize,
    /// How much more the left frames read left (log-probability of left over right) than the
    /// right frames do: 0 when the two recordings are one and the same.
    pub sides: f32,
    /// The encoder's layout says this lay is head to foot ([`HeadFootCheck`] over the frames:
    /// turned half way round they keep its layout better). Ranked after the others.
    pub head_to_foot: bool,
    /// This lay puts the mat's long side across (more columns than rows): a body lies along a
    /// bed, and the models' rows run head to foot. Ranked after the others.
    pub across: bool,
}

impl Ranked {
    /// Whether the layout or the mat's shape rules this lay out, whatever the labels say.
    pub fn ruled_out(&self) -> bool {
        self.head_to_foot || self.across
    }
}

fn as_name<S: serde::Serializer>(o: &Orientation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(o.as_str())
}

/// The eight orientations, best first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub ranked: Vec<Ranked>,
    pub frames: usize,
}

impl Finding {
    pub fn best(&self) -> Orientation {
        self.ranked[0].orientation
    }

    /// How much better the best reads the frames than the next best not ruled out.
    pub fn margin(&self) -> f32 {
        let next = self.ranked[1..].iter().find(|r| !r.ruled_out());
        self.ranked[0].score - next.map_or(f32::NEG_INFINITY, |r| r.score)
    }

    /// How much better the best reads them than its own mirror image (left and right swapped).
    pub fn mirror_margin(&self) -> f32 {
        let mirror = Orientation::FlipHorizontal.after(self.best());
        let other = self.ranked.iter().find(|r| r.orientation == mirror);
        self.ranked[0].score - other.map_or(f32::NEG_INFINITY, |r| r.score)
    }

    /// The orientation, or why the frames cannot tell.
    pub fn decided(&self, min_margin: f32, min_sides: f32) -> Result<Orientation> {
        if self.mirror_margin() < min_margin {
            bail!(
                "the recordings cannot tell which way the mat lies: read as {} and as its mirror image {} they fit the labels about as well (mean log-probability {:.2} and {:.2}; {min_margin} apart is needed). Do the left and right recordings look alike? Record the volunteer lying well on their left side and well on their right side",
                self.best(),
                Orientation::FlipHorizontal.after(self.best()),
                self.ranked[0].score,
                self.ranked[0].score - self.mirror_margin()
            );
        }
        if self.margin() < min_margin {
            bail!(
                "the recordings cannot tell which way the mat lies: {} and {} read them about as well (mean log-probability {:.2} and {:.2}; {min_margin} apart is needed). Record a little longer in each posture",
                self.ranked[0].orientation,
                self.ranked[1].orientation,
                self.ranked[0].score,
                self.ranked[1].score
            );
        }
        // The same frames given as left and as right read alike however the mat is laid, and
        // the margins alone do not show it when a wrong lay reads every frame vaguely.
        let best = &self.ranked[0];
        if best.sides < min_sides {
            bail!(
                "the recordings cannot tell which way the mat lies: laid {} (the best of the eight) the left and the right recordings read alike (the left frames lean {:.2} more to the left than the right frames; {min_sides} is needed). Were the recordings given to the right options, and the volunteer well on their left side and well on their right side?",
                self.best(),
                best.sides
            );
        }
        Ok(self.best())
    }
}

/// Every orientation's reading of `frames`; `read` gives a frame's reading laid so. Best first:
/// the mean log-probability of the labels decides among the lays that keep the mat's long side
/// along the body and that the encoder's layout does not call head to foot. A frame or two a
/// posture can fit the labels nearly as well laid across or head to foot (validation, one frame
/// a posture), and neither needs labels to tell.
pub fn rank(
    frames: &[LabelledFrame],
    mut read: impl FnMut(usize, Orientation) -> Result<Reading>,
) -> Result<Finding> {
    let mut ranked = Vec::with_capacity(8);
    for orientation in Orientation::ALL {
        let (mut score, mut correct) = (0.0f32, 0usize);
        let (mut lean, mut of) = ([0.0f32; 3], [0usize; 3]);
        let (left, right) = (Posture::Left.index(), Posture::Right.index());
        let mut layouts = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            let reading = read(i, orientation)?;
            let log_p = reading.log_p;
            let truth = f.posture.index();
            score += log_p[truth];
            correct += usize::from(Scaling::default().class(&log_p) == truth);
            lean[truth] += log_p[left] - log_p[right];
            of[truth] += 1;
            let turned = read(i, Orientation::Rotate180.after(orientation))?.layout;
            if let (Some(as_laid), Some(turned)) = (reading.layout, turned) {
                layouts.push((as_laid, turned));
            }
        }
        let mut check = HeadFootCheck::new(layouts.len());
        let head_to_foot = layouts
            .iter()
            .filter_map(|&(as_laid, turned)| check.push(as_laid, turned))
            .any(|found| matches!(found, HeadFoot::Turned { .. }));
        let mean = |c: usize| lean[c] / of[c].max(1) as f32;
        let across = frames.first().is_some_and(|f| {
            let (w, h) = orientation.size(f.width, f.height);
            w > h
        });
        ranked.push(Ranked {
            across,
            orientation,
            score: score / frames.len().max(1) as f32,
            correct,
            sides: mean(left) - mean(right),
            head_to_foot,
        });
    }
    ranked.sort_by(|a, b| {
        a.ruled_out()
            .cmp(&b.ruled_out())
            .then(b.score.total_cmp(&a.score))
    });
    Ok(Finding {
        ranked,
        frames: frames.len(),
    })
}

/// The samples a recalibration learns from: each frame laid by `orientation` with its label,
/// and its mirror image with the mirrored label (a left side mirrored is a right side).
pub fn samples(
    frames: &[LabelledFrame],
    orientation: Orientation,
    mut read: impl FnMut(usize, Orientation) -> Result<Reading>,
) -> Result<Vec<([f32; 3], usize)>> {
    let mirror = Orientation::FlipHorizontal.after(orientation);
    let mut out = Vec::with_capacity(2 * frames.len());
    for (i, f) in frames.iter().enumerate() {
        out.push((read(i, orientation)?.log_p, f.posture.index()));
        out.push((read(i, mirror)?.log_p, f.posture.mirrored().index()));
    }
    Ok(out)
}

/// Accuracy on the volunteer's own frames, each held back in turn from a fit on the others:
/// (as the model read them laid by `orientation`, after the recalibration).
pub fn held_back(
    frames: &[LabelledFrame],
    samples: &[([f32; 3], usize)],
    shrink: f32,
) -> (usize, usize) {
    let (mut before, mut after) = (0, 0);
    for i in 0..frames.len() {
        // Sample 2i is frame i, 2i + 1 its mirror image: both held back.
        let rest: Vec<([f32; 3], usize)> = samples
            .iter()
            .enumerate()
            .filter(|(j, _)| j / 2 != i)
            .map(|(_, s)| *s)
            .collect();
        let fit = Scaling::fit(&rest, shrink);
        let (log_p, truth) = samples[2 * i];
        before += usize::from(Scaling::default().class(&log_p) == truth);
        after += usize::from(fit.class(&log_p) == truth);
    }
    (before, after)
}

/// What calibrate found and did, written as `calibration.json` beside the models.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub from: String,
    pub version: String,
    pub frames: HashMap<&'static str, usize>,
    pub files: Vec<String>,
    #[serde(serialize_with = "as_name")]
    pub orientation: Orientation,
    pub margin: f32,
    pub mirror_margin: f32,
    pub finding: Finding,
    pub scaling: Scaling,
    /// Volunteer frames read right, each held back from a recalibration on the others: as the
    /// model read them (laid as found), and recalibrated.
    pub held_back_before: usize,
    pub held_back_after: usize,
}

/// `name` in the model directory `from`, which must hold it.
fn model_file(from: &Path, name: &str) -> Result<PathBuf> {
    let p = from.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        bail!(
            "{} has no {name}: --from names a model directory (models/default, or the --out of adapt or calibrate)",
            from.display()
        )
    }
}

/// Every frame read laid each of the eight ways (the mirror images a recalibration learns from
/// among them), with progress.
fn read_every_lay(
    reader: &mut Reader,
    frames: &[LabelledFrame],
) -> Result<HashMap<(usize, Orientation), Reading>> {
    let mut read = HashMap::new();
    let mut progress = Progress::items(
        "reading the volunteer's frames",
        (frames.len() * 8) as u64,
        "frames",
    );
    for (i, f) in frames.iter().enumerate() {
        for o in Orientation::ALL {
            read.insert((i, o), reader.read(f, o)?);
            progress.inc();
        }
    }
    progress.finish();
    Ok(read)
}

/// Which way the mat of the volunteer's `frames` lies, read by the models of `from` (what
/// [`calibrate`] finds first), or why the frames cannot tell.
pub fn find_orientation(from: &Path, frames: &[LabelledFrame]) -> Result<(Orientation, Finding)> {
    check(frames)?;
    let mut reader = Reader::new(
        &model_file(from, "encoder.onnx")?,
        &model_file(from, "posture.onnx")?,
    )?;
    let read = read_every_lay(&mut reader, frames)?;
    let finding = rank(frames, |i, o| Ok(read[&(i, o)]))?;
    Ok((finding.decided(MIN_MARGIN, MIN_SIDES)?, finding))
}

/// Calibrates the models of `from` (its encoder.onnx, posture.onnx and decoder.onnx) to the mat
/// of the volunteer's `frames` (read from `files`): finds the orientation, recalibrates the
/// posture model, and writes the model directory `out` (created if need be; its models are
/// replaced) with `calibration.json`. `version`: the models' id (default: the encoder's +
/// `-calibrated`).
pub fn calibrate(
    from: &Path,
    frames: &[LabelledFrame],
    files: &[PathBuf],
    out: &Path,
    version: Option<String>,
) -> Result<Report> {
    check(frames)?;
    let count = |p: Posture| frames.iter().filter(|f| f.posture == p).count();
    let (w, h) = (frames[0].width, frames[0].height);
    let (encoder_path, posture_path) = (
        model_file(from, "encoder.onnx")?,
        model_file(from, "posture.onnx")?,
    );
    let mut reader = Reader::new(&encoder_path, &posture_path)?;
    let read = read_every_lay(&mut reader, frames)?;
    let at = |i: usize, o: Orientation| Ok(read[&(i, o)]);
    let finding = rank(frames, at)?;
    let orientation = finding.decided(MIN_MARGIN, MIN_SIDES)?;
    let samples = samples(frames, orientation, at)?;
    let scaling = Scaling::fit(&samples, SHRINK);
    let (before, after) = held_back(frames, &samples, SHRINK);

    let (encoder_meta, posture_meta) = reader.metadata();
    let version = version.unwrap_or_else(|| format!("{}-calibrated", encoder_meta.version));
    let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let calibrated_on = format!(
        "one volunteer on a {w}x{h} mat: {} supine, {} left, {} right frame(s) of {} recording(s) ({}); laid {orientation}; posture log-probabilities rescaled per class",
        count(Posture::Supine),
        count(Posture::Left),
        count(Posture::Right),
        files.len(),
        files.join(", ")
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    let read_file = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let encoder = spmkd_core::model_meta::ModelMetadata {
        orientation,
        calibrated_on: Some(calibrated_on.clone()),
        version: version.clone(),
        ..encoder_meta.clone()
    };
    write(
        "encoder.onnx",
        &with_metadata(&read_file(&encoder_path)?, &encoder)?,
    )?;
    let posture = spmkd_core::model_meta::ModelMetadata {
        calibrated_on: Some(calibrated_on),
        version: format!("{version}-posture"),
        ..posture_meta.clone()
    };
    let rescaled = scaled(&read_file(&posture_path)?, &scaling)?;
    write("posture.onnx", &with_metadata(&rescaled, &posture)?)?;
    let decoder = from.join("decoder.onnx");
    if decoder.is_file() {
        write("decoder.onnx", &read_file(&decoder)?)?;
    }
    let report = Report {
        from: from.display().to_string(),
        version,
        frames: Posture::ALL
            .iter()
            .map(|&p| (p.as_str(), count(p)))
            .collect(),
        files,
        orientation,
        margin: finding.margin(),
        mirror_margin: finding.mirror_margin(),
        scaling,
        held_back_before: before,
        held_back_after: after,
        finding,
    };
    write(
        "calibration.json",
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(posture: Posture, w: usize) -> LabelledFrame {
        LabelledFrame {
            posture,
            width: w,
            height: 4,
            data: vec![0; w * 4],
        }
    }

    /// `n` frames of each posture, the right ones `right_width` wide.
    fn frames(n: usize, right_width: usize) -> Vec<LabelledFrame> {
        (0..n)
            .flat_map(|_| {
                [
                    frame(Posture::Supine, 3),
                    frame(Posture::Left, 3),
                    frame(Posture::Right, right_width),
                ]
            })
            .collect()
    }

    #[test]
    fn missing_postures_too_few_frames_and_mixed_sizes_are_refused() {
        let no_right: Vec<_> = frames(3, 3)
            .into_iter()
            .filter(|f| f.posture != Posture::Right)
            .collect();
        let err = check(&no_right).unwrap_err();
        assert!(err.to_string().contains("no right frame"), "{err}");
        let err = check(&frames(MIN_FRAMES - 1, 3)).unwrap_err();
        assert!(err.to_string().contains("at least 3"), "{err}");
        assert!(check(&frames(MIN_FRAMES, 3)).is_ok());
        let err = check(&frames(MIN_FRAMES, 5)).unwrap_err();
        assert!(err.to_string().contains("different mat sizes"), "{err}");
    }

    #[test]
    fn thinning_keeps_at_most_the_cap_of_each_posture_evenly_spaced() {
        let mut many = frames(MAX_FRAMES * 2, 3);
        for (i, f) in many.iter_mut().enumerate() {
            f.data[0] = i as u16;
        }
        let kept = thin(many);
        assert_eq!(kept.len(), 3 * MAX_FRAMES);
        let supine: Vec<u16> = kept
            .iter()
            .filter(|f| f.posture == Posture::Supine)
            .map(|f| f.data[0])
            .collect();
        // Every other supine frame (they are every third frame given).
        assert_eq!(supine[..3], [0, 6, 12]);
        assert_eq!(thin(frames(2, 3)).len(), 6, "fewer than the cap: all");
    }

    #[test]
    fn the_orientation_that_reads_the_labels_wins_and_a_mirror_tie_is_refused() {
        let frames = [
            frame(Posture::Supine, 3),
            frame(Posture::Left, 3),
            frame(Posture::Right, 3),
        ];
        let confident = |p: Posture| Reading {
            log_p: std::array::from_fn(|c| {
                if c == p.index() {
                    (0.9f32).ln()
                } else {
                    (0.05f32).ln()
                }
            }),
            layout: None,
        };
        // A reader for a mat that lies mirrored: only `horiz` reads the labels.
        let finding = rank(&frames, |i, o| {
            let p = frames[i].posture;
            Ok(confident(if o == Orientation::FlipHorizontal {
                p
            } else {
                p.mirrored()
            }))
        })
        .unwrap();
        assert_eq!(finding.best(), Orientation::FlipHorizontal);
        assert_eq!(finding.ranked[0].correct, 3);
        assert_eq!(
            finding.decided(MIN_MARGIN, MIN_SIDES).unwrap(),
            Orientation::FlipHorizontal
        );
        // Left and right that look alike: every orientation reads the same.
        let finding = rank(&frames, |_, _| Ok(confident(Posture::Supine))).unwrap();
        let err = finding
            .decided(MIN_MARGIN, MIN_SIDES)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mirror image"), "{err}");
    }
    #[test]
    fn one_recording_given_as_both_sides_is_refused_whatever_the_margins() {
        // The left recording given as the right one too: laid `ul-lr`, the model reads those
        // frames half left, half right, which fits the two labels better than any other lay
        // reads them, but it cannot read both as labelled. (A square mat: no lay is across.)
        let frames = [
            frame(Posture::Supine, 4),
            frame(Posture::Left, 4),
            frame(Posture::Right, 4),
        ];
        let finding = rank(&frames, |i, o| {
            let log_p = match (o, i) {
                (Orientation::UpperLeftLowerRight, 0) => [0.9f32.ln(), 0.05f32.ln(), 0.05f32.ln()],
                (Orientation::UpperLeftLowerRight, _) => [0.1f32.ln(), 0.46f32.ln(), 0.44f32.ln()],
                _ => [(1.0f32 / 3.0).ln(); 3],
            };
            Ok(Reading {
                log_p,
                layout: None,
            })
        })
        .unwrap();
        assert_eq!(finding.best(), Orientation::UpperLeftLowerRight);
        let margin = finding.margin().min(finding.mirror_margin());
        assert!(margin > 0.5, "{finding:?}");
        let err = finding.decided(0.5, MIN_SIDES).unwrap_err().to_string();
        assert!(err.contains("read alike"), "{err}");
    }

    #[test]
    fn a_lay_the_layout_calls_head_to_foot_loses_to_one_that_reads_the_labels_less_well() {
        let frames = [
            frame(Posture::Supine, 3),
            frame(Posture::Left, 3),
            frame(Posture::Right, 3),
        ];
        // Turned half way round (`180`) the labels fit best, but its keypoints run against the
        // encoder's layout; `identity` keeps the layout and fits nearly as well.
        let finding = rank(&frames, |i, o| {
            let p = frames[i].posture;
            let (fit, layout) = match o {
                Orientation::Rotate180 => (0.95f32, -0.6),
                Orientation::Identity => (0.8, 0.7),
                _ => (0.4, 0.0),
            };
            Ok(Reading {
                log_p: std::array::from_fn(|c| {
                    if c == p.index() {
                        fit
                    } else {
                        (1.0 - fit) / 2.0
                    }
                    .ln()
                }),
                layout: Some(layout),
            })
        })
        .unwrap();
        assert_eq!(finding.best(), Orientation::Identity);
        let turned = finding
            .ranked
            .iter()
            .find(|r| r.orientation == Orientation::Rotate180);
        assert!(turned.unwrap().head_to_foot);
        assert!(
            finding
                .ranked
                .windows(2)
                .all(|w| w[0].ruled_out() <= w[1].ruled_out()),
            "ruled out last"
        );
        // Laid across (a quarter turn of this 3 x 4 mat) no lay wins, however it reads.
        assert!(finding.ranked.iter().all(|r| {
            let (w, h) = r.orientation.size(3, 4);
            r.across == (w > h)
        }));
        assert_eq!(finding.decided(0.1, 0.1).unwrap(), Orientation::Identity);
    }
}
