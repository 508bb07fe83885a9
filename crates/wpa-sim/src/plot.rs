//! An SVG of each run over time: one panel per policy (and per scenario),
//! each with the backlog, the replicas and the longest wait.

use std::path::Path;

use plotters::prelude::*;

use crate::{Outcome, SimError};

fn plot_error(error: impl std::fmt::Display) -> SimError {
    SimError::Plot(error.to_string())
}

/// Writes `rows` (a title and the outcomes of its policies, each with a
/// time series) as an SVG: one row per title, one panel per policy, each
/// panel three stacked charts (backlog, replicas, wait).
pub fn plot_svg(path: &Path, rows: &[(String, Vec<Outcome>)]) -> Result<(), SimError> {
    let columns = rows.iter().map(|(_, o)| o.len()).max().unwrap_or(0).max(1);
    let width = 420 * columns as u32;
    let height = 460 * rows.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let cells = root.split_evenly((rows.len().max(1), columns));
    for (row, (title, outcomes)) in rows.iter().enumerate() {
        for (column, outcome) in outcomes.iter().enumerate() {
            let Some(cell) = cells.get(row * columns + column) else {
                continue;
            };
            draw_panel(cell, &format!("{title}: {}", outcome.policy), outcome)?;
        }
    }
    root.present().map_err(plot_error)
}

/// A chart's label, colour and points.
type Chart<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    outcome: &Outcome,
) -> Result<(), SimError> {
    let area = area.titled(title, ("sans-serif", 16)).map_err(plot_error)?;
    let parts = area.split_evenly((3, 1));
    let series = &outcome.series;
    let end = series.last().map_or(1.0, |s| s.time_s).max(1.0) / 3_600.0;
    let charts: [Chart<'_>; 3] = [
        (
            "backlog (msgs)",
            RED,
            series
                .iter()
                .map(|s| (s.time_s / 3_600.0, s.backlog as f64))
                .collect(),
        ),
        (
            "replicas",
            BLUE,
            series
                .iter()
                .map(|s| (s.time_s / 3_600.0, f64::from(s.replicas)))
                .collect(),
        ),
        (
            "max wait (s)",
            GREEN,
            series
                .iter()
                .map(|s| (s.time_s / 3_600.0, s.wait_max_s))
                .collect(),
        ),
    ];
    for (part, (label, color, points)) in parts.iter().zip(charts) {
        let top = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(part)
            .margin(6)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..end, 0.0..top)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(4)
            .x_desc("hours")
            .y_desc(label)
            .light_line_style(WHITE)
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(1)))
            .map_err(plot_error)?;
    }
    Ok(())
}
