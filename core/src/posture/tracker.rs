//! What `spmkdposture` does with a posture model's answers over time: a smoothing window,
//! changes, reposition alerts; plain logic, tested without a pipeline.

use super::{Posture, most_probable};
use crate::schema::{PostureEstimate, PostureLabel};

/// What happened at a frame, for the element to post.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The label became `posture` at `at_ns` (a posture, or `none` when the mat emptied); the
    /// one before (if any) had lasted `lasted_ns`.
    Change {
        posture: PostureLabel,
        previous: Option<(PostureLabel, u64)>,
        at_ns: u64,
    },
    /// At `at_ns`, `posture` has been held for `lasted_ns` of occupied time (since `since_ns`;
    /// pauses do not count), at least the reposition interval.
    Reposition {
        posture: Posture,
        since_ns: u64,
        lasted_ns: u64,
        at_ns: u64,
    },
    /// A movement offloaded what `posture` had loaded (reported by the monitor): a reposition
    /// without a change of posture, after `lasted_ns` of occupied time in it.
    Offloaded {
        posture: Posture,
        lasted_ns: u64,
        at_ns: u64,
    },
}

/// The time a posture has been held, counted only while someone is on the mat and the posture
/// is trusted: the reposition clock.
#[derive(Debug, Clone, Copy)]
struct Clock {
    posture: Posture,
    since_ns: u64,
    held_ns: u64,
    /// The last frame that counted; `None` while paused (empty mat, uncertain frames).
    last_ns: Option<u64>,
    alerted: bool,
}

/// The posture over time: the mean of the last `window` frames' probabilities decides, a
/// change is reported once, and a posture held for `reposition_ns` raises one alert. Empty
/// frames give the label `none` and pause the clock; uncertain frames pause it too.
#[derive(Debug, Clone)]
pub struct Tracker {
    window: usize,
    reposition_ns: u64,
    recent: std::collections::VecDeque<Vec<f32>>,
    /// The label last reported and since when.
    shown: Option<(PostureLabel, u64)>,
    clock: Option<Clock>,
}

impl Tracker {
    pub fn new(window: usize, reposition_ns: u64) -> Self {
        Self {
            window: window.max(1),
            reposition_ns,
            recent: Default::default(),
            shown: None,
            clock: None,
        }
    }

    /// A new reposition interval, for the posture in progress too.
    pub fn set_reposition_interval(&mut self, ns: u64) {
        self.reposition_ns = ns;
    }

    /// Forgets the past (a flush, a new stream).
    pub fn reset(&mut self) {
        self.recent.clear();
        self.shown = None;
        self.clock = None;
    }

    /// Takes one classified frame's probabilities at time `now_ns`; returns the smoothed
    /// estimate and what happened, in order.
    pub fn push(&mut self, probabilities: &[f32], now_ns: u64) -> (PostureEstimate, Vec<Event>) {
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
        let posture = most_probable(&mean);
        let mut events = Vec::new();
        self.show(posture.into(), now_ns, &mut events);
        match &mut self.clock {
            Some(clock) if clock.posture == posture => {
                if let Some(last) = clock.last_ns {
                    clock.held_ns += now_ns.saturating_sub(last);
                }
                clock.last_ns = Some(now_ns);
                if !clock.alerted && clock.held_ns >= self.reposition_ns {
                    clock.alerted = true;
                    events.push(Event::Reposition {
                        posture,
                        since_ns: clock.since_ns,
                        lasted_ns: clock.held_ns,
                        at_ns: now_ns,
                    });
                }
            }
            clock => {
                *clock = Some(Clock {
                    posture,
                    since_ns: now_ns,
                    held_ns: 0,
                    last_ns: Some(now_ns),
                    alerted: false,
                })
            }
        }
        (
            PostureEstimate {
                label: posture.into(),
                probabilities: mean,
            },
            events,
        )
    }

    /// An empty mat at `now_ns`: the label `none`, the clock paused, the smoothing window
    /// emptied (whoever lies down next starts afresh).
    pub fn empty(&mut self, now_ns: u64) -> (PostureEstimate, Vec<Event>) {
        self.recent.clear();
        self.pause();
        let mut events = Vec::new();
        self.show(PostureLabel::NONE, now_ns, &mut events);
        (
            PostureEstimate {
                label: PostureLabel::NONE,
                probabilities: Vec::new(),
            },
            events,
        )
    }

    /// A frame the models are not trusted on: labelled `uncertain` with its own probabilities,
    /// the clock paused, the smoothing window and the reported posture left as they were.
    pub fn uncertain(&mut self, probabilities: &[f32]) -> PostureEstimate {
        self.pause();
        PostureEstimate {
            label: PostureLabel::UNCERTAIN,
            probabilities: probabilities.to_vec(),
        }
    }

