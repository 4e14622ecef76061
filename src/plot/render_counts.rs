//! Drawing histograms: of a batch study's chosen outputs (beside its band)
//! and of a path ensemble's first hitting steps (beside its fan).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::counts::Hitting;
use super::kinds::Batch;
use super::render::{tick, Drawn, Style};

/// A histogram panel: bars between `edges` of the given heights, a caption
/// above, and vertical marks (value, colour, width in points).
struct Bars<'a> {
    edges: Vec<f64>,
    heights: Vec<f64>,
    caption: String,
    x_desc: &'a str,
    y_desc: &'a str,
    marks: Vec<(f64, RGBAColor, f64)>,
}

fn bars<DB>(area: &DrawingArea<DB, Shift>, b: &Bars, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let lo = b.edges.first().copied().unwrap_or(0.0);
    let hi = b.edges.last().copied().unwrap_or(1.0).max(lo + 1e-12);
    let top = b
        .heights
        .iter()
        .copied()
        .filter(|h| h.is_finite())
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(st.px(5.0))
        .margin_right(st.px(12.0))
        .caption(&b.caption, st.font(8.5))
        .x_label_area_size(st.px(26.0))
        .y_label_area_size(st.px(46.0))
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .disable_x_mesh()
        .label_style(st.font(7.5))
        .axis_desc_style(st.font(8.5))
        .x_labels(5)
        .y_labels(4)
        .x_desc(b.x_desc)
        .y_desc(b.y_desc)
        .draw()?;
    let color = RGBColor(31, 119, 180);
    chart.draw_series(
        b.heights
            .iter()
            .enumerate()
            .filter(|(_, h)| **h > 0.0)
            .map(|(k, &h)| {
                Rectangle::new(
                    [(b.edges[k], 0.0), (b.edges[k + 1], h)],
                    color.mix(0.55).filled(),
                )
            }),
    )?;
    for &(x, mark, pt) in b.marks.iter().filter(|m| m.0.is_finite()) {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, top)],
            mark.stroke_width(st.px(pt).max(1.0) as u32),
        )))?;
    }
    Ok(())
}

/// The histograms of a batch study's chosen outputs in a grid, each with
/// its column's P10 and P90 (grey) and median (blue) from the band.
pub(super) fn output_hists<DB>(area: &DrawingArea<DB, Shift>, b: &Batch, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let m = b.histograms.len();
    let cols = (m as f64).sqrt().ceil().max(1.0) as usize;
    let rows = m.div_ceil(cols).max(1);
    let cells = area.split_evenly((rows, cols));
    for (h, cell) in b.histograms.iter().zip(&cells) {
        let at = |v: &Vec<f64>| v.get(h.column).copied().unwrap_or(f64::NAN);
        let grey = BLACK.mix(0.45);
        let missing = if h.missing > 0 {
            format!(" ({} not finite)", h.missing)
        } else {
            String::new()
        };
        bars(
            cell,
            &Bars {
                edges: h.hist.axis.edges(),
                heights: h.hist.counts.iter().map(|&c| c as f64).collect(),
                caption: format!("{}: {} items{missing}", h.name, h.hist.total()),
                x_desc: &h.name,
                y_desc: "items",
                marks: vec![
                    (at(&b.p10), grey, 1.0),
                    (at(&b.p90), grey, 1.0),
                    (at(&b.p50), BLUE.to_rgba(), 1.5),
                ],
            },
            st,
        )?;
    }
    Ok(())
}

/// The share of paths whose first hit of the target set falls in each
/// stretch of recorded steps.
pub(super) fn hitting<DB>(area: &DrawingArea<DB, Shift>, h: &Hitting, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let n = h.paths.max(1) as f64;
    let last = h.steps.last().copied().unwrap_or(0);
    let caption = format!(
        "first step in {{{}}}: {:.1}% never by step {last}",
        h.target.join(", "),
        100.0 * h.never as f64 / n
    );
    // The steps after the last hit are left out (the heading says how many
    // never hit); at least a tenth of them are drawn.
    let hits = h.counts.iter().rposition(|&c| c > 0).map_or(0, |k| k + 1);
    let keep = (hits + hits / 10 + 1)
        .max(h.counts.len() / 10)
        .min(h.counts.len());
    bars(
        area,
        &Bars {
            edges: h.edges[..=keep].to_vec(),
            heights: h.counts[..keep].iter().map(|&c| c as f64 / n).collect(),
            caption,
            x_desc: "first hitting step",
            y_desc: "share of paths",
            marks: Vec::new(),
        },
        st,
    )
}
