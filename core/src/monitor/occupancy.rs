//! Is someone on the mat: the frame's contact against the mat's levels, with hysteresis, and
//! what a bed-exit alarm needs (when the bed emptied, an alert once it has stayed empty, load
//! at a long edge before it).

use super::levels::{LevelEstimator, Levels};

/// What one frame shows, before any hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Contact {
    /// Share of the cells in contact (above [`Levels::contact_threshold`]).
    pub area: f32,
    /// Mean load per cell, in units of the load scale.
    pub load: f32,
    /// The larger share of the load on one of the two long edges (the outer columns).
    pub edge: f32,
    /// Which edge that is.
    pub edge_side: Side,
}

/// A long edge of the mat, as the frame shows it: `Left` is column 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    #[default]
    Left,
    Right,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// Measures `frame` (`width` cells a row) against `levels`; the edges are the outer
/// `edge_columns` columns on either side. A cell is in contact when it and at least one of its
/// four neighbours are above the contact threshold: a body presses on neighbouring cells,
/// sensor noise spikes alone.
pub fn measure(frame: &[f32], width: usize, levels: &Levels, edge_columns: usize) -> Contact {
    if frame.is_empty() || width == 0 || !frame.len().is_multiple_of(width) {
        return Contact::default();
    }
    let threshold = levels.contact_threshold();
    let edge_columns = edge_columns.min(width / 2);
    let n = frame.len();
    let above = |i: usize| frame[i] > threshold;
    let (mut area, mut total, mut left, mut right) = (0usize, 0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in frame.iter().enumerate() {
        if !above(i) {
            continue;
        }
        let x = i % width;
        let touching = (x > 0 && above(i - 1))
            || (x + 1 < width && above(i + 1))
            || (i >= width && above(i - width))
            || (i + width < n && above(i + width));
        if !touching {
            continue;
        }
        area += 1;
        let load = f64::from(v - levels.floor);
        total += load;
        if x < edge_columns {
            left += load;
        } else if x >= width - edge_columns {
            right += load;
        }
    }
    let (edge, edge_side) = if right > left {
        (right, Side::Right)
    } else {
        (left, Side::Left)
    };
    Contact {
        area: area as f32 / n as f32,
        load: if levels.scale > 0.0 {
            (total / f64::from(levels.scale)) as f32 / n as f32
        } else {
            0.0
        },
        edge: if total > 0.0 {
            (edge / total) as f32
        } else {
            0.0
        },
        edge_side,
    }
}

/// Whether one frame, by itself, shows someone on the mat: for an element that has no
/// monitor's history to go by (`spmkdpose` writes it into every pose, and `spmkdposture` gives
/// an empty frame no posture by it).
///
/// The monitor measures contact against the stream's levels, whose load scale comes from the
/// bodies it has seen; a frame alone has only its own. On a mat that reads 0 at rest, a sprinkle
/// of small readings then passes the threshold, and in pairs enough of them to look like the
/// few per cent of contact a body starts at. What a body has and noise has not is one large
/// connected region: the frame counts as occupied when its largest 4-connected region above the
/// contact threshold of its own levels covers [`OccupancyConfig::decision_area`] of the mat.
#[derive(Debug, Clone, Default)]
pub struct FrameOccupancy {
    /// A fresh estimate per frame; kept, with the fill's scratch, to allocate nothing per frame.
    levels: LevelEstimator,
    seen: Vec<bool>,
    stack: Vec<usize>,
}

impl FrameOccupancy {
    /// Whether `frame` (`width` cells a row) shows someone on the mat.
    pub fn occupied(&mut self, frame: &[f32], width: usize) -> bool {
        if frame.is_empty() || width == 0 || !frame.len().is_multiple_of(width) {
            return false;
        }
        self.levels.reset();
        let threshold = self.levels.update(frame).contact_threshold();
        let needed = OccupancyConfig::default().decision_area() * frame.len() as f32;
        self.seen.clear();
        // Cells not above the threshold (NaN among them) count as seen: never filled.
        self.seen.extend(
            frame
                .iter()
                .map(|&v| v.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater)),
        );
        let n = frame.len();
        for start in 0..n {
            if self.seen[start] {
                continue;
            }
            self.seen[start] = true;
            self.stack.push(start);
            let mut size = 0usize;
            while let Some(i) = self.stack.pop() {
                size += 1;
                let x = i % width;
                let neighbours = [
                    (x > 0).then(|| i - 1),
                    (x + 1 < width).then(|| i + 1),
                    i.checked_sub(width),
                    (i + width < n).then_some(i + width),
                ];
                for j in neighbours.into_iter().flatten() {
                    if !self.seen[j] {
                        self.seen[j] = true;
                        self.stack.push(j);
                    }
                }
            }
            if size as f32 >= needed {
                return true;
            }
        }
        false
    }
}

