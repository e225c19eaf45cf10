//! Preprocessing shared by training and the plugin, and the way back to sensor cells.
//!
//! A model sees an `S x S` input. A sensor frame of `W x H` cells is
//! 1. normalized per frame ([`normalize`]): z-score, then min-max to `[0, 1]`;
//! 2. letterboxed ([`Letterbox`]): scaled by `S / max(W, H)` (bilinear) and centred, the margins
//!    filled with 0, which after normalization means "no pressure".
//!
//! Normalizing before padding keeps the statistics those of the mat, not of the padding.
//!
//! Coordinates are continuous, in units of cells (or model pixels): cell `(i, j)` covers
//! `[j, j + 1) x [i, i + 1)`, so its centre is at `(j + 0.5, i + 0.5)`. With this convention
//! scaling a frame scales coordinates by the same factor, which is what `videoscale` does to the
//! pose meta.

/// The name the model metadata gives this normalization (`spmkd.normalization`), the input
/// letterboxed with the mat in the middle of the square.
pub const NORMALIZATION: &str = "zscore-minmax";
/// The same normalization with the input framed on the body ([`preprocess_framed_into`]). A
/// name of its own rather than an extra key, so an element that predates it refuses such a
/// model instead of feeding it frames placed where it never saw them.
pub const NORMALIZATION_BODY_CENTRED: &str = "zscore-minmax,body-centred";

/// The `spmkd.normalization` of a model whose input is framed on the body or not.
pub fn normalization_name(body_centred: bool) -> &'static str {
    if body_centred {
        NORMALIZATION_BODY_CENTRED
    } else {
        NORMALIZATION
    }
}

/// Per-frame normalization into `out`: z-score, then min-max to `[0, 1]`.
///
/// Both steps are increasing affine maps, so their composition is the plain min-max map
/// `(v - min) / (max - min)`; it is computed that way, in one pass and without the rounding of
/// the intermediate z-scores (a property test checks it against the two-step form). A flat or
/// empty frame has no contrast to stretch and gives all zeros, never NaN.
///
/// # Panics
/// If `out` and `src` differ in length (a programming error, not a data error).
pub fn normalize<T: Copy + Into<f32>>(src: &[T], out: &mut [f32]) {
    assert_eq!(src.len(), out.len(), "normalize: output length");
    let (min, max) = src
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            let v = v.into();
            (lo.min(v), hi.max(v))
        });
    let range = max - min;
    if !(range > 0.0 && range.is_finite()) {
        out.fill(0.0);
        return;
    }
    let inv = 1.0 / range;
    for (o, &v) in out.iter_mut().zip(src) {
        *o = ((v.into() - min) * inv).clamp(0.0, 1.0);
    }
}

/// How a `W x H` sensor grid sits inside an `S x S` model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub src_width: usize,
    pub src_height: usize,
    pub size: usize,
    /// Size of the scaled frame inside the square.
    pub content_width: usize,
    pub content_height: usize,
    /// Left and top margins, whole pixels.
    pub pad_x: usize,
    pub pad_y: usize,
}

impl Letterbox {
    /// # Panics
    /// If any size is zero.
    pub fn new(src_width: usize, src_height: usize, size: usize) -> Self {
        assert!(
            src_width > 0 && src_height > 0 && size > 0,
            "letterbox: empty size"
        );
        let longest = src_width.max(src_height) as f64;
        let fit = |n: usize| ((n as f64 * size as f64 / longest).round() as usize).clamp(1, size);
        let (content_width, content_height) = (fit(src_width), fit(src_height));
        Self {
            src_width,
            src_height,
            size,
            content_width,
            content_height,
            pad_x: (size - content_width) / 2,
            pad_y: (size - content_height) / 2,
        }
    }

    /// Model pixels per sensor cell along x and y (equal up to rounding of the content size).
    pub fn scale(&self) -> (f32, f32) {
        (
            self.content_width as f32 / self.src_width as f32,
            self.content_height as f32 / self.src_height as f32,
        )
    }

