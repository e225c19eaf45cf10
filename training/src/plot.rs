//! Loss curves as PNG (plotters), like the paper's Fig. 5: loss against training step.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use spmkd_core::assets::FONT;

/// One named curve: (step, value) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn ensure_font() -> Result<()> {
    let bytes = std::fs::read(FONT)
        .with_context(|| format!("reading the plot font {FONT} (run scripts/setup)"))?;
    // register_font wants 'static bytes; the font is loaded once per process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    Ok(())
}

fn font_once() -> Result<()> {
    static FONT_ONCE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    FONT_ONCE
        .get_or_init(|| ensure_font().map_err(|e| e.to_string()))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A confusion matrix as a PNG: rows are the true class, columns the predicted one, each cell
/// shaded by its share of the row and labelled with its count.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    classes: &[&str],
    counts: &[[usize; 3]; 3],
) -> Result<()> {
    font_once()?;
    let n = classes.len() as f64;
    let root = BitMapBackend::new(path, (520, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    // Cell (true t, predicted p) spans [p, p + 1] x [n - 1 - t, n - t]: true classes top down.
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, 0.0..n)?;
    let centre = |v: &f64| {
        let i = v.floor() as usize;
        ((v - v.floor() - 0.5).abs() < 1e-6).then_some(i)
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(2 * classes.len() + 1)
        .y_labels(2 * classes.len() + 1)
        .x_label_formatter(&|v| {
            centre(v)
                .and_then(|i| classes.get(i))
                .map_or(String::new(), |c| c.to_string())
        })
        .y_label_formatter(&|v| {
            centre(v)
                .and_then(|i| classes.get(classes.len() - 1 - i))
                .map_or(String::new(), |c| c.to_string())
        })
        .draw()?;
    for (t, row) in counts.iter().enumerate().take(classes.len()) {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate().take(classes.len()) {
            let share = count as f64 / total;
            let (x, y) = (p as f64, n - 1.0 - t as f64);
            let shade = RGBColor(
                (255.0 - 200.0 * share) as u8,
                (255.0 - 120.0 * share) as u8,
                255,
            );
            chart.draw_series([
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled()),
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], BLACK.stroke_width(1)),
            ])?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{count}"),
                (x + 0.4, y + 0.6),
                ("sans-serif", 20).into_font(),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Draws `series` into a PNG at `path`, y on a log scale (losses span decades).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    font_once()?;

    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        if y.is_finite() && y > 0.0 {
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.1, 1.0);
    }
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (y_min * 0.9..y_max * 1.1).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        // Log-scale ticks such as 0.7000000000000001 would run off the label area.
        .y_label_formatter(&|v| format!("{v:.3}"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Reads a run's `steps.csv` into one series per phase, smoothed by a running mean of
/// `window` steps (single steps are noisy at batch 32).
pub fn step_losses(steps_csv: &Path, window: usize) -> Result<Vec<Series>> {
    let text = std::fs::read_to_string(steps_csv)
        .with_context(|| format!("reading {}", steps_csv.display()))?;
    let mut series: Vec<Series> = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let parse = |i: usize| -> Result<f64> {
            fields
                .get(i)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{}:{}: malformed row", steps_csv.display(), n + 1))
        };
        let (phase, step, loss) = (fields[0].to_owned(), parse(2)?, parse(3)?);
        match series.iter_mut().find(|s| s.name == phase) {
            Some(s) => s.points.push((step, loss)),
            None => series.push(Series {
                name: phase,
                points: vec![(step, loss)],
            }),
        }
    }
    for s in &mut series {
        s.points = running_mean(&s.points, window);
    }
    Ok(series)
}

fn running_mean(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let w = window.max(1);
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, _))| {
            let lo = i.saturating_sub(w - 1);
            let slice = &points[lo..=i];
            (
                x,
                slice.iter().map(|p| p.1).sum::<f64>() / slice.len() as f64,
            )
        })
        .collect()
}

