//! What every opener/handoff/safety report carries (date, commit, model, item count), the
//! markdown and JSON writers, and the PNG bar charts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use plotters::style::RGBColor;

use super::mc_plot::{draw_bars, Series};
use crate::provenance::{git_commit, utc_now};
use lm::checkpoint::LoadedLm;

/// Identity of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    /// UTC time of the run, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// `git rev-parse --short HEAD` of the working tree (`+dirty` when it has changes).
    pub commit: String,
    /// μLM preset from mulm.json (`256-8`, `512-8`, …).
    pub model: String,
    /// Weight storage of the loaded μLM (`q8_0`, `f32`, `gguf:…`).
    pub precision: String,
    /// μLM parameters.
    pub parameters: usize,
    /// μLM checkpoint directory.
    pub model_dir: String,
}

impl RunMeta {
    /// Metadata for a run of the μLM `m` loaded from `dir`.
    pub fn new(m: &LoadedLm, dir: &Path) -> Self {
        Self {
            date: utc_now(),
            commit: git_commit(),
            model: m.mulm.preset.clone(),
            precision: m.model.format().to_string(),
            parameters: m.model.config().parameter_count(),
            model_dir: dir.display().to_string(),
        }
    }

    /// The markdown header lines (after the title).
    pub fn markdown(&self, n_items: usize) -> String {
        format!(
            "- date: {}\n- commit: `{}`\n- model: μLM-{} ({:.2}M parameters, {}), `{}`\n- items: {n_items}\n",
            self.date,
            self.commit,
            self.model,
            self.parameters as f64 / 1e6,
            self.precision,
            self.model_dir
        )
    }
}

/// Writes `text` to `dir/name` (creating `dir`) and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// Prints `report` as JSON on stdout when `json`, and says where the markdown went on stderr.
pub fn emit<T: Serialize>(report: &T, json: bool, md_path: &Path) -> Result<()> {
    if json {
        println!("{}", crate::provenance::report_json(report)?);
    }
    eprintln!("wrote {}", md_path.display());
    Ok(())
}

/// `x` as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// An optional number with `digits` decimals, or "–".
pub fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// Escapes `|` and line breaks for a markdown table cell.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Writes a grouped bar chart PNG at `dir/name` with the crate's bitmap plotter
/// (`mc_plot::draw_bars`: plotters, no font dependency): one group per entry of `groups`, one
/// bar per series `(legend, value per group)`, values 0..1. Returns the path.
pub fn png_bars(dir: &Path, name: &str, title: &str, groups: &[&str], series: &[(String, Vec<f64>)]) -> Result<PathBuf> {
    const PALETTE: [(u8, u8, u8); 4] = [(74, 120, 181), (230, 140, 40), (90, 160, 90), (150, 150, 150)];
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    let series: Vec<Series> = series
        .iter()
        .enumerate()
        .map(|(i, (label, v))| {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            Series { label: label.clone(), values: v.iter().map(|x| Some(*x)).collect(), color: RGBColor(r, g, b) }
        })
        .collect();
    draw_bars(&path, title, groups, &series, &[])?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_plot_and_cells() {
        let d = tempfile::tempdir().unwrap();
        let p = png_bars(d.path(), "x.png", "t", &["a", "b"], &[("4 words".into(), vec![0.5, 0.1])]).unwrap();
        assert_eq!(&std::fs::read(p).unwrap()[1..4], b"PNG");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
