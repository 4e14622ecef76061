//! Drawing a corner plot: the marginal histograms on the diagonal with
//! their quantiles, mean and truth, and below it the 68% and 95%
//! highest-density regions of every pair.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::draws::Corner;
use super::render::{tick, titled, Drawn, Style};

pub(super) fn corner<DB>(root: &DrawingArea<DB, Shift>, c: &Corner, st: Style) -> Drawn
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let thinned = if c.thin > 1 {
        format!(", thinned by {}", c.thin)
    } else {
        String::new()
    };
    let title = format!(
        "state {} ({}): {} draws, burn-in {}{thinned}",
        c.state, c.kind, c.draws, c.burn
    );
    let area = titled(root, &title, st)?;
    let m = c.params.len();
    let cells = area.split_evenly((m, m));
    let blue = RGBColor(31, 119, 180);
    for i in 0..m {
        for j in 0..m {
            let cell = &cells[i * m + j];
            if j > i {
                continue;
            }
            let bottom = i + 1 == m;
            let left = j == 0;
            let xa = &c.marginals[j].hist.axis;
            let mut builder = ChartBuilder::on(cell);
            builder
                .margin(st.px(3.0))
                .x_label_area_size(if bottom { st.px(26.0) } else { 0.0 })
                .y_label_area_size(if left { st.px(34.0) } else { 0.0 });
            if i == j {
                let h = &c.marginals[i].hist;
                let top = h.counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
                let mut chart = builder.build_cartesian_2d(xa.lo..xa.hi, 0.0..top)?;
                chart
                    .configure_mesh()
                    .x_label_formatter(&tick)
                    .light_line_style(BLACK.mix(0.04))
                    .disable_mesh()
                    .y_labels(0)
                    .label_style(st.font(7.0))
                    .axis_desc_style(st.font(9.0))
                    .x_labels(4)
                    .x_desc(if bottom { c.params[j].as_str() } else { "" })
                    .draw()?;
                chart.draw_series(h.counts.iter().enumerate().map(|(b, &n)| {
                    Rectangle::new(
                        [(h.axis.edge(b), 0.0), (h.axis.edge(b + 1), n as f64)],
                        blue.mix(0.55).filled(),
                    )
                }))?;
                let mg = &c.marginals[i];
                for (q, width) in [(mg.q05, 1.0), (mg.q50, 2.0), (mg.q95, 1.0)] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(q, 0.0), (q, top)],
                        BLACK.stroke_width(st.px(width) as u32),
                    )))?;
                }
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(mg.mean, 0.0), (mg.mean, top)],
                    RED.stroke_width(st.px(1.0) as u32),
                )))?;
                if let Some(v) = c.truths[i] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(v, 0.0), (v, top)],
                        GREEN.stroke_width(st.px(2.0) as u32),
                    )))?;
                }
                let caption = format!(
                    "{} = {:.3} (+{:.3} −{:.3})",
                    c.params[i],
                    mg.q50,
                    mg.q95 - mg.q50,
                    mg.q50 - mg.q05
                );
                cell.draw(&Text::new(caption, (st.px(4.0) as i32, 0), st.font(7.5)))?;
                continue;
            }
            let pair = c
                .pairs
                .iter()
                .find(|p| p.i == i && p.j == j)
                .ok_or("a pair of the corner plot is missing")?;
            let (hx, hy) = (&pair.hist.x, &pair.hist.y);
            let mut chart = builder.build_cartesian_2d(hx.lo..hx.hi, hy.lo..hy.hi)?;
            chart
                .configure_mesh()
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .light_line_style(BLACK.mix(0.04))
                .disable_mesh()
                .label_style(st.font(7.0))
                .axis_desc_style(st.font(9.0))
                .x_labels(if bottom { 4 } else { 0 })
                .y_labels(if left { 4 } else { 0 })
                .x_desc(if bottom { c.params[j].as_str() } else { "" })
                .y_desc(if left { c.params[i].as_str() } else { "" })
                .draw()?;
            let (l68, l95) = (pair.smoothed_levels[0], pair.smoothed_levels[1]);
            chart.draw_series(pair.smoothed.iter().enumerate().filter_map(|(k, &n)| {
                let shade = if n >= l68 {
                    0.75
                } else if n >= l95 {
                    0.35
                } else {
                    return None;
                };
                let (a, b) = (k / hy.bins, k % hy.bins);
                Some(Rectangle::new(
                    [(hx.edge(a), hy.edge(b)), (hx.edge(a + 1), hy.edge(b + 1))],
                    blue.mix(shade).filled(),
                ))
            }))?;
            if let (Some(x), Some(y)) = (c.truths[j], c.truths[i]) {
                chart.draw_series(std::iter::once(Circle::new(
                    (x, y),
                    st.px(3.0) as i32,
                    GREEN.filled(),
                )))?;
            }
            let (mx, my) = (c.marginals[j].mean, c.marginals[i].mean);
            chart.draw_series(std::iter::once(Cross::new(
                (mx, my),
                st.px(3.0) as i32,
                RED,
            )))?;
        }
    }
    Ok(())
}