    /// This geometry with the content moved sideways so that sensor column `x` (cells) lies on
    /// the square's middle, as far as the whole mat stays inside the square: a body lying
    /// against one long edge of the mat is seen where bodies usually lie, in the middle.
    pub fn centred_on(&self, x: f32) -> Self {
        let (sx, _) = self.scale();
        let room = (self.size - self.content_width) as f32;
        let pad = (self.size as f32 / 2.0 - x * sx).round();
        Self {
            // NaN (no column) keeps the mat centred.
            pad_x: if pad.is_finite() {
                pad.clamp(0.0, room) as usize
            } else {
                self.pad_x
            },
            ..*self
        }
    }

    /// This geometry centred on the load of the normalized frame `normalized` (its
    /// [`load_column`], [`Self::centred_on`]); unchanged for an empty or flat frame. `scratch`
    /// is reused across frames.
    pub fn centred_on_load(&self, normalized: &[f32], scratch: &mut Vec<f32>) -> Self {
        load_column(normalized, self.src_width, scratch).map_or(*self, |x| self.centred_on(x))
    }

    /// Sensor coordinates (cells) to model-input coordinates (pixels).
    pub fn to_model(&self, x: f32, y: f32) -> (f32, f32) {
        let (sx, sy) = self.scale();
        (self.pad_x as f32 + x * sx, self.pad_y as f32 + y * sy)
    }

    /// Model-input coordinates (pixels) back to sensor coordinates (cells). Points in the
    /// margins map outside `[0, W) x [0, H)`; callers decide whether to clamp.
    pub fn to_sensor(&self, x: f32, y: f32) -> (f32, f32) {
        let (sx, sy) = self.scale();
        ((x - self.pad_x as f32) / sx, (y - self.pad_y as f32) / sy)
    }

    /// Places a normalized `W x H` frame into the `S x S` input `out`, bilinear with pixel
    /// centres aligned (`align_corners = false`), margins zero. A scale of 1 is an exact copy.
    ///
    /// # Panics
    /// If the slice lengths do not match the geometry.
    pub fn apply(&self, src: &[f32], out: &mut [f32]) {
        assert_eq!(
            src.len(),
            self.src_width * self.src_height,
            "letterbox: input"
        );
        assert_eq!(out.len(), self.size * self.size, "letterbox: output");
        out.fill(0.0);
        let (w, h) = (self.src_width, self.src_height);
        if (self.content_width, self.content_height) == (w, h) {
            // Scale 1 (a 32 x 64 mat in a 64 x 64 input): the bilinear samples fall exactly
            // on the cells, so the rows are copied as they are.
            for (y, row) in src.chunks_exact(w).enumerate() {
                out[(self.pad_y + y) * self.size + self.pad_x..][..w].copy_from_slice(row);
            }
            return;
        }
        let (sx, sy) = self.scale();
        for oy in 0..self.content_height {
            // Source coordinate of this output pixel's centre, in "index" units.
            let fy = (oy as f32 + 0.5) / sy - 0.5;
            let row = &mut out[(self.pad_y + oy) * self.size + self.pad_x..][..self.content_width];
            for (ox, o) in row.iter_mut().enumerate() {
                let fx = (ox as f32 + 0.5) / sx - 0.5;
                *o = bilinear(src, w, h, fx, fy);
            }
        }
    }

    /// The inverse of [`Letterbox::apply`]: samples an `S x S` model-space map (a
    /// reconstruction) at the centre of every sensor cell, into the `W x H` frame `out`.
    ///
    /// # Panics
    /// If the slice lengths do not match the geometry.
    pub fn unapply(&self, model: &[f32], out: &mut [f32]) {
        assert_eq!(model.len(), self.size * self.size, "unapply: input");
        assert_eq!(
            out.len(),
            self.src_width * self.src_height,
            "unapply: output"
        );
        for (i, row) in out.chunks_exact_mut(self.src_width).enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                let (mx, my) = self.to_model(j as f32 + 0.5, i as f32 + 0.5);
                *o = bilinear(model, self.size, self.size, mx - 0.5, my - 0.5);
            }
        }
    }
}

