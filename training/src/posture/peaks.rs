//! The non-learned keypoint baseline: the `k` strongest local pressure maxima of a frame.

/// Side of the patch of normalized pressure around a peak that serves as its features (as the
/// SPMKD encoder's 4x4 cells do).
pub const PATCH: usize = 4;

/// Appends `k` nodes (value, x / W, y / H, rank confidence, then the `PATCH x PATCH` patch) for
/// the normalized `w x h` frame `frame` to `out`. Peaks are cells at least as high as their 8
/// neighbours, strongest first; when there are fewer than `k`, the strongest remaining cells
/// fill in, so every frame gives exactly `k` nodes.
pub fn nodes(frame: &[f32], w: usize, h: usize, k: usize, out: &mut Vec<f32>) {
    let at = |x: isize, y: isize| {
        if x < 0 || y < 0 || x as usize >= w || y as usize >= h {
            0.0
        } else {
            frame[y as usize * w + x as usize]
        }
    };
    let mut cells: Vec<(bool, f32, usize)> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            let v = frame[i];
            let peak = v > 0.0
                && (-1..=1)
                    .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                    .filter(|&d| d != (0, 0))
                    .all(|(dx, dy)| at(x + dx, y + dy) <= v);
            (peak, v, i)
        })
        .collect();
    // Peaks first, each group by value (then index, for a stable order).
    cells.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    for (rank, &(_, v, i)) in cells.iter().take(k).enumerate() {
        let (x, y) = (i % w, i / w);
        out.extend_from_slice(&[
            v,
            (x as f32 + 0.5) / w as f32,
            (y as f32 + 0.5) / h as f32,
            1.0 - rank as f32 / k as f32,
        ]);
        let half = (PATCH / 2) as isize;
        for dy in 0..PATCH as isize {
            for dx in 0..PATCH as isize {
                out.push(at(x as isize + dx - half, y as isize + dy - half));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongest_peaks_first_and_always_k_nodes() {
        let (w, h) = (8, 8);
        let mut frame = vec![0.0; w * h];
        frame[2 * w + 2] = 1.0; // a peak at (2, 2)
        frame[5 * w + 6] = 0.5; // a weaker one at (6, 5)
        frame[5 * w + 5] = 0.4; // its neighbour: not a peak
        let mut out = Vec::new();
        nodes(&frame, w, h, 4, &mut out);
        let per = 4 + PATCH * PATCH;
        assert_eq!(out.len(), 4 * per);
        assert_eq!(&out[..4], &[1.0, 2.5 / 8.0, 2.5 / 8.0, 1.0]);
        assert_eq!(&out[per..per + 3], &[0.5, 6.5 / 8.0, 5.5 / 8.0]);
        // The third node fills in with the strongest remaining cell.
        assert_eq!(out[2 * per], 0.4);
    }
}
