//! Drawing a figure's data with plotters, into PNG or SVG (or its numbers
//! into JSON): the trace and diagnostics figures here, the corner plot in
//! `render_corner`, the figures of the other kinds in `render_kinds`.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (through
//! plotters' ab_glyph), so a machine without fonts renders labels. Sizes
//! are in inches times `--dpi`, fonts in points, so a figure looks the same
//! at any resolution.

use std::error::Error;
use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::draws::Trace;
use super::kinds::{Diagnostics, FigureData};
use super::{render_corner, render_kinds};
use super::{Format, PlotError};

pub(super) type Drawn = Result<(), Box<dyn Error>>;

/// Sizes in a figure: inches and points at `dpi` pixels per inch.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub dpi: f64,
}

impl Style {
    /// Pixels of `pt` points.
    pub fn px(&self, pt: f64) -> f64 {
        pt * self.dpi / 72.0
    }

    pub fn font(&self, pt: f64) -> FontDesc<'static> {
        (FONT, self.px(pt)).into_font()
    }

    /// Pixels of `inches`.
    pub fn pixels_of(&self, inches: f64) -> u32 {
        (inches * self.dpi).round().max(1.0) as u32
    }
}

/// The family the embedded font is registered as.
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans is a valid font: registering it cannot fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// The size of a figure in inches (width, height).
pub fn inches(data: &FigureData) -> (f64, f64) {
    match data {
        FigureData::Trace(t) => (10.0, 0.6 + 1.7 * t.panels.len() as f64),
        FigureData::Corner(c) => {
            let side = (1.8 * c.params.len() as f64).clamp(5.0, 20.0);
            (side, side + 0.4)
        }
        FigureData::Diagnostics(d) => ((3.0 + 0.5 * d.labels.len() as f64).clamp(8.0, 20.0), 4.0),
        FigureData::Smc(_) => (13.0, 4.0),
        FigureData::Transc(_) => (11.0, 4.5),
        FigureData::Batch(b) if b.histograms.is_empty() => (8.0, 5.0),
        FigureData::Batch(_) => (13.0, 5.0),
        FigureData::Paths(p) => match (p.occupation.is_empty(), p.hitting.is_none()) {
            (true, true) => (8.0, 5.0),
            (false, false) => (12.0, 8.0),
            _ => (12.0, 4.5),
        },
    }
}

/// The pixel size a figure gets at `dpi`, of its own size in inches or
/// `size`.
pub fn pixels(data: &FigureData, dpi: u32, size: Option<(f64, f64)>) -> (u32, u32) {
    let style = Style { dpi: dpi as f64 };
    let (w, h) = size.unwrap_or_else(|| inches(data));
    (style.pixels_of(w), style.pixels_of(h))
}

/// Writes a figure to `path` as `format`.
pub fn write(
    data: &FigureData,
    path: &Path,
    format: Format,
    dpi: u32,
    size: Option<(f64, f64)>,
) -> Result<(), PlotError> {
    let failed = |e: &dyn std::fmt::Display| {
        PlotError::Draw(format!("cannot write {}: {e}", path.display()))
    };
    let size = pixels(data, dpi, size);
    let style = Style { dpi: dpi as f64 };
    register_font();
    match format {
        Format::Json => {
            let file = std::fs::File::create(path).map_err(|e| failed(&e))?;
            let mut out = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut out, data).map_err(|e| failed(&e))?;
            std::io::Write::flush(&mut out).map_err(|e| failed(&e))
        }
        Format::Png => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(&root, data, style).map_err(|e| failed(&e))?;
            root.present().map_err(|e| failed(&e))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, data, style).map_err(|e| failed(&e))?;
            root.present().map_err(|e| failed(&e))
        }
    }
}

fn draw<DB>(root: &DrawingArea<DB, Shift>, data: &FigureData, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match data {
        FigureData::Trace(t) => trace(root, t, st),
        FigureData::Corner(c) => render_corner::corner(root, c, st),
        FigureData::Diagnostics(d) => diagnostics(root, d, st),
        FigureData::Smc(s) => render_kinds::smc(root, s, st),
        FigureData::Transc(t) => render_kinds::transc(root, t, st),
        FigureData::Batch(b) => render_kinds::batch(root, b, st),
        FigureData::Paths(p) => render_kinds::paths(root, p, st),
    }
}

/// The range of the finite values, padded by 5% (±0.5 around one value).
pub(super) fn span<'a>(values: impl IntoIterator<Item = &'a f64>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi <= lo {
        return lo - 0.5..hi + 0.5;
    }
    let pad = 0.05 * (hi - lo);
    lo - pad..hi + pad
}

/// A tick label: the value with the digits it needs (`2000`, `0.25`, `-1`),
/// in scientific notation when very large or small.
pub(super) fn tick(v: &f64) -> String {
    let v = *v;
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0" } else { s }.to_string()
}

/// `v` to `digits` significant digits, trailing zeros dropped.
pub(super) fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return tick(&v);
    }
    let decimals = (digits - 1 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A figure's title over the whole drawing; the area below it.
pub(super) fn titled<DB>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    st: Style,
) -> Result<DrawingArea<DB, Shift>, Box<dyn Error>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    Ok(root.titled(title, st.font(13.0))?)
}

