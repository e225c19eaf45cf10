//! What an adapted run was adapted from and to: a part of its [`crate::train::TrainingConfig`]
//! (`config.json`), made by [`crate::adapt`]. Its own file, so the training config needs
//! nothing of the adaptation's code.

use burn::prelude::*;
use spmkd_core::orientation::Orientation;

/// What an adapted run was adapted from and to (kept in its `config.json`).
#[derive(Config, Debug, PartialEq)]
pub struct Adaptation {
    /// The run whose phase-2 model the adaptation starts from, as given.
    pub base: String,
    /// The base model's `spmkd.version` and `spmkd.trained_on`.
    pub base_version: String,
    pub base_trained_on: String,
    /// The unlabelled recordings (files, after directories were expanded).
    pub recordings: Vec<String>,
    /// How their frames were laid before training ([`spmkd_core::orientation`]).
    #[config(default = "Orientation::Identity")]
    pub orientation: Orientation,
    /// After phase 2 the encoder's batch norms were measured afresh on this many of the frames
    /// and their mirror images ([`crate::adapt::recalibrate_encoder`]). (An `Option`, so the configs of
    /// adaptations made before it still read.)
    pub encoder_recalibrated_on: Option<usize>,
}

impl Adaptation {
    /// The `spmkd.adapted_on` text: what, how much (`epochs` of phase 2, on `frames`), and that
    /// no label was used.
    pub fn describe(&self, epochs: usize, frames: Option<usize>) -> String {
        let first = self
            .recordings
            .first()
            .map_or("", String::as_str)
            .to_owned();
        let more = match self.recordings.len() {
            0 | 1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        let frames = frames.map_or(String::new(), |n| format!(", {n} frames"));
        format!(
            "{} recording(s) without labels ({first}{more}{frames}{}), phase 2 for {} epochs from {}{}",
            self.recordings.len(),
            if self.orientation.is_identity() {
                String::new()
            } else {
                format!(", laid {}", self.orientation)
            },
            epochs,
            self.base_version,
            self.encoder_recalibrated_on
                .map_or(String::new(), |n| format!(
                    ", encoder batch norms measured on {n} of them"
                ))
        )
    }
}
