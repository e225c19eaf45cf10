//! Classification-to-Regression Weight Transfer.
//!
//! Phase 1 teaches the network where there is pressure: each pixel is classified pressure / no
//! pressure against [`target::pressure_mask`], with cross-entropy; the F-score says how well.
//! Phase 2 keeps every weight but the decoder's last layer ([`crate::model::Efd::transfer`])
//! and regresses the map itself with `a * L2 + b * (1 - SSIM)`.

pub mod loss;
pub mod target;

pub use loss::{FScore, classification_loss, fscore, regression_loss, regression_map};
pub use target::pressure_mask;
