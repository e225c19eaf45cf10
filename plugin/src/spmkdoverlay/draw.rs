//! Drawing on an RGBA frame: keypoint markers and the posture label.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

/// An RGBA image being drawn on (rows of `stride` bytes).
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl Canvas<'_> {
    /// Blends `rgb` over the pixel at (x, y) with opacity `alpha` in `[0, 1]`.
    fn blend(&mut self, x: i64, y: i64, rgb: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let i = y as usize * self.stride + 4 * x as usize;
        for (c, &v) in self.data[i..i + 3].iter_mut().zip(&rgb) {
            *c = (*c as f32 * (1.0 - alpha) + v as f32 * alpha).round() as u8;
        }
    }

    /// A filled disc of `radius` pixels around (cx, cy), edges anti-aliased, with a dark rim
    /// so it reads on any colormap.
    pub fn disc(&mut self, cx: f32, cy: f32, radius: f32, rgb: [u8; 3], alpha: f32) {
        let r = radius + 1.0;
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                let inside = (radius - d + 0.5).clamp(0.0, 1.0);
                let rim = (radius + 1.0 - d + 0.5).clamp(0.0, 1.0) - inside;
                if rim > 0.0 {
                    self.blend(x, y, [0, 0, 0], alpha * rim);
                }
                if inside > 0.0 {
                    self.blend(x, y, rgb, alpha * inside);
                }
            }
        }
    }

    /// `text` with its top-left corner at (x, y), `height` pixels high, white over a black
    /// shadow.
    pub fn text(&mut self, font: &FontVec, text: &str, x: f32, y: f32, height: f32) {
        let scaled = font.as_scaled(PxScale::from(height));
        for (offset, rgb) in [(1.0, [0, 0, 0]), (0.0, [255, 255, 255])] {
            let mut pen = x + offset;
            let baseline = y + offset + scaled.ascent();
            for ch in text.chars() {
                let glyph = scaled.scaled_glyph(ch);
                let advance = scaled.h_advance(glyph.id);
                let glyph = glyph
                    .id
                    .with_scale_and_position(PxScale::from(height), ab_glyph::point(pen, baseline));
                if let Some(outline) = font.outline_glyph(glyph) {
                    let b = outline.px_bounds();
                    outline.draw(|gx, gy, coverage| {
                        self.blend(
                            b.min.x as i64 + gx as i64,
                            b.min.y as i64 + gy as i64,
                            rgb,
                            coverage,
                        );
                    });
                }
                pen += advance;
            }
        }
    }
}
