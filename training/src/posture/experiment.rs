//! One posture experiment end to end: graphs of every labelled frame, a classifier trained on
//! experiment-i S1..S10, evaluated on S11..S13 and on experiment-ii's Air and Sponge mats.

use std::path::{Path, PathBuf};

use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use spmkd_core::dataset::DatasetIndex;
use spmkd_core::model_meta::{ModelKind, ModelMetadata};

use super::checkpoint::{self, ClassifierShape};
use super::classifier::{CnnConfig, GnnConfig, GraphKind};
use super::ensemble::GnnEnsemble;
use super::fit::{Classifier, Evaluation, FitConfig, evaluate, fit};
use super::graphs::{Augment, GraphBuilder, GraphSet, NodeSource, Part};

/// What to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Graph(GraphKind),
    Image,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Graph(g) => g.name(),
            Kind::Image => "CNN (raw image)",
        }
    }
}

/// The result of one part, as written to `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartResult {
    /// [`Part::name`].
    pub part: String,
    pub frames: usize,
    pub accuracy: f64,
    pub confusion: [[usize; 3]; 3],
    pub per_subject: Vec<(u8, f64, usize)>,
    /// Every recording's frames by predicted class (`posture-table --by-variant`).
    #[serde(default)]
    pub per_recording: Vec<RecordingResult>,
}

/// How one recording (a subject's frames of one variant) was read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordingResult {
    pub subject: u8,
    /// The dataset's label of the recording (experiment-ii: the posture ID, such as B1).
    pub variant: String,
    /// The true class.
    pub posture: String,
    /// Frames read as supine, left, right (the order of [`Posture::ALL`]).
    ///
    /// [`Posture::ALL`]: spmkd_core::posture::Posture::ALL
    pub read_as: [usize; 3],
}

/// What a posture run measured: `results.json` in its directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub classifier: String,
    pub keypoints: String,
    pub parameters: usize,
    pub train_frames: usize,
    /// The training set's augmentation.
    #[serde(default)]
    pub augment: String,
    pub parts: Vec<PartResult>,
    /// The ONNX file of a graph network on SPMKD keypoints.
    #[serde(default)]
    pub exported: Option<PathBuf>,
    /// Self-training's pseudo-labels, when it ran.
    #[serde(default)]
    pub pseudo_labels: Option<PseudoLabels>,
    /// The number of new-mat graphs (frames and mirror images) the batch norms were
    /// recalibrated on, when they were.
    #[serde(default)]
    pub recalibrated_on: Option<usize>,
}

