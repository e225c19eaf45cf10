//! Which skin has been under load for how long: per cell, the time under load since it was
//! last offloaded and the load x time it took, the contact regions they form, an alert when a
//! region has been under load for the limit, and whether a movement offloaded what was loaded.

use std::collections::VecDeque;

/// Thresholds of [`Exposure`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExposureConfig {
    /// Load (in units of the mat's load scale, see [`super::Levels::load`]) at which a cell is
    /// under load.
    pub load_threshold: f32,
    /// A cell unloaded this long (ns) is offloaded: its time and load x time start again.
    pub offload_ns: u64,
    /// A region under load this long (ns) raises an alert, once per loading.
    pub limit_ns: u64,
    /// Share of the cells loaded before a movement that must be unloaded after it for the
    /// movement to count as a reposition.
    pub offload_share: f32,
}

impl Default for ExposureConfig {
    fn default() -> Self {
        Self {
            load_threshold: 0.25,
            offload_ns: 60 * 1_000_000_000,
            limit_ns: 2 * 3600 * 1_000_000_000,
            offload_share: 0.5,
        }
    }
}

/// A connected group of cells under load (4-neighbours): a contact region such as the sacrum,
/// a heel or a shoulder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Centre of the region in cells (the frame's coordinate convention).
    pub x: f32,
    pub y: f32,
    pub cells: u32,
    /// The longest time under load of its cells, ns.
    pub under_load_ns: u64,
    /// Load x time summed over its cells, in load-scale seconds.
    pub dose: f32,
}

/// What [`Exposure::push`] found at one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExposureSample {
    /// Cells under load in this frame.
    pub loaded_cells: u32,
    /// The regions with the longest time under load, longest first (at most [`TOP_REGIONS`]).
    pub regions: Vec<Region>,
    /// Regions that reached the limit at this frame.
    pub alerts: Vec<Region>,
    /// A movement unloaded at least the configured share of what was loaded before it.
    pub offloaded: bool,
}

/// Regions reported per frame.
pub const TOP_REGIONS: usize = 3;

/// Per-cell exposure over time.
#[derive(Debug, Clone)]
pub struct Exposure {
    config: ExposureConfig,
    width: usize,
    /// Per cell: since when it has been under load (kept through unloads shorter than the
    /// offload time), since when it has been unloaded, its load x time, whether its region
    /// has alerted.
    loaded_since: Vec<Option<u64>>,
    unloaded_since: Vec<Option<u64>>,
    dose: Vec<f32>,
    alerted: Vec<bool>,
    /// Cells loaded at the last frame without movement: what a movement must offload.
    before_movement: Vec<bool>,
    /// Whether the movement under way has already been counted.
    counted: bool,
    last_ns: Option<u64>,
    /// Flood-fill scratch.
    seen: Vec<bool>,
    queue: VecDeque<usize>,
}

