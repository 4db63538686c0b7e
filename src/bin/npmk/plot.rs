//! `--plot out.svg` for `npmk trajectory`: k, NPM-dk and NPM-d2k against step on a log axis,
//! the main series' phases shaded, one line per class.

use npmk::dynamics::{ExtremumKind, Phase, Trajectory};
use npmk::trajectory::{TrajectoryReport, MAIN_SERIES};
use plotters::prelude::*;
use std::path::Path;

/// Series drawn, with their colours; kinds are left to the JSON and the table.
const LINES: [(&str, RGBColor); 5] = [
    (MAIN_SERIES, RGBColor(20, 20, 20)),
    ("selection", RGBColor(200, 40, 40)),
    ("value", RGBColor(130, 60, 170)),
    ("transmission", RGBColor(30, 90, 200)),
    ("other", RGBColor(120, 120, 120)),
];

fn phase_colour(phase: Phase) -> RGBAColor {
    match phase {
        Phase::P0 => RGBColor(200, 200, 200).mix(0.35),
        Phase::P1 => RGBColor(120, 170, 240).mix(0.30),
        Phase::P2 => RGBColor(120, 210, 130).mix(0.30),
        Phase::P3 => RGBColor(250, 180, 90).mix(0.30),
    }
}

/// A series as drawn: name, colour, (step, value) points.
type Drawn<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One panel's quantity.
#[derive(Clone, Copy)]
enum Quantity {
    K,
    Dk,
    D2k,
}

impl Quantity {
    fn label(self) -> &'static str {
        match self {
            Quantity::K => "k (mid-80)",
            Quantity::Dk => "NPM-dk (per decade)",
            Quantity::D2k => "NPM-d2k (per decade^2)",
        }
    }

    fn values(self, t: &Trajectory) -> Vec<(f64, f64)> {
        t.points
            .iter()
            .filter_map(|p| {
                let v = match self {
                    Quantity::K => Some(p.k),
                    Quantity::Dk => Some(p.dk),
                    Quantity::D2k => p.d2k,
                };
                v.filter(|v| v.is_finite()).map(|v| (p.step as f64, v))
            })
            .collect()
    }
}

/// Writes the SVG. Errors are returned as one line of text.
pub fn write_svg(report: &TrajectoryReport, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1100, 1000)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("{}: cannot draw the plot: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let title = format!("NPM-k trajectory: {}", report.input);
    let root = root.titled(&title, ("sans-serif", 22)).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((3, 1));

    let steps: Vec<f64> = report.main.points.iter().map(|p| p.step as f64).collect();
    let x_min = steps.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let x_max = steps.iter().copied().fold(0.0, f64::max).max(x_min * 10.0);
    let x_range = (x_min / 1.2)..(x_max * 1.2);

    for (panel, quantity) in panels.iter().zip([Quantity::K, Quantity::Dk, Quantity::D2k]) {
        let drawn: Vec<Drawn> = LINES
            .iter()
            .filter_map(|(name, colour)| {
                report.series.get(*name).map(|t| (*name, *colour, quantity.values(t)))
            })
            .filter(|(_, _, v)| !v.is_empty())
            .collect();
        let ys = drawn.iter().flat_map(|(_, _, v)| v.iter().map(|p| p.1));
        let (y_lo, y_hi) =
            ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let (y_lo, y_hi) = if y_lo.is_finite() { (y_lo, y_hi) } else { (-1.0, 1.0) };
        let pad = ((y_hi - y_lo) * 0.08).max(1e-4);
        let y_range = (y_lo - pad)..(y_hi + pad);

        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.clone().log_scale(), y_range.clone())
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc(quantity.label())
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.4}"))
            .draw()
            .map_err(|e| fail(&e))?;

        // Phases of the main series as shaded bands behind the lines.
        for span in &report.main.phases {
            let (a, b) =
                (span.start_step as f64, (span.end_step as f64).max(span.start_step as f64));
            let band = Rectangle::new(
                [(a.max(x_range.start), y_range.start), (b.min(x_range.end), y_range.end)],
                phase_colour(span.name).filled(),
            );
            chart.draw_series(std::iter::once(band)).map_err(|e| fail(&e))?;
            let label = Text::new(
                span.name.as_str().to_string(),
                (a.max(x_range.start), y_range.end),
                ("sans-serif", 14),
            );
            chart.draw_series(std::iter::once(label)).map_err(|e| fail(&e))?;
        }
        if matches!(quantity, Quantity::Dk | Quantity::D2k) {
            chart
                .draw_series(LineSeries::new(
                    [(x_range.start, 0.0), (x_range.end, 0.0)],
                    BLACK.mix(0.4),
                ))
                .map_err(|e| fail(&e))?;
        }
        for (name, colour, values) in &drawn {
            let width = if *name == MAIN_SERIES { 3 } else { 2 };
            chart
                .draw_series(LineSeries::new(values.iter().copied(), colour.stroke_width(width)))
                .map_err(|e| fail(&e))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(3))
                });
            // Markers only while they can be told apart.
            if values.len() <= 80 {
                chart
                    .draw_series(values.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|e| fail(&e))?;
            }
        }
        if let (Quantity::K, Some(e)) = (quantity, report.main.extremum) {
            let mark = Circle::new((e.step as f64, e.k), 8, RED.stroke_width(2));
            let text = match e.kind {
                ExtremumKind::Max => format!("max {:.5} @ {}", e.k, e.step),
                ExtremumKind::Min => format!("min {:.5} @ {}", e.k, e.step),
            };
            chart.draw_series([mark]).map_err(|e| fail(&e))?;
            chart
                .draw_series([Text::new(text, (e.step as f64 * 1.1, e.k), ("sans-serif", 14))])
                .map_err(|e| fail(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}
