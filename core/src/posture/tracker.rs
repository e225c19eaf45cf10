//! What `spmkdposture` does with a posture model's answers over time: a smoothing window,
//! changes, reposition alerts; plain logic, tested without a pipeline.

use super::{Posture, most_probable};
use crate::schema::PostureEstimate;

/// What happened at a frame, for the element to post.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The smoothed posture became `posture` at `at_ns`; the one before (if any) had lasted
    /// `lasted_ns`.
    Change {
        posture: Posture,
        previous: Option<(Posture, u64)>,
        at_ns: u64,
    },
    /// `posture` has lasted `lasted_ns` (since `since_ns`), at least the reposition interval.
    Reposition {
        posture: Posture,
        since_ns: u64,
        lasted_ns: u64,
    },
}

/// The posture over time: the mean of the last `window` frames' probabilities decides, a
/// change is reported once, and a posture held for `reposition_ns` raises one alert.
#[derive(Debug, Clone)]
pub struct Tracker {
    window: usize,
    reposition_ns: u64,
    recent: std::collections::VecDeque<Vec<f32>>,
    /// The current smoothed posture, since when, and whether its alert went out.
    current: Option<(Posture, u64, bool)>,
}

impl Tracker {
    pub fn new(window: usize, reposition_ns: u64) -> Self {
        Self {
            window: window.max(1),
            reposition_ns,
            recent: Default::default(),
            current: None,
        }
    }

    /// A new reposition interval, for the posture in progress too.
    pub fn set_reposition_interval(&mut self, ns: u64) {
        self.reposition_ns = ns;
    }

    /// Forgets the past (a flush, a new stream).
    pub fn reset(&mut self) {
        self.recent.clear();
        self.current = None;
    }

    /// Takes one frame's probabilities at time `pts_ns`; returns the smoothed estimate and what
    /// happened, in order.
    pub fn push(&mut self, probabilities: &[f32], pts_ns: u64) -> (PostureEstimate, Vec<Event>) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(probabilities.to_vec());
        let n = self.recent.len() as f32;
        let mut mean = vec![0.0; probabilities.len()];
        for p in &self.recent {
            for (m, v) in mean.iter_mut().zip(p) {
                *m += v / n;
            }
        }
        let label = most_probable(&mean);
        let mut events = Vec::new();
        match &mut self.current {
            Some((posture, since, alerted)) if *posture == label => {
                let lasted = pts_ns.saturating_sub(*since);
                if !*alerted && lasted >= self.reposition_ns {
                    *alerted = true;
                    events.push(Event::Reposition {
                        posture: label,
                        since_ns: *since,
                        lasted_ns: lasted,
                    });
                }
            }
            current => {
                let previous = current
                    .as_ref()
                    .map(|&(p, since, _)| (p, pts_ns.saturating_sub(since)));
                *current = Some((label, pts_ns, false));
                events.push(Event::Change {
                    posture: label,
                    previous,
                    at_ns: pts_ns,
                });
            }
        }
        (
            PostureEstimate {
                label,
                probabilities: mean,
            },
            events,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const SUPINE: [f32; 3] = [0.8, 0.1, 0.1];
    const LEFT: [f32; 3] = [0.1, 0.8, 0.1];

    #[test]
    fn one_odd_frame_does_not_flip_a_smoothed_posture() {
        let mut t = Tracker::new(5, u64::MAX);
        let (_, first) = t.push(&SUPINE, 0);
        assert_eq!(
            first,
            [Event::Change {
                posture: Posture::Supine,
                previous: None,
                at_ns: 0
            }]
        );
        for i in 1..4 {
            assert!(t.push(&SUPINE, i * S).1.is_empty());
        }
        let (estimate, events) = t.push(&LEFT, 4 * S);
        assert_eq!((estimate.label, events.len()), (Posture::Supine, 0));
        // Left for long enough: one change, with how long supine lasted.
        let changes: Vec<Event> = (5..12).flat_map(|i| t.push(&LEFT, i * S).1).collect();
        assert_eq!(
            changes,
            [Event::Change {
                posture: Posture::Left,
                previous: Some((Posture::Supine, 6 * S)),
                at_ns: 6 * S
            }]
        );
    }

    #[test]
    fn a_posture_held_for_the_interval_raises_one_alert() {
        let mut t = Tracker::new(1, 10 * S);
        let alerts: Vec<(u64, Event)> = (0..30)
            .flat_map(|i| {
                t.push(&SUPINE, i * S)
                    .1
                    .into_iter()
                    .filter(|e| matches!(e, Event::Reposition { .. }))
                    .map(move |e| (i, e))
            })
            .collect();
        assert_eq!(
            alerts,
            [(
                10,
                Event::Reposition {
                    posture: Posture::Supine,
                    since_ns: 0,
                    lasted_ns: 10 * S
                }
            )]
        );
        // A turn starts the clock again; a reset forgets everything.
        assert!(matches!(
            t.push(&LEFT, 30 * S).1[..],
            [Event::Change { .. }]
        ));
        assert!(t.push(&LEFT, 39 * S).1.is_empty());
        assert!(matches!(
            t.push(&LEFT, 40 * S).1[..],
            [Event::Reposition { .. }]
        ));
        t.reset();
        assert!(matches!(
            t.push(&LEFT, 41 * S).1[..],
            [Event::Change { previous: None, .. }]
        ));
    }
}
