//! What one frame costs a posture model in ONNX Runtime, as `spmkdposture` runs it (one
//! intra-op thread, one graph a run): microseconds a run of each model given, on the keypoint
//! graphs of a sample recording by the built-in encoder.
//!
//!     cargo bench -p spmkd-tests --bench posture_model -- MODEL.onnx...
//!             (paths from the repository's root, as cargo runs a bench in its package's
//!              directory; none given: the built-in posture model)
//!
//! A benchmark, not a test: it asserts nothing, it prints what it measured. The models take
//! turns, three rounds, so a slow spell of the machine does not fall on one of them; compare
//! models within one run. docs/RESULTS.md ("Ensembles") holds a run.

use std::path::PathBuf;
use std::time::Instant;

use spmkd_core::engine::{EngineOptions, ModelSource, PostureModel};
use spmkd_core::model_meta::ModelKind;
use spmkd_core::posture::Posture;
use spmkd_tests::{repo_root, sample};
use spmkd_training::posture::graphs::{GraphBuilder, NodeSource, graphs_of_file};

const RUNS: usize = 5000;
const WARM_UP: usize = 500;
const ROUNDS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; everything else is a model.
    let paths: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| repo_root().join(a))
        .collect();
    let sources: Vec<ModelSource> = if paths.is_empty() {
        vec![ModelSource::embedded(ModelKind::Posture)]
    } else {
        paths
            .iter()
            .map(|p| ModelSource::file(p).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    };
    let mut models: Vec<PostureModel> = sources
        .iter()
        .map(|s| PostureModel::new(s, &EngineOptions::cpu(1)).unwrap_or_else(|e| panic!("{e}")))
        .collect();

    let mut builder = GraphBuilder::new(NodeSource::Spmkd, None).expect("the built-in encoder");
    let set = graphs_of_file(&mut builder, &sample("1.txt"), Posture::Supine, 1)
        .expect("the sample recording's graphs");
    let per = set.keypoints * set.node_features;
    for m in &models {
        assert_eq!(
            (m.meta.keypoints, m.node_features),
            (set.keypoints, set.node_features),
            "{}: not a model of the built-in encoder's keypoints",
            m.info.origin
        );
    }
    let graph = |i: usize| {
        let i = i % set.len();
        &set.nodes[i * per..(i + 1) * per]
    };

    println!("| round | model | us a run |");
    println!("|---|---|---|");
    for round in 1..=ROUNDS {
        for m in &mut models {
            for i in 0..WARM_UP {
                m.run(graph(i)).expect("the model runs");
            }
            let start = Instant::now();
            for i in 0..RUNS {
                m.run(graph(i)).expect("the model runs");
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / RUNS as f64;
            println!("| {round} | {} | {us:.1} |", m.info.origin);
        }
    }
}
