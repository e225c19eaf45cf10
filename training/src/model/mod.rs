//! The SPMKD Encoder-Fuser-Decoder network, one module per file as in Burn's model zoo.
//!
//! So far: the encoder (keypoint heatmaps and the cell branches) and the fuser (soft-argmax);
//! the decoder (RebuildNet) and CRWT training follow.

pub mod conv_norm;
pub mod encoder;
pub mod fuser;
pub mod inverted_residual;

pub use conv_norm::{Activation, ConvNorm, ConvNormConfig};
pub use encoder::{Encoder, EncoderConfig, EncoderOutput};
pub use fuser::{FusedKeypoints, Fuser, FuserConfig};
pub use inverted_residual::{InvertedResidual, InvertedResidualConfig};

#[cfg(test)]
mod tests;
