//! What `spmkdmqttsink` publishes and `spmkd-ward` reads: the topics of a bed under a prefix,
//! and their JSON payloads.
//!
//! - `<prefix>/<bed>/pose`: [`PoseMessage`], rate-limited, QoS 0 (the next one replaces it);
//! - `<prefix>/<bed>/posture`: [`EventMessage`] of each `spmkd-posture` change, QoS 1, retained
//!   (a consumer that connects later learns the current posture at once);
//! - `<prefix>/<bed>/alert`: [`EventMessage`] of every other event (`spmkd-reposition`,
//!   `spmkd-repositioned`, `spmkd-bed-exit`, `spmkd-edge`, `spmkd-exposure`, `spmkd-occupancy`),
//!   QoS 1;
//! - `<prefix>/<bed>/status`: [`StatusMessage`], retained; `offline` is the connection's last
//!   will, so a bed whose process died reads offline too.
//!
//! Postures and alerts are delivered at least once, in order: each carries `seq`, counted per
//! bed from 1 and kept across restarts (the sink's queue on disk), so a consumer drops a message
//! whose `seq` it has seen (a duplicate after a reconnect) and a gap in `seq` is a message the
//! queue's bound dropped, which the status counts. A queue lost and made anew counts from 1
//! again under a new `epoch` (announced on the status): `(epoch, seq)` is what is unique.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema::{PoseRecord, SCHEMA_VERSION};

pub const POSE: &str = "pose";
pub const POSTURE: &str = "posture";
pub const ALERT: &str = "alert";
pub const STATUS: &str = "status";

/// The largest payload spmkd publishes or takes, bytes: far above any pose, event or status a
/// sink makes (a pose of 1,024 keypoints is about 60 KB), far below what a client on the broker
/// can send. A consumer refuses and counts a larger message, and its session goes on.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// The topic of `bed`'s `kind` ([`POSE`], [`POSTURE`], [`ALERT`], [`STATUS`]).
pub fn topic(prefix: &str, bed: &str, kind: &str) -> String {
    format!("{}/{bed}/{kind}", prefix.trim_end_matches('/'))
}

/// Whether `bed` can stand in a topic: not empty, no `/`, no wildcards, no NUL.
pub fn valid_bed(bed: &str) -> bool {
    !bed.is_empty() && !bed.contains(['/', '+', '#', '\0'])
}

/// `prefix` as topics use it (without trailing `/`), if it can head a topic: not empty, no
/// wildcards, no NUL.
pub fn topic_prefix(prefix: &str) -> Option<&str> {
    let prefix = prefix.trim_end_matches('/');
    (!prefix.is_empty() && !prefix.contains(['+', '#', '\0'])).then_some(prefix)
}

/// `<prefix>/<bed>/<kind>` split back, if `topic` is one.
pub fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = topic.strip_prefix(prefix.trim_end_matches('/'))?;
    let (bed, kind) = rest.strip_prefix('/')?.split_once('/')?;
    (valid_bed(bed) && !kind.contains('/')).then_some((bed, kind))
}

/// The wall-clock time now, milliseconds since the Unix epoch.
pub fn wall_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A posture change or an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    pub schema: u32,
    pub bed: String,
    /// Per bed, from 1, in the order of the events.
    pub seq: u64,
    /// When the sink's queue was made (ms since the Unix epoch): a queue made anew (its
    /// directory lost) counts `seq` from 1 again under a new epoch, so `(epoch, seq)` tells
    /// every event of a bed apart. Absent from sinks older than epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The name of the element message it was on the bus: `spmkd-posture`, `spmkd-reposition`...
    pub event: String,
    /// When it happened, as running time and as the PTS of the stream's segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_time_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pts_ns: Option<u64>,
    /// When the sink took it, milliseconds since the Unix epoch.
    pub wall_time_ms: u64,
    /// The bus message's other fields: names with `_` for `-`, times in ns with a `_ns` suffix
    /// (`previous_duration_ns`), strings, numbers and booleans as they are.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl EventMessage {
    pub fn new(bed: &str, seq: u64, event: &str) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            bed: bed.to_owned(),
            seq,
            epoch: None,
            event: event.to_owned(),
            running_time_ns: None,
            pts_ns: None,
            wall_time_ms: wall_time_ms(),
            fields: Map::new(),
        }
    }

    /// The topic kind it goes to: [`POSTURE`] for posture changes, [`ALERT`] for the rest.
    pub fn kind(&self) -> &'static str {
        if self.event == "spmkd-posture" {
            POSTURE
        } else {
            ALERT
        }
    }

    /// A string field (`posture`, `previous`...).
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }
}

/// A frame's pose: its record without the encoder features (the keypoints, posture and monitor
/// are what a consumer reads; the features would make each message kilobytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoseMessage {
    pub bed: String,
    pub wall_time_ms: u64,
    #[serde(flatten)]
    pub record: PoseRecord,
}

/// Whether a bed's sink is connected, and what its queue holds and lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusMessage {
    pub bed: String,
    /// `online` or `offline`.
    pub state: String,
    pub wall_time_ms: u64,
    /// Postures and alerts waiting to be delivered.
    #[serde(default)]
    pub queued: u64,
    /// Postures and alerts the queue's bound dropped since the queue was made.
    #[serde(default)]
    pub dropped: u64,
    /// The queue's epoch ([`EventMessage::epoch`]): the events that follow carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_heads_a_topic_without_wildcards() {
        assert_eq!(topic_prefix("ward/4/"), Some("ward/4"));
        for bad in ["", "/", "ward/+", "ward/#", "a\0b"] {
            assert_eq!(topic_prefix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn topics_split_back_into_bed_and_kind() {
        let t = topic("ward/3/", "bed-12", POSTURE);
        assert_eq!(t, "ward/3/bed-12/posture");
        assert_eq!(parse_topic("ward/3", &t), Some(("bed-12", POSTURE)));
        assert_eq!(parse_topic("ward/3", "ward/3/bed-12"), None);
        assert_eq!(parse_topic("ward/3", "ward/4/bed-12/pose"), None);
        assert_eq!(parse_topic("ward/3", "ward/3/a/b/pose"), None);
        assert!(!valid_bed("a/b") && !valid_bed("") && !valid_bed("+") && valid_bed("12"));
    }

    #[test]
    fn an_event_round_trips_with_its_own_fields_flat() {
        let mut m = EventMessage::new("12", 7, "spmkd-posture");
        m.running_time_ns = Some(5_000_000_000);
        m.fields.insert("posture".into(), "left".into());
        m.fields.insert("previous_duration_ns".into(), 3u64.into());
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""posture":"left""#), "{json}");
        let back: EventMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!((back.kind(), back.text("posture")), (POSTURE, Some("left")));
        assert_eq!(EventMessage::new("12", 8, "spmkd-bed-exit").kind(), ALERT);
    }
}
