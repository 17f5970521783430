//! Charts over time as inline SVG, drawn by plotters' SVG backend: one
//! line per series, hours (or clock times) on the x axis. Each chart has
//! a `<title>` and an accessible name; the page gives a text summary too.

use plotters::prelude::*;

use crate::format::{clock, clock_seconds, esc};

/// One line: its name and `(Unix ms, value)` points, oldest first.
pub type Series = (String, Vec<(u64, f64)>);

const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x5f, 0xbf),
    RGBColor(0xc2, 0x41, 0x0c),
    RGBColor(0x15, 0x80, 0x3d),
    RGBColor(0x7e, 0x22, 0xce),
    RGBColor(0x0e, 0x74, 0x90),
    RGBColor(0xa1, 0x62, 0x07),
];

/// A line chart of `series` titled `title`, the y axis in `unit` (named in
/// the chart's accessible title, not on the axis, where it crowded the
/// tick labels).
pub fn lines(title: &str, unit: &str, series: &[Series]) -> String {
    let mut svg = String::new();
    let (w, h) = (640u32, 240u32);
    let drawn = draw(&mut svg, (w, h), series);
    if drawn.is_err() || svg.is_empty() {
        return format!(
            "<p class=\"muted\">{}: no chart ({})</p>",
            esc(title),
            esc(&drawn.err().unwrap_or_default())
        );
    }
    accessible(&svg, &format!("{title} ({unit})"), w, h)
}

fn draw(svg: &mut String, size: (u32, u32), series: &[Series]) -> Result<(), String> {
    let points = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y1) = (u64::MAX, 0u64, 0f64);
    for (x, y) in points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        (x0, x1) = (0, 1);
    }
    if x1 == x0 {
        x1 = x0 + 1;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.1 };
    let span = x1 - x0;
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, 0f64..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|x| {
            // Short spans (a fresh devnet) need the seconds to tell ticks apart.
            if span < 2 * 3_600_000 {
                clock_seconds(*x)
            } else {
                clock(*x)
            }
        })
        .y_label_formatter(&|y| {
            // Small values (µIOSD-sized payments) keep their digits.
            if y1 < 0.01 {
                format!("{y:.6}")
            } else if y1 < 10.0 {
                format!("{y:.2}")
            } else {
                format!("{y:.0}")
            }
        })
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .label_style(
            ("sans-serif", 12)
                .into_font()
                .color(&RGBColor(0x33, 0x33, 0x33)),
        )
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// Makes plotters' SVG scale with its container and gives it a name.
fn accessible(svg: &str, title: &str, w: u32, h: u32) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    let Some(close) = svg[start..].find('>').map(|i| start + i) else {
        return String::new();
    };
    format!(
        "<svg role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"xMidYMid meet\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>{}",
        &svg[close + 1..],
        t = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_named_svg_with_a_line_per_series() {
        let s = lines(
            "jobs per hour",
            "jobs",
            &[
                ("a".into(), vec![(0, 1.0), (3_600_000, 3.0)]),
                ("b".into(), vec![(0, 2.0), (3_600_000, 0.0)]),
            ],
        );
        assert!(
            s.starts_with("<svg role=\"img\" aria-label=\"jobs per hour (jobs)\""),
            "{s}"
        );
        assert!(s.contains("<title>jobs per hour (jobs)</title>"));
        assert!(s.matches("<polyline").count() >= 2, "{s}");
        let empty = lines("nothing", "x", &[]);
        assert!(empty.contains("<svg"), "an empty chart still draws axes");
    }
}
