//! Drawing on an RGBA frame: the pressure frame (or the exposure map) through a colormap, a
//! legend bar, keypoint markers and the posture label.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

/// An RGBA image being drawn on (rows of `stride` bytes).
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// A grey frame's readings: GRAY8 or GRAY16_LE rows `stride` bytes apart.
pub struct Readings<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub gray8: bool,
}

impl Readings<'_> {
    fn get(&self, x: usize, y: usize) -> u32 {
        if self.gray8 {
            u32::from(self.data[y * self.stride + x])
        } else {
            let i = y * self.stride + 2 * x;
            u32::from(u16::from_le_bytes([self.data[i], self.data[i + 1]]))
        }
    }

    /// The largest reading (at least 1, so it can divide).
    pub fn max(&self) -> u32 {
        (0..self.height)
            .flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .map(|(x, y)| self.get(x, y))
            .max()
            .unwrap_or(0)
            .max(1)
    }
}

impl Canvas<'_> {
    /// Paints `readings` `scale` times larger through `table` (256 colours from 0 to `max`,
    /// readings above `max` saturate). The canvas is `scale` times the readings' size.
    pub fn paint(&mut self, readings: &Readings, scale: usize, table: &[[u8; 4]; 256], max: u32) {
        let max = max.max(1);
        self.cells(readings.width, readings.height, scale, |x, y| {
            table[(readings.get(x, y).min(max) * 255 / max) as usize]
        });
    }

    /// Paints per-cell `values` (`width` a row) `scale` times larger through `table`, 0 to
    /// `max` (above it saturates).
    pub fn paint_values(
        &mut self,
        values: &[f32],
        width: usize,
        scale: usize,
        table: &[[u8; 4]; 256],
        max: f32,
    ) {
        let height = values.len() / width.max(1);
        let inv = if max > 0.0 { 255.0 / max } else { 0.0 };
        self.cells(width, height, scale, |x, y| {
            table[(values[y * width + x] * inv).clamp(0.0, 255.0) as usize]
        });
    }

    /// Fills each `scale x scale` block with the colour of its cell.
    fn cells(
        &mut self,
        width: usize,
        height: usize,
        scale: usize,
        colour: impl Fn(usize, usize) -> [u8; 4],
    ) {
        let row_bytes = 4 * self.width;
        for y in 0..height {
            // One output row per cell row, then copied down `scale - 1` times.
            let first = y * scale * self.stride;
            {
                let row = &mut self.data[first..first + row_bytes];
                for x in 0..width {
                    let c = colour(x, y);
                    for px in row[4 * x * scale..4 * (x + 1) * scale].chunks_exact_mut(4) {
                        px.copy_from_slice(&c);
                    }
                }
            }
            for r in 1..scale {
                self.data
                    .copy_within(first..first + row_bytes, first + r * self.stride);
            }
        }
    }

    /// A colour bar of `table` across the bottom `height` rows, low on the left: the legend of
    /// a map painted through it.
    pub fn legend_bar(&mut self, table: &[[u8; 4]; 256], height: usize) {
        let height = height.min(self.height);
        let last = self.width.saturating_sub(1).max(1);
        for y in self.height - height..self.height {
            let row = &mut self.data[y * self.stride..y * self.stride + 4 * self.width];
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                px.copy_from_slice(&table[x * 255 / last]);
            }
        }
    }

    /// Width in pixels of `text` at `height`.
    pub fn text_width(font: &FontVec, text: &str, height: f32) -> f32 {
        let scaled = font.as_scaled(PxScale::from(height));
        text.chars()
            .map(|c| scaled.h_advance(scaled.scaled_glyph(c).id))
            .sum()
    }

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
