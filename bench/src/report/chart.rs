//! One line chart as a PNG: series drawn by plotters on an in-memory RGB
//! bitmap, grid and labels drawn with the crate's own bitmap font (no
//! system fonts), and the pixels encoded by the `png` crate.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use plotters::prelude::*;

use super::glyphs::{self, Anchor};
use super::ticks;
use crate::error::BenchError;

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
const MARGIN_LEFT: u32 = 110;
const MARGIN_RIGHT: u32 = 30;
const MARGIN_TOP: u32 = 50;
const MARGIN_BOTTOM: u32 = 70;
/// Series with at most this many points also get a dot per point.
const MARKER_POINTS_MAX: usize = 40;

const GRID: RGBColor = RGBColor(225, 225, 225);
const INK: RGBColor = RGBColor(30, 30, 30);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Where the x ticks go.
pub enum XTicks {
    /// Evenly spaced from 0 to the largest x.
    Auto,
    /// At these positions, with these labels (the range pads half a unit).
    At(Vec<(f64, String)>),
}

pub struct LineChart {
    pub title: String,
    pub x_title: String,
    pub y_title: String,
    pub x_ticks: XTicks,
    /// Fixed top of the y axis; else from the data.
    pub y_max: Option<f64>,
    pub series: Vec<Series>,
}

pub fn render(chart: &LineChart, path: &Path) -> Result<(), BenchError> {
    let fail = |message: String| BenchError::Plot {
        path: path.to_path_buf(),
        message,
    };
    let mut pixels = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    draw(chart, &mut pixels).map_err(fail)?;
    let file = File::create(path).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| fail(e.to_string()))
}

fn draw(chart: &LineChart, pixels: &mut [u8]) -> Result<(), String> {
    let root = BitMapBackend::with_buffer(pixels, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;

    let all = || chart.series.iter().flat_map(|s| s.points.iter());
    let data_x_max = all().map(|p| p.0).fold(0.0f64, f64::max);
    let data_y_max = all().map(|p| p.1).fold(0.0f64, f64::max);
    let y_ticks = ticks::ticks(chart.y_max.unwrap_or(data_y_max), 6);
    let y_step = y_ticks.get(1).copied().unwrap_or(1.0);
    let y_top = *y_ticks.last().expect("at least two ticks");
    let (x_range, x_ticks): (std::ops::Range<f64>, Vec<(f64, String)>) = match &chart.x_ticks {
        XTicks::Auto => {
            let t = ticks::ticks(data_x_max, 10);
            let step = t.get(1).copied().unwrap_or(1.0);
            let top = *t.last().expect("at least two ticks");
            (
                0.0..top,
                t.into_iter().map(|x| (x, ticks::label(x, step))).collect(),
            )
        }
        XTicks::At(at) => {
            let lo = at.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
            let hi = at.iter().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if lo.is_finite() {
                (lo - 0.5, hi + 0.5)
            } else {
                (0.0, 1.0)
            };
            (lo..hi, at.clone())
        }
    };

    let mut ctx = ChartBuilder::on(&root)
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_top(MARGIN_TOP)
        .margin_bottom(MARGIN_BOTTOM)
        .build_cartesian_2d(x_range.clone(), 0.0..y_top)
        .map_err(|e| e.to_string())?;
    let line = |a: (f64, f64), b: (f64, f64)| LineSeries::new([a, b], GRID.stroke_width(1));
    for &y in &y_ticks {
        ctx.draw_series(line((x_range.start, y), (x_range.end, y)))
            .map_err(|e| e.to_string())?;
    }
    for (x, _) in &x_ticks {
        ctx.draw_series(line((*x, 0.0), (*x, y_top)))
            .map_err(|e| e.to_string())?;
    }
    ctx.plotting_area()
        .draw(&Rectangle::new(
            [(x_range.start, 0.0), (x_range.end, y_top)],
            INK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        ctx.draw_series(LineSeries::new(
            series.points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
        if series.points.len() <= MARKER_POINTS_MAX {
            ctx.draw_series(
                series
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 4, color.filled())),
            )
            .map_err(|e| e.to_string())?;
        }
    }

    // Labels, in pixels.
    for &y in &y_ticks {
        let (px, py) = ctx.backend_coord(&(x_range.start, y));
        glyphs::draw(
            &root,
            &ticks::label(y, y_step),
            px - 8,
            py - glyphs::CELL / 2,
            Anchor::Right,
            &INK,
        );
    }
    for (x, text) in &x_ticks {
        let (px, py) = ctx.backend_coord(&(*x, 0.0));
        glyphs::draw(&root, text, px, py + 8, Anchor::Center, &INK);
    }
    let (left, bottom) = ctx.backend_coord(&(x_range.start, 0.0));
    let (right, top) = ctx.backend_coord(&(x_range.end, y_top));
    glyphs::draw(
        &root,
        &chart.title,
        (left + right) / 2,
        14,
        Anchor::Center,
        &INK,
    );
    glyphs::draw(
        &root,
        &chart.x_title,
        (left + right) / 2,
        bottom + 36,
        Anchor::Center,
        &INK,
    );
    glyphs::draw_vertical(&root, &chart.y_title, 8, (top + bottom) / 2, &INK);

    // Legend, top right inside the plot, on white.
    let rows = chart.series.len() as i32;
    if rows > 0 {
        let text_w = chart
            .series
            .iter()
            .map(|s| glyphs::width(&s.label))
            .max()
            .unwrap_or(0);
        let box_w = text_w + 44;
        let box_h = rows * (glyphs::CELL + 6) + 8;
        let (x0, y0) = (right - box_w - 8, top + 8);
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + box_w, y0 + box_h)],
            WHITE.filled(),
        ))
        .map_err(|e| e.to_string())?;
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + box_w, y0 + box_h)],
            INK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        for (i, series) in chart.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let y = y0 + 6 + i as i32 * (glyphs::CELL + 6);
            root.draw(&Rectangle::new(
                [(x0 + 8, y + 5), (x0 + 30, y + 10)],
                color.filled(),
            ))
            .map_err(|e| e.to_string())?;
            glyphs::draw(&root, &series.label, x0 + 36, y, Anchor::Left, &INK);
        }
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png() {
        let dir = std::env::temp_dir().join(format!("shoal-bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.png");
        let chart = LineChart {
            title: "Test".into(),
            x_title: "x".into(),
            y_title: "y".into(),
            x_ticks: XTicks::At(vec![(0.0, "1".into()), (2.0, "4".into())]),
            y_max: None,
            series: vec![Series {
                label: "a".into(),
                points: vec![(0.0, 1.0), (2.0, 3.0)],
            }],
        };
        render(&chart, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
