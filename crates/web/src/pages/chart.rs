//! Small line charts drawn on the server as inline SVG (no JavaScript):
//! a polyline over a fixed box, scaled to the largest value, with the
//! scale and the time span written out for screen readers and as labels.

use maud::{html, Markup};

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 80.0;

/// A chart of `values` (oldest first, one per sample, `None` = no rate
/// for that sample) titled `title`, with `unit` after the numbers and
/// `span` describing the time covered (e.g. `last 60 min`).
pub(crate) fn line(
    id: &str,
    title: &str,
    unit: &str,
    span: &str,
    values: &[Option<f64>],
) -> Markup {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let max = known.iter().copied().fold(0.0_f64, f64::max);
    let last = known.last().copied();
    let scale = if max > 0.0 { max } else { 1.0 };
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let v = (*v)?;
            let x = i as f64 * step;
            let y = HEIGHT - v / scale * (HEIGHT - 4.0) - 2.0;
            Some(format!("{x:.1},{y:.1}"))
        })
        .collect();
    let summary = match last {
        Some(v) => format!("{title}: now {v:.1} {unit}, highest {max:.1} {unit}, {span}"),
        None => format!("{title}: no rate yet (the first two samples are 10 s apart)"),
    };
    html! {
        figure.chart {
            svg id=(id) role="img" aria-label=(summary) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                preserveAspectRatio="none" width="100%" height=(HEIGHT) {
                title { (summary) }
                line x1="0" y1=(HEIGHT - 1.0) x2=(WIDTH) y2=(HEIGHT - 1.0) stroke="#d9dde5" stroke-width="1" {}
                @if points.len() > 1 {
                    polyline points=(points.join(" ")) fill="none" stroke="#1f5fbf" stroke-width="2"
                        vector-effect="non-scaling-stroke" {}
                } @else if let Some(p) = points.first() {
                    @let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                    circle cx=(x) cy=(y) r="3" fill="#1f5fbf" {}
                }
            }
            figcaption.small.muted {
                (title) ": "
                @match last { Some(v) => { strong { (format!("{v:.1}")) } " " (unit) " now, highest " (format!("{max:.1}")) }, None => "no rate yet" }
                " · " (span)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_becomes_a_scaled_polyline() {
        let svg = line(
            "c",
            "Sessions",
            "/min",
            "last 1 min",
            &[None, Some(0.0), Some(10.0)],
        )
        .into_string();
        assert!(
            svg.contains("<polyline points=\"180.0,78.0 360.0,2.0\""),
            "{svg}"
        );
        assert!(svg.contains("now 10.0 /min"), "{svg}");
    }

    #[test]
    fn an_empty_series_says_so() {
        let svg = line("c", "Messages", "/min", "", &[None]).into_string();
        assert!(svg.contains("no rate yet"));
        assert!(!svg.contains("polyline"));
    }
}
