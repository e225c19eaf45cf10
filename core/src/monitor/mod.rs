//! Bed monitoring from the pressure frames and their poses: is someone on the mat
//! ([`occupancy`]), have they moved ([`movement`]), which cells have been under load for how
//! long ([`exposure`]), and can the models be trusted on this frame ([`trust`]). Plain logic on
//! the frame's values, timed by running time, so `spmkdmonitor` is a thin element and the
//! same numbers can be computed anywhere.
//!
//! Every level is the mat's own ([`levels`]): a floor and noise estimated from the frames,
//! and a load scale from the recent loaded frames. No constant here belongs to one mat.

pub mod exposure;
pub mod levels;
pub mod movement;
pub mod occupancy;
pub mod trust;

pub use exposure::{Exposure, ExposureConfig, ExposureSample, Region};
pub use levels::{LevelEstimator, Levels};
pub use movement::{Movement, MovementSample};
pub use occupancy::{Contact, FrameOccupancy, Occupancy, OccupancyConfig, OccupancyEvent, Side};

use crate::schema::{ExposedRegion, Keypoint, MonitorRecord};

/// Every threshold of the monitor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorConfig {
    pub occupancy: OccupancyConfig,
    /// Share of the mat's width on each side that counts as its long edge.
    pub edge_width: f32,
    /// Movement score at which a frame counts as moved.
    pub movement_threshold: f32,
    pub exposure: ExposureConfig,
}

/// Movement score at which a frame counts as moved. Chosen on experiment-i S1..S10 (frames
/// within one recording against the first frames after a change of recording): 0.13 % of the
/// former and 99.4 % of the latter pass it; see docs/RESULTS.md "Monitoring".
pub const DEFAULT_MOVEMENT_THRESHOLD: f32 = 0.15;
/// Outer 15 % of the columns on each side (5 of 32 columns).
pub const DEFAULT_EDGE_WIDTH: f32 = 0.15;

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            occupancy: OccupancyConfig::default(),
            edge_width: DEFAULT_EDGE_WIDTH,
            movement_threshold: DEFAULT_MOVEMENT_THRESHOLD,
            exposure: ExposureConfig::default(),
        }
    }
}

/// One frame as the monitor takes it.
#[derive(Debug, Clone, Copy)]
pub struct MonitorInput<'a> {
    /// The frame's values, `width x height`, rows packed.
    pub values: &'a [f32],
    pub width: usize,
    pub height: usize,
    /// The frame's keypoints (empty when there is no pose) and whether they were computed for
    /// this frame (`false`: carried over from an earlier one).
    pub keypoints: &'a [Keypoint],
    pub fresh: bool,
    /// Reconstruction SSIM, when computed.
    pub quality: Option<f32>,
    /// The encoder's typical mean keypoint confidence (`spmkd.confidence_reference`), when known.
    pub confidence_reference: Option<f32>,
    /// How the keypoints lie head to foot against the encoder's reference layout, when known.
    pub layout: Option<f32>,
    /// The encoder's `spmkd.layout_ramp`, when it has one.
    pub layout_ramp: Option<(f32, f32)>,
    /// Running time, ns.
    pub now_ns: u64,
}

/// Something for the element to post.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    Occupancy(OccupancyEvent),
    /// A region reached the exposure limit at `at_ns`.
    Exposure {
        region: Region,
        at_ns: u64,
    },
}

