//! Another position and size of the body, and another length of mat: per-axis scale, a small
//! rotation and a shift about the frame's centre, a left-right flip, rows cropped from or
//! padded to the head and foot ends.

use rand::RngExt;
use rand::rngs::StdRng;

use super::{AugmentConfig, RawFrame};

/// One draw of the geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub scale_x: f32,
    pub scale_y: f32,
    /// Radians, counter-clockwise as the frame is drawn (row 0 at the top).
    pub angle: f32,
    /// In shares of the width and height.
    pub shift_x: f32,
    pub shift_y: f32,
    pub flip: bool,
    /// Rows removed at the head end (row 0) and at the foot end, as shares of the height;
    /// negative: rows of zeros added.
    pub head: f32,
    pub foot: f32,
}

impl Geometry {
    pub const IDENTITY: Geometry = Geometry {
        scale_x: 1.0,
        scale_y: 1.0,
        angle: 0.0,
        shift_x: 0.0,
        shift_y: 0.0,
        flip: false,
        head: 0.0,
        foot: 0.0,
    };
}

fn symmetric(rng: &mut StdRng, half: f32) -> f32 {
    if half > 0.0 {
        rng.random_range(-half..=half)
    } else {
        0.0
    }
}

pub fn draw(config: &AugmentConfig, rng: &mut StdRng) -> Geometry {
    Geometry {
        scale_x: 1.0 + symmetric(rng, config.scale),
        scale_y: 1.0 + symmetric(rng, config.scale),
        angle: symmetric(rng, config.rotation).to_radians(),
        shift_x: symmetric(rng, config.shift),
        shift_y: symmetric(rng, config.shift),
        flip: rng.random_bool(f64::from(config.flip.clamp(0.0, 1.0))),
        head: symmetric(rng, config.head_foot),
        foot: symmetric(rng, config.head_foot),
    }
}

/// Bilinear sample at continuous cell coordinates (cell centres at integers), 0 off the grid.
fn sample(f: &RawFrame, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| {
        if xi < 0.0 || yi < 0.0 || xi >= f.width as f32 || yi >= f.height as f32 {
            0.0
        } else {
            f.values[yi as usize * f.width + xi as usize]
        }
    };
    at(x0, y0) * (1.0 - tx) * (1.0 - ty)
        + at(x0 + 1.0, y0) * tx * (1.0 - ty)
        + at(x0, y0 + 1.0) * (1.0 - tx) * ty
        + at(x0 + 1.0, y0 + 1.0) * tx * ty
}

/// `frame` moved by `g`: each output cell takes the value found by the inverse map.
pub fn transform(frame: &RawFrame, g: &Geometry) -> RawFrame {
    let (w, h) = (frame.width, frame.height);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (sin, cos) = g.angle.sin_cos();
    let mut moved = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            // Output cell centre, relative to the frame centre, shift undone.
            let u = x as f32 + 0.5 - cx - g.shift_x * w as f32;
            let v = y as f32 + 0.5 - cy - g.shift_y * h as f32;
            // Rotation and scale undone, then the flip.
            let (mut su, sv) = (
                (cos * u + sin * v) / g.scale_x,
                (-sin * u + cos * v) / g.scale_y,
            );
            if g.flip {
                su = -su;
            }
            moved.push(sample(frame, su + cx - 0.5, sv + cy - 0.5));
        }
    }
    // The mat's length: rows cut off (at most a quarter at each end), or zero rows added.
    let rows = |share: f32| ((share * h as f32).round() as i32).clamp(-(h as i32), h as i32 / 4);
    let (head, foot) = (rows(g.head), rows(g.foot));
    let height = (h as i32 - head - foot).max(1) as usize;
    let mut values = Vec::with_capacity(w * height);
    for row in 0..height as i32 {
        let src = row + head;
        if (0..h as i32).contains(&src) {
            values.extend_from_slice(&moved[src as usize * w..(src as usize + 1) * w]);
        } else {
            values.extend(std::iter::repeat_n(0.0, w));
        }
    }
    RawFrame {
        width: w,
        height,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> RawFrame {
        RawFrame {
            width: 4,
            height: 3,
            values: (0..12).map(|v| v as f32).collect(),
        }
    }

    #[test]
    fn identity_flip_and_shift_move_cells_exactly() {
        let f = frame();
        assert_eq!(transform(&f, &Geometry::IDENTITY), f);
        let flipped = transform(
            &f,
            &Geometry {
                flip: true,
                ..Geometry::IDENTITY
            },
        );
        assert_eq!(&flipped.values[..4], &[3.0, 2.0, 1.0, 0.0]);
        assert_eq!(
            transform(
                &flipped,
                &Geometry {
                    flip: true,
                    ..Geometry::IDENTITY
                }
            ),
            f
        );
        // A quarter of the width to the right: one column, zeros coming in on the left.
        let shifted = transform(
            &f,
            &Geometry {
                shift_x: 0.25,
                ..Geometry::IDENTITY
            },
        );
        assert_eq!(&shifted.values[..4], &[0.0, 0.0, 1.0, 2.0]);
    }

    #[test]
    fn head_and_foot_rows_crop_and_pad() {
        let f = frame();
        let g = |head, foot| Geometry {
            head,
            foot,
            ..Geometry::IDENTITY
        };
        let padded = transform(&f, &g(-1.0 / 3.0, -2.0 / 3.0));
        assert_eq!(padded.height, 6);
        assert_eq!(&padded.values[..4], &[0.0; 4]);
        assert_eq!(&padded.values[4..8], &f.values[..4]);
        assert!(padded.values[16..].iter().all(|&v| v == 0.0));
        // Crops are bounded: a quarter of the rows at each end.
        let tall = RawFrame {
            width: 1,
            height: 64,
            values: (0..64).map(|v| v as f32).collect(),
        };
        let cropped = transform(&tall, &g(2.0 / 64.0, 2.0));
        assert_eq!(cropped.height, 64 - 2 - 16);
        assert_eq!(cropped.values[0], 2.0);
    }

    #[test]
    fn a_quarter_turn_turns() {
        // A 3 x 3 frame turned by 90 degrees: the centre stays, a corner goes to a corner.
        let f = RawFrame {
            width: 3,
            height: 3,
            values: vec![1.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0],
        };
        let turned = transform(
            &f,
            &Geometry {
                angle: std::f32::consts::FRAC_PI_2,
                ..Geometry::IDENTITY
            },
        );
        assert!((turned.values[4] - 5.0).abs() < 1e-5);
        let corners = [
            turned.values[0],
            turned.values[2],
            turned.values[6],
            turned.values[8],
        ];
        assert_eq!(
            corners.iter().filter(|&&v| (v - 1.0).abs() < 1e-5).count(),
            1,
            "{corners:?}"
        );
    }
}