impl Exposure {
    pub fn new(config: ExposureConfig) -> Self {
        Self {
            config,
            width: 0,
            loaded_since: Vec::new(),
            unloaded_since: Vec::new(),
            dose: Vec::new(),
            alerted: Vec::new(),
            before_movement: Vec::new(),
            counted: false,
            last_ns: None,
            seen: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    pub fn set_config(&mut self, config: ExposureConfig) {
        self.config = config;
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }

    /// Takes one frame's per-cell loads (`width` cells a row, in load-scale units), whether
    /// the frame moved, at `now_ns`.
    pub fn push(
        &mut self,
        loads: &[f32],
        width: usize,
        moved: bool,
        now_ns: u64,
    ) -> ExposureSample {
        let n = loads.len();
        if width == 0 || !n.is_multiple_of(width) {
            return ExposureSample::default();
        }
        if self.width != width || self.loaded_since.len() != n {
            // A new grid: nothing carries over.
            *self = Self::new(self.config);
            self.width = width;
            self.loaded_since = vec![None; n];
            self.unloaded_since = vec![None; n];
            self.dose = vec![0.0; n];
            self.alerted = vec![false; n];
            self.before_movement = vec![false; n];
        }
        let c = self.config;
        let dt = self
            .last_ns
            .map_or(0.0, |t| now_ns.saturating_sub(t) as f32 * 1e-9);
        self.last_ns = Some(now_ns);

        let mut loaded_cells = 0u32;
        let (mut before, mut offloaded_now) = (0u32, 0u32);
        for (i, &load) in loads.iter().enumerate() {
            let loaded = load >= c.load_threshold;
            if self.before_movement[i] {
                before += 1;
                offloaded_now += u32::from(!loaded);
            }
            if loaded {
                loaded_cells += 1;
                self.unloaded_since[i] = None;
                self.loaded_since[i].get_or_insert(now_ns);
                self.dose[i] += load * dt;
            } else if self.loaded_since[i].is_some() {
                let since = *self.unloaded_since[i].get_or_insert(now_ns);
                if now_ns.saturating_sub(since) >= c.offload_ns {
                    self.loaded_since[i] = None;
                    self.unloaded_since[i] = None;
                    self.dose[i] = 0.0;
                    self.alerted[i] = false;
                }
            }
        }

        // A movement counts as a reposition once it has unloaded enough of what lay loaded
        // before it began; the reference is renewed at every frame without movement.
        let offloaded =
            !self.counted && before > 0 && offloaded_now as f32 >= c.offload_share * before as f32;
        if offloaded {
            self.counted = true;
        }
        if !moved {
            self.counted = false;
            for (b, &load) in self.before_movement.iter_mut().zip(loads) {
                *b = load >= c.load_threshold;
            }
        }

        let (regions, alerts) = self.regions(now_ns);
        ExposureSample {
            loaded_cells,
            regions,
            alerts,
            offloaded,
        }
    }

    /// Per cell, the time under load in seconds (0 where none), for drawing.
    pub fn seconds_under_load(&self, now_ns: u64, out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            self.loaded_since
                .iter()
                .map(|s| s.map_or(0.0, |s| now_ns.saturating_sub(s) as f32 * 1e-9)),
        );
    }

    /// The regions of cells under load (including those within the offload time), the top ones
    /// and the ones that reached the limit (marked, so each alerts once per loading).
    fn regions(&mut self, now_ns: u64) -> (Vec<Region>, Vec<Region>) {
        let (n, w) = (self.loaded_since.len(), self.width);
        self.seen.clear();
        self.seen.resize(n, false);
        let (mut top, mut alerts) = (Vec::new(), Vec::new());
        let mut members = Vec::new();
        for start in 0..n {
            if self.seen[start] || self.loaded_since[start].is_none() {
                continue;
            }
            members.clear();
            self.seen[start] = true;
            self.queue.push_back(start);
            while let Some(i) = self.queue.pop_front() {
                members.push(i);
                let (x, y) = (i % w, i / w);
                let neighbours = [
                    (x > 0).then(|| i - 1),
                    (x + 1 < w).then(|| i + 1),
                    (y > 0).then(|| i - w),
                    (i + w < n).then(|| i + w),
                ];
                for j in neighbours.into_iter().flatten() {
                    if !self.seen[j] && self.loaded_since[j].is_some() {
                        self.seen[j] = true;
                        self.queue.push_back(j);
                    }
                }
            }
            let (mut sx, mut sy, mut dose, mut longest, mut alerted) = (0.0, 0.0, 0.0, 0u64, false);
            for &i in &members {
                sx += (i % w) as f32 + 0.5;
                sy += (i / w) as f32 + 0.5;
                dose += self.dose[i];
                let since = self.loaded_since[i].unwrap_or(now_ns);
                longest = longest.max(now_ns.saturating_sub(since));
                alerted |= self.alerted[i];
            }
            let count = members.len() as f32;
            let region = Region {
                x: sx / count,
                y: sy / count,
                cells: members.len() as u32,
                under_load_ns: longest,
                dose,
            };
            if longest >= self.config.limit_ns {
                // Once per loading: a region that grows or merges with an alerted one is the
                // same loading.
                if !alerted {
                    alerts.push(region);
                }
                for &i in &members {
                    self.alerted[i] = true;
                }
            }
            top.push(region);
        }
        top.sort_by(|a, b| {
            b.under_load_ns
                .cmp(&a.under_load_ns)
                .then(b.dose.total_cmp(&a.dose))
        });
        top.truncate(TOP_REGIONS);
        (top, alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn config() -> ExposureConfig {
        ExposureConfig {
            load_threshold: 0.25,
            offload_ns: 10 * S,
            limit_ns: 60 * S,
            offload_share: 0.5,
        }
    }

    /// A 4 x 4 mat loaded (0.5) on the cells listed.
    fn loads(cells: &[usize]) -> Vec<f32> {
        let mut l = vec![0.0; 16];
        for &c in cells {
            l[c] = 0.5;
        }
        l
    }

    #[test]
    fn time_under_load_accumulates_alerts_once_and_offloading_resets_it() {
        let mut e = Exposure::new(config());
        let lying = loads(&[0, 1, 4, 5, 15]);
        let mut alerts = Vec::new();
        for t in 0..=90 {
            let s = e.push(&lying, 4, false, t * S);
            alerts.extend(s.alerts.iter().map(|r| (t, r.cells)));
            if t == 30 {
                assert_eq!(s.loaded_cells, 5);
                let top = s.regions[0];
                assert_eq!((top.cells, top.under_load_ns), (4, 30 * S));
                assert_eq!((top.x, top.y), (1.0, 1.0));
                assert!((top.dose - 4.0 * 0.5 * 30.0).abs() < 1e-3);
            }
        }
        // Both regions reach a minute at 60 s, each alerts once.
        assert_eq!(alerts, [(60, 4), (60, 1)]);
        // Unloaded for less than the offload time: the clock runs on.
        e.push(&loads(&[15]), 4, false, 95 * S);
        let back = e.push(&lying, 4, false, 100 * S);
        assert_eq!(back.regions[0].under_load_ns, 100 * S);
        // Unloaded for the offload time: it starts again, and can alert again.
        for t in 101..=111 {
            e.push(&loads(&[15]), 4, false, t * S);
        }
        let mut seconds = Vec::new();
        e.seconds_under_load(111 * S, &mut seconds);
        assert_eq!((seconds[0], seconds[15]), (0.0, 111.0));
        let again = e.push(&lying, 4, false, 112 * S);
        assert_eq!(again.regions[1].under_load_ns, 0);
    }

    #[test]
    fn a_movement_that_unloads_half_of_the_load_counts_once() {
        let mut e = Exposure::new(config());
        let before = loads(&[0, 1, 4, 5]);
        e.push(&before, 4, false, 0);
        // A movement that shifts a little: a quarter unloaded, not a reposition.
        assert!(!e.push(&loads(&[0, 1, 4, 6]), 4, true, S).offloaded);
        // The movement goes on and unloads three of the four: a reposition, counted once.
        assert!(e.push(&loads(&[5, 6, 10, 11]), 4, true, 2 * S).offloaded);
        assert!(!e.push(&loads(&[6, 7, 10, 11]), 4, true, 3 * S).offloaded);
        // Still again: the new position is the reference.
        assert!(!e.push(&loads(&[6, 7, 10, 11]), 4, false, 4 * S).offloaded);
        assert!(!e.push(&loads(&[6, 7, 10, 11]), 4, true, 5 * S).offloaded);
    }
}
