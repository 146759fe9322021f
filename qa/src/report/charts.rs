//! The report's charts as SVG strings, drawn with plotters' SVG backend (no fonts loaded: the
//! browser lays the text out), to be inlined in the HTML page. Each function returns a whole
//! `<svg>` element; plotters escapes the labels it writes.

use super::Report;
use crate::QaError;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

const WIDTH: u32 = 880;
const HEIGHT: u32 = 380;
const FONT: &str = "sans-serif";

/// Colours for categories, in order (colour-blind friendly, Okabe-Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
    RGBColor(90, 90, 90),
];

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> QaError + '_ {
    move |e| QaError::Render {
        what: format!("chart {what}"),
        message: e.to_string(),
    }
}

/// The series legend every chart draws the same way: upper right, on a light background.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    what: &str,
) -> Result<(), QaError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()
        .map_err(err(what))
}

/// The x range for `n` categories: plotters' segmented `0..m` holds m + 1 segments.
fn categories(n: usize) -> std::ops::Range<u32> {
    0..(n.max(2) - 1) as u32
}

fn category_label(labels: &[String], v: &SegmentValue<u32>) -> String {
    match v {
        SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Stacked bars: calls per outcome in each segment.
pub fn outcomes_by_segment(report: &Report) -> Result<String, QaError> {
    let mut svg = String::new();
    {
        let rows = &report.outcomes_by_segment;
        let labels: Vec<String> = rows.iter().map(|r| r.segment.clone()).collect();
        let mut outcomes: Vec<String> = rows
            .iter()
            .flat_map(|r| r.outcomes.keys().cloned())
            .collect();
        outcomes.sort();
        outcomes.dedup();
        let top = rows.iter().map(|r| r.calls).max().unwrap_or(0).max(1) as f64 * 1.1;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err("outcomes"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Outcomes by segment", (FONT, 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(categories(rows.len()).into_segmented(), 0.0..top)
            .map_err(err("outcomes"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("segment")
            .y_desc("calls")
            .x_label_formatter(&|v| category_label(&labels, v))
            .label_style((FONT, 13))
            .draw()
            .map_err(err("outcomes"))?;
        let mut base = vec![0usize; rows.len()];
        for (k, outcome) in outcomes.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars: Vec<Rectangle<(SegmentValue<u32>, f64)>> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let n = r.outcomes.get(outcome).copied().unwrap_or(0);
                    let y0 = base[i];
                    base[i] += n;
                    (n > 0).then(|| {
                        let mut bar = Rectangle::new(
                            [
                                (SegmentValue::Exact(i as u32), y0 as f64),
                                (SegmentValue::Exact(i as u32 + 1), (y0 + n) as f64),
                            ],
                            color.filled(),
                        );
                        bar.set_margin(0, 0, 12, 12);
                        bar
                    })
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(err("outcomes"))?
                .label(outcome.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        legend(&mut chart, "outcomes")?;
        root.present().map_err(err("outcomes"))?;
    }
    Ok(svg)
}

/// Pareto of failure reasons: calls per reason, most first from the top, each bar labelled with
/// its count and the cumulative share (horizontal, so long reason names stay readable).
pub fn failure_pareto(report: &Report) -> Result<String, QaError> {
    let mut svg = String::new();
    {
        let rows = &report.failures;
        let n = rows.len();
        // Category j from the bottom is row n - 1 - j: the most frequent reason on top.
        let labels: Vec<String> = rows
            .iter()
            .rev()
            .map(|r| r.reason.as_str().to_string())
            .collect();
        let top = rows.iter().map(|r| r.calls).max().unwrap_or(0).max(1) as f64 * 1.35;
        let height = (90 + 30 * n as u32).max(200);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err("pareto"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Failure reasons (Pareto)", (FONT, 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(180)
            .build_cartesian_2d(0.0..top, categories(n).into_segmented())
            .map_err(err("pareto"))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("calls with the reason (bars: bot or compliance in orange)")
            .y_labels(n.max(1))
            .y_label_formatter(&|v| category_label(&labels, v))
            .label_style((FONT, 13))
            .draw()
            .map_err(err("pareto"))?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let j = (n - 1 - i) as u32;
                let color = if r.reason.is_bot_failure() {
                    PALETTE[3]
                } else {
                    PALETTE[0]
                };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(j)),
                        (r.calls as f64, SegmentValue::Exact(j + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(err("pareto"))?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let j = (n - 1 - i) as u32;
                EmptyElement::at((r.calls as f64, SegmentValue::CenterOf(j)))
                    + Text::new(
                        format!("{} (cumulative {:.0}%)", r.calls, 100.0 * r.cumulative),
                        (6, -6),
                        (FONT, 12),
                    )
            }))
            .map_err(err("pareto"))?;
        root.present().map_err(err("pareto"))?;
    }
    Ok(svg)
}

/// Histogram of voice-to-voice latency per reply, with the threshold.
pub fn latency_distribution(report: &Report) -> Result<String, QaError> {
    let mut svg = String::new();
    {
        let l = &report.latency;
        let bins = l.histogram.len().max(1);
        let right = bins as f64 * l.bin_ms;
        let top = l.histogram.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err("latency"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Voice-to-voice latency per reply (p50 {:.0} ms, p95 {:.0} ms)",
                    l.p50_ms, l.p95_ms
                ),
                (FONT, 20),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..right, 0.0..top)
            .map_err(err("latency"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("ms (the last bin holds every slower reply)")
            .y_desc("replies")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 13))
            .draw()
            .map_err(err("latency"))?;
        chart
            .draw_series(l.histogram.iter().enumerate().map(|(i, n)| {
                let x0 = i as f64 * l.bin_ms;
                let color = if x0 >= l.threshold_ms {
                    PALETTE[3]
                } else {
                    PALETTE[0]
                };
                let mut bar =
                    Rectangle::new([(x0, 0.0), (x0 + l.bin_ms, *n as f64)], color.filled());
                bar.set_margin(0, 0, 1, 1);
                bar
            }))
            .map_err(err("latency"))?;
        chart
            .draw_series(LineSeries::new(
                [(l.threshold_ms, 0.0), (l.threshold_ms, top)],
                BLACK.stroke_width(2),
            ))
            .map_err(err("latency"))?
            .label(format!("threshold {:.0} ms", l.threshold_ms))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        legend(&mut chart, "latency")?;
        root.present().map_err(err("latency"))?;
    }
    Ok(svg)
}

/// Conversion rate of answered calls by the hour the call started.
pub fn conversion_by_hour(report: &Report) -> Result<String, QaError> {
    let mut svg = String::new();
    {
        let rows = &report.conversion_by_hour;
        let labels: Vec<String> = rows.iter().map(|r| format!("{:02}", r.hour)).collect();
        let top = rows
            .iter()
            .map(|r| r.conversion_rate)
            .fold(0.0, f64::max)
            .max(0.05)
            * 110.0;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err("hours"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Conversion by hour of day ({})", report.time_zone),
                (FONT, 20),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(categories(rows.len()).into_segmented(), 0.0..top)
            .map_err(err("hours"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("hour the call started")
            .y_desc("converted % of answered")
            .x_labels(rows.len().max(1))
            .x_label_formatter(&|v| category_label(&labels, v))
            .label_style((FONT, 13))
            .draw()
            .map_err(err("hours"))?;
        chart
            .draw_series(
                rows.iter()
                    .enumerate()
                    .filter(|(_, r)| r.answered > 0)
                    .map(|(i, r)| {
                        let mut bar = Rectangle::new(
                            [
                                (SegmentValue::Exact(i as u32), 0.0),
                                (SegmentValue::Exact(i as u32 + 1), 100.0 * r.conversion_rate),
                            ],
                            PALETTE[2].filled(),
                        );
                        bar.set_margin(0, 0, 3, 3);
                        bar
                    }),
            )
            .map_err(err("hours"))?;
        root.present().map_err(err("hours"))?;
    }
    Ok(svg)
}

/// Cumulative regret of the bandit and of a fixed equal split on simulated callees, call by
/// call (expected conversions lost against always playing each segment's best variant).
pub fn regret(curve: &crate::experiment::RegretCurve) -> Result<String, QaError> {
    let mut svg = String::new();
    {
        let calls = curve.at_calls.last().copied().unwrap_or(1).max(1) as f64;
        let top = curve
            .bandit
            .iter()
            .chain(&curve.fixed_split)
            .copied()
            .fold(1.0, f64::max)
            * 1.1;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err("regret"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Bandit vs fixed split: cumulative regret on simulated callees",
                (FONT, 20),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..calls, 0.0..top)
            .map_err(err("regret"))?;
        chart
            .configure_mesh()
            .x_desc("calls")
            .y_desc("conversions lost")
            .label_style((FONT, 13))
            .draw()
            .map_err(err("regret"))?;
        for (name, values, colour) in [
            ("Thompson bandit", &curve.bandit, PALETTE[0]),
            ("fixed equal split", &curve.fixed_split, PALETTE[3]),
        ] {
            chart
                .draw_series(LineSeries::new(
                    curve
                        .at_calls
                        .iter()
                        .zip(values.iter())
                        .map(|(c, v)| (*c as f64, *v)),
                    colour.stroke_width(2),
                ))
                .map_err(err("regret"))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart, "regret")?;
        root.present().map_err(err("regret"))?;
    }
    Ok(svg)
}
