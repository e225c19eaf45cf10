//! The per-frame record: what `spmkdjsonenc` writes (one JSON object per line) and what the
//! pose meta's `spmkd/pose` structure holds, field for field.

use serde::{Deserialize, Serialize};

use crate::orientation::Orientation;
use crate::posture::Posture;

/// Bumped when a field changes meaning or goes away (adding an optional field does not).
///
/// - 1: pose, posture.
/// - 2: `posture.label` may also be `none` (no one on the mat) or `uncertain` (a frame too far
///   from what the models know); `monitor` (occupancy, movement, exposure, trust). Records of
///   schema 1 read as schema 2 records without a monitor.
pub const SCHEMA_VERSION: u32 = 2;

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
    pub const CONFIDENCE_REFERENCE: &str = "confidence_reference";
    pub const LAYOUT: &str = "layout";
    /// Two floats (an array in the meta structure and in JSON).
    pub const LAYOUT_RAMP: &str = "layout_ramp";
    /// The orientation `spmkdpose` brought the frame into the models' convention with (a name
    /// of [`crate::orientation::Orientation`]); absent: the identity.
    pub const ORIENTATION: &str = "orientation";
    /// Whether someone is on the mat by this frame alone ([`crate::monitor::FrameOccupancy`]).
    pub const OCCUPIED: &str = "occupied";
    pub const POSTURE: &str = "posture";
    pub const POSTURE_PROBABILITIES: &str = "posture_probabilities";
    pub const KEYPOINTS: &str = "keypoints";
    /// The keypoints' encoder features, `k x f` floats row by row (one flat float array in the
    /// meta structure too).
    pub const FEATURES: &str = "features";
    /// The monitor's findings: a nested structure in the meta, an object in JSON, with the
    /// fields of [`super::MonitorRecord`].
    pub const MONITOR: &str = "monitor";
    /// Meta only (too large for a line a frame): per cell, seconds under load, `W x H` floats.
    pub const EXPOSURE_MAP: &str = "exposure_map";

    /// In the meta structure the keypoints are four parallel float arrays (one entry per
    /// keypoint), which C and Python read without parsing nested structures.
    pub const X: &str = "x";
    pub const Y: &str = "y";
    pub const CONFIDENCE: &str = "confidence";
    pub const PRESSURE: &str = "pressure";

    /// Fields of the nested `monitor` structure in the meta: those of [`super::MonitorRecord`],
    /// its regions as parallel arrays (one entry per region) as the keypoints are.
    pub mod monitor {
        pub const STRUCTURE: &str = "spmkd/monitor";
        pub const OCCUPIED: &str = "occupied";
        pub const CONTACT: &str = "contact";
        pub const EDGE: &str = "edge";
        pub const EDGE_SIDE: &str = "edge_side";
        pub const AT_EDGE: &str = "at_edge";
        pub const FLOOR: &str = "floor";
        pub const NOISE: &str = "noise";
        pub const MOVEMENT: &str = "movement";
        pub const MOVED: &str = "moved";
        pub const STILL_NS: &str = "still_ns";
        pub const PRESSURE_CHANGE: &str = "pressure_change";
        pub const KEYPOINT_SHIFT: &str = "keypoint_shift";
        pub const LOADED_CELLS: &str = "loaded_cells";
        pub const OFFLOADED: &str = "offloaded";
        pub const TRUST: &str = "trust";
        pub const REGION_X: &str = "region_x";
        pub const REGION_Y: &str = "region_y";
        pub const REGION_CELLS: &str = "region_cells";
        pub const REGION_UNDER_LOAD_NS: &str = "region_under_load_ns";
        pub const REGION_DOSE: &str = "region_dose";
    }
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
    pub label: PostureLabel,
    /// In the order of [`crate::posture::Posture::ALL`]; empty when the label is `none`.
    pub probabilities: Vec<f32>,
}

/// A posture, or why there is none: the `label` of a [`PostureEstimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PostureLabel {
    Posture(Posture),
    Withheld(Withheld),
}

/// Why a frame has no posture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Withheld {
    /// No one is on the mat.
    None,
    /// The frame's trust is below the posture element's threshold.
    Uncertain,
}

impl PostureLabel {
    pub const NONE: PostureLabel = PostureLabel::Withheld(Withheld::None);
    pub const UNCERTAIN: PostureLabel = PostureLabel::Withheld(Withheld::Uncertain);

