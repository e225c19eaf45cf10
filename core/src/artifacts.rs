//! Capture artifacts of PmatData experiment-i, found by what the frame holds, not where it is.
//!
//! Every experiment-i recording starts with two bad frames (see the dataset's README): frame 0 is
//! near-empty and frame 1 is corrupted. Looking at all 20 024 frames shows what they are:
//!
//! - **Partial scan** (frame 0): the head-end rows were never scanned. In every frame 0 the
//!   first 27 or more rows are exactly zero, while every real frame, even an empty bed, has
//!   sensor noise within the first 6 rows. Rule: *all cells of the first quarter of the rows
//!   (rows 0..16) read exactly zero.*
//! - **Quantized** (frame 1): readings snap to multiples of 256 (0, 256, 512, ... 3840, +-1):
//!   in every frame 1, at least 80 % of the cells reading 64 or more are within 4 of a multiple
//!   of 256; in real frames at most 6 % are (chance alone gives about 3.5 %). Rule: *at least
//!   32 cells read 64 or more, and at least half of them are within 4 of a multiple of 256.*
//!
//! The rules flag frames 0 and 1 of all 221 files and, by content alone, 6 later frames that
//! share the corruption (S1/8.txt, S4/6.txt, S6/14.txt frame 2; S7/9.txt frames 2 and 3;
//! S6/1.txt frame 10): 448 of 20 024 frames; `spmkd-train data` prints the counts.
//! The rules are specific to this mat's capture software and are applied to `pmat-i` input
//! only.

use std::fmt;

use crate::frame::Frame;

/// Why a frame is not a real pressure reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Artifact {
    /// The head-end rows were never scanned (experiment-i frame 0).
    PartialScan,
    /// Readings snapped to multiples of 256 (experiment-i frame 1).
    Quantized,
}

impl Artifact {
    pub fn as_str(self) -> &'static str {
        match self {
            Artifact::PartialScan => "partial-scan",
            Artifact::Quantized => "quantized",
        }
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Readings at or above this count for the quantization test; below it, every reading is
/// trivially "near" 0.
const QUANT_MIN_READING: u16 = 64;
const QUANT_TOLERANCE: u16 = 4;
const QUANT_MIN_CELLS: usize = 32;

/// Applies the experiment-i rules above.
pub fn detect_pmat_i(frame: &Frame) -> Option<Artifact> {
    let head_rows = frame.height() / 4;
    if head_rows > 0
        && frame.data()[..head_rows * frame.width()]
            .iter()
            .all(|&v| v == 0)
    {
        return Some(Artifact::PartialScan);
    }
    let (loaded, snapped) = frame
        .data()
        .iter()
        .filter(|&&v| v >= QUANT_MIN_READING)
        .fold((0usize, 0usize), |(n, s), &v| {
            let off = v % 256;
            let near = off <= QUANT_TOLERANCE || off >= 256 - QUANT_TOLERANCE;
            (n + 1, s + usize::from(near))
        });
    (loaded >= QUANT_MIN_CELLS && 2 * snapped >= loaded).then_some(Artifact::Quantized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with(f: impl Fn(usize, usize) -> u16) -> Frame {
        let data = (0..64 * 32).map(|i| f(i % 32, i / 32)).collect();
        Frame::new(32, 64, data).unwrap()
    }

    #[test]
    fn empty_head_rows_are_a_partial_scan() {
        let f = frame_with(|_, y| if y >= 30 { 200 } else { 0 });
        assert_eq!(detect_pmat_i(&f), Some(Artifact::PartialScan));
        assert_eq!(
            detect_pmat_i(&frame_with(|_, _| 0)),
            Some(Artifact::PartialScan)
        );
    }

    #[test]
    fn noise_near_the_head_is_a_real_frame() {
        let f = frame_with(|x, y| {
            if y == 5 && x == 3 {
                1
            } else if y > 20 {
                300
            } else {
                0
            }
        });
        assert_eq!(detect_pmat_i(&f), None);
    }

    #[test]
    fn multiples_of_256_are_quantized() {
        let f = frame_with(|x, y| ((x + y) % 16) as u16 * 256 + (x % 2) as u16);
        assert_eq!(detect_pmat_i(&f), Some(Artifact::Quantized));
    }

    #[test]
    fn smooth_pressure_is_not_quantized() {
        let f = frame_with(|x, y| (x * 7 + y * 13) as u16 % 900 + 1);
        assert_eq!(detect_pmat_i(&f), None);
    }
}
