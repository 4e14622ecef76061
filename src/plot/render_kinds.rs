//! Drawing the figures of one kind of work: SMC schedules and evidence,
//! trans-conceptual state probabilities, batch bands and path fans.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::kinds::{Batch, Paths, Smc, Transc};
use super::render::{finite_runs, significant, span, tick, titled, Drawn, Style};
use super::render_counts;

fn line_style(st: Style, color: RGBAColor, pt: f64) -> ShapeStyle {
    color.stroke_width(st.px(pt).max(1.0) as u32)
}

pub(super) fn smc<DB>(root: &DrawingArea<DB, Shift>, s: &Smc, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let evidence = match (s.log_evidence, s.log_evidence_err) {
        (Some(z), Some(e)) => format!("; log Z = {z:.3} ± {e:.3}"),
        (Some(z), None) => format!("; log Z = {z:.3}"),
        _ => String::new(),
    };
    let title = format!(
        "state {} (smc): {} group(s){evidence}",
        s.state,
        s.beta.first().map_or(0, Vec::len)
    );
    let area = titled(root, &title, st)?;
    let parts = area.split_evenly((1, 3));
    for (k, (values, name)) in [(&s.beta, "β"), (&s.ess, "ESS")].into_iter().enumerate() {
        let iters = values.len().max(2) as f64;
        let y = if k == 0 {
            0.0..1.05
        } else {
            span(values.iter().flatten().chain([&0.0]))
        };
        let mut chart = ChartBuilder::on(&parts[k])
            .margin(st.px(6.0))
            .margin_right(st.px(12.0))
            .x_label_area_size(st.px(26.0))
            .y_label_area_size(st.px(44.0))
            .build_cartesian_2d(0.0..iters - 1.0, y)?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .light_line_style(BLACK.mix(0.04))
            .label_style(st.font(8.0))
            .axis_desc_style(st.font(9.0))
            .x_desc("iteration")
            .y_desc(name)
            .draw()?;
        let groups = values.first().map_or(0, Vec::len);
        for g in 0..groups {
            let points = values.iter().enumerate().map(|(i, row)| (i as f64, row[g]));
            for run in finite_runs(points) {
                chart.draw_series(LineSeries::new(
                    run,
                    line_style(st, Palette99::pick(g).mix(0.8), 1.2),
                ))?;
            }
        }
    }
    let n = s.group_log_z.len().max(1) as i32;
    let mut ys: Vec<f64> = s.group_log_z.clone();
    if let (Some(z), Some(e)) = (s.log_evidence, s.log_evidence_err) {
        ys.extend([z - e, z + e]);
    }
    let mut chart = ChartBuilder::on(&parts[2])
        .margin(st.px(6.0))
        .x_label_area_size(st.px(26.0))
        .y_label_area_size(st.px(50.0))
        .build_cartesian_2d((0..n - 1).into_segmented(), span(&ys))?;
    chart
        .configure_mesh()
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .disable_x_mesh()
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .x_desc("group")
        .y_desc("log evidence")
        .draw()?;
    if let Some(z) = s.log_evidence {
        let e = s.log_evidence_err.unwrap_or(0.0);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(SegmentValue::Exact(0), z - e), (SegmentValue::Last, z + e)],
            BLUE.mix(0.15).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(SegmentValue::Exact(0), z), (SegmentValue::Last, z)],
            line_style(st, BLUE.to_rgba(), 1.5),
        )))?;
    }
    chart.draw_series(
        s.group_log_z
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(g, &v)| {
                Circle::new(
                    (SegmentValue::CenterOf(g as i32), v),
                    st.px(3.0) as i32,
                    Palette99::pick(g).filled(),
                )
            }),
    )?;
    Ok(())
}

/// Recorded steps of the walkers' visits drawn at most.
const VISIT_STEPS: usize = 200;

