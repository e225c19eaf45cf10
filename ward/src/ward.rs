//! The state of a ward as its messages tell it (no MQTT here): per bed, who is connected, the
//! posture and since when, when the next reposition is due, the alerts still open, and what the
//! per-bed `seq` says about duplicates and losses.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

use spmkd_core::broker::{self, EventMessage, StatusMessage};

/// What one bed's messages say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bed {
    /// `online`, `offline`, or empty before any status.
    pub status: String,
    pub posture: Option<String>,
    /// Wall-clock ms when the posture began, or when the person was last repositioned in it.
    pub since_ms: Option<u64>,
    /// Alerts since the last posture change or reposition, by event name, oldest first.
    pub open_alerts: Vec<String>,
    /// The highest `seq` seen, of [`Bed::epoch`].
    pub last_seq: u64,
    /// The epoch of the bed's queue its messages last carried.
    pub epoch: Option<u64>,
    pub duplicates: u64,
    /// `seq` numbers never seen (the sink's queue bound dropped them).
    pub missing: u64,
    /// What the sink's status says its queue dropped.
    pub dropped: u64,
    /// Times the bed's sequence was taken up afresh: a new epoch (its sink's queue was made
    /// anew), or a `seq` further than [`SEQ_WINDOW`] from the last.
    pub restarts: u64,
    /// Alerts not kept open: [`MAX_OPEN_ALERTS`] were open already.
    pub refused_alerts: u64,
    /// When this program last heard of the bed, its wall-clock ms.
    pub heard_ms: u64,
}

/// The most beds a ward keeps: far more than one broker's prefix serves (a ward of 500 beds is
/// the documented large case), far fewer than a client inventing bed names can make.
pub const MAX_BEDS: usize = 10_000;

/// The most alerts a bed keeps open at once: every kind spmkd raises is a handful; a client
/// inventing event names gets no more.
pub const MAX_OPEN_ALERTS: usize = 16;

/// A bed silent this long (ms) is forgotten ([`Ward::forget_silent`]): a day.
pub const FORGET_MS: u64 = 24 * 3_600_000;

/// How far (either way) an event's `seq` may lie from the last one seen and still count as
/// the same sequence: far more than a sink's queue holds (its journal bound), far less than a
/// forged `seq` such as 2^64 - 1. Beyond it the bed's sequence starts afresh from the event:
/// one message far ahead cannot mark every real one after it a duplicate, nor one far behind
/// count billions missing.
pub const SEQ_WINDOW: u64 = 1_000_000;

/// What a message was, once applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Event(Box<EventMessage>),
    /// An event whose `seq` was seen already (delivered again after a reconnect).
    Duplicate(Box<EventMessage>),
    Status(StatusMessage),
    Pose,
    /// Not a topic of a bed under the prefix.
    Ignored,
    /// A bed's topic with a payload that does not parse.
    Invalid(String),
    /// A message of a new bed when [`MAX_BEDS`] are kept (counted in `refused_beds`).
    Refused,
    /// A bed's topic with a payload of this many bytes, above [`broker::MAX_PAYLOAD`]: not
    /// spmkd's, not read (counted in `refused_large`).
    TooLarge(usize),
}

#[derive(Debug, Clone)]
pub struct Ward {
    prefix: String,
    /// The reposition schedule, ms.
    reposition_ms: u64,
    pub beds: BTreeMap<String, Bed>,
    /// Messages for a new bed when [`MAX_BEDS`] were kept already.
    pub refused_beds: u64,
    /// Messages larger than [`broker::MAX_PAYLOAD`].
    pub refused_large: u64,
}

