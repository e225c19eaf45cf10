//! The SPMKD Encoder-Fuser-Decoder network, one module per file as in Burn's model zoo.
//!
//! encoder (keypoint heatmaps and cell branches) -> fuser (soft-argmax) -> decoder (RebuildNet:
//! expansion and exchange layers); [`efd`] puts them together and holds CRWT's weight transfer.

pub mod conv_norm;
pub mod cost;
pub mod decoder;
pub mod efd;
pub mod encoder;
pub mod exchange;
pub mod expansion;
pub mod fuser;
pub mod inverted_residual;

pub use conv_norm::{Activation, ConvNorm, ConvNormConfig};
pub use decoder::{Decoder, DecoderConfig};
pub use efd::{Efd, EfdConfig, EfdOutput, Encoded, Phase};
pub use encoder::{Encoder, EncoderConfig, EncoderOutput};
pub use fuser::{FusedKeypoints, Fuser, FuserConfig};
pub use inverted_residual::{InvertedResidual, InvertedResidualConfig};

#[cfg(test)]
mod tests;