pub(super) fn transc<DB>(root: &DrawingArea<DB, Shift>, t: &Transc, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let area = titled(
        root,
        "trans-conceptual stage: state probabilities (±1 se) and visits",
        st,
    )?;
    let halves = area.split_evenly((1, 2));
    let k = t.probability.len().max(t.states.len()).max(1) as i32;
    let name = |i: usize| t.states.get(i).cloned().unwrap_or_else(|| i.to_string());
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => name(*i as usize),
        _ => String::new(),
    };
    let top = t
        .probability
        .iter()
        .zip(&t.probability_err)
        .map(|(p, e)| p + e)
        .fold(0.0f64, |a, b| if b.is_finite() { a.max(b) } else { a });
    let mut chart = ChartBuilder::on(&halves[0])
        .margin(st.px(6.0))
        .x_label_area_size(st.px(26.0))
        .y_label_area_size(st.px(44.0))
        .build_cartesian_2d(
            (0..k - 1).into_segmented(),
            0.0..(top * 1.1).clamp(0.05, 1.0),
        )?;
    chart
        .configure_mesh()
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .disable_x_mesh()
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .x_label_formatter(&label)
        .x_desc("state")
        .y_desc("probability")
        .draw()?;
    for (i, &p) in t.probability.iter().enumerate() {
        let x = SegmentValue::CenterOf(i as i32);
        chart.draw_series(std::iter::once(Circle::new(
            (x.clone(), p),
            st.px(3.5) as i32,
            Palette99::pick(i).filled(),
        )))?;
        if let Some(&e) = t.probability_err.get(i).filter(|e| e.is_finite()) {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x.clone(), p - e), (x, p + e)],
                line_style(st, BLACK.to_rgba(), 1.2),
            )))?;
        }
    }
    // The first steps only: over thousands, the lines of walkers that jump
    // often would fill the panel.
    let recorded = t.walkers.first().map_or(0, Vec::len);
    let shown = recorded.min(VISIT_STEPS);
    let steps = shown.max(2) as f64;
    let mut chart = ChartBuilder::on(&halves[1])
        .margin(st.px(6.0))
        .x_label_area_size(st.px(26.0))
        .y_label_area_size(st.px(44.0))
        .build_cartesian_2d(0.0..steps - 1.0, -0.5..k as f64 - 0.5)?;
    let state_label = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 && *v >= 0.0 {
            name(v.round() as usize)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .disable_y_mesh()
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .y_labels(k as usize)
        .y_label_formatter(&state_label)
        .x_desc(if shown < recorded {
            format!("recorded step (the first {shown} of {recorded})")
        } else {
            "recorded step".to_string()
        })
        .y_desc("state")
        .draw()?;
    let n = t.walkers.len().max(1) as f64;
    for (w, line) in t.walkers.iter().enumerate() {
        // Walkers offset a little so that they do not hide each other.
        let dy = (w as f64 - (n - 1.0) / 2.0) * 0.08;
        let points = line
            .iter()
            .take(shown)
            .enumerate()
            .map(|(s, &v)| (s as f64, v + dy));
        let color = Palette99::pick(w).mix(0.8);
        for run in finite_runs(points) {
            chart.draw_series(
                run.iter()
                    .map(|&p| Circle::new(p, st.px(1.5) as i32, color.filled())),
            )?;
            chart.draw_series(LineSeries::new(run, line_style(st, color.mix(0.5), 0.6)))?;
        }
    }
    Ok(())
}

pub(super) fn batch<DB>(root: &DrawingArea<DB, Shift>, b: &Batch, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let title = format!(
        "state {} (batch): median and P10–P90 of each output{}",
        b.state,
        if b.histograms.is_empty() {
            ""
        } else {
            "; histograms"
        }
    );
    let whole = titled(root, &title, st)?;
    let area = if b.histograms.is_empty() {
        whole
    } else {
        let (w, _) = whole.dim_in_pixel();
        let (band, hists) = whole.split_horizontally((w as f64 * 0.5) as i32);
        render_counts::output_hists(&hists, b, st)?;
        band
    };
    let raw: Vec<f64> = match &b.x {
        Some(x) => x.clone(),
        None => (0..b.labels.len()).map(|i| i as f64).collect(),
    };
    // A log axis is drawn as log10 of the value, labelled with the value.
    let x: Vec<f64> = raw
        .iter()
        .map(|&v| if b.log_x { v.log10() } else { v })
        .collect();
    let labels = &b.labels;
    let numeric = b.x.is_some();
    let log_x = b.log_x;
    let format_x = move |v: &f64| {
        if !numeric {
            let i = v.round();
            return if (v - i).abs() < 1e-9 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            };
        }
        if log_x {
            significant(10f64.powf(*v), 2)
        } else {
            tick(v)
        }
    };
    let mut chart = ChartBuilder::on(&area)
        .margin(st.px(8.0))
        .margin_right(st.px(12.0))
        .x_label_area_size(st.px(30.0))
        .y_label_area_size(st.px(50.0))
        .build_cartesian_2d(span(&x), span(b.p10.iter().chain(&b.p90).chain(&b.p50)))?;
    let x_desc = match (numeric, log_x) {
        (true, true) => "output label (log axis)",
        (true, false) => "output label",
        (false, _) => "output",
    };
    chart
        .configure_mesh()
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .x_labels(if numeric { 8 } else { labels.len() + 1 })
        .x_label_formatter(&format_x)
        .x_desc(x_desc)
        .y_desc("value")
        .draw()?;
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let band: Vec<(f64, f64)> = order
        .iter()
        .map(|&i| (x[i], b.p90[i]))
        .chain(order.iter().rev().map(|&i| (x[i], b.p10[i])))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    chart
        .draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.2).filled())))?
        .label("P10–P90")
        .legend(|(x, y)| Rectangle::new([(x, y - 4), (x + 12, y + 4)], BLUE.mix(0.2).filled()));
    let median = order.iter().map(|&i| (x[i], b.p50[i]));
    chart
        .draw_series(LineSeries::new(
            median.clone(),
            line_style(st, BLUE.to_rgba(), 1.5),
        ))?
        .label("median")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLUE));
    chart.draw_series(median.map(|p| Circle::new(p, st.px(2.5) as i32, BLUE.filled())))?;
    chart
        .configure_series_labels()
        .label_font(st.font(8.0))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// States of a finite space named in the occupation panel's legend at most.
