//! Posture from keypoints: graphs of the shipped encoder's keypoints (or of pressure peaks),
//! graph classifiers (GCN, GAT, GraphSAGE) and ensembles of them and the raw-image CNN baseline, their training and
//! evaluation (accuracy, confusion, per subject), and the graph networks' ONNX export.

pub mod checkpoint;
pub mod classifier;
pub mod ensemble;
pub mod experiment;
pub mod export;
pub mod few_shot;
pub mod fit;
pub mod gat;
pub mod gcn;
pub mod graphs;
pub mod peaks;
pub mod sage;
pub mod stacked;