/// Thresholds of [`Occupancy`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OccupancyConfig {
    /// Contact area (share of the cells) at which an empty mat becomes occupied.
    pub enter_area: f32,
    /// Contact area below which an occupied mat becomes empty; below `enter_area`, so a
    /// reading between the two keeps the state it has.
    pub leave_area: f32,
    /// Consecutive frames a new state must hold before it is taken: one odd frame changes
    /// nothing.
    pub hold_frames: u32,
    /// Empty this long (ns of running time) after being occupied: a bed exit.
    pub exit_delay_ns: u64,
    /// Share of the load on one long edge at which an occupied bed warns `edge`.
    pub edge_share: f32,
}

impl OccupancyConfig {
    /// The contact area at which a frame with no history to hold counts as occupied: the
    /// midpoint of the two thresholds.
    pub fn decision_area(&self) -> f32 {
        0.5 * (self.enter_area + self.leave_area)
    }
}

impl Default for OccupancyConfig {
    fn default() -> Self {
        Self {
            enter_area: 0.05,
            leave_area: 0.03,
            hold_frames: 3,
            exit_delay_ns: 30 * 1_000_000_000,
            edge_share: 0.5,
        }
    }
}

/// What happened to the occupancy at a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccupancyEvent {
    /// Someone is on the mat since `at_ns` (the first frame of the run that confirmed it).
    Entered { at_ns: u64 },
    /// The mat is empty since `at_ns`, after `occupied_ns` occupied.
    Left { at_ns: u64, occupied_ns: u64 },
    /// The mat has been empty since `since_ns` for at least the exit delay.
    Exit { since_ns: u64, at_ns: u64 },
    /// The load gathered at one long edge (sitting or lying at the edge): an early warning.
    Edge {
        side: Side,
        share_milli: u32,
        at_ns: u64,
    },
}

/// The occupancy of the mat over time.
#[derive(Debug, Clone)]
pub struct Occupancy {
    config: OccupancyConfig,
    /// The state taken and since when; `None` before the first frame.
    state: Option<(bool, u64)>,
    /// A run of frames that disagree with the state: its first frame's time and its length.
    pending: Option<(u64, u32)>,
    /// The mat emptied after being occupied and its exit alert has not gone out yet (a bed
    /// empty from the start has had no one to exit).
    exit_armed: bool,
    at_edge: bool,
}

impl Occupancy {
    pub fn new(config: OccupancyConfig) -> Self {
        Self {
            config,
            state: None,
            pending: None,
            exit_armed: false,
            at_edge: false,
        }
    }

    pub fn set_config(&mut self, config: OccupancyConfig) {
        self.config = config;
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }

    /// Whether the mat counts as occupied now.
    pub fn occupied(&self) -> bool {
        matches!(self.state, Some((true, _)))
    }

    /// Whether the edge warning is on (see [`OccupancyEvent::Edge`]).
    pub fn at_edge(&self) -> bool {
        self.at_edge
    }

    /// Since when the mat has been in its present state (`None` before the first frame).
    pub fn since_ns(&self) -> Option<u64> {
        self.state.map(|(_, since)| since)
    }