    /// The posture class, if one was given.
    pub fn posture(self) -> Option<Posture> {
        match self {
            PostureLabel::Posture(p) => Some(p),
            PostureLabel::Withheld(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PostureLabel::Posture(p) => p.as_str(),
            PostureLabel::Withheld(Withheld::None) => "none",
            PostureLabel::Withheld(Withheld::Uncertain) => "uncertain",
        }
    }
}

impl From<Posture> for PostureLabel {
    fn from(p: Posture) -> Self {
        PostureLabel::Posture(p)
    }
}

impl std::fmt::Display for PostureLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PostureLabel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::NONE),
            "uncertain" => Ok(Self::UNCERTAIN),
            other => other.parse::<Posture>().map(Self::Posture).map_err(|_| {
                format!("unknown posture {s:?}: expected supine, left, right, none or uncertain")
            }),
        }
    }
}

/// What `spmkdmonitor` found at a frame (schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorRecord {
    /// Someone is on the mat (after hysteresis).
    pub occupied: bool,
    /// Share of the cells in contact, this frame.
    pub contact: f32,
    /// Share of the load on the more loaded long edge (outer columns), and which edge
    /// (`left`: column 0).
    pub edge: f32,
    pub edge_side: String,
    /// The edge warning is on: the load has reached the monitor's edge share while occupied
    /// and not yet fallen well below it.
    pub at_edge: bool,
    /// The mat's estimated noise floor and noise, in the frame's units.
    pub floor: f32,
    pub noise: f32,
    /// Movement score in `[0, 1]` (the larger of the load change and the keypoint displacement
    /// as a share of half the grid's diagonal), whether it passed the threshold, and time
    /// since the last frame that did.
    pub movement: f32,
    pub moved: bool,
    pub still_ns: u64,
    /// Share of the load that moved since the last frame.
    pub pressure_change: f32,
    /// Confidence-weighted keypoint displacement in cells since the last frame with computed
    /// keypoints; absent on stale frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypoint_shift: Option<f32>,
    /// Cells under load now, and the contact regions longest under load.
    pub loaded_cells: u32,
    pub regions: Vec<ExposedRegion>,
    /// A movement in bed unloaded enough of what was loaded to count as a reposition, or the bed
    /// has now been empty for the offload time.
    pub offloaded: bool,
    /// How far the models can be trusted on this frame, `[0, 1]` (0 on an empty mat).
    pub trust: f32,
}