/// Frames side by side as heatmaps (each from 0 to its own maximum, viridis), one row of
/// `columns` per row of the grid, a caption under each: what a model is shown.
pub fn frames_grid(
    path: &Path,
    frames: &[(String, crate::augment::RawFrame)],
    columns: usize,
    cell: u32,
) -> Result<()> {
    use plotters::style::colors::colormaps::ViridisRGB;
    font_once()?;
    let columns = columns.max(1);
    let rows = frames.len().div_ceil(columns).max(1);
    let (widest, tallest) = frames.iter().fold((1, 1), |(w, h), (_, f)| {
        (w.max(f.width as u32), h.max(f.height as u32))
    });
    let (tile_w, tile_h) = (widest * cell + 10, tallest * cell + 24);
    let root = BitMapBackend::new(path, (tile_w * columns as u32, tile_h * rows as u32))
        .into_drawing_area();
    root.fill(&WHITE)?;
    for (n, (caption, f)) in frames.iter().enumerate() {
        let (x0, y0) = (
            (n % columns) as i32 * tile_w as i32 + 5,
            (n / columns) as i32 * tile_h as i32 + 4,
        );
        let peak = f.values.iter().copied().fold(0.0f32, f32::max).max(1e-6);
        for (i, &v) in f.values.iter().enumerate() {
            let (x, y) = ((i % f.width) as i32, (i / f.width) as i32);
            let colour = ViridisRGB::get_color_normalized(v / peak, 0.0, 1.0);
            let (px, py) = (x0 + x * cell as i32, y0 + y * cell as i32);
            root.draw(&Rectangle::new(
                [(px, py), (px + cell as i32, py + cell as i32)],
                colour.filled(),
            ))?;
        }
        root.draw(&Text::new(
            caption.clone(),
            (x0, y0 + (tallest * cell) as i32 + 3),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One frame of [`mat_convention`]: its caption, its cells, and the rows (first, one past the
/// last) of the hips and the knees to mark, when it shows them.
pub struct ConventionFrame {
    pub caption: String,
    pub frame: crate::augment::RawFrame,
    pub bands: Option<[(usize, usize); 2]>,
}

/// The models' convention drawn on real frames: each `(caption, frame)` as a heatmap with row 0
/// at the top, its four corners named (head or foot end, the patient's left or right), and on
/// frames with `bands` the hips' and the knees' rows of the knee-shift check marked. The
/// picture of README's "Your own mat".
pub fn mat_convention(path: &Path, frames: &[ConventionFrame], cell: u32) -> Result<()> {
    use plotters::style::colors::colormaps::ViridisRGB;
    font_once()?;
    let (widest, tallest) = frames.iter().fold((1, 1), |(w, h), c| {
        (w.max(c.frame.width as u32), h.max(c.frame.height as u32))
    });
    let margin = 150i32;
    let (tile_w, tile_h) = (widest * cell + 2 * margin as u32, tallest * cell + 110);
    let root =
        BitMapBackend::new(path, (tile_w * frames.len().max(1) as u32, tile_h)).into_drawing_area();
    root.fill(&WHITE)?;
    let font = ("sans-serif", 14).into_font();
    let bold = ("sans-serif", 15).into_font().style(FontStyle::Bold);
    for (
        n,
        ConventionFrame {
            caption,
            frame: f,
            bands,
        },
    ) in frames.iter().enumerate()
    {
        let (x0, y0) = (n as i32 * tile_w as i32 + margin, 50);
        let (w, h) = (f.width as i32 * cell as i32, f.height as i32 * cell as i32);
        // The colours' top at the 98th percentile: a few hot cells would leave the body dark.
        let mut sorted = f.values.clone();
        sorted.sort_unstable_by(f32::total_cmp);
        let peak = sorted
            .get(sorted.len() * 98 / 100)
            .copied()
            .unwrap_or(0.0)
            .max(1e-6);
        for (i, &v) in f.values.iter().enumerate() {
            let (x, y) = ((i % f.width) as i32, (i / f.width) as i32);
            let colour = ViridisRGB::get_color_normalized(v / peak, 0.0, 1.0);
            let (px, py) = (x0 + x * cell as i32, y0 + y * cell as i32);
            root.draw(&Rectangle::new(
                [(px, py), (px + cell as i32, py + cell as i32)],
                colour.filled(),
            ))?;
        }
        for (rows, colour) in bands.iter().flatten().zip([&WHITE, &RED]) {
            let (a, b) = (
                y0 + rows.0 as i32 * cell as i32,
                y0 + rows.1 as i32 * cell as i32,
            );
            root.draw(&Rectangle::new(
                [(x0, a), (x0 + w, b)],
                colour.stroke_width(2),
            ))?;
        }
        let last = f.width - 1;
        let corners = [
            (
                "row 0, column 0",
                "head end, patient's left",
                x0 - margin + 4,
                y0 - 38,
            ),
            (
                &*format!("row 0, column {last}"),
                "head end, patient's right",
                x0 + w - 36,
                y0 - 38,
            ),
            (
                &*format!("row {}, column 0", f.height - 1),
                "foot end, patient's left",
                x0 - margin + 4,
                y0 + h + 8,
            ),
            (
                &*format!("row {}, column {last}", f.height - 1),
                "foot end, patient's right",
                x0 + w - 36,
                y0 + h + 8,
            ),
        ];
        for (cell_name, meaning, x, y) in corners {
            root.draw(&Text::new(cell_name.to_owned(), (x, y), font.clone()))?;
            root.draw(&Text::new(meaning.to_owned(), (x, y + 16), bold.clone()))?;
        }
        root.draw(&Text::new(
            "patient's left",
            (x0 - 110, y0 + h / 2),
            font.clone(),
        ))?;
        root.draw(&Text::new(
            "patient's right",
            (x0 + w + 8, y0 + h / 2),
            font.clone(),
        ))?;
        root.draw(&Text::new(
            caption.clone(),
            (x0 - margin + 4, y0 + h + 48),
            font.clone(),
        ))?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