/// Bilinear sample of the `w x h` row-major image `src` at index coordinates `(fx, fy)` (pixel
/// `(i, j)` at `(j, i)`), clamped to the edge pixels.
pub fn bilinear(src: &[f32], w: usize, h: usize, fx: f32, fy: f32) -> f32 {
    let fx = fx.clamp(0.0, (w - 1) as f32);
    let fy = fy.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
    let top = src[y0 * w + x0] * (1.0 - tx) + src[y0 * w + x1] * tx;
    let bottom = src[y1 * w + x0] * (1.0 - tx) + src[y1 * w + x1] * tx;
    top * (1.0 - ty) + bottom * ty
}

/// The column (cells, `0..w`) the load of a normalized `w`-wide frame is centred on: the mean
/// column of its cells, each weighted by how far it lies above the frame's median (most cells of
/// a mat carry no one, so the median is the empty mat's reading, whatever the sensor's floor).
/// `None` when no cell lies above the median (an empty or flat frame).
pub fn load_column(normalized: &[f32], w: usize, scratch: &mut Vec<f32>) -> Option<f32> {
    if w == 0 || normalized.is_empty() {
        return None;
    }
    scratch.clear();
    scratch.extend_from_slice(normalized);
    let middle = scratch.len() / 2;
    let (_, &mut median, _) = scratch.select_nth_unstable_by(middle, f32::total_cmp);
    let (mut mass, mut moment) = (0.0f64, 0.0f64);
    for row in normalized.chunks_exact(w) {
        for (j, &v) in row.iter().enumerate() {
            let load = f64::from(v - median);
            if load > 0.0 {
                mass += load;
                moment += load * (j as f64 + 0.5);
            }
        }
    }
    (mass > 0.0).then(|| (moment / mass) as f32)
}

/// The whole preprocessing of one frame into an `S x S` model input, reusing `scratch` (the
/// normalized frame) and `out` across frames so a stream allocates nothing per frame.
pub fn preprocess_into<T: Copy + Into<f32>>(
    frame: &[T],
    letterbox: &Letterbox,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    scratch.resize(frame.len(), 0.0);
    normalize(frame, scratch);
    letterbox.apply(scratch, out);
}

/// [`preprocess_into`] for a model whose input is framed on the body (`body_centred`: the
/// content moved sideways onto the frame's load, [`Letterbox::centred_on_load`]) or on the mat
/// (`letterbox` as it is). Returns the geometry used, which the keypoints are decoded with.
/// `sorted` is a second scratch buffer (the load's median).
pub fn preprocess_framed_into<T: Copy + Into<f32>>(
    frame: &[T],
    letterbox: &Letterbox,
    body_centred: bool,
    scratch: &mut Vec<f32>,
    sorted: &mut Vec<f32>,
    out: &mut [f32],
) -> Letterbox {
    scratch.resize(frame.len(), 0.0);
    normalize(frame, scratch);
    let letterbox = if body_centred {
        letterbox.centred_on_load(scratch, sorted)
    } else {
        *letterbox
    };
    letterbox.apply(scratch, out);
    letterbox
}

