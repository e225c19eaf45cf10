//! The frames between `spmkdpose`'s sink and src pads, free of GStreamer: the inferred ones
//! (up to `depth` in flight on the lanes) and those carrying the pose of the inferred frame
//! before them, and when each may leave. They leave in the order they came in.
//!
//! A frame leaves once `depth` inferences are in flight counting its own (it is waited for
//! then, while the lanes work on the others) or when it carries a pose that is known (no
//! inference waits before it). So a frame waits for at most `depth - 1` later inferred frames,
//! and which frames leave depends on the frame count only, never on timing.

use std::collections::VecDeque;

/// A frame in flight: `I` while it is inferred, `C` when it carries the last pose.
#[derive(Debug, PartialEq, Eq)]
pub enum Flight<I, C> {
    Inferring(I),
    Carrying(C),
}

#[derive(Debug)]
pub struct InFlight<I, C> {
    queue: VecDeque<Flight<I, C>>,
    /// How many of `queue` are `Inferring`.
    inferring: usize,
    depth: usize,
}

impl<I, C> InFlight<I, C> {
    /// Up to `depth` inferred frames in flight (at least 1).
    pub fn new(depth: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            inferring: 0,
            depth: depth.max(1),
        }
    }

    pub fn push(&mut self, frame: Flight<I, C>) {
        if matches!(frame, Flight::Inferring(_)) {
            self.inferring += 1;
        }
        self.queue.push_back(frame);
    }

    /// The oldest frame if it may leave now (see the module's doc), else `None`.
    pub fn next_ready(&mut self) -> Option<Flight<I, C>> {
        match self.queue.front()? {
            Flight::Carrying(_) => self.pop(),
            Flight::Inferring(_) if self.inferring >= self.depth => self.pop(),
            Flight::Inferring(_) => None,
        }
    }

    /// The oldest frame, whatever waits behind it: draining before an event, at EOS.
    pub fn pop(&mut self) -> Option<Flight<I, C>> {
        let frame = self.queue.pop_front()?;
        if matches!(frame, Flight::Inferring(_)) {
            self.inferring -= 1;
        }
        Some(frame)
    }

    /// Drops every frame in flight (a flush).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.inferring = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Frames = InFlight<u32, u32>;

    /// Pushes frame `n` (inferred or carrying), then hands back the numbers of those that
    /// leave, each with whether it was inferred.
    fn accept(f: &mut Frames, n: u32, infer: bool) -> Vec<(u32, bool)> {
        f.push(if infer {
            Flight::Inferring(n)
        } else {
            Flight::Carrying(n)
        });
        std::iter::from_fn(|| f.next_ready()).map(out).collect()
    }

    fn out(frame: Flight<u32, u32>) -> (u32, bool) {
        match frame {
            Flight::Inferring(n) => (n, true),
            Flight::Carrying(n) => (n, false),
        }
    }

    #[test]
    fn depth_one_every_frame_leaves_at_once() {
        let mut f = Frames::new(1);
        for n in 0..5 {
            assert_eq!(accept(&mut f, n, n % 2 == 0), [(n, n % 2 == 0)]);
        }
        assert!(f.is_empty());
    }

    #[test]
    fn a_frame_leaves_once_depth_frames_are_in_flight() {
        let mut f = Frames::new(3);
        assert!(accept(&mut f, 0, true).is_empty());
        assert!(accept(&mut f, 1, true).is_empty());
        // Three in flight: the oldest is waited for while the lanes work on the others.
        assert_eq!(accept(&mut f, 2, true), [(0, true)]);
        assert_eq!(accept(&mut f, 3, true), [(1, true)]);
        assert_eq!(f.len(), 2);
        // EOS (or an upstream error) lets the rest out.
        let rest: Vec<_> = std::iter::from_fn(|| f.pop()).map(out).collect();
        assert_eq!(rest, [(2, true), (3, true)]);
        assert!(f.pop().is_none());
    }

    #[test]
    fn carried_frames_wait_behind_their_pose() {
        // Interval 3, 2 lanes: 1 and 2 carry 0's pose, 4 carries 3's.
        let mut f = Frames::new(2);
        assert!(accept(&mut f, 0, true).is_empty());
        assert!(accept(&mut f, 1, false).is_empty());
        assert!(accept(&mut f, 2, false).is_empty());
        assert_eq!(accept(&mut f, 3, true), [(0, true), (1, false), (2, false)]);
        assert!(accept(&mut f, 4, false).is_empty());
        assert_eq!(accept(&mut f, 6, true), [(3, true), (4, false)]);
        // Once the pose it carries has left, a carried frame leaves at once.
        f.pop();
        assert_eq!(accept(&mut f, 7, false), [(7, false)]);
    }

    #[test]
    fn clear_drops_everything() {
        let mut f = Frames::new(2);
        accept(&mut f, 0, true);
        accept(&mut f, 1, false);
        f.clear();
        assert!(f.is_empty());
        // Counting starts again: one inference in flight is not yet `depth`.
        assert!(accept(&mut f, 2, true).is_empty());
    }

    #[test]
    fn nothing_is_lost_or_reordered_and_no_frame_waits_longer_than_depth() {
        for depth in 1..5 {
            for interval in 1..5u32 {
                let mut f = Frames::new(depth);
                let mut left = Vec::new();
                let mut inferred_since = Vec::new();
                for n in 0..50u32 {
                    let infer = n % interval == 0;
                    for (m, i) in accept(&mut f, n, infer) {
                        left.push((m, i));
                        // Inferred frames that came after m, counting n itself.
                        let later = (m + 1..=n).filter(|k| k % interval == 0).count();
                        inferred_since.push(later);
                    }
                    if n % 7 == 6 {
                        left.extend(std::iter::from_fn(|| f.pop()).map(out));
                    }
                }
                left.extend(std::iter::from_fn(|| f.pop()).map(out));
                let frames: Vec<u32> = left.iter().map(|&(n, _)| n).collect();
                assert_eq!(frames, (0..50).collect::<Vec<_>>(), "depth {depth}");
                assert!(left.iter().all(|&(n, i)| i == (n % interval == 0)));
                assert!(inferred_since.iter().all(|&k| k < depth), "depth {depth}");
            }
        }
    }
}
