//! The bar plot of `eval mc` (docs/results/eval_mc.png): one group of bars per task plus the
//! mean, one bar per model, a tick at chance level. Drawn with plotters' bitmap backend only
//! (no TrueType feature, so no fontconfig or system fonts); the few labels are stamped pixel
//! by pixel from the public-domain 8×8 glyphs of the font8x8 crate.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use font8x8::UnicodeFonts;
use plotters::prelude::*;

/// One bar series: a label for the legend and a value per group (`None`: no bar).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (ASCII, Latin-1 or Greek letters).
    pub label: String,
    /// Accuracy 0..1 per group.
    pub values: Vec<Option<f64>>,
    /// Bar colour.
    pub color: RGBColor,
}

const W: u32 = 1000;
const H: u32 = 440;
const LEFT: i32 = 56;
const TOP: i32 = 40;
const BOTTOM: i32 = 40;
const LEGEND_W: i32 = 300;

/// Writes the PNG at `path`: `groups` along the x axis, `chance[g]` drawn as a dark tick over
/// each group, `title` on top.
pub fn draw_bars(path: &Path, title: &str, groups: &[&str], series: &[Series], chance: &[f64]) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", path.display());
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1, y0, y1) = (LEFT, W as i32 - LEGEND_W, TOP, H as i32 - BOTTOM);
    let top_value = series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.8f64, |a, &b| a.max(b));
    let top_value = (top_value * 10.0).ceil() / 10.0;
    let y_of = |v: f64| y1 - ((v.clamp(0.0, top_value) / top_value) * f64::from(y1 - y0)).round() as i32;
    let grid = RGBColor(220, 220, 220);
    let ink = RGBColor(40, 40, 40);
    // Horizontal grid lines and y labels every 0.1.
    for k in 0..=(top_value * 10.0).round() as i32 {
        let v = f64::from(k) / 10.0;
        let y = y_of(v);
        root.draw(&PathElement::new(vec![(x0, y), (x1, y)], grid)).map_err(err)?;
        text(&root, 6, y - 4, &format!("{v:.1}"), 1, ink).map_err(err)?;
    }
    let group_w = f64::from(x1 - x0) / groups.len() as f64;
    let bar_w = ((group_w * 0.8) / series.len().max(1) as f64).floor() as i32;
    for (g, name) in groups.iter().enumerate() {
        let gx = x0 + (group_w * g as f64 + group_w * 0.1).round() as i32;
        for (s, ser) in series.iter().enumerate() {
            if let Some(v) = ser.values.get(g).copied().flatten() {
                let bx = gx + s as i32 * bar_w;
                root.draw(&Rectangle::new([(bx, y_of(v)), (bx + bar_w - 2, y1)], ser.color.filled())).map_err(err)?;
            }
        }
        if let Some(&c) = chance.get(g) {
            let y = y_of(c);
            let x_end = gx + bar_w * series.len() as i32;
            root.draw(&PathElement::new(vec![(gx - 3, y), (x_end + 1, y)], ShapeStyle::from(&ink).stroke_width(2))).map_err(err)?;
        }
        // Scale-2 letters when the name fits under its bars, else scale 1.
        let chars = name.chars().count() as i32;
        let scale = if chars * 16 <= group_w as i32 - 4 { 2 } else { 1 };
        let label_x = gx + (bar_w * series.len() as i32) / 2 - (chars * 8 * scale) / 2;
        text(&root, label_x, y1 + 10, name, scale, ink).map_err(err)?;
    }
    root.draw(&PathElement::new(vec![(x0, y1), (x1, y1)], ink)).map_err(err)?;
    text(&root, x0, 10, title, 2, ink).map_err(err)?;
    // Legend.
    let lx = x1 + 16;
    for (s, ser) in series.iter().enumerate() {
        let ly = TOP + 10 + s as i32 * 24;
        root.draw(&Rectangle::new([(lx, ly), (lx + 14, ly + 14)], ser.color.filled())).map_err(err)?;
        text(&root, lx + 22, ly + 3, &ser.label, 1, ink).map_err(err)?;
    }
    let ly = TOP + 10 + series.len() as i32 * 24;
    root.draw(&PathElement::new(vec![(lx, ly + 7), (lx + 14, ly + 7)], ShapeStyle::from(&ink).stroke_width(2))).map_err(err)?;
    text(&root, lx + 22, ly + 3, "chance", 1, ink).map_err(err)?;
    root.present().map_err(err).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The 8×8 glyph of `c` (bit 0 of each row byte is the leftmost pixel), `?` when missing.
fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Stamps `s` with its top-left corner at (x, y), each font pixel a `scale`×`scale` square.
fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    y: i32,
    s: &str,
    scale: i32,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as i32 * 8 + col) * scale + dx;
                            let py = y + row as i32 * scale + dy;
                            area.draw_pixel((px, py), &color)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_with_bars_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.png");
        let series = vec![
            Series { label: "μLM-256-8".into(), values: vec![Some(0.3), None, Some(0.6)], color: RGBColor(30, 90, 200) },
            Series { label: "paper".into(), values: vec![Some(0.28), Some(0.53), Some(0.43)], color: RGBColor(150, 150, 150) },
        ];
        draw_bars(&path, "test", &["A", "B", "mean"], &series, &[0.25, 0.5, 0.5]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert_ne!(glyph('μ'), glyph('?'), "the Greek mu has a glyph");
    }
}