const OCCUPATION_LEGEND: usize = 10;

pub(super) fn paths<DB>(root: &DrawingArea<DB, Shift>, p: &Paths, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let levels: Vec<String> = p.levels.iter().map(|l| format!("{l}")).collect();
    let samples = match p.samples.len() {
        0 => String::new(),
        1 => ", 1 sample path".to_string(),
        n => format!(", {n} sample paths"),
    };
    let title = format!(
        "state {} (paths, {}): quantiles {} over time{samples}",
        p.state,
        p.process,
        levels.join("/"),
    );
    let area = titled(root, &title, st)?;
    // The fan; beside it the occupation or the hitting steps, or below it
    // both side by side.
    let (fan, occupation, hitting) = match (p.occupation.is_empty(), p.hitting.is_some()) {
        (true, false) => (area, None, None),
        (false, true) => {
            let rows = area.split_evenly((2, 1));
            let below = rows[1].split_evenly((1, 2));
            (
                rows[0].clone(),
                Some(below[0].clone()),
                Some(below[1].clone()),
            )
        }
        (only_hitting, _) => {
            let halves = area.split_evenly((1, 2));
            let other = Some(halves[1].clone());
            match only_hitting {
                true => (halves[0].clone(), None, other),
                false => (halves[0].clone(), other, None),
            }
        }
    };
    if let (Some(part), Some(h)) = (&hitting, &p.hitting) {
        render_counts::hitting(part, h, st)?;
    }
    let t = &p.times;
    let ys = p
        .quantiles
        .iter()
        .flatten()
        .chain(p.samples.iter().flatten())
        .chain(&p.mean);
    let mut chart = ChartBuilder::on(&fan)
        .margin(st.px(8.0))
        .margin_right(st.px(12.0))
        .x_label_area_size(st.px(30.0))
        .y_label_area_size(st.px(50.0))
        .build_cartesian_2d(span(t), span(ys))?;
    chart
        .configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(BLACK.mix(0.04))
        .label_style(st.font(8.0))
        .axis_desc_style(st.font(9.0))
        .x_desc("time")
        .y_desc("value")
        .draw()?;
    let m = p.levels.len();
    for k in 0..m / 2 {
        let band: Vec<(f64, f64)> = (0..t.len())
            .map(|i| (t[i], p.quantiles[i][m - 1 - k]))
            .chain((0..t.len()).rev().map(|i| (t[i], p.quantiles[i][k])))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.18).filled())))?;
    }
    for (k, path) in p.samples.iter().enumerate() {
        let points = t.iter().copied().zip(path.iter().copied());
        for run in finite_runs(points) {
            chart.draw_series(LineSeries::new(
                run,
                line_style(st, Palette99::pick(k + 1).mix(0.7), 0.8),
            ))?;
        }
    }
    if let Some(mid) = p.levels.iter().position(|&l| (l - 0.5).abs() < 1e-12) {
        let points = (0..t.len()).map(|i| (t[i], p.quantiles[i][mid]));
        for run in finite_runs(points) {
            chart.draw_series(LineSeries::new(run, line_style(st, BLUE.to_rgba(), 1.8)))?;
        }
    }
    for run in finite_runs(t.iter().copied().zip(p.mean.iter().copied())) {
        chart.draw_series(LineSeries::new(run, line_style(st, BLACK.mix(0.7), 1.0)))?;
    }
    if let Some(part) = &occupation {
        let mut chart = ChartBuilder::on(part)
            .margin(st.px(8.0))
            .margin_right(st.px(12.0))
            .x_label_area_size(st.px(30.0))
            .y_label_area_size(st.px(44.0))
            .build_cartesian_2d(span(t), 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .light_line_style(BLACK.mix(0.04))
            .label_style(st.font(8.0))
            .axis_desc_style(st.font(9.0))
            .x_desc("time")
            .y_desc("occupation probability")
            .draw()?;
        // A legend of many states would hide the lines: up to ten are named.
        let named = p.labels.len() <= OCCUPATION_LEGEND;
        for (k, label) in p.labels.iter().enumerate() {
            let points = (0..t.len()).map(|i| (t[i], p.occupation[i][k]));
            let color = Palette99::pick(k).to_rgba();
            let series = chart.draw_series(LineSeries::new(points, line_style(st, color, 1.4)))?;
            if named {
                series
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], color));
            }
        }
        if named {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(st.font(8.0))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
    }
    Ok(())
}