impl Ward {
    pub fn new(prefix: &str, reposition_ms: u64) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
            reposition_ms,
            beds: BTreeMap::new(),
            refused_beds: 0,
            refused_large: 0,
        }
    }

    /// The bed called `name`, heard of at `now_ms`; `None` (counted) when it is new and the
    /// ward holds [`MAX_BEDS`] already.
    fn bed(&mut self, name: &str, now_ms: u64) -> Option<&mut Bed> {
        if !self.beds.contains_key(name) && self.beds.len() >= MAX_BEDS {
            self.refused_beds += 1;
            return None;
        }
        let bed = self.beds.entry(name.to_owned()).or_default();
        bed.heard_ms = now_ms;
        Some(bed)
    }

    /// Forgets the beds not heard of for [`FORGET_MS`] by `now_ms`.
    pub fn forget_silent(&mut self, now_ms: u64) {
        self.beds
            .retain(|_, b| now_ms.saturating_sub(b.heard_ms) < FORGET_MS);
    }

    /// Takes one message in, received at wall-clock `now_ms`.
    pub fn apply(&mut self, topic: &str, payload: &[u8], now_ms: u64) -> Applied {
        let Some((bed, kind)) = broker::parse_topic(&self.prefix, topic) else {
            return Applied::Ignored;
        };
        if payload.len() > broker::MAX_PAYLOAD {
            self.refused_large += 1;
            return Applied::TooLarge(payload.len());
        }
        let invalid = |e: serde_json::Error| Applied::Invalid(format!("{topic}: {e}"));
        match kind {
            broker::POSE => Applied::Pose,
            broker::STATUS => match serde_json::from_slice::<StatusMessage>(payload) {
                Ok(status) => {
                    let Some(b) = self.bed(bed, now_ms) else {
                        return Applied::Refused;
                    };
                    Self::take_epoch(b, status.epoch);
                    b.status = status.state.clone();
                    b.dropped = status.dropped;
                    Applied::Status(status)
                }
                Err(e) => invalid(e),
            },
            broker::POSTURE | broker::ALERT => {
                let event = match serde_json::from_slice::<EventMessage>(payload) {
                    Ok(e) => Box::new(e),
                    Err(e) => return invalid(e),
                };
                let Some(b) = self.bed(bed, now_ms) else {
                    return Applied::Refused;
                };
                Self::take_epoch(b, event.epoch);
                let apart = event.seq.abs_diff(b.last_seq);
                if b.last_seq > 0 && apart > SEQ_WINDOW {
                    b.restarts += 1;
                } else if event.seq <= b.last_seq {
                    b.duplicates += 1;
                    return Applied::Duplicate(event);
                } else if b.last_seq > 0 {
                    // A gap after the first message seen (a consumer that comes later starts
                    // at the retained posture, not at seq 1).
                    b.missing += apart - 1;
                }
                b.last_seq = event.seq;
                Self::update(b, &event);
                Applied::Event(event)
            }
            _ => Applied::Ignored,
        }
    }

    /// A message's epoch: another than the bed's means its sink's queue was made anew and
    /// counts `seq` from 1 again: the sequence starts afresh (one restart), so none of the new
    /// events reads as a duplicate. So does the first epoch after messages without one (a sink
    /// older than epochs, or a client that made them up): they cannot silence the real sink.
    fn take_epoch(bed: &mut Bed, epoch: Option<u64>) {
        let Some(epoch) = epoch else {
            return; // A sink older than epochs.
        };
        if bed.last_seq > 0 && bed.epoch != Some(epoch) {
            bed.restarts += 1;
            bed.last_seq = 0;
        }
        bed.epoch = Some(epoch);
    }

    fn update(bed: &mut Bed, event: &EventMessage) {
        match event.event.as_str() {
            "spmkd-posture" => {
                bed.posture = event.text("posture").map(str::to_owned);
                bed.since_ms = Some(event.wall_time_ms);
                bed.open_alerts.clear();
            }
            "spmkd-repositioned" => {
                bed.since_ms = Some(event.wall_time_ms);
                bed.open_alerts.clear();
            }
            "spmkd-occupancy" => {
                let occupied = event.fields.get("occupied").and_then(|v| v.as_bool());
                if occupied == Some(true) {
                    // Back in bed: the exit is over.
                    bed.open_alerts.retain(|a| a != "spmkd-bed-exit");
                } else {
                    bed.posture = None;
                    bed.since_ms = None;
                }
            }
            other => {
                // At most MAX_OPEN_ALERTS to look through: constant time.
                if bed.open_alerts.iter().any(|a| a == other) {
                } else if bed.open_alerts.len() < MAX_OPEN_ALERTS {
                    bed.open_alerts.push(other.to_owned());
                } else {
                    bed.refused_alerts += 1;
                }
            }
        }
    }

    /// When `bed`'s next reposition is due, wall-clock ms.
    pub fn due_ms(&self, bed: &Bed) -> Option<u64> {
        bed.posture.as_ref()?;
        bed.since_ms.map(|s| s + self.reposition_ms)
    }

    /// The table, as of `now_ms`.
    pub fn table(&self, now_ms: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:<8} {:<9} {:>9} {:>14} {:>6}  open alerts",
            "bed", "status", "posture", "for", "reposition", "seq"
        );
        for (name, bed) in &self.beds {
            let held = bed
                .since_ms
                .map_or("-".into(), |s| duration(now_ms.saturating_sub(s)));
            let due = match self.due_ms(bed) {
                Some(d) if d <= now_ms => format!("overdue {}", duration(now_ms - d)),
                Some(d) => format!("in {}", duration(d - now_ms)),
                None => "-".into(),
            };
            let mut seq = bed.last_seq.to_string();
            if bed.missing > 0 {
                let _ = write!(seq, " -{}", bed.missing);
            }
            let alerts = bed
                .open_alerts
                .iter()
                .map(|a| shown(a.trim_start_matches("spmkd-")))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "{:<12} {:<8} {:<9} {:>9} {:>14} {:>6}  {}",
                shown(name),
                if bed.status.is_empty() {
                    "?".into()
                } else {
                    shown(&bed.status)
                },
                shown(bed.posture.as_deref().unwrap_or("-")),
                held,
                due,
                seq,
                alerts
            );
        }
        out
    }
}