    /// A movement offloaded what the current posture loaded at `now_ns`: the clock starts
    /// again, as after a turn.
    pub fn offloaded(&mut self, now_ns: u64) -> Option<Event> {
        let clock = self.clock.as_mut()?;
        let event = Event::Offloaded {
            posture: clock.posture,
            lasted_ns: clock.held_ns,
            at_ns: now_ns,
        };
        *clock = Clock {
            since_ns: now_ns,
            held_ns: 0,
            last_ns: clock.last_ns.map(|_| now_ns),
            alerted: false,
            ..*clock
        };
        Some(event)
    }

    fn pause(&mut self) {
        if let Some(clock) = &mut self.clock {
            clock.last_ns = None;
        }
    }

    fn show(&mut self, label: PostureLabel, now_ns: u64, events: &mut Vec<Event>) {
        if self.shown.map(|(l, _)| l) == Some(label) {
            return;
        }
        let previous = self
            .shown
            .map(|(l, since)| (l, now_ns.saturating_sub(since)));
        self.shown = Some((label, now_ns));
        events.push(Event::Change {
            posture: label,
            previous,
            at_ns: now_ns,
        });
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
                posture: Posture::Supine.into(),
                previous: None,
                at_ns: 0
            }]
        );
        for i in 1..4 {
            assert!(t.push(&SUPINE, i * S).1.is_empty());
        }
        let (estimate, events) = t.push(&LEFT, 4 * S);
        assert_eq!((estimate.label, events.len()), (Posture::Supine.into(), 0));
        // Left for long enough: one change, with how long supine lasted.
        let changes: Vec<Event> = (5..12).flat_map(|i| t.push(&LEFT, i * S).1).collect();
        assert_eq!(
            changes,
            [Event::Change {
                posture: Posture::Left.into(),
                previous: Some((Posture::Supine.into(), 6 * S)),
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
                    lasted_ns: 10 * S,
                    at_ns: 10 * S
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

    #[test]
    fn an_empty_mat_shows_none_and_pauses_the_clock() {
        let mut t = Tracker::new(1, 10 * S);
        for i in 0..6 {
            t.push(&SUPINE, i * S);
        }
        // Empty from 6 s to 20 s: none, reported once, no alert although 20 s have passed.
        let (estimate, events) = t.empty(6 * S);
        assert_eq!(estimate.label, PostureLabel::NONE);
        assert!(estimate.probabilities.is_empty());
        assert_eq!(
            events,
            [Event::Change {
                posture: PostureLabel::NONE,
                previous: Some((Posture::Supine.into(), 6 * S)),
                at_ns: 6 * S
            }]
        );
        for i in 7..20 {
            assert!(t.empty(i * S).1.is_empty());
        }
        // Back, supine again: the clock resumes at its 5 s; the alert comes 5 s later.
        let (_, back) = t.push(&SUPINE, 20 * S);
        assert!(matches!(
            back[..],
            [Event::Change {
                previous: Some((PostureLabel::NONE, _)),
                ..
            }]
        ));
        let alerts: Vec<(u64, Event)> = (21..30)
            .flat_map(|i| t.push(&SUPINE, i * S).1.into_iter().map(move |e| (i, e)))
            .collect();
        assert_eq!(
            alerts,
            [(
                25,
                Event::Reposition {
                    posture: Posture::Supine,
                    since_ns: 0,
                    lasted_ns: 10 * S,
                    at_ns: 25 * S
                }
            )]
        );
    }

    #[test]
    fn uncertain_frames_pause_the_clock_and_change_nothing_shown() {
        let mut t = Tracker::new(1, 10 * S);
        t.push(&SUPINE, 0);
        let estimate = t.uncertain(&LEFT);
        assert_eq!(estimate.label, PostureLabel::UNCERTAIN);
        assert_eq!(estimate.probabilities, LEFT);
        for i in 1..20 {
            t.uncertain(&LEFT);
            let _ = i;
        }
        // Trusted again at 20 s: still supine (no change), held 0 s so far, no alert yet.
        assert!(t.push(&SUPINE, 20 * S).1.is_empty());
        assert!(t.push(&SUPINE, 29 * S).1.is_empty());
        assert!(
            matches!(t.push(&SUPINE, 30 * S).1[..], [Event::Reposition { lasted_ns, .. }] if lasted_ns == 10 * S)
        );
    }

    #[test]
    fn an_offloading_movement_restarts_the_clock() {
        let mut t = Tracker::new(1, 10 * S);
        assert_eq!(t.offloaded(0), None, "nothing held yet");
        for i in 0..8 {
            t.push(&SUPINE, i * S);
        }
        assert_eq!(
            t.offloaded(8 * S),
            Some(Event::Offloaded {
                posture: Posture::Supine,
                lasted_ns: 7 * S,
                at_ns: 8 * S
            })
        );
        // Ten more seconds from the offloading, not from the start.
        assert!(t.push(&SUPINE, 17 * S).1.is_empty());
        assert!(
            matches!(t.push(&SUPINE, 18 * S).1[..], [Event::Reposition { since_ns, .. }] if since_ns == 8 * S)
        );
    }
}
