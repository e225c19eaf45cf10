//! How a mat lies: the eight ways a rectangular grid of cells can be turned and mirrored, and
//! the mapping between a stream's cells and the cells of the models' convention.
//!
//! **The convention** (what every spmkd model learned from PmatData): row 0 at the head end, the
//! last row at the foot end; a patient lying on their back has their **left** side at column 0
//! and their **right** side at the last column. Corner cells: (row 0, column 0) head end,
//! patient's left; (0, W - 1) head end, patient's right; (H - 1, 0) foot end, left; (H - 1,
//! W - 1) foot end, right. Drawn with row 0 at the top and column 0 at the left, a frame shows the
//! patient as seen from under the mat. `spmkd-train convention` checks it on PmatData's lateral
//! recordings: the knees bend toward the side a patient faces, which is the side they lie on.
//!
//! An [`Orientation`] says how to bring a stream's frame into that convention, as GStreamer's
//! `videoflip video-direction` would transform it, and under the same names: a mat wired with
//! its columns the other way round is `horiz`, one laid head to foot (turned in its plane) is
//! `180`. Keypoints found on the transformed frame are mapped back ([`Orientation::to_stream`]),
//! so everything downstream stays in the stream's own cells.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the eight symmetries of a rectangle's grid, named as GStreamer's
/// `GstVideoOrientationMethod`: the transform that takes a frame as the mat delivers it to the
/// frame as the models expect it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Orientation {
    /// As delivered.
    #[default]
    Identity,
    /// Turned a quarter clockwise.
    Rotate90R,
    /// Turned half way round (head to foot, columns reversed too).
    Rotate180,
    /// Turned a quarter counter-clockwise.
    Rotate90L,
    /// Mirrored left to right (columns reversed).
    FlipHorizontal,
    /// Mirrored top to bottom (rows reversed).
    FlipVertical,
    /// Mirrored across the diagonal from the upper left to the lower right (transposed).
    UpperLeftLowerRight,
    /// Mirrored across the diagonal from the upper right to the lower left.
    UpperRightLowerLeft,
}

/// An orientation name that is none of the eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown orientation {0:?}: expected one of identity, 90r, 180, 90l, horiz, vert, ul-lr, ur-ll"
)]
pub struct UnknownOrientation(pub String);

impl Orientation {
    /// All eight, in GStreamer's order.
    pub const ALL: [Orientation; 8] = [
        Orientation::Identity,
        Orientation::Rotate90R,
        Orientation::Rotate180,
        Orientation::Rotate90L,
        Orientation::FlipHorizontal,
        Orientation::FlipVertical,
        Orientation::UpperLeftLowerRight,
        Orientation::UpperRightLowerLeft,
    ];