    /// Takes a frame's contact at `now_ns`; returns whether the mat is occupied and what
    /// happened.
    pub fn push(
        &mut self,
        contact: &Contact,
        now_ns: u64,
        events: &mut Vec<OccupancyEvent>,
    ) -> bool {
        let c = self.config;
        let Some((occupied, since)) = self.state else {
            // The first frame decides at the midpoint of the two thresholds: no history to hold.
            let occupied = contact.area >= c.decision_area();
            self.state = Some((occupied, now_ns));
            if occupied {
                events.push(OccupancyEvent::Entered { at_ns: now_ns });
            }
            self.edge(occupied, contact, now_ns, events);
            return occupied;
        };
        let disagrees = if occupied {
            contact.area < c.leave_area
        } else {
            contact.area >= c.enter_area
        };
        let mut state = (occupied, since);
        if disagrees {
            let (first, run) = self.pending.unwrap_or((now_ns, 0));
            let run = run + 1;
            if run >= c.hold_frames.max(1) {
                state = (!occupied, first);
                self.pending = None;
                self.exit_armed = occupied;
                events.push(if occupied {
                    OccupancyEvent::Left {
                        at_ns: first,
                        occupied_ns: first.saturating_sub(since),
                    }
                } else {
                    OccupancyEvent::Entered { at_ns: first }
                });
            } else {
                self.pending = Some((first, run));
            }
        } else {
            self.pending = None;
        }
        self.state = Some(state);
        let (occupied, since) = state;
        if !occupied && self.exit_armed && now_ns.saturating_sub(since) >= c.exit_delay_ns {
            self.exit_armed = false;
            events.push(OccupancyEvent::Exit {
                since_ns: since,
                at_ns: now_ns,
            });
        }
        self.edge(occupied, contact, now_ns, events);
        occupied
    }