/// A line through the finite points (a gap where a value is not).
pub(super) fn finite_runs(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for (x, y) in points {
        if x.is_finite() && y.is_finite() {
            runs.last_mut().expect("one run").push((x, y));
        } else if !runs.last().expect("one run").is_empty() {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

fn trace<DB>(root: &DrawingArea<DB, Shift>, t: &Trace, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let what = if t.kind == "chains" {
        "chains"
    } else {
        "walkers"
    };
    let replicate = if t.replicates > 1 {
        format!(", replicate 0 of {}", t.replicates)
    } else {
        String::new()
    };
    let title = format!(
        "state {} ({}): {} of {} {what}, {} stored rows{replicate}",
        t.state,
        t.kind,
        t.shown.len(),
        t.chains,
        t.rows
    );
    let area = titled(root, &title, st)?;
    let panels = area.split_evenly((t.panels.len(), 1));
    let x_range = 0.0..(t.rows.max(1)) as f64;
    // The y range of the draws after the burn-in (where the chains have
    // settled), unless the burn-in is all there is yet.
    let settled = |p: usize| -> Vec<f64> {
        let after: Vec<usize> = (0..t.x.len()).filter(|&i| t.x[i] >= t.burn).collect();
        let keep: Vec<usize> = if after.is_empty() {
            (0..t.x.len()).collect()
        } else {
            after
        };
        keep.iter()
            .flat_map(|&i| t.lines[p].iter().map(move |l| l[i]))
            .chain(keep.iter().map(|&i| t.running_mean[p][i]))
            .collect()
    };
    for (p, panel) in panels.iter().enumerate() {
        let ys = settled(p);
        let last = p + 1 == t.panels.len();
        let mut chart = ChartBuilder::on(panel)
            .margin(st.px(4.0))
            .margin_right(st.px(14.0))
            .x_label_area_size(st.px(if last { 28.0 } else { 16.0 }))
            .y_label_area_size(st.px(44.0))
            .build_cartesian_2d(x_range.clone(), span(&ys))?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .light_line_style(BLACK.mix(0.04))
            .label_style(st.font(8.0))
            .axis_desc_style(st.font(9.0))
            .x_desc(if last { "stored row" } else { "" })
            .y_desc(t.panels[p].as_str())
            .draw()?;
        let (y0, y1) = {
            let r = chart.y_range();
            (r.start, r.end)
        };
        if t.burn > 0 {
            let end = (t.burn as f64).min(x_range.end);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y0), (end, y1)],
                BLACK.mix(0.08).filled(),
            )))?;
        }
        let x: Vec<f64> = t.x.iter().map(|&r| r as f64).collect();
        let alpha = if t.lines[p].len() > 8 { 0.3 } else { 0.6 };
        for (k, line) in t.lines[p].iter().enumerate() {
            let color = Palette99::pick(k).mix(alpha);
            for run in finite_runs(x.iter().copied().zip(line.iter().copied())) {
                chart.draw_series(LineSeries::new(run, color.stroke_width(1)))?;
            }
        }
        for run in finite_runs(x.iter().copied().zip(t.running_mean[p].iter().copied())) {
            chart.draw_series(LineSeries::new(run, BLACK.stroke_width(st.px(1.5) as u32)))?;
        }
    }
    Ok(())
}

fn diagnostics<DB>(root: &DrawingArea<DB, Shift>, d: &Diagnostics, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let title = format!(
        "state {}: R-hat (flagged above {}) and ESS (flagged below {})",
        d.state, d.rhat_max, d.ess_min
    );
    let area = titled(root, &title, st)?;
    let halves = area.split_evenly((1, 2));
    let n = d.labels.len().max(1) as i32;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => d.labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let rhat_top = span(d.rhat.iter().chain([&d.rhat_max, &1.0]));
    let mut chart = ChartBuilder::on(&halves[0])
        .margin(st.px(6.0))
        .x_label_area_size(st.px(30.0))
        .y_label_area_size(st.px(44.0))
        .build_cartesian_2d((0..n - 1).into_segmented(), rhat_top)?;
    chart
        .configure_mesh()
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .disable_x_mesh()
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .x_label_formatter(&label)
        .y_desc("split R-hat")
        .draw()?;
    let threshold = |y: f64| {
        PathElement::new(
            vec![(SegmentValue::Exact(0), y), (SegmentValue::Last, y)],
            RED.stroke_width(st.px(1.0) as u32),
        )
    };
    chart.draw_series(std::iter::once(threshold(d.rhat_max)))?;
    chart.draw_series(
        d.rhat
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| {
                let color = if v <= d.rhat_max { BLACK } else { RED };
                Circle::new(
                    (SegmentValue::CenterOf(i as i32), v),
                    st.px(3.0) as i32,
                    color.filled(),
                )
            }),
    )?;
    let ess_span = span(
        d.ess_bulk
            .iter()
            .chain(&d.ess_tail)
            .chain([&d.ess_min, &0.0]),
    );
    let mut chart = ChartBuilder::on(&halves[1])
        .margin(st.px(6.0))
        .x_label_area_size(st.px(30.0))
        .y_label_area_size(st.px(50.0))
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..ess_span.end)?;
    chart
        .configure_mesh()
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .disable_x_mesh()
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .x_label_formatter(&label)
        .y_desc("ESS (● bulk, ▲ tail)")
        .draw()?;
    chart.draw_series(std::iter::once(threshold(d.ess_min)))?;
    chart.draw_series(
        d.ess_bulk
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| {
                Circle::new(
                    (SegmentValue::CenterOf(i as i32), v),
                    st.px(3.0) as i32,
                    BLACK.filled(),
                )
            }),
    )?;
    chart.draw_series(
        d.ess_tail
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| {
                TriangleMarker::new(
                    (SegmentValue::CenterOf(i as i32), v),
                    st.px(3.5) as i32,
                    BLUE.filled(),
                )
            }),
    )?;
    Ok(())
}