/// `text` as a terminal may show it: control characters (escape sequences, newlines, bells)
/// written as escapes, so a payload cannot clear the screen, retitle the window or forge a row.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `1h02m`, `4m05s`, `12s`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, name: &str, at_ms: u64, fields: &[(&str, serde_json::Value)]) -> Vec<u8> {
        let mut e = EventMessage::new("7", seq, name);
        e.wall_time_ms = at_ms;
        for (k, v) in fields {
            e.fields.insert((*k).into(), v.clone());
        }
        serde_json::to_vec(&e).unwrap()
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn postures_alerts_and_the_reposition_clock() {
        let mut ward = Ward::new("ward/", 2 * HOUR);
        let posture = |seq, p: &str, at| event(seq, "spmkd-posture", at, &[("posture", p.into())]);
        assert!(matches!(
            ward.apply("ward/7/posture", &posture(1, "supine", 0), 0),
            Applied::Event(_)
        ));
        ward.apply(
            "ward/7/alert",
            &event(2, "spmkd-reposition", 2 * HOUR, &[]),
            0,
        );
        let bed = &ward.beds["7"];
        assert_eq!(bed.posture.as_deref(), Some("supine"));
        assert_eq!(bed.open_alerts, ["spmkd-reposition"]);
        assert!(ward.table(2 * HOUR + 60_000).contains("overdue 1m00s"));
        // Turned: the alert closes, the clock starts again.
        ward.apply("ward/7/posture", &posture(3, "left", 2 * HOUR + 120_000), 0);
        let bed = &ward.beds["7"];
        assert!(bed.open_alerts.is_empty());
        assert_eq!(ward.due_ms(bed), Some(4 * HOUR + 120_000));
        assert!(ward.table(3 * HOUR).contains("in 1h02m"));
    }

    #[test]
    fn seq_tells_duplicates_and_losses() {
        let mut ward = Ward::new("ward", HOUR);
        // The first message seen may be anything: a late consumer starts mid-way.
        ward.apply("ward/7/alert", &event(3, "spmkd-edge", 0, &[]), 0);
        assert_eq!(ward.beds["7"].missing, 0);
        assert!(matches!(
            ward.apply("ward/7/alert", &event(3, "spmkd-edge", 0, &[]), 0),
            Applied::Duplicate(_)
        ));
        ward.apply("ward/7/alert", &event(6, "spmkd-bed-exit", 0, &[]), 0);
        let bed = &ward.beds["7"];
        assert_eq!((bed.duplicates, bed.missing, bed.last_seq), (1, 2, 6));
        assert!(ward.table(0).contains("6 -2"));
        // Back in bed closes the exit.
        ward.apply(
            "ward/7/alert",
            &event(7, "spmkd-occupancy", 0, &[("occupied", true.into())]),
            0,
        );
        assert_eq!(ward.beds["7"].open_alerts, ["spmkd-edge"]);
    }

    #[test]
    fn other_topics_and_bad_payloads() {
        let mut ward = Ward::new("ward", HOUR);
        assert_eq!(ward.apply("other/7/posture", b"{}", 0), Applied::Ignored);
        assert_eq!(ward.apply("ward/7/pose", b"{}", 0), Applied::Pose);
        assert!(
            matches!(ward.apply("ward/7/posture", b"{", 0), Applied::Invalid(m) if m.contains("ward/7/posture"))
        );
        let status = br#"{"bed":"7","state":"offline","wall_time_ms":1,"queued":0,"dropped":3}"#;
        assert!(matches!(
            ward.apply("ward/7/status", status, 0),
            Applied::Status(_)
        ));
        assert_eq!(
            (ward.beds["7"].status.as_str(), ward.beds["7"].dropped),
            ("offline", 3)
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(12_000), "12s");
        assert_eq!(duration(245_000), "4m05s");
        assert_eq!(duration(HOUR + 120_000), "1h02m");
    }

    #[test]
    fn one_seq_far_ahead_does_not_silence_the_bed() {
        let mut ward = Ward::new("ward", HOUR);
        ward.apply("ward/12/alert", &event(10, "spmkd-edge", 0, &[]), 0);
        // Forged: the largest seq there is.
        ward.apply(
            "ward/12/alert",
            &event(u64::MAX, "spmkd-exposure", 0, &[]),
            0,
        );
        // The real ones after it still count.
        for seq in 11..=13 {
            assert!(matches!(
                ward.apply("ward/12/alert", &event(seq, "spmkd-bed-exit", 0, &[]), 0),
                Applied::Event(_)
            ));
        }
        let bed = &ward.beds["12"];
        assert_eq!((bed.last_seq, bed.missing, bed.duplicates), (13, 0, 0));
        assert_eq!(bed.restarts, 2, "to the forged seq and back");
        assert!(matches!(
            ward.apply("ward/12/alert", &event(13, "spmkd-bed-exit", 0, &[]), 0),
            Applied::Duplicate(_)
        ));
        // A gap within the window is a loss, as before.
        ward.apply("ward/12/alert", &event(20, "spmkd-edge", 0, &[]), 0);
        assert_eq!(ward.beds["12"].missing, 6);
    }

    #[test]
    fn a_queue_made_anew_restarts_the_sequence_and_marks_no_real_event_a_duplicate() {
        let mut ward = Ward::new("ward", HOUR);
        let of = |epoch: u64, seq| {
            let mut e: EventMessage =
                serde_json::from_slice(&event(seq, "spmkd-edge", 0, &[])).unwrap();
            e.epoch = Some(epoch);
            serde_json::to_vec(&e).unwrap()
        };
        for seq in 1..=200 {
            ward.apply("ward/7/alert", &of(1000, seq), 0);
        }
        // The sink's queue directory was deleted: its status announces a new epoch, and seq
        // counts from 1 again.
        let status = br#"{"bed":"7","state":"online","wall_time_ms":1,"epoch":2000}"#;
        ward.apply("ward/7/status", status, 0);
        for seq in 1..=200 {
            assert!(
                matches!(
                    ward.apply("ward/7/alert", &of(2000, seq), 0),
                    Applied::Event(_)
                ),
                "seq {seq}"
            );
        }
        let bed = &ward.beds["7"];
        assert_eq!((bed.restarts, bed.duplicates, bed.missing), (1, 0, 0));
        // The same event again is still a duplicate.
        assert!(matches!(
            ward.apply("ward/7/alert", &of(2000, 200), 0),
            Applied::Duplicate(_)
        ));
    }

    #[test]
    fn payload_text_cannot_drive_the_terminal() {
        let mut ward = Ward::new("ward", HOUR);
        let posture = "supine\u{1b}[2J\u{1b}[H\nbed13 online supine";
        ward.apply(
            "ward/7/posture",
            &event(1, "spmkd-posture", 0, &[("posture", posture.into())]),
            0,
        );
        ward.apply("ward/7/alert", &event(2, "\u{1b}]0;title\u{7}", 0, &[]), 0);
        let status =
            br#"{"bed":"7","state":"online\u001b[8m","wall_time_ms":1,"queued":0,"dropped":0}"#;
        ward.apply("ward/7/status", status, 0);
        let table = ward.table(0);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        // A header and one row: no forged row for bed 13.
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(table.contains("supine\\u{1b}[2J"), "{table}");
        assert!(table.contains("online\\u{1b}[8m"), "{table}");
        assert_eq!(shown("left"), "left");
    }

    #[test]
    fn invented_beds_and_event_names_are_bounded_and_silent_beds_forgotten() {
        let mut ward = Ward::new("ward", HOUR);
        for i in 0..40_000 {
            ward.apply(
                "ward/1/alert",
                &event(i + 1, &format!("made-up-{i}"), 0, &[]),
                0,
            );
        }
        let bed = &ward.beds["1"];
        assert_eq!(bed.open_alerts.len(), MAX_OPEN_ALERTS);
        assert_eq!(bed.refused_alerts, 40_000 - MAX_OPEN_ALERTS as u64);
        for i in 0..(MAX_BEDS + 50) {
            ward.apply(
                &format!("ward/b{i}/alert"),
                &event(1, "spmkd-edge", 0, &[]),
                HOUR,
            );
        }
        assert_eq!(ward.beds.len(), MAX_BEDS);
        assert_eq!(ward.refused_beds, 51, "bed 1 was there first");
        assert_eq!(
            ward.apply("ward/one-more/alert", &event(1, "spmkd-edge", 0, &[]), HOUR),
            Applied::Refused
        );
        assert!(ward.table(HOUR).lines().count() <= MAX_BEDS + 1);
        // A day later only what was heard since stays.
        ward.apply(
            "ward/b3/alert",
            &event(2, "spmkd-edge", 0, &[]),
            HOUR + FORGET_MS,
        );
        ward.forget_silent(HOUR + FORGET_MS);
        assert_eq!(ward.beds.keys().collect::<Vec<_>>(), ["b3"]);
    }
}
