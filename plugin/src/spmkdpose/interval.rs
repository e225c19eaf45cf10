//! Which frames the model runs on (`inference-interval`); the others carry the pose of the
//! last inferred frame before them.

#[derive(Debug, Default)]
pub struct Interval {
    /// Frames since the stream (re)started: the model runs when `frames % interval == 0`.
    frames: u64,
    /// Whether a frame has been inferred since the start: until then every frame is, whatever
    /// the interval (there is no pose to carry yet).
    posed: bool,
}

impl Interval {
    /// Whether the model runs on the next frame. `interval` is `inference-interval`, read per
    /// frame because it may change while playing.
    pub fn infer(&mut self, interval: u32) -> bool {
        let interval = u64::from(interval.max(1));
        let infer = !self.posed || self.frames.is_multiple_of(interval);
        self.frames += 1;
        self.posed = true;
        infer
    }

    /// Counts again from the next frame, which is inferred: after a flush, for a new grid
    /// (caps) or a new model.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(interval: &mut Interval, every: u32, n: usize) -> Vec<bool> {
        (0..n).map(|_| interval.infer(every)).collect()
    }

    #[test]
    fn every_nth_frame_is_inferred() {
        let mut i = Interval::default();
        assert_eq!(run(&mut i, 1, 3), [true, true, true]);
        let mut i = Interval::default();
        assert_eq!(
            run(&mut i, 3, 7),
            [true, false, false, true, false, false, true]
        );
    }

    #[test]
    fn the_first_frame_is_inferred_whatever_the_interval() {
        let mut i = Interval::default();
        assert_eq!(run(&mut i, 10, 2), [true, false]);
        // The interval may change while playing: it applies to the frame count so far.
        assert!(i.infer(2));
    }

    #[test]
    fn reset_counts_from_the_next_frame() {
        let mut i = Interval::default();
        assert_eq!(run(&mut i, 5, 2), [true, false]);
        i.reset();
        assert_eq!(run(&mut i, 5, 6), [true, false, false, false, false, true]);
    }
}