/// The monitor of one mat.
#[derive(Debug, Clone)]
pub struct Monitor {
    config: MonitorConfig,
    levels: LevelEstimator,
    occupancy: Occupancy,
    movement: Movement,
    exposure: Exposure,
    loads: Vec<f32>,
    /// The mat emptied after being occupied and has not yet been empty for the offload time.
    away: bool,
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            config,
            levels: LevelEstimator::default(),
            occupancy: Occupancy::new(config.occupancy),
            movement: Movement::new(config.movement_threshold),
            exposure: Exposure::new(config.exposure),
            loads: Vec::new(),
            away: false,
        }
    }

    /// New thresholds; what was measured so far stays.
    pub fn set_config(&mut self, config: MonitorConfig) {
        self.config = config;
        self.occupancy.set_config(config.occupancy);
        self.movement.set_threshold(config.movement_threshold);
        self.exposure.set_config(config.exposure);
    }

    /// Forgets the mat and the past (new caps: possibly another mat).
    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }

    /// Forgets the past but keeps the mat's levels (a flush or seek).
    pub fn reset_history(&mut self) {
        self.occupancy.reset();
        self.movement.reset();
        self.exposure.reset();
        self.away = false;
    }

    /// Takes one frame; returns its record and appends what happened to `events`.
    pub fn push(&mut self, input: &MonitorInput, events: &mut Vec<MonitorEvent>) -> MonitorRecord {
        let levels = self.levels.update(input.values);
        let edge_columns = (self.config.edge_width * input.width as f32).round() as usize;
        let contact = occupancy::measure(input.values, input.width, &levels, edge_columns.max(1));
        let mut occupancy_events = Vec::new();
        let occupied = self
            .occupancy
            .push(&contact, input.now_ns, &mut occupancy_events);
        for e in &occupancy_events {
            match e {
                OccupancyEvent::Left { .. } => self.away = true,
                OccupancyEvent::Entered { .. } => self.away = false,
                _ => {}
            }
        }
        events.extend(occupancy_events.into_iter().map(MonitorEvent::Occupancy));

        let fresh = (input.fresh && !input.keypoints.is_empty()).then_some(input.keypoints);
        let moved = self.movement.push(
            input.values,
            (input.width, input.height),
            &levels,
            occupied,
            fresh,
            input.now_ns,
        );

        // An empty mat loads no skin: whatever its noise reads.
        self.loads.clear();
        if occupied {
            self.loads
                .extend(input.values.iter().map(|&v| levels.load(v)));
        } else {
            self.loads.resize(input.values.len(), 0.0);
        }
        let exposure = self
            .exposure
            .push(&self.loads, input.width, moved.moved, input.now_ns);
        // Offloading: a movement in bed that unloads what lay loaded, or a bed left empty for
        // the offload time. Getting up is no reposition by itself: a short absence pauses the
        // reposition clock (spmkdposture) and the same posture resumes it.
        let offloaded = if occupied {
            // Only on a frame that itself shows a body: the frames confirming an exit are not
            // a movement in bed.
            exposure.offloaded && contact.area >= self.config.occupancy.leave_area
        } else if self.away
            && self.occupancy.since_ns().is_some_and(|since| {
                input.now_ns.saturating_sub(since) >= self.config.exposure.offload_ns
            })
        {
            self.away = false;
            true
        } else {
            false
        };
        events.extend(
            exposure
                .alerts
                .iter()
                .map(|&region| MonitorEvent::Exposure {
                    region,
                    at_ns: input.now_ns,
                }),
        );

        MonitorRecord {
            occupied,
            contact: contact.area,
            edge: contact.edge,
            edge_side: contact.edge_side.as_str().to_owned(),
            at_edge: self.occupancy.at_edge(),
            floor: levels.floor,
            noise: levels.noise,
            movement: moved.score,
            moved: moved.moved,
            still_ns: moved.still_ns,
            pressure_change: moved.pressure,
            keypoint_shift: moved.keypoints,
            loaded_cells: exposure.loaded_cells,
            regions: exposure
                .regions
                .iter()
                .map(|r| ExposedRegion {
                    x: r.x,
                    y: r.y,
                    cells: r.cells,
                    under_load_ns: r.under_load_ns,
                    dose: r.dose,
                })
                .collect(),
            offloaded,
            trust: trust::trust(
                occupied,
                &trust::Evidence {
                    quality: input.quality,
                    keypoints: input.keypoints,
                    confidence_reference: input.confidence_reference,
                    layout: input.layout,
                    layout_ramp: input.layout_ramp,
                },
            ),
        }
    }

    /// Per cell, seconds under load at `now_ns` (for the exposure map).
    pub fn seconds_under_load(&self, now_ns: u64, out: &mut Vec<f32>) {
        self.exposure.seconds_under_load(now_ns, out);
    }
}