/// A contact region under load ([`crate::monitor::Region`] as recorded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExposedRegion {
    /// Centre in cells.
    pub x: f32,
    pub y: f32,
    pub cells: u32,
    /// Longest time under load of its cells, ns.
    pub under_load_ns: u64,
    /// Load x time, in load-scale seconds.
    pub dose: f32,
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
    /// The encoder's `spmkd.confidence_reference` (its typical mean keypoint confidence), what
    /// trust measures this frame's confidence against; absent for models without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_reference: Option<f32>,
    /// How the keypoints lie head to foot against the encoder's `spmkd.layout_reference`, in
    /// `[-1, 1]` (1: as on its training frames; [`crate::layout::agreement`]); absent for models
    /// without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<f32>,
    /// The encoder's `spmkd.layout_ramp` (where trust's layout evidence rises from 0 to 1),
    /// carried for trust as `confidence_reference` is; absent for models without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout_ramp: Option<(f32, f32)>,
    /// How `spmkdpose` laid the frame before the model (`spmkdpose orientation`): the keypoints
    /// are in the stream's own cells all the same, and a posture model reads them through it.
    /// Absent: the identity.
    #[serde(default, skip_serializing_if = "Orientation::is_identity")]
    pub orientation: Orientation,
    /// Whether someone is on the mat by this frame alone (its contact against its own levels,
    /// [`crate::monitor::FrameOccupancy`]); absent where not measured. `spmkdposture` gives an
    /// empty frame `none` by it when no `spmkdmonitor` (with its hysteresis) is upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupied: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posture: Option<PostureEstimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorRecord>,
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

    /// The keypoints as the encoder saw them, laid in the models' convention (through
    /// [`Self::orientation`]), into `out`; returns the size of the grid they are then in. What a
    /// posture model reads: the keypoints themselves stay in the stream's cells.
    pub fn laid_keypoints(&self, out: &mut Vec<Keypoint>) -> (u32, u32) {
        let (w, h) = (self.width as usize, self.height as usize);
        let o = self.orientation;
        out.clear();
        out.extend(self.keypoints.iter().map(|k| {
            let (x, y) = o.to_oriented(k.x, k.y, w, h);
            Keypoint { x, y, ..*k }
        }));
        let (w, h) = o.size(w, h);
        (w as u32, h as u32)
    }

    /// The record on a frame scaled to `width x height`: coordinates scale with the grid.
    pub fn rescaled(mut self, width: u32, height: u32) -> Self {
        let sx = width as f32 / self.width.max(1) as f32;
        let sy = height as f32 / self.height.max(1) as f32;
        for k in &mut self.keypoints {
            k.x *= sx;
            k.y *= sy;
        }
        for r in self.monitor.iter_mut().flat_map(|m| &mut m.regions) {
            r.x *= sx;
            r.y *= sy;
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
            confidence_reference: Some(0.125),
            layout: Some(0.875),
            layout_ramp: Some((0.625, 0.8125)),
            orientation: Orientation::FlipHorizontal,
            occupied: Some(true),
            posture: Some(PostureEstimate {
                label: Posture::Left.into(),
                probabilities: vec![0.1, 0.8, 0.1],
            }),
            monitor: Some(MonitorRecord {
                occupied: true,
                contact: 0.4,
                edge: 0.1,
                edge_side: "left".into(),
                at_edge: false,
                floor: 44.0,
                noise: 2.0,
                movement: 0.05,
                moved: false,
                still_ns: 3_000_000_000,
                pressure_change: 0.05,
                keypoint_shift: None,
                loaded_cells: 200,
                regions: vec![ExposedRegion {
                    x: 15.5,
                    y: 40.0,
                    cells: 30,
                    under_load_ns: 60_000_000_000,
                    dose: 12.5,
                }],
                offloaded: false,
                trust: 0.9,
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
        assert!(line.contains("\"orientation\":\"horiz\""), "{line}");
        assert_eq!(PoseRecord::from_json_line(&line).unwrap(), rec);
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let line = r#"{"schema":1,"width":27,"height":64,"model":"m","inference_us":5,"stale":true,"keypoints":[]}"#;
        let rec = PoseRecord::from_json_line(line).unwrap();
        assert_eq!((rec.pts_ns, rec.quality, &rec.posture), (None, None, &None));
        assert!(rec.features.is_empty());
        assert_eq!(
            (rec.orientation, rec.occupied),
            (Orientation::Identity, None)
        );
        assert!(!rec.to_json_line().contains("orientation"));
        assert!(PoseRecord::from_json_line(r#"{"schema":1}"#).is_err());
        let turned = line.replace("\"keypoints\"", "\"orientation\":\"180\",\"keypoints\"");
        let rec = PoseRecord::from_json_line(&turned).unwrap();
        assert_eq!(rec.orientation, Orientation::Rotate180);
        assert!(PoseRecord::from_json_line(&turned.replace("\"180\"", "\"sideways\"")).is_err());
    }

    #[test]
    fn schema_1_records_read_and_withheld_postures_round_trip() {
        let v1 = r#"{"schema":1,"width":32,"height":64,"model":"m","inference_us":5,"stale":false,"posture":{"label":"right","probabilities":[0.1,0.1,0.8]},"keypoints":[]}"#;
        let rec = PoseRecord::from_json_line(v1).unwrap();
        assert_eq!(rec.posture.unwrap().label, Posture::Right.into());
        assert_eq!(rec.monitor, None);
        for (label, text) in [
            (PostureLabel::NONE, "none"),
            (PostureLabel::UNCERTAIN, "uncertain"),
        ] {
            let line = v1.replace("\"right\"", &format!("\"{text}\""));
            let rec = PoseRecord::from_json_line(&line).unwrap();
            assert_eq!(rec.posture.as_ref().unwrap().label, label);
            assert_eq!(label.posture(), None);
            assert_eq!(text.parse::<PostureLabel>(), Ok(label));
            assert!(
                rec.to_json_line()
                    .contains(&format!("\"label\":\"{text}\""))
            );
        }
        assert!("sitting".parse::<PostureLabel>().is_err());
        assert!(PoseRecord::from_json_line(&v1.replace("\"right\"", "\"prone\"")).is_err());
    }
}
