//! The dashboard's charts, rendered on the server as SVG with plotters: a per-minute line
//! chart of delivery outcomes and a pie chart of bounce reasons. The page shows them as
//! images and reloads them to refresh.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Counts of one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MinutePoint {
    /// Start of the minute (ms since the epoch).
    pub at_ms: u64,
    pub queued: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub deferred: u64,
}

const QUEUED: RGBColor = RGBColor(59, 130, 246);
const SUCCEEDED: RGBColor = RGBColor(22, 163, 74);
const FAILED: RGBColor = RGBColor(220, 38, 38);
const DEFERRED: RGBColor = RGBColor(217, 119, 6);
const GRID: RGBColor = RGBColor(229, 231, 235);
const TEXT: RGBColor = RGBColor(55, 65, 81);

/// Pie slice colours, in order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(220, 38, 38),
    RGBColor(217, 119, 6),
    RGBColor(59, 130, 246),
    RGBColor(139, 92, 246),
    RGBColor(16, 185, 129),
    RGBColor(236, 72, 153),
    RGBColor(14, 165, 233),
    RGBColor(234, 179, 8),
    RGBColor(100, 116, 139),
    RGBColor(168, 85, 247),
];

fn hhmm(ms: u64, tz_minutes: i32) -> String {
    let m = (ms / 60_000) as i64 + tz_minutes as i64;
    let m = m.rem_euclid(24 * 60);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// A line chart of the per-minute counts; `tz_minutes` shifts the time labels (minutes east
/// of UTC).
pub fn minutes_svg(points: &[MinutePoint], tz_minutes: i32, size: (u32, u32)) -> String {
    let mut out = String::new();
    let drawn = draw_minutes(&mut out, points, tz_minutes, size);
    if let Err(e) = drawn {
        return error_svg(&e, size);
    }
    out
}

type DrawResult = Result<(), String>;

/// A line of the minute chart: its name, colour and value.
type Series = (&'static str, RGBColor, fn(&MinutePoint) -> u64);

fn draw_minutes(out: &mut String, points: &[MinutePoint], tz: i32, size: (u32, u32)) -> DrawResult {
    let root = SVGBackend::with_string(out, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = points.len().max(2) as u32;
    let top = points
        .iter()
        .map(|p| p.queued.max(p.succeeded).max(p.failed).max(p.deferred))
        .max()
        .unwrap_or(0);
    let y_max = (top + top / 10).max(5);
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0u32..n - 1, 0u64..y_max)
        .map_err(|e| e.to_string())?;
    let label = |i: &u32| {
        points
            .get(*i as usize)
            .map(|p| hhmm(p.at_ms, tz))
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.5))
        .bold_line_style(GRID)
        .axis_style(GRID)
        .x_labels(7)
        .y_labels(6)
        .x_label_formatter(&label)
        .label_style(("sans-serif", 14).into_font().color(&TEXT))
        .draw()
        .map_err(|e| e.to_string())?;
    let series: [Series; 4] = [
        ("queued", QUEUED, |p| p.queued),
        ("succeeded", SUCCEEDED, |p| p.succeeded),
        ("failed", FAILED, |p| p.failed),
        ("deferred", DEFERRED, |p| p.deferred),
    ];
    for (name, color, get) in series {
        chart
            .draw_series(LineSeries::new(
                points.iter().enumerate().map(|(i, p)| (i as u32, get(p))),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font(("sans-serif", 14).into_font().color(&TEXT))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A pie chart of bounce reasons with a legend (`reasons`: name and count, largest first).
pub fn reasons_svg(reasons: &[(String, u64)], size: (u32, u32)) -> String {
    let mut out = String::new();
    if let Err(e) = draw_reasons(&mut out, reasons, size) {
        return error_svg(&e, size);
    }
    out
}

fn draw_reasons(out: &mut String, reasons: &[(String, u64)], size: (u32, u32)) -> DrawResult {
    let root = SVGBackend::with_string(out, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let total: u64 = reasons.iter().map(|r| r.1).sum();
    let font = ("sans-serif", 15).into_font().color(&TEXT);
    if total == 0 {
        let style = font.pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            "No bounces in this period",
            (size.0 as i32 / 2, size.1 as i32 / 2),
            style,
        ))
        .map_err(|e| e.to_string())?;
        return root.present().map_err(|e| e.to_string());
    }
    // At most nine slices; the rest is "other".
    let mut slices: Vec<(String, u64)> = reasons.iter().take(9).cloned().collect();
    let rest: u64 = reasons.iter().skip(9).map(|r| r.1).sum();
    if rest > 0 {
        slices.push(("other".into(), rest));
    }
    let radius = (size.1 as f64 / 2.0 - 16.0).max(10.0);
    let center = (radius as i32 + 16, size.1 as i32 / 2);
    let sizes: Vec<f64> = slices.iter().map(|s| s.1 as f64).collect();
    let colors: Vec<RGBColor> = (0..slices.len()).map(|i| PALETTE[i % 10]).collect();
    let labels: Vec<String> = vec![String::new(); slices.len()];
    let mut pie = Pie::new(&center, &radius, &sizes, &colors, &labels);
    pie.donut_hole(radius * 0.5);
    root.draw(&pie).map_err(|e| e.to_string())?;
    let total_style = ("sans-serif", 16)
        .into_font()
        .color(&TEXT)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(total.to_string(), center, total_style))
        .map_err(|e| e.to_string())?;
    let x = center.0 + radius as i32 + 24;
    for (i, (name, count)) in slices.iter().enumerate() {
        let y = 20 + i as i32 * 22;
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            colors[i].filled(),
        ))
        .map_err(|e| e.to_string())?;
        let pct = *count as f64 * 100.0 / total as f64;
        let style = font.clone().pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            format!("{name}  {count} ({pct:.1}%)"),
            (x + 20, y),
            style,
        ))
        .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn error_svg(msg: &str, size: (u32, u32)) -> String {
    let esc = msg
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\">\
         <text x=\"10\" y=\"20\" font-family=\"sans-serif\">chart failed: {esc}</text></svg>",
        w = size.0,
        h = size.1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_chart_has_one_path_per_series_and_time_labels() {
        let points: Vec<MinutePoint> = (0..60)
            .map(|i| MinutePoint {
                at_ms: 1_764_201_600_000 + i * 60_000, // 00:00 UTC
                queued: i,
                succeeded: i / 2,
                failed: 1,
                deferred: 0,
            })
            .collect();
        let svg = minutes_svg(&points, 540, (800, 260));
        assert!(svg.starts_with("<svg"), "{svg}");
        for color in ["#3B82F6", "#16A34A", "#DC2626", "#D97706"] {
            let line = format!("stroke=\"{color}\" stroke-width=\"2\"");
            assert_eq!(
                svg.matches(&line).count(),
                1,
                "one {color} series line: {svg}"
            );
        }
        assert!(svg.contains("09:00"), "labels shifted to UTC+9: {svg}");
        for name in ["queued", "succeeded", "failed", "deferred"] {
            assert!(svg.contains(name), "legend {name}");
        }
    }

    #[test]
    fn empty_minute_chart_still_renders() {
        let svg = minutes_svg(&[], 0, (400, 200));
        assert!(
            svg.starts_with("<svg") && !svg.contains("chart failed"),
            "{svg}"
        );
    }

    #[test]
    fn pie_shows_shares_and_groups_the_tail() {
        let reasons: Vec<(String, u64)> = (0..12).map(|i| (format!("r{i}"), 12 - i)).collect();
        let svg = reasons_svg(&reasons, (520, 240));
        assert!(svg.contains("r0  12 (15.4%)"), "{svg}");
        assert!(svg.contains("other"), "{svg}");
        assert!(!svg.contains("r11"), "{svg}");
        let none = reasons_svg(&[], (520, 240));
        assert!(none.contains("No bounces"), "{none}");
    }
}
