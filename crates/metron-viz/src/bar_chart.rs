//! Horizontal bar charts with a reference line: one labelled bar per value, e.g. a benchmark's
//! time ratios against 1.

use std::path::Path;

use image::RgbImage;

use crate::draw::{fill_rect, line};
use crate::font::{GLYPH_HEIGHT, draw_text, text_width};
use crate::png::save_png;
use crate::ticks;
use crate::{Result, VizError, colour, size};

/// Blank border around the picture.
const PAD: i64 = 8;
/// Height of one bar's row.
const ROW: i64 = 14;
/// Height of a bar within its row.
const BAR: i64 = 9;
/// Gap between labels, bars and values.
const GAP: i64 = 6;
/// The narrowest bar area worth drawing.
const MIN_AREA: i64 = 40;

/// One bar: its label and value (non-finite values get an empty row).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Text left of the bar.
    pub label: String,
    /// Length of the bar on the value axis (from 0).
    pub value: f64,
}

/// A titled list of bars sharing one value axis, with an optional reference value drawn as a
/// vertical line; bars below the reference are drawn in the hit green, others in the miss red
/// (for ratios where below 1 is better), or all in the first series colour without one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarChart {
    /// Heading at the top; none when empty.
    pub title: String,
    /// Label under the value axis.
    pub x_label: String,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
    /// Where the vertical reference line goes (e.g. 1 for ratios).
    pub reference: Option<f64>,
}

impl BarChart {
    /// An empty chart with this title and value-axis label.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>) -> Self {
        BarChart {
            title: title.into(),
            x_label: x_label.into(),
            ..Default::default()
        }
    }

    /// Adds a bar (builder style).
    pub fn with_bar(mut self, label: impl Into<String>, value: f64) -> Self {
        self.bars.push(Bar {
            label: label.into(),
            value,
        });
        self
    }

    /// Draws a reference line at `value` and colours bars by which side of it they end.
    pub fn with_reference(mut self, value: f64) -> Self {
        self.reference = Some(value);
        self
    }
}