    /// GStreamer's nick for it (`videoflip video-direction=...`).
    pub fn as_str(self) -> &'static str {
        match self {
            Orientation::Identity => "identity",
            Orientation::Rotate90R => "90r",
            Orientation::Rotate180 => "180",
            Orientation::Rotate90L => "90l",
            Orientation::FlipHorizontal => "horiz",
            Orientation::FlipVertical => "vert",
            Orientation::UpperLeftLowerRight => "ul-lr",
            Orientation::UpperRightLowerLeft => "ur-ll",
        }
    }

    pub fn is_identity(&self) -> bool {
        *self == Orientation::Identity
    }

    /// Whether width and height trade places.
    pub fn transposes(self) -> bool {
        matches!(
            self,
            Orientation::Rotate90R
                | Orientation::Rotate90L
                | Orientation::UpperLeftLowerRight
                | Orientation::UpperRightLowerLeft
        )
    }

    /// The size of a `width x height` frame once oriented.
    pub fn size(self, width: usize, height: usize) -> (usize, usize) {
        if self.transposes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// The point of a `width x height` stream frame that lands on point `(x, y)` of the
    /// oriented frame. Continuous cell coordinates (cell `(i, j)` covers `[j, j + 1) x
    /// [i, i + 1)`), so with `(w, h) = (width, height)` and cell centres `x + 0.5`, this is
    /// also the cell mapping.
    pub fn to_stream(self, x: f32, y: f32, width: usize, height: usize) -> (f32, f32) {
        let (w, h) = (width as f32, height as f32);
        match self {
            Orientation::Identity => (x, y),
            Orientation::Rotate90R => (y, h - x),
            Orientation::Rotate180 => (w - x, h - y),
            Orientation::Rotate90L => (w - y, x),
            Orientation::FlipHorizontal => (w - x, y),
            Orientation::FlipVertical => (x, h - y),
            Orientation::UpperLeftLowerRight => (y, x),
            Orientation::UpperRightLowerLeft => (w - y, h - x),
        }
    }

    /// Where point `(x, y)` of a `width x height` stream frame lands in the oriented frame:
    /// the inverse of [`Self::to_stream`].
    pub fn to_oriented(self, x: f32, y: f32, width: usize, height: usize) -> (f32, f32) {
        let (ow, oh) = self.size(width, height);
        self.inverse().to_stream(x, y, ow, oh)
    }

    /// The orientation that undoes this one.
    pub fn inverse(self) -> Orientation {
        match self {
            Orientation::Rotate90R => Orientation::Rotate90L,
            Orientation::Rotate90L => Orientation::Rotate90R,
            other => other,
        }
    }

    /// This orientation applied after `first`: the one transform that does both.
    pub fn after(self, first: Orientation) -> Orientation {
        // Found by applying both to a small frame whose cells all differ: eight candidates,
        // and a 2 x 3 frame tells all eight apart.
        let frame: Vec<u8> = (0..6).collect();
        let (mut once, mut twice) = (Vec::new(), Vec::new());
        let (w, h) = first.apply(&frame, 2, 3, &mut once);
        self.apply(&once, w, h, &mut twice);
        let mut direct = Vec::new();
        Orientation::ALL
            .into_iter()
            .find(|o| {
                o.apply(&frame, 2, 3, &mut direct);
                direct == twice
            })
            .expect("the eight symmetries are closed under composition")
    }

    /// The `width x height` row-major frame `src`, oriented, into `out` (resized); returns the
    /// oriented size. The identity is a copy.
    ///
    /// # Panics
    /// If `src` does not hold `width x height` values (a programming error, not a data error).
    pub fn apply<T: Copy>(
        self,
        src: &[T],
        width: usize,
        height: usize,
        out: &mut Vec<T>,
    ) -> (usize, usize) {
        assert_eq!(src.len(), width * height, "orientation: frame size");
        out.clear();
        let (ow, oh) = self.size(width, height);
        if self == Orientation::Identity {
            out.extend_from_slice(src);
            return (ow, oh);
        }
        out.reserve(src.len());
        for y in 0..oh {
            for x in 0..ow {
                let (sx, sy) = self.source_cell(x, y, width, height);
                out.push(src[sy * width + sx]);
            }
        }
        (ow, oh)
    }

    /// The stream cell (column, row) that oriented cell `(x, y)` comes from.
    fn source_cell(self, x: usize, y: usize, width: usize, height: usize) -> (usize, usize) {
        let (lw, lh) = (width - 1, height - 1);
        match self {
            Orientation::Identity => (x, y),
            Orientation::Rotate90R => (y, lh - x),
            Orientation::Rotate180 => (lw - x, lh - y),
            Orientation::Rotate90L => (lw - y, x),
            Orientation::FlipHorizontal => (lw - x, y),
            Orientation::FlipVertical => (x, lh - y),
            Orientation::UpperLeftLowerRight => (y, x),
            Orientation::UpperRightLowerLeft => (lw - y, lh - x),
        }
    }
}

impl fmt::Display for Orientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Orientation> for &'static str {
    fn from(o: Orientation) -> Self {
        o.as_str()
    }
}

