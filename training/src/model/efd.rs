//! The whole Encoder-Fuser-Decoder network and CRWT's weight transfer between its phases.

use burn::prelude::*;

use super::decoder::{Decoder, DecoderConfig};
use super::encoder::{Encoder, EncoderConfig};
use super::fuser::{Fuser, FuserConfig};

#[derive(Config, Debug)]
pub struct EfdConfig {
    /// Side `S` of the square model input.
    #[config(default = 64)]
    pub input_size: usize,
    /// Keypoints `k`.
    #[config(default = 32)]
    pub keypoints: usize,
    /// Features `f` per cell and per keypoint half.
    #[config(default = 16)]
    pub features: usize,
    /// Channels of the decoder branches.
    #[config(default = 16)]
    pub decoder_width: usize,
    /// Decoder ablation switches.
    #[config(default = true)]
    pub dilation: bool,
    #[config(default = true)]
    pub exchange: bool,
    /// The input framed on the body: each frame placed in the square with its load, not the
    /// mat, in the middle (`spmkd_core::preprocess::preprocess_framed_into`), in training and
    /// wherever the model runs. `None` in runs made before it existed (the Config derive
    /// passes no serde default, and an `Option` may be missing): the mat in the middle.
    #[config(default = "None")]
    pub body_centred: Option<bool>,
}

impl EfdConfig {
    /// [`Self::body_centred`], `None` read as mat-centred.
    pub fn is_body_centred(&self) -> bool {
        self.body_centred.unwrap_or(false)
    }
}

/// CRWT's two phases: what the decoder's last layer outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Two channels: logits of "no pressure" and "pressure" per pixel.
    Classification,
    /// One channel: the normalized pressure map.
    Regression,
}

impl Phase {
    pub fn out_channels(self) -> usize {
        match self {
            Phase::Classification => 2,
            Phase::Regression => 1,
        }
    }
}

impl EfdConfig {
    pub fn encoder(&self) -> EncoderConfig {
        EncoderConfig::new()
            .with_input_size(self.input_size)
            .with_keypoints(self.keypoints)
            .with_features(self.features)
    }

    pub fn fuser(&self) -> FuserConfig {
        FuserConfig::new().with_features(self.features)
    }

    pub fn decoder(&self, phase: Phase) -> DecoderConfig {
        DecoderConfig::new(self.input_size, self.keypoints, self.features)
            .with_width(self.decoder_width)
            .with_out_channels(phase.out_channels())
            .with_dilation(self.dilation)
            .with_exchange(self.exchange)
    }

    pub fn init(&self, phase: Phase, device: &Device) -> Efd {
        Efd {
            encoder: self.encoder().init(device),
            fuser: self.fuser().init(device),
            decoder: self.decoder(phase).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Efd {
    pub encoder: Encoder,
    pub fuser: Fuser,
    pub decoder: Decoder,
}

/// What the encoder and fuser give, for a batch of `B`: all the plugin needs for keypoints,
/// and the decoder's input.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// `[B, k, 3]`: value, x, y per keypoint (x, y as fractions of the input side).
    pub keypoints: Tensor<3>,
    /// `[B, k]`: the peak of each keypoint's probability map.
    pub confidence: Tensor<2>,
    /// `[B, k, 2f]`: the fused vector the decoder rebuilds the map from.
    pub fused: Tensor<3>,
}

/// What one forward pass gives, for a batch of `B`.
#[derive(Debug, Clone)]
pub struct EfdOutput {
    /// `[B, k, 3]`: value, x, y per keypoint (x, y as fractions of the input side).
    pub keypoints: Tensor<3>,
    /// `[B, k]`: the peak of each keypoint's probability map.
    pub confidence: Tensor<2>,
    /// `[B, out, S, S]`: the decoder's raw output (phase 1 logits; phase 2 before the sigmoid).
    pub output: Tensor<4>,
}

impl Efd {
    /// Encoder and fuser: keypoints, confidences and the fused vector.
    pub fn encode(&self, input: Tensor<4>) -> Encoded {
        Self::encode_with(&self.encoder, &self.fuser, input)
    }

    /// [`Efd::encode`] from the two modules it uses (the encoder's ONNX export has no decoder).
    pub fn encode_with(encoder: &Encoder, fuser: &Fuser, input: Tensor<4>) -> Encoded {
        let encoded = encoder.forward(input);
        // max_dim_with_indices rather than max_dim: the one the ONNX exporter lowers.
        let (peak, _) = encoded.probabilities.clone().max_dim_with_indices(2);
        let confidence = peak.squeeze_dim(2);
        let fused = fuser.forward(encoded);
        Encoded {
            keypoints: fused.keypoints,
            confidence,
            fused: fused.fused,
        }
    }

    pub fn forward(&self, input: Tensor<4>) -> EfdOutput {
        let encoded = self.encode(input);
        EfdOutput {
            keypoints: encoded.keypoints,
            confidence: encoded.confidence,
            output: self.decoder.forward(encoded.fused),
        }
    }

    /// Classification-to-Regression Weight Transfer: every weight is kept except the decoder's
    /// last layer, which is replaced by a fresh one with `phase`'s output channels.
    pub fn transfer(self, config: &EfdConfig, phase: Phase, device: &Device) -> Efd {
        Efd {
            decoder: Decoder {
                head: config.decoder(phase).head(device),
                ..self.decoder
            },
            ..self
        }
    }
}
