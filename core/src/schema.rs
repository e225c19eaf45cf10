//! The per-frame record: what `spmkdjsonenc` writes (one JSON object per line) and what the
//! pose meta's `spmkd/pose` structure holds, field for field.

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning or goes away (adding an optional field does not).
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the `GstStructure` inside the `SpmkdPoseMeta` custom meta.
pub const POSE_STRUCTURE: &str = "spmkd/pose";
/// Name under which the custom meta is registered.
pub const POSE_META: &str = "SpmkdPoseMeta";

/// Field names shared by the meta structure and the JSON record.
pub mod fields {
    pub const SCHEMA: &str = "schema";
    pub const PTS_NS: &str = "pts_ns";
    pub const DURATION_NS: &str = "duration_ns";
    pub const RUNNING_TIME_NS: &str = "running_time_ns";
    pub const WIDTH: &str = "width";
    pub const HEIGHT: &str = "height";
    pub const MODEL: &str = "model";
    pub const INFERENCE_US: &str = "inference_us";
    pub const STALE: &str = "stale";
    pub const QUALITY: &str = "quality";
    pub const POSTURE: &str = "posture";
    pub const POSTURE_PROBABILITIES: &str = "posture_probabilities";
    pub const KEYPOINTS: &str = "keypoints";
    /// The keypoints' encoder features, `k x f` floats row by row (one flat float array in the
    /// meta structure too).
    pub const FEATURES: &str = "features";

    /// In the meta structure the keypoints are four parallel float arrays (one entry per
    /// keypoint), which C and Python read without parsing nested structures.
    pub const X: &str = "x";
    pub const Y: &str = "y";
    pub const CONFIDENCE: &str = "confidence";
    pub const PRESSURE: &str = "pressure";
}

/// One keypoint in sensor cells of the frame it was found in (see
/// [`crate::preprocess`] for the coordinate convention).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    /// Peak of the keypoint's spatial softmax, in `(0, 1]`.
    pub confidence: f32,
    /// Normalized pressure under the keypoint, in `[0, 1]`.
    pub pressure: f32,
}

/// The 3-class posture and its probabilities, when a posture model has run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostureEstimate {
    pub label: crate::posture::Posture,
    /// In the order of [`crate::posture::Posture::ALL`].
    pub probabilities: Vec<f32>,
}

/// The line `spmkdjsonenc end-record=true` writes at the end of a stream (EOS): a reader at the
/// other end of a connection can tell a stream that ended from one that broke off (a closed
/// connection looks the same either way), and count what it received against `records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndRecord {
    /// Always true: what tells this line from a pose record.
    pub end: bool,
    /// Pose records written before it, in this stream.
    pub records: u64,
}

impl EndRecord {
    pub fn new(records: u64) -> Self {
        Self { end: true, records }
    }

    /// One JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an EndRecord always serializes")
    }

    /// The end record on this line, if it is one.
    pub fn from_json_line(line: &str) -> Option<Self> {
        serde_json::from_str::<Self>(line).ok().filter(|r| r.end)
    }
}

/// Everything known about one frame's pose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoseRecord {
    pub schema: u32,
    /// Buffer timestamps, nanoseconds. The PTS is the buffer's own, in its segment: it starts
    /// again at 0 with each file of a `concat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pts_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    /// The PTS as running time (the pipeline's timeline, which goes on across the files of a
    /// `concat` and is what alerts are timed by); written by `spmkdjsonenc`, absent in the meta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_time_ns: Option<u64>,
    /// The sensor grid the coordinates are in.
    pub width: u32,
    pub height: u32,
    /// Model id (`spmkd.version` of the encoder).
    pub model: String,
    /// Time the encoder took for this frame, microseconds.
    pub inference_us: u64,
    /// The keypoints were carried over from an earlier frame (inference-interval).
    pub stale: bool,
    /// SSIM of the reconstruction against the input, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posture: Option<PostureEstimate>,
    pub keypoints: Vec<Keypoint>,
    /// The encoder's `f` features of each keypoint, `k x f` row by row: with x, y, confidence
    /// and pressure, the nodes a posture graph is made of. Empty when not known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<f32>,
}

impl PoseRecord {
    /// Features per keypoint (0 when there are none).
    pub fn features_per_keypoint(&self) -> usize {
        self.features
            .len()
            .checked_div(self.keypoints.len())
            .unwrap_or(0)
    }

    /// One JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a PoseRecord always serializes")
    }

    pub fn from_json_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// The record on a frame scaled to `width x height`: coordinates scale with the grid.
    pub fn rescaled(mut self, width: u32, height: u32) -> Self {
        let sx = width as f32 / self.width.max(1) as f32;
        let sy = height as f32 / self.height.max(1) as f32;
        for k in &mut self.keypoints {
            k.x *= sx;
            k.y *= sy;
        }
        (self.width, self.height) = (width, height);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::Posture;

    #[test]
    fn json_round_trip() {
        let rec = PoseRecord {
            schema: SCHEMA_VERSION,
            pts_ns: Some(2_000_000_000),
            duration_ns: Some(1_000_000_000),
            running_time_ns: None,
            width: 32,
            height: 64,
            model: "spmkd-enc-s64-k32".into(),
            inference_us: 210,
            stale: false,
            quality: Some(0.91),
            posture: Some(PostureEstimate {
                label: Posture::Left,
                probabilities: vec![0.1, 0.8, 0.1],
            }),
            keypoints: vec![Keypoint {
                x: 10.25,
                y: 40.5,
                confidence: 0.3,
                pressure: 0.7,
            }],
            features: vec![0.5, -1.25],
        };
        let line = rec.to_json_line();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"posture\":{\"label\":\"left\""), "{line}");
        assert_eq!(PoseRecord::from_json_line(&line).unwrap(), rec);
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let line = r#"{"schema":1,"width":27,"height":64,"model":"m","inference_us":5,"stale":true,"keypoints":[]}"#;
        let rec = PoseRecord::from_json_line(line).unwrap();
        assert_eq!((rec.pts_ns, rec.quality, rec.posture), (None, None, None));
        assert!(rec.features.is_empty());
        assert!(PoseRecord::from_json_line(r#"{"schema":1}"#).is_err());
    }
}