    fn edge(
        &mut self,
        occupied: bool,
        contact: &Contact,
        now_ns: u64,
        events: &mut Vec<OccupancyEvent>,
    ) {
        let share = self.config.edge_share;
        let at_edge = occupied && contact.edge >= share;
        if at_edge && !self.at_edge {
            events.push(OccupancyEvent::Edge {
                side: contact.edge_side,
                share_milli: (contact.edge * 1000.0).round() as u32,
                at_ns: now_ns,
            });
        }
        // Cleared only well below the threshold, so a load wavering at it warns once.
        self.at_edge = at_edge || (self.at_edge && occupied && contact.edge >= 0.8 * share);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn contact(area: f32) -> Contact {
        Contact {
            area,
            ..Default::default()
        }
    }

    #[test]
    fn states_change_after_the_hold_and_the_exit_alert_comes_once() {
        let mut o = Occupancy::new(OccupancyConfig {
            hold_frames: 3,
            exit_delay_ns: 10 * S,
            ..Default::default()
        });
        let mut events = Vec::new();
        assert!(o.push(&contact(0.4), 0, &mut events));
        assert_eq!(events, [OccupancyEvent::Entered { at_ns: 0 }]);
        events.clear();
        // Two empty frames and a full one: a blip, nothing changes.
        for (t, a) in [(1, 0.0), (2, 0.0), (3, 0.4)] {
            assert!(o.push(&contact(a), t * S, &mut events));
        }
        // Between the thresholds keeps the state.
        assert!(o.push(&contact(0.04), 4 * S, &mut events));
        assert!(events.is_empty(), "{events:?}");
        // Empty from 5 s: confirmed at the third frame, dated from the first.
        let states: Vec<bool> = (5..8)
            .map(|t| o.push(&contact(0.0), t * S, &mut events))
            .collect();
        assert_eq!(states, [true, true, false]);
        assert_eq!(
            events,
            [OccupancyEvent::Left {
                at_ns: 5 * S,
                occupied_ns: 5 * S
            }]
        );
        events.clear();
        for t in 8..40 {
            o.push(&contact(0.0), t * S, &mut events);
        }
        assert_eq!(
            events,
            [OccupancyEvent::Exit {
                since_ns: 5 * S,
                at_ns: 15 * S
            }]
        );
    }

    #[test]
    fn a_bed_empty_from_the_start_raises_no_exit() {
        let mut o = Occupancy::new(OccupancyConfig {
            exit_delay_ns: S,
            ..Default::default()
        });
        let mut events = Vec::new();
        for t in 0..10 {
            assert!(!o.push(&contact(0.0), t * S, &mut events));
        }
        assert!(events.is_empty());
    }

    #[test]
    fn load_at_an_edge_warns_once_per_episode() {
        let mut o = Occupancy::new(OccupancyConfig::default());
        let mut events = Vec::new();
        let at = |edge: f32| Contact {
            area: 0.3,
            edge,
            edge_side: Side::Right,
            ..Default::default()
        };
        for (t, e) in [0.1, 0.6, 0.45, 0.7, 0.1, 0.6].into_iter().enumerate() {
            o.push(&at(e), t as u64 * S, &mut events);
        }
        let edges: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                OccupancyEvent::Edge {
                    at_ns,
                    side: Side::Right,
                    ..
                } => Some(at_ns / S),
                _ => None,
            })
            .collect();
        assert_eq!(edges, [1, 5], "0.45 stays in the episode, 0.1 ends it");
        assert!(o.at_edge());
        o.push(&at(0.1), 6 * S, &mut events);
        assert!(!o.at_edge());
    }

    #[test]
    fn one_frame_alone_tells_an_empty_mat_from_a_body() {
        // Deterministic, nearly Gaussian noise (a sum of uniforms) of 2 units around a floor,
        // as experiment-ii's mat reads at rest.
        let noisy = |floor: f32, seed: u64| -> Vec<f32> {
            let mut s = seed;
            (0..64 * 27)
                .map(|_| {
                    let mut sum = 0.0;
                    for _ in 0..12 {
                        s = s
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        sum += (s >> 40) as f32 / (1u64 << 24) as f32;
                    }
                    (floor + 2.0 * (sum - 6.0)).round().max(0.0)
                })
                .collect()
        };
        let mut test = FrameOccupancy::default();
        for seed in 0..5 {
            assert!(!test.occupied(&noisy(44.0, seed), 27), "noise at 44");
            assert!(!test.occupied(&noisy(3.0, seed), 27), "noise at 3");
        }
        assert!(!test.occupied(&[0.0; 64 * 27], 27), "a flat mat");
        // Experiment-i at rest: zeros and a tenth of the cells reading 1..7, which in pairs
        // cover about 3.4 % of the mat (the monitor's threshold is 4 %).
        let mut s = 7u64;
        let sparse: Vec<f32> = (0..64 * 32)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (s >> 33).is_multiple_of(10) {
                    1.0 + ((s >> 40) % 7) as f32
                } else {
                    0.0
                }
            })
            .collect();
        for _ in 0..3 {
            assert!(!test.occupied(&sparse, 32), "sparse readings at rest");
        }
        assert!(!test.occupied(&[], 27) && !test.occupied(&[1.0; 5], 2));
        // A body: a block of 10 x 30 cells well above the floor (17 % of the mat).
        let mut body = noisy(44.0, 9);
        for row in body.chunks_exact_mut(27).skip(20).take(30) {
            row[8..18].iter_mut().for_each(|v| *v += 400.0);
        }
        assert!(test.occupied(&body, 27));
        // The estimate is the frame's own: the empty frame after it is empty again.
        assert!(!test.occupied(&noisy(44.0, 10), 27));
    }

    #[test]
    fn contact_counts_neighbouring_cells_and_the_edge_share() {
        let levels = Levels {
            floor: 0.0,
            noise: 1.0,
            scale: 100.0,
        };
        // 8 x 4 mat: a 2 x 2 blob in the two rightmost columns, one lone spike on the left.
        let mut frame = vec![0.0; 32];
        for i in [6, 7, 10, 11] {
            frame[i] = 50.0;
        }
        frame[16] = 80.0;
        let c = measure(&frame, 4, &levels, 1);
        assert_eq!(c.area, 4.0 / 32.0);
        assert_eq!((c.edge, c.edge_side), (0.5, Side::Right));
        assert!((c.load - 200.0 / 100.0 / 32.0).abs() < 1e-6);
    }
}