impl Report {
    /// The report of the posture run in `run`.
    pub fn read(run: &Path) -> Result<Self> {
        let path = run.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The result on `part`, if the run was tested on it.
    pub fn part(&self, part: Part) -> Option<&PartResult> {
        self.parts.iter().find(|p| p.part == part.name())
    }
}

/// Graphs of every labelled recording: training frames every `train_stride`-th (none when
/// `train_stride` is 0), test frames all.
pub fn build_graphs(
    index: &DatasetIndex,
    source: NodeSource,
    encoder: Option<&Path>,
    train_stride: usize,
    augment: Augment,
    body_centred: bool,
) -> Result<(GraphSet, Vec<Part>, ModelMetadata)> {
    let mut builder = GraphBuilder::new(source, encoder)?;
    builder.body_centred |= body_centred;
    let encoder = builder.encoder_metadata().clone();
    let mut set = builder.empty_set();
    let mut parts = Vec::new();
    let entries: Vec<_> = index
        .entries
        .iter()
        .filter(|e| e.posture.is_some())
        .filter(|e| train_stride > 0 || Part::of(e.experiment, e.subject, e.mat) != Part::Train)
        .collect();
    let mut bar = Progress::items("keypoint graphs", entries.len() as u64, "recordings");
    for entry in entries {
        let part = Part::of(entry.experiment, entry.subject, entry.mat);
        let stride = if part == Part::Train { train_stride } else { 1 };
        let before = set.len();
        builder
            .add_recording(
                &mut set,
                entry,
                stride,
                if part == Part::Train {
                    augment
                } else {
                    Augment::default()
                },
            )
            .with_context(|| format!("{}", entry.path.display()))?;
        parts.extend(std::iter::repeat_n(part, set.len() - before));
        // Experiment-ii also as if its mat had been installed as experiment-i's.
        if let Some(turned) = part.turned() {
            let before = set.len();
            builder.as_installed = true;
            let added = builder.add_recording(&mut set, entry, 1, Augment::default());
            builder.as_installed = false;
            added.with_context(|| format!("{}", entry.path.display()))?;
            parts.extend(std::iter::repeat_n(turned, set.len() - before));
        }
        bar.inc();
    }
    bar.finish();
    Ok((set, parts, encoder))
}

/// The graphs of a new mat's frames and of their mirror images.
fn new_mat_graphs(
    frames: &[(u16, u16, Vec<u16>)],
    source: NodeSource,
    encoder: Option<&Path>,
    body_centred: bool,
) -> Result<(GraphSet, GraphSet)> {
    let mut builder = GraphBuilder::new(source, encoder)?;
    builder.body_centred |= body_centred;
    let (mut plain, mut mirrored) = (builder.empty_set(), builder.empty_set());
    for (w, h, values) in frames {
        let (w, h) = (usize::from(*w), usize::from(*h));
        builder.add_unlabelled(&mut plain, values, w, h, false)?;
        builder.add_unlabelled(&mut mirrored, values, w, h, true)?;
    }
    Ok((plain, mirrored))
}

/// The graphs of the new mat's frames (and their mirror images) the classifier is sure of,
/// labelled by it, and how many frames of each class were kept. Sure: the most probable class
/// has at least `threshold`, and every member of an ensemble names that class on its own (one
/// confident member or a mean over disagreeing ones labels nothing).
fn pseudo_label(
    model: &Classifier,
    (plain, mirrored): &(GraphSet, GraphSet),
    threshold: f32,
    device: &Device,
) -> (GraphSet, [usize; 3]) {
    let most_probable = |p: &[f32; 3]| spmkd_core::posture::most_probable(p);
    let probabilities = super::fit::predict(model, plain, device);
    let votes: Vec<Vec<_>> = match model {
        Classifier::Ensemble(e) => e
            .members
            .iter()
            .map(|m| {
                let member = Classifier::Graph(m.clone());
                let p = super::fit::predict(&member, plain, device);
                p.iter().map(most_probable).collect()
            })
            .collect(),
        _ => Vec::new(),
    };
    let label = |i: usize| most_probable(&probabilities[i]);
    let sure = |i: usize| {
        probabilities[i].iter().copied().fold(0.0, f32::max) >= threshold
            && votes.iter().all(|v| v[i] == label(i))
    };
    let mut kept = [0; 3];
    let mut out = plain.select(sure);
    out.labels = (0..plain.len()).filter(|&i| sure(i)).map(label).collect();
    for &l in &out.labels {
        kept[l.index()] += 1;
    }
    let mut mirror = mirrored.select(sure);
    mirror.labels = out.labels.iter().map(|l| l.mirrored()).collect();
    out.append(&mirror);
    (out, kept)
}

fn part_result(part: Part, e: &Evaluation) -> PartResult {
    PartResult {
        part: part.name().to_owned(),
        frames: e.total(),
        accuracy: e.accuracy(),
        confusion: e.confusion,
        per_subject: e
            .per_subject
            .iter()
            .map(|(&s, &(c, t))| (s, c as f64 / t.max(1) as f64, t))
            .collect(),
        per_recording: e
            .per_recording
            .iter()
            .map(|((subject, variant), &(truth, read_as))| RecordingResult {
                subject: *subject,
                variant: variant.clone(),
                posture: spmkd_core::posture::Posture::ALL[truth].to_string(),
                read_as,
            })
            .collect(),
    }
}

/// What one experiment trains, on what.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    pub source: NodeSource,
    /// The SPMKD encoder (an exported `encoder.onnx`); `None`: the shipped one.
    pub encoder: Option<PathBuf>,
    /// The encoder the classifier will run behind, when it is not the one its training graphs
    /// come from (an adapted encoder whose batch norms were measured on the new mat): every
    /// tested part and the new mat's graphs go through it.
    pub deployed_encoder: Option<PathBuf>,
    /// Every n-th usable training frame (test frames: all).
    pub train_stride: usize,
    /// Extra training graphs (mirror images, sideways shifts).
    pub augment: Augment,
    /// Model id written into `posture.onnx`.
    pub version: String,
    /// Graph networks on SPMKD keypoints: a learned embedding of the keypoint index.
    pub identity: bool,
    /// Graph networks: node features standardized over each graph ([`GnnConfig::graph_norm`]).
    pub graph_norm: bool,
    /// Every frame letterboxed with the body, not the mat, in the middle of the encoder's
    /// input ([`GraphBuilder::body_centred`]).
    pub body_centred: bool,
    /// Graph networks: this many fits of the recipe from seeds `seed`, `seed + 1`, ..., read
    /// as one ([`GnnEnsemble`]); 1 is a single network.
    pub ensemble: usize,
    /// Graph networks: the widths of the graph layers (`None`: [`GnnConfig`]'s default, the
    /// reference's 128-256-64-32).
    pub hidden: Option<Vec<usize>>,
    /// Unlabelled frames of a new mat, and what the classifier learns from them (graph
    /// networks).
    pub new_mat: Option<NewMat>,
}

