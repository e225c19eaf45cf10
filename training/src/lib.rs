//! spmkd-training: the training side of spmkd.
//!
//! - [`model`]: the SPMKD Encoder-Fuser-Decoder network in Burn 0.22;
//! - [`crwt`]: Classification-to-Regression Weight Transfer: targets, losses, F-score;
//! - [`ssim`]: structural similarity, the regression loss's second term and a metric;
//! - [`survey`]: frames, artifacts and usable frames of the PmatData tree;
//! - [`augment`], [`adapt`]: label-free augmentation, and adaptation to a new mat without labels;
//! - [`moments`]: per-channel statistics for recalibrating batch norms (AdaBN);
//! - [`kernels`]: faster convolution kernels for Burn's CPU backend, with their backward passes;
//! - [`memory`]: malloc settings that keep a training step's freed tensors for the next step.

pub mod adapt;
pub mod adaptation;
pub mod augment;
pub mod calibrate;
pub mod convention;
pub mod crwt;
pub mod data;
pub mod eval;
pub mod export;
pub mod kernels;
pub mod keypoints;
pub mod memory;
pub mod model;
pub mod moments;
pub mod plot;
pub mod posture;
pub mod progress;
pub mod ssim;
pub mod survey;
pub mod train;