impl TryFrom<String> for Orientation {
    type Error = UnknownOrientation;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Orientation {
    type Err = UnknownOrientation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Orientation::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownOrientation(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 3-wide, 2-high frame:
    /// ```text
    /// 0 1 2
    /// 3 4 5
    /// ```
    const FRAME: [u8; 6] = [0, 1, 2, 3, 4, 5];

    fn oriented(o: Orientation) -> (Vec<u8>, (usize, usize)) {
        let mut out = Vec::new();
        let size = o.apply(&FRAME, 3, 2, &mut out);
        (out, size)
    }

    #[test]
    fn each_orientation_moves_the_cells_as_videoflip_does() {
        use Orientation::*;
        // videoflip's definitions, written out for the frame above.
        let expected: [(Orientation, &[u8], (usize, usize)); 8] = [
            (Identity, &[0, 1, 2, 3, 4, 5], (3, 2)),
            // Clockwise: the left column, read upwards, becomes the top row.
            (Rotate90R, &[3, 0, 4, 1, 5, 2], (2, 3)),
            (Rotate180, &[5, 4, 3, 2, 1, 0], (3, 2)),
            (Rotate90L, &[2, 5, 1, 4, 0, 3], (2, 3)),
            (FlipHorizontal, &[2, 1, 0, 5, 4, 3], (3, 2)),
            (FlipVertical, &[3, 4, 5, 0, 1, 2], (3, 2)),
            (UpperLeftLowerRight, &[0, 3, 1, 4, 2, 5], (2, 3)),
            (UpperRightLowerLeft, &[5, 2, 4, 1, 3, 0], (2, 3)),
        ];
        for (o, cells, size) in expected {
            assert_eq!(oriented(o), (cells.to_vec(), size), "{o}");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for o in Orientation::ALL {
            assert_eq!(o.as_str().parse::<Orientation>(), Ok(o));
        }
        let err = "90".parse::<Orientation>().unwrap_err();
        assert!(err.to_string().contains("\"90\""), "{err}");
        assert!("auto".parse::<Orientation>().is_err());
        assert!("".parse::<Orientation>().is_err());
    }

    #[test]
    fn inverses_and_compositions() {
        use Orientation::*;
        for o in Orientation::ALL {
            assert_eq!(o.inverse().after(o), Identity, "{o}");
            assert_eq!(o.after(Identity), o);
            // Undoing it on the frame gives the frame back.
            let (once, (w, h)) = oriented(o);
            let mut back = Vec::new();
            assert_eq!(o.inverse().apply(&once, w, h, &mut back), (3, 2));
            assert_eq!(back, FRAME);
        }
        assert_eq!(Rotate90R.after(Rotate90R), Rotate180);
        assert_eq!(FlipHorizontal.after(FlipVertical), Rotate180);
        assert_eq!(FlipVertical.after(Rotate180), FlipHorizontal);
        // Not commutative: mirror then turn is the other diagonal from turn then mirror.
        assert_eq!(FlipHorizontal.after(Rotate90R), UpperLeftLowerRight);
        assert_eq!(Rotate90R.after(FlipHorizontal), UpperRightLowerLeft);
    }

    proptest! {
        #[test]
        fn points_follow_their_cells(
            w in 1usize..12, h in 1usize..12, index in 0usize..8,
            fx in 0.0f32..1.0, fy in 0.0f32..1.0,
        ) {
            let o = Orientation::ALL[index];
            let (ow, oh) = o.size(w, h);
            // The centre of every oriented cell maps to the centre of the cell it came from.
            for y in 0..oh {
                for x in 0..ow {
                    let (sx, sy) = o.source_cell(x, y, w, h);
                    let (px, py) = o.to_stream(x as f32 + 0.5, y as f32 + 0.5, w, h);
                    prop_assert!((px - (sx as f32 + 0.5)).abs() < 1e-5);
                    prop_assert!((py - (sy as f32 + 0.5)).abs() < 1e-5);
                }
            }
            // And any point there and back.
            let (x, y) = (fx * w as f32, fy * h as f32);
            let (ox, oy) = o.to_oriented(x, y, w, h);
            prop_assert!(ox >= -1e-4 && ox <= ow as f32 + 1e-4 && oy >= -1e-4 && oy <= oh as f32 + 1e-4);
            let (bx, by) = o.to_stream(ox, oy, w, h);
            prop_assert!((bx - x).abs() < 1e-4 && (by - y).abs() < 1e-4);
        }
    }
}
