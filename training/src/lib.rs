//! spmkd-training: the training side of spmkd.
//!
//! - [`model`]: the SPMKD network in Burn 0.22 (so far the encoder and the fuser);
//! - [`survey`]: frames, artifacts and usable frames of the PmatData tree.
//!
//! The decoder, CRWT training, evaluation and ONNX export land here next (issue 3).

pub mod model;
pub mod survey;
