//! spmkd-training: the training side of spmkd.
//!
//! For now it holds the data survey ([`survey`]); the Burn models, CRWT training, evaluation
//! and ONNX export land here next (see the project's issues).

pub mod survey;