/// [`preprocess_into`] for one-off use.
pub fn preprocess<T: Copy + Into<f32>>(
    frame: &[T],
    width: usize,
    height: usize,
    size: usize,
) -> Vec<f32> {
    let letterbox = Letterbox::new(width, height, size);
    let mut out = vec![0.0; size * size];
    preprocess_into(frame, &letterbox, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The two-step form the method describes, to check the one-pass form against.
    fn zscore_then_minmax(src: &[f32]) -> Vec<f32> {
        let n = src.len() as f64;
        let mean = src.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = src.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt().max(1e-12);
        let z: Vec<f64> = src.iter().map(|&v| (v as f64 - mean) / std).collect();
        let (lo, hi) = z
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        z.iter()
            .map(|&v| {
                if hi > lo {
                    ((v - lo) / (hi - lo)) as f32
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn a_body_against_one_edge_is_moved_to_the_middle() {
        // A 27 x 64 mat (a 64 x 64 input at scale 1: 18.5 columns of margin a side) with its
        // load in columns 2..6 on a floor of 0.1.
        let (w, h) = (27, 64);
        let mut frame = vec![0.1f32; w * h];
        for row in frame.chunks_exact_mut(w) {
            row[2..6].fill(0.9);
        }
        let column = load_column(&frame, w, &mut Vec::new()).expect("a load");
        assert!((column - 4.0).abs() < 1e-4, "{column}");
        let plain = Letterbox::new(w, h, 64);
        let centred = plain.centred_on(column);
        assert_eq!((plain.pad_x, centred.pad_x), (18, 28));
        assert_eq!(centred.to_model(column, 0.0).0, 32.0);
        // The way back still gives sensor cells.
        assert_eq!(centred.to_sensor(32.0, 0.0).0, column);
        let mut out = vec![0.0; 64 * 64];
        centred.apply(&frame, &mut out);
        assert_eq!(&out[30..34], &[0.9; 4]);
        // Never past the square's edge, and an empty frame keeps the mat centred.
        assert_eq!(plain.centred_on(-40.0).pad_x, 64 - 27);
        assert_eq!(plain.centred_on(f32::NAN), plain);
        assert_eq!(load_column(&[0.3; 8], 4, &mut Vec::new()), None);
    }

    #[test]
    fn a_body_centred_model_gets_the_frame_on_its_load() {
        // Raw readings of a 27 x 64 mat, the load in columns 2..6.
        let (w, h) = (27, 64);
        let mut frame = vec![100u16; w * h];
        for row in frame.chunks_exact_mut(w) {
            row[2..6].fill(900);
        }
        let plain = Letterbox::new(w, h, 64);
        let (mut scratch, mut sorted) = (Vec::new(), Vec::new());
        let mut framed = vec![0.0; 64 * 64];
        let used =
            preprocess_framed_into(&frame, &plain, true, &mut scratch, &mut sorted, &mut framed);
        let column = load_column(&scratch, w, &mut Vec::new()).expect("a load");
        assert_eq!(used, plain.centred_on(column));
        assert_eq!(used.pad_x, 28);
        assert_eq!(plain.centred_on_load(&scratch, &mut sorted), used);
        // Mat-centred: exactly preprocess_into.
        let mut as_mat = vec![0.0; 64 * 64];
        let used = preprocess_framed_into(
            &frame,
            &plain,
            false,
            &mut scratch,
            &mut sorted,
            &mut as_mat,
        );
        assert_eq!((used, as_mat), (plain, preprocess(&frame, w, h, 64)));
        assert_ne!(framed, preprocess(&frame, w, h, 64));
        // An empty frame has no load to move to.
        assert_eq!(plain.centred_on_load(&[0.0; 27 * 64], &mut sorted), plain);
    }

    #[test]
    fn flat_and_empty_frames_give_zeros() {
        let mut out = vec![1.0; 4];
        normalize(&[7u16; 4], &mut out);
        assert_eq!(out, vec![0.0; 4]);
        normalize::<u16>(&[], &mut []);
    }

    #[test]
    fn pmatdata_geometry() {
        let lb = Letterbox::new(32, 64, 64);
        assert_eq!(
            (lb.content_width, lb.content_height, lb.pad_x, lb.pad_y),
            (32, 64, 16, 0)
        );
        assert_eq!(lb.to_model(0.5, 0.5), (16.5, 0.5));
        let lb = Letterbox::new(27, 64, 256);
        assert_eq!((lb.content_width, lb.content_height), (108, 256));
        assert_eq!(lb.pad_x, 74);
    }

    #[test]
    fn unit_scale_is_a_copy_with_margins() {
        let src: Vec<f32> = (0..6).map(|v| v as f32 / 5.0).collect();
        let lb = Letterbox::new(2, 3, 3);
        let mut out = vec![9.0; 9];
        lb.apply(&src, &mut out);
        // 2 x 3 into 3 x 3: integer centring leaves the one spare column on the right.
        let m = 0.0;
        assert_eq!(
            out,
            vec![src[0], src[1], m, src[2], src[3], m, src[4], src[5], m]
        );
    }

    #[test]
    fn upscaling_keeps_the_mass_where_it_was() {
        // One hot cell of a 32 x 64 frame, letterboxed to 256: its centre of mass must map back
        // to the cell's centre.
        let (w, h, s) = (32, 64, 256);
        let mut frame = vec![0u16; w * h];
        frame[40 * w + 10] = 1000;
        let input = preprocess(&frame, w, h, s);
        let lb = Letterbox::new(w, h, s);
        let (mut mx, mut my, mut m) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &v) in input.iter().enumerate() {
            mx += v as f64 * ((i % s) as f64 + 0.5);
            my += v as f64 * ((i / s) as f64 + 0.5);
            m += v as f64;
        }
        let (x, y) = lb.to_sensor((mx / m) as f32, (my / m) as f32);
        assert!(
            (x - 10.5).abs() < 1e-3 && (y - 40.5).abs() < 1e-3,
            "{x} {y}"
        );
    }

    #[test]
    fn unapply_inverts_apply_at_integer_scales() {
        // 32 x 64 into 128: scale 2 along both axes; sampling at cell centres lands between
        // the two model pixels of each cell, which hold interpolations of the cell and its
        // neighbours, so compare against a smooth frame.
        let (w, h) = (32, 64);
        let frame: Vec<f32> = (0..w * h)
            .map(|i| ((i % w) as f32 / w as f32 + (i / w) as f32 / h as f32) / 2.0)
            .collect();
        for size in [64, 128] {
            let lb = Letterbox::new(w, h, size);
            let mut model = vec![0.0; size * size];
            lb.apply(&frame, &mut model);
            let mut back = vec![0.0; w * h];
            lb.unapply(&model, &mut back);
            let worst = frame
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 0.02, "S = {size}: {worst}");
        }
    }

    proptest! {
        #[test]
        fn normalize_matches_the_two_step_form(values in prop::collection::vec(0u16..4096, 1..300)) {
            let mut out = vec![0.0; values.len()];
            normalize(&values, &mut out);
            let as_f32: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            let reference = zscore_then_minmax(&as_f32);
            for (a, b) in out.iter().zip(&reference) {
                prop_assert!(a.is_finite() && (0.0..=1.0).contains(a));
                prop_assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }

        #[test]
        fn sensor_to_model_and_back(
            w in 1usize..200, h in 1usize..200, s in 1usize..512,
            fx in 0.0f32..1.0, fy in 0.0f32..1.0,
        ) {
            let lb = Letterbox::new(w, h, s);
            let (x, y) = (fx * w as f32, fy * h as f32);
            let (mx, my) = lb.to_model(x, y);
            prop_assert!(mx >= 0.0 && my >= 0.0 && mx <= s as f32 + 1e-3 && my <= s as f32 + 1e-3);
            let (bx, by) = lb.to_sensor(mx, my);
            prop_assert!((bx - x).abs() <= 1e-3 * w as f32 && (by - y).abs() <= 1e-3 * h as f32,
                "({x}, {y}) -> ({mx}, {my}) -> ({bx}, {by})");
        }

        #[test]
        fn model_to_sensor_and_back(
            w in 1usize..200, h in 1usize..200, s in 1usize..512,
            fx in 0.0f32..1.0, fy in 0.0f32..1.0,
        ) {
            let lb = Letterbox::new(w, h, s);
            let (x, y) = (fx * s as f32, fy * s as f32);
            let (sx, sy) = lb.to_sensor(x, y);
            let (bx, by) = lb.to_model(sx, sy);
            prop_assert!((bx - x).abs() <= 1e-3 * s as f32 && (by - y).abs() <= 1e-3 * s as f32);
        }

        #[test]
        fn letterbox_output_stays_in_range(
            w in 1usize..40, h in 1usize..40, s in 1usize..80,
            seed in any::<u64>(),
        ) {
            let frame: Vec<u16> = (0..w * h).map(|i| ((seed >> (i % 48)) as u16) & 0x0fff).collect();
            let out = preprocess(&frame, w, h, s);
            prop_assert_eq!(out.len(), s * s);
            prop_assert!(out.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        }
    }
}
