//! Charts drawn on the server as SVG (no client chart library, no script): grouped bars for a
//! few series over a handful of periods. Colours come from the stylesheet's classes, so the
//! chart follows the light and dark themes.

use std::fmt::Write;

/// One series: its name (the legend) and its stylesheet class (`chart-a`, `chart-b`).
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
}

/// Grouped bars: for each period (a label), one value per series.
pub struct Bars {
    /// Unique on the page: names the chart's title and description for screen readers.
    pub id: &'static str,
    pub title: String,
    pub series: Vec<Series>,
    pub periods: Vec<(String, Vec<i64>)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 220;
const LEFT: i64 = 36;
const BOTTOM: i64 = 28;
const TOP: i64 = 12;

impl Bars {
    /// The chart as an `<svg>` element, with a title and a text table fallback for screen
    /// readers (`<desc>`).
    pub fn svg(&self) -> String {
        let max = self.periods.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(0).max(1);
        // A round top for the scale: 1, 2, 5 × 10ⁿ.
        let mut top = 1;
        while top < max {
            top = match top.to_string().chars().next() {
                Some('1') => top * 2,
                Some('2') => top / 2 * 5,
                _ => top * 2,
            };
        }
        let plot_h = HEIGHT - BOTTOM - TOP;
        let plot_w = WIDTH - LEFT - 8;
        let groups = self.periods.len().max(1) as i64;
        let group_w = plot_w / groups;
        let bar_w = ((group_w - 6) / self.series.len().max(1) as i64).max(2);
        let y = |v: i64| TOP + plot_h - v * plot_h / top;
        let mut desc = String::new();
        for (label, values) in &self.periods {
            let parts: Vec<String> = self.series.iter().zip(values).map(|(s, v)| format!("{} {v}", s.name)).collect();
            let _ = write!(desc, "{label}: {}. ", parts.join(", "));
        }
        let id = self.id;
        let mut out = format!(
            r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" preserveAspectRatio="xMidYMid meet"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
            escape(&self.title),
            escape(desc.trim())
        );
        for tick in [0, top / 2, top] {
            let _ = write!(
                out,
                r#"<line class="chart-grid" x1="{LEFT}" x2="{}" y1="{y}" y2="{y}"/><text class="chart-axis" x="{}" y="{}" text-anchor="end">{tick}</text>"#,
                WIDTH - 8,
                LEFT - 4,
                y(tick) + 4,
                y = y(tick)
            );
        }
        for (n, (label, values)) in self.periods.iter().enumerate() {
            let x0 = LEFT + n as i64 * group_w + 3;
            for (i, (series, value)) in self.series.iter().zip(values).enumerate() {
                let _ = write!(
                    out,
                    r#"<rect class="{}" x="{}" y="{}" width="{bar_w}" height="{}"><title>{}: {} {value}</title></rect>"#,
                    series.class,
                    x0 + i as i64 * bar_w,
                    y(*value),
                    (value * plot_h / top).max(0),
                    escape(label),
                    series.name
                );
            }
            let _ = write!(
                out,
                r#"<text class="chart-axis" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                x0 + group_w / 2 - 3,
                HEIGHT - 8,
                escape(label)
            );
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_a_round_top_and_escape_labels() {
        let chart = Bars {
            id: "test-chart",
            title: "Opened & closed".into(),
            series: vec![Series { name: "opened", class: "chart-a" }, Series { name: "closed", class: "chart-b" }],
            periods: vec![("W1".into(), vec![3, 7]), ("<W2>".into(), vec![0, 4])],
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(">10</text>"), "7 rounds up to a top of 10: {svg}");
        assert!(svg.contains("Opened &amp; closed") && svg.contains("&lt;W2&gt;") && !svg.contains("<W2>"));
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("W1: opened 3, closed 7."));
    }
}
