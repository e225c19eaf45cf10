//! When frames leave `spmkdpose`, free of GStreamer: which frames the model runs on
//! (`inference-interval`), how many wait to be inferred at once (`parallel-frames`), and the
//! order they leave in (always the order they came in).
//!
//! Frames to be inferred wait until there is one per lane; a frame that carries the last pose
//! waits behind the frame whose pose it carries, and leaves at once when nothing waits.

/// A frame handed back by the [`Batcher`], with whether the model is to run on it (else it
/// carries the pose of the last inferred frame before it).
#[derive(Debug, PartialEq, Eq)]
pub struct Scheduled<T> {
    pub frame: T,
    pub infer: bool,
}

#[derive(Debug)]
pub struct Batcher<T> {
    lanes: usize,
    /// Frames since the stream (re)started: the model runs when `frames % interval == 0`.
    frames: u64,
    /// Whether a frame to be inferred has been accepted since the start: until then every
    /// frame is inferred, whatever the interval (there is no pose to carry yet).
    posed: bool,
    waiting: Vec<Scheduled<T>>,
    waiting_inferences: usize,
}

impl<T> Batcher<T> {
    /// A batcher for `lanes` frames inferred at once (at least 1).
    pub fn new(lanes: usize) -> Self {
        Self {
            lanes: lanes.max(1),
            frames: 0,
            posed: false,
            waiting: Vec::new(),
            waiting_inferences: 0,
        }
    }

    /// Takes the next frame; returns the frames that may leave now, in order: a full batch
    /// (one frame to infer per lane, with the frames carrying their poses), or frames that
    /// carry an existing pose when nothing waits. `interval` is `inference-interval`, read
    /// per frame because it may change while playing.
    pub fn accept(&mut self, frame: T, interval: u32) -> Vec<Scheduled<T>> {
        let interval = u64::from(interval.max(1));
        let infer = !self.posed || self.frames.is_multiple_of(interval);
        self.frames += 1;
        self.posed = true;
        self.waiting.push(Scheduled { frame, infer });
        if infer {
            self.waiting_inferences += 1;
        }
        if self.waiting_inferences == self.lanes || self.waiting_inferences == 0 {
            self.flush()
        } else {
            Vec::new()
        }
    }

    /// Every frame waiting, in order, batch full or not: before a serialized event or query,
    /// at EOS, when upstream drains before an error.
    pub fn flush(&mut self) -> Vec<Scheduled<T>> {
        self.waiting_inferences = 0;
        std::mem::take(&mut self.waiting)
    }

    /// Forgets the waiting frames and the pose there was to carry: after a flush, or for a new
    /// grid (caps), where the interval counts again from the next frame.
    pub fn reset(&mut self) {
        self.frames = 0;
        self.posed = false;
        self.waiting.clear();
        self.waiting_inferences = 0;
    }

    /// Frames waiting for their batch.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame numbers of a release, each with its infer flag.
    fn out(released: Vec<Scheduled<u32>>) -> Vec<(u32, bool)> {
        released.into_iter().map(|s| (s.frame, s.infer)).collect()
    }

    #[test]
    fn one_lane_every_frame_leaves_at_once() {
        let mut b = Batcher::new(1);
        for n in 0..5 {
            assert_eq!(out(b.accept(n, 1)), [(n, true)]);
        }
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn lanes_fill_before_frames_leave_in_order() {
        let mut b = Batcher::new(3);
        assert!(b.accept(0, 1).is_empty());
        assert!(b.accept(1, 1).is_empty());
        assert_eq!(out(b.accept(2, 1)), [(0, true), (1, true), (2, true)]);
        assert!(b.accept(3, 1).is_empty());
        assert_eq!(b.waiting(), 1);
        // EOS (or an upstream error) lets the incomplete batch out.
        assert_eq!(out(b.flush()), [(3, true)]);
        assert!(b.flush().is_empty());
    }

    #[test]
    fn carried_frames_wait_behind_their_pose() {
        // interval 3, 2 lanes: 0 and 3 are inferred together; 1, 2 carry 0's pose, 4 carries 3's.
        let mut b = Batcher::new(2);
        assert!(b.accept(0, 3).is_empty());
        assert!(b.accept(1, 3).is_empty());
        assert!(b.accept(2, 3).is_empty());
        assert_eq!(
            out(b.accept(3, 3)),
            [(0, true), (1, false), (2, false), (3, true)]
        );
        // Nothing waits: a carried frame leaves at once.
        assert_eq!(out(b.accept(4, 3)), [(4, false)]);
        assert_eq!(out(b.accept(5, 3)), [(5, false)]);
        assert!(b.accept(6, 3).is_empty());
    }

    #[test]
    fn the_first_frame_is_inferred_whatever_the_interval() {
        let mut b = Batcher::new(1);
        assert_eq!(out(b.accept(0, 10)), [(0, true)]);
        assert_eq!(out(b.accept(1, 10)), [(1, false)]);
        // The interval may change while playing: it applies to the frame count so far.
        assert_eq!(out(b.accept(2, 2)), [(2, true)]);
    }

    #[test]
    fn reset_forgets_waiting_frames_and_the_pose() {
        let mut b = Batcher::new(2);
        assert!(b.accept(0, 5).is_empty());
        assert!(b.accept(1, 5).is_empty());
        b.reset();
        assert_eq!(b.waiting(), 0);
        // The next frame has no pose to carry: inferred, and the interval counts from it.
        assert!(b.accept(7, 5).is_empty());
        assert_eq!(out(b.flush()), [(7, true)]);
        assert_eq!(out(b.accept(8, 5)), [(8, false)]);
    }

    #[test]
    fn nothing_is_lost_or_reordered() {
        // Any mix of lanes, intervals and flushes hands back every frame once, in order.
        for lanes in 1..5 {
            for interval in 1..5 {
                let mut b = Batcher::new(lanes);
                let mut released = Vec::new();
                for n in 0..50u32 {
                    released.extend(out(b.accept(n, interval)));
                    if n % 7 == 6 {
                        released.extend(out(b.flush()));
                    }
                }
                released.extend(out(b.flush()));
                let frames: Vec<u32> = released.iter().map(|&(n, _)| n).collect();
                assert_eq!(frames, (0..50).collect::<Vec<_>>(), "{lanes} lanes");
                let inferred = released.iter().filter(|&&(_, i)| i).count();
                assert_eq!(inferred, 50usize.div_ceil(interval as usize));
            }
        }
    }
}