/// Renders `chart` `width` pixels wide; the height follows from the number of bars.
///
/// Errors: [`VizError::Empty`] without bars, [`VizError::InvalidArgument`] when the labels
/// leave no room for the bars or the picture is too large.
pub fn render_bar_chart(chart: &BarChart, width: u32) -> Result<RgbImage> {
    if chart.bars.is_empty() {
        return Err(VizError::Empty("no bars given"));
    }
    let glyph_h = i64::from(GLYPH_HEIGHT);
    let values: Vec<f64> = chart
        .bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .collect();
    let max = values
        .iter()
        .copied()
        .chain(chart.reference)
        .fold(0.0f64, f64::max);
    let min = values.iter().copied().fold(0.0f64, f64::min);
    let ticks = ticks::compute(min, if max > min { max } else { min + 1.0 });
    let (lo, hi) = ticks.range();
    let label_w = chart
        .bars
        .iter()
        .map(|b| text_width(&b.label, 1) as i64)
        .max()
        .unwrap_or(0);
    let value_w = text_width("0000.00", 1) as i64;
    let w = i64::from(width);
    let x0 = PAD + label_w + GAP;
    let x1 = w - 1 - PAD - value_w - GAP;
    if x1 - x0 < MIN_AREA {
        return Err(VizError::InvalidArgument(format!(
            "a {width} pixel wide bar chart leaves {} pixels for the bars beside its labels",
            (x1 - x0).max(0)
        )));
    }
    let mut top = PAD;
    if !chart.title.is_empty() {
        top += 2 * glyph_h + 6;
    }
    let rows_h = ROW * chart.bars.len() as i64;
    let axis_y = top + rows_h + 2;
    let mut h = axis_y + 4 + GAP + glyph_h + PAD;
    if !chart.x_label.is_empty() {
        h += glyph_h + 5;
    }
    let height = size::checked_extent(h as u64, "bar chart height")?;
    size::check_pixels(width, height)?;
    let mut img = RgbImage::from_pixel(width, height, colour::BACKGROUND);
    let px =
        |v: f64| x0 + (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * (x1 - x0) as f64).round() as i64;
    if !chart.title.is_empty() {
        draw_text(&mut img, PAD, PAD, &chart.title, 2, colour::TEXT);
    }
    // Grid lines and tick labels.
    for (v, label) in ticks.values.iter().zip(&ticks.labels) {
        let x = px(*v);
        line(&mut img, (x, top), (x, axis_y), 0, colour::GRID);
        line(&mut img, (x, axis_y), (x, axis_y + 3), 0, colour::AXIS);
        let lw = text_width(label, 1) as i64;
        draw_text(
            &mut img,
            x - lw / 2,
            axis_y + 4 + GAP / 2,
            label,
            1,
            colour::TEXT,
        );
    }
    line(&mut img, (x0, axis_y), (x1, axis_y), 0, colour::AXIS);
    let zero = px(0.0);
    for (i, bar) in chart.bars.iter().enumerate() {
        let y = top + ROW * i as i64;
        draw_text(
            &mut img,
            PAD,
            y + (ROW - glyph_h) / 2,
            &bar.label,
            1,
            colour::TEXT,
        );
        if !bar.value.is_finite() {
            continue;
        }
        let fill = match chart.reference {
            Some(r) if bar.value < r => colour::HIT,
            Some(_) => colour::MISS,
            None => colour::series(0),
        };
        let end = px(bar.value);
        let (a, b) = (zero.min(end), zero.max(end));
        fill_rect(&mut img, a, y + (ROW - BAR) / 2, (b - a).max(1), BAR, fill);
        // Two decimals, or three significant digits for small values (not "0.00").
        let text = if bar.value.abs() >= 0.1 {
            format!("{:.2}", bar.value)
        } else {
            format!("{:.2e}", bar.value)
        };
        draw_text(
            &mut img,
            b + GAP / 2,
            y + (ROW - glyph_h) / 2,
            &text,
            1,
            colour::TEXT,
        );
    }
    if let Some(r) = chart.reference.filter(|r| r.is_finite()) {
        let x = px(r);
        line(&mut img, (x, top - 2), (x, axis_y), 0, colour::AXIS);
    }
    if !chart.x_label.is_empty() {
        let lw = text_width(&chart.x_label, 1) as i64;
        let y = i64::from(height) - PAD - glyph_h;
        draw_text(
            &mut img,
            (x0 + x1) / 2 - lw / 2,
            y,
            &chart.x_label,
            1,
            colour::TEXT,
        );
    }
    Ok(img)
}

/// [`render_bar_chart`], then writes the PNG atomically to `path`.
pub fn save_bar_chart(path: &Path, chart: &BarChart, width: u32) -> Result<()> {
    save_png(path, &render_bar_chart(chart, width)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(img: &RgbImage, c: image::Rgb<u8>) -> usize {
        img.pixels().filter(|p| **p == c).count()
    }

    #[test]
    fn bars_are_coloured_by_their_side_of_the_reference_and_scale_with_their_value() {
        let chart = BarChart::new("ratios", "metron / peer")
            .with_bar("fast", 0.5)
            .with_bar("slow", 1.5)
            .with_reference(1.0);
        let img = render_bar_chart(&chart, 400).unwrap();
        let (green, red) = (count(&img, colour::HIT), count(&img, colour::MISS));
        assert!(green > 0 && red > 0);
        // Same bar height, so pixel counts go as the lengths (to a pixel of rounding).
        let ratio = red as f64 / green as f64;
        assert!((ratio - 3.0).abs() < 0.1, "{ratio}");
        // Two rows more, taller picture.
        let taller =
            render_bar_chart(&chart.clone().with_bar("a", 1.0).with_bar("b", 2.0), 400).unwrap();
        assert_eq!(taller.height() - img.height(), 2 * ROW as u32);
    }

    #[test]
    fn refuses_no_bars_and_no_room() {
        assert!(matches!(
            render_bar_chart(&BarChart::new("t", "x"), 400),
            Err(VizError::Empty(_))
        ));
        let long = BarChart::new("t", "x").with_bar("a label far too long for the picture", 1.0);
        assert!(matches!(
            render_bar_chart(&long, 120),
            Err(VizError::InvalidArgument(_))
        ));
        // A non-finite value leaves its row empty rather than failing.
        let nan = BarChart::new("t", "x")
            .with_bar("a", f64::NAN)
            .with_bar("b", 1.0);
        assert!(render_bar_chart(&nan, 300).is_ok());
    }
}