/// Unlabelled frames of a new mat and how the posture network uses them. No true label of the
/// new mat is read.
#[derive(Debug, Clone, Default)]
pub struct NewMat {
    /// Raw frames as they reach the encoder (`width`, `height`, readings; already turned).
    pub frames: Vec<(u16, u16, Vec<u16>)>,
    /// Self-training: the classifier trained on the labelled data (recalibrated on the frames
    /// when `recalibrate` is set) labels the frames; those whose most probable class has at
    /// least this probability, and on which every member of an ensemble agrees, join the
    /// training set with their mirror images (label mirrored), and the classifier is trained
    /// again from the start.
    pub pseudo_labels: Option<f32>,
    /// Measure every batch norm's statistics afresh on the frames and their mirror images
    /// ([`super::classifier::Gnn::recalibrated`]), after training.
    pub recalibrate: bool,
}

/// What self-training kept, in `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PseudoLabels {
    pub frames: usize,
    pub threshold: f32,
    /// Frames kept per class (supine, left, right), before mirror images.
    pub kept: [usize; 3],
    /// The members that had to agree on a frame's class (1: a single network).
    #[serde(default = "one")]
    pub members: usize,
}

fn one() -> usize {
    1
}

/// Trains `options.kind` on the graphs of `options.source` and evaluates it; writes
/// `classifier.bpk` and `results.json` into `run`, and a graph network on SPMKD keypoints also
/// as `posture.onnx`, the model `spmkdposture` runs.
pub fn run(
    index: &DatasetIndex,
    options: &Options,
    fit_config: &FitConfig,
    run: &Path,
) -> Result<Report> {
    let Options {
        kind,
        source,
        train_stride,
        ref version,
        ..
    } = *options;
    if options.ensemble == 0 {
        bail!("an ensemble needs at least one member");
    }
    if options.ensemble > 1 && kind == Kind::Image {
        bail!("ensembles are of graph networks");
    }
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    let (set, parts, encoder) = build_graphs(
        index,
        source,
        options.encoder.as_deref(),
        train_stride,
        options.augment,
        options.body_centred,
    )?;
    let train = set.select(|i| parts[i] == Part::Train);
    let (keypoints, node_features) = (set.keypoints, set.node_features);
    // What is tested, through the encoder the classifier will run behind.
    let (tests, test_parts, deployed) = match &options.deployed_encoder {
        Some(deployed) => build_graphs(
            index,
            source,
            Some(deployed),
            0,
            Augment::default(),
            options.body_centred,
        )?,
        None => (set, parts, encoder.clone()),
    };
    let new_mat_encoder = options
        .deployed_encoder
        .as_deref()
        .or(options.encoder.as_deref());
    let device = Device::flex().autodiff();
    // Member i starts from seed + i (its weights and its order of batches).
    let gnn_config = |g: GraphKind| {
        let config = GnnConfig::new(g, node_features);
        let hidden = options.hidden.clone().unwrap_or(config.hidden.clone());
        config
            .with_hidden(hidden)
            .with_identity((source == NodeSource::Spmkd && options.identity).then_some(keypoints))
            .with_graph_norm(options.graph_norm)
    };
    let seeded = |i: usize| {
        let seed = fit_config.seed.wrapping_add(i as u64);
        device.seed(seed);
        let model = match kind {
            Kind::Graph(g) => Classifier::Graph(gnn_config(g).init(&device)),
            Kind::Image => Classifier::Image(CnnConfig::new().init(&device)),
        };
        (model, fit_config.clone().with_seed(seed))
    };
    let (model, _) = seeded(0);
    let parameters = model.num_params() * options.ensemble;
    // Self-training trains again from the same starting weights.
    let new_mat = match (&options.new_mat, kind) {
        (Some(new_mat), Kind::Graph(_)) => Some((
            new_mat,
            new_mat_graphs(
                &new_mat.frames,
                source,
                new_mat_encoder,
                options.body_centred,
            )?,
        )),
        (Some(_), Kind::Image) => bail!("a new mat's frames are used by graph networks only"),
        (None, _) => None,
    };
    let fresh = new_mat
        .as_ref()
        .and_then(|(m, _)| m.pseudo_labels)
        .map(|_| model.clone());
    // The recipe's fits on `set`: the first from `first`, the others from their seeds.
    let fit_all = |first: Classifier, set: &GraphSet| -> Result<Classifier> {
        let first = fit(first, set, fit_config, &device)?.valid();
        if options.ensemble == 1 {
            return Ok(first);
        }
        let mut members = Vec::with_capacity(options.ensemble);
        for i in 0..options.ensemble {
            let member = if i == 0 {
                first.clone()
            } else {
                let (fresh, config) = seeded(i);
                fit(fresh, set, &config, &device)?.valid()
            };
            let Classifier::Graph(member) = member else {
                bail!("ensembles are of graph networks");
            };
            members.push(member);
        }
        Ok(Classifier::Ensemble(GnnEnsemble::new(members)))
    };
    let mut model = fit_all(model, &train)?;
    let plain = Device::flex();
    let mut pseudo_labels = None;
    let mut recalibrated_on = None;
    if let Some((new_mat, graphs)) = &new_mat {
        // The new mat's graphs and their mirror images, for every batch norm's statistics.
        let mut both = graphs.0.clone();
        both.append(&graphs.1);
        let batches = new_mat.recalibrate.then(|| both.node_batches(256, &plain));
        let recalibrated = |model: Classifier| match (&batches, model) {
            (Some(b), Classifier::Graph(g)) => Classifier::Graph(g.recalibrated(b)),
            (Some(b), Classifier::Ensemble(e)) => Classifier::Ensemble(e.recalibrated(b)),
            (_, model) => model,
        };
        if let (Some(threshold), Some(fresh)) = (new_mat.pseudo_labels, fresh) {
            // Labelled by the classifier as it will be deployed: its norms on the new mat.
            let (pseudo, kept) = pseudo_label(&recalibrated(model), graphs, threshold, &plain);
            pseudo_labels = Some(PseudoLabels {
                frames: new_mat.frames.len(),
                threshold,
                kept,
                members: options.ensemble,
            });
            let mut with_pseudo = train.clone();
            with_pseudo.append(&pseudo);
            model = fit_all(fresh, &with_pseudo)?;
        }
        if batches.is_some() {
            model = recalibrated(model);
            recalibrated_on = Some(both.len());
        }
    }
    let mut results = Vec::new();
    let classes: Vec<String> = spmkd_core::posture::Posture::ALL
        .iter()
        .map(ToString::to_string)
        .collect();
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    for (part, file) in [
        (Part::HeldOut, "confusion-held-out.png"),
        (Part::Air, "confusion-air.png"),
        (Part::Sponge, "confusion-sponge.png"),
        (Part::AirTurned, "confusion-air-turned.png"),
        (Part::SpongeTurned, "confusion-sponge-turned.png"),
    ] {
        let test = tests.select(|i| test_parts[i] == part);
        let e = evaluate(&model, &test, &plain);
        crate::plot::confusion_matrix(
            &run.join(file),
            &format!("{}: {:.1} %", part.name(), 100.0 * e.accuracy()),
            &classes,
            &e.confusion,
        )?;
        results.push(part_result(part, &e));
    }
    match kind {
        // With its shape, so that calibrate can train it further.
        Kind::Graph(g) => checkpoint::save(
            run,
            &model,
            &ClassifierShape::new(gnn_config(g)).with_members(options.ensemble),
        )?,
        Kind::Image => {
            let path: PathBuf = run.join(checkpoint::RECORD);
            model
                .clone()
                .save_file(&path)
                .map_err(|e| anyhow::anyhow!("saving {}: {e:?}", path.display()))?;
        }
    }
    let mut exported = None;
    if !matches!(model, Classifier::Image(_)) && source == NodeSource::Spmkd {
        let meta = ModelMetadata {
            kind: ModelKind::Posture,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            version: version.to_owned(),
            // The encoder's calibration is the encoder's: spmkdposture reads none, and takes
            // the mat's orientation from the pose.
            confidence_reference: None,
            layout_reference: None,
            layout_ramp: None,
            orientation: Default::default(),
            trained_on: format!(
                "PmatData experiment-i S1..S10 (one usable frame in {train_stride}), keypoints of {}{}{}{}",
                encoder.version,
                if options.deployed_encoder.is_some() {
                    format!(", run behind {}", deployed.version)
                } else {
                    String::new()
                },
                recalibrated_on.map_or(String::new(), |n| format!(
                    "; batch norms recalibrated on {n} unlabelled graphs of the new mat"
                )),
                if options.ensemble > 1 {
                    format!(
                        "; the mean of {} fits (seeds {}..={})",
                        options.ensemble,
                        fit_config.seed,
                        fit_config.seed.wrapping_add(options.ensemble as u64 - 1)
                    )
                } else {
                    String::new()
                }
            ),
            ..deployed
        };
        let path = run.join("posture.onnx");
        std::fs::write(&path, super::export::posture_onnx(&model, &meta, &plain)?)
            .with_context(|| format!("writing {}", path.display()))?;
        exported = Some(path);
    }
    let report = Report {
        classifier: kind.name().to_owned(),
        keypoints: match (kind, source, &options.encoder) {
            (Kind::Image, _, _) => "none (raw image)".to_owned(),
            (_, NodeSource::Spmkd, None) => "SPMKD encoder".to_owned(),
            (_, NodeSource::Spmkd, Some(_)) => format!("SPMKD encoder {}", encoder.version),
            (_, NodeSource::Peaks, _) => "pressure peaks".to_owned(),
        },
        parameters,
        train_frames: train.len(),
        augment: {
            let mut augment = options.augment.to_string();
            if let (Kind::Graph(_), NodeSource::Spmkd, false) = (kind, source, options.identity) {
                augment += ", no identity";
            }
            if let (Kind::Graph(_), true) = (kind, options.graph_norm) {
                augment += ", graph norm";
            }
            if options.body_centred || encoder.body_centred() {
                augment += ", body-centred";
            }
            if options.ensemble > 1 {
                augment += &format!(", ensemble of {}", options.ensemble);
            }
            if let (Kind::Graph(_), Some(hidden)) = (kind, &options.hidden) {
                let widths: Vec<String> = hidden.iter().map(ToString::to_string).collect();
                augment += &format!(", layers {}", widths.join("-"));
            }
            augment
        },
        parts: results,
        exported,
        pseudo_labels,
        recalibrated_on,
    };
    std::fs::write(
        run.join("results.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use spmkd_core::dataset::Mat;
    use spmkd_core::posture::{Posture, most_probable, probabilities};

    use super::*;
    use crate::posture::classifier::{Gnn, GnnConfig, GraphKind};

    /// `n` graphs of `k` nodes with random features, labelled supine (a label pseudo-labelling
    /// must replace).
    fn random_graphs(n: usize, k: usize, features: usize, seed: u64) -> GraphSet {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        GraphSet {
            keypoints: k,
            node_features: features,
            nodes: (0..n * k * features)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect(),
            labels: vec![Posture::Supine; n],
            subjects: vec![1; n],
            mats: vec![Mat::Air; n],
            variants: vec![0; n],
            variant_names: vec!["G".into()],
            ..GraphSet::default()
        }
    }

    fn logits(model: &Classifier, set: &GraphSet, i: usize, device: &Device) -> Vec<f32> {
        model
            .forward(set, &[i], device)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn pseudo_labels_keep_only_frames_every_member_names_alike() {
        let device = Device::flex();
        let (n, k, features) = (120, 5, 6);
        let plain = random_graphs(n, k, features, 1);
        let mirrored = random_graphs(n, k, features, 2);
        // Untrained members agree on a frame now and then. The device's seed is shared with
        // tests running beside this one, so the members are drawn until they agree on some
        // frames and not on all (the first draw nearly always does): the filter is then tested
        // on both kinds of frame, whatever weights came out.
        let draw = || -> Vec<Gnn> {
            (0..3)
                .map(|_| {
                    GnnConfig::new(GraphKind::Sage, features)
                        .with_hidden(vec![8, 4])
                        .init(&device)
                })
                .collect()
        };
        // What the filter should keep at threshold 0, computed member by member.
        let agreed = |members: &[Gnn]| -> Vec<(usize, Posture)> {
            let ensemble = Classifier::Ensemble(GnnEnsemble::new(members.to_vec()));
            (0..n)
                .filter_map(|i| {
                    let label =
                        most_probable(&probabilities(&logits(&ensemble, &plain, i, &device)));
                    members
                        .iter()
                        .all(|m| {
                            let member = Classifier::Graph(m.clone());
                            most_probable(&logits(&member, &plain, i, &device)) == label
                        })
                        .then_some((i, label))
                })
                .collect()
        };
        device.seed(3);
        let (members, expected) = (0..20)
            .map(|_| {
                let members = draw();
                let expected = agreed(&members);
                (members, expected)
            })
            .find(|(_, e)| !e.is_empty() && e.len() < n)
            .expect("20 draws of untrained members that agree on some frames, not all");
        let ensemble = Classifier::Ensemble(GnnEnsemble::new(members.clone()));
        let graphs = (plain, mirrored);
        let (kept, counts) = pseudo_label(&ensemble, &graphs, 0.0, &device);
        let m = expected.len();
        assert_eq!(kept.len(), 2 * m, "the frames and their mirror images");
        assert_eq!(counts.iter().sum::<usize>(), m);
        let per = k * features;
        for (j, &(i, label)) in expected.iter().enumerate() {
            assert_eq!(kept.labels[j], label);
            assert_eq!(
                kept.nodes[j * per..(j + 1) * per],
                graphs.0.nodes[i * per..(i + 1) * per]
            );
            assert_eq!(kept.labels[m + j], label.mirrored());
            assert_eq!(
                kept.nodes[(m + j) * per..(m + j + 1) * per],
                graphs.1.nodes[i * per..(i + 1) * per]
            );
        }
        // A single network labels every frame at threshold 0, and none above certainty.
        let single = Classifier::Graph(members[0].clone());
        assert_eq!(pseudo_label(&single, &graphs, 0.0, &device).0.len(), 2 * n);
        assert_eq!(pseudo_label(&ensemble, &graphs, 1.01, &device).0.len(), 0);
    }
}
