//! A self-contained HTML page (no scripts, no external files): tables and line charts
//! drawn as inline SVG, with shaded windows (e.g. a fault) behind the lines.

use std::fmt::Write as _;

/// The shared escape, under the name the chart code has always used.
pub(crate) use super::escape as esc;

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub name: String,
    /// CSS colour.
    pub color: &'static str,
    /// (x, y) points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A shaded x range with a label.
#[derive(Debug, Clone)]
pub(crate) struct Shade {
    /// Start (x units).
    pub from: f64,
    /// End (x units).
    pub to: f64,
    /// Label drawn at the top.
    pub label: String,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chart {
    /// Title above the chart.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Lines.
    pub series: Vec<Series>,
    /// Shaded windows.
    pub shades: Vec<Shade>,
    /// Draw points as well as lines (for sparse data).
    pub markers: bool,
    /// Logarithmic y axis (decades), for latencies spanning µs to seconds.
    pub log_y: bool,
}

const W: f64 = 820.0;
const H: f64 = 260.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 30.0;
const B: f64 = 40.0;

/// A "nice" step for about `n` ticks over `span`.
fn step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    /// The chart as an SVG element.
    pub(crate) fn svg(&self) -> String {
        // On a log axis every value is drawn as its decade exponent (values below 1 as 1).
        let ty = |y: f64| if self.log_y { y.max(1.0).log10() } else { y };
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1, mut lo) = (f64::MAX, f64::MIN, 0.0f64, f64::MAX);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(ty(y));
            lo = lo.min(ty(y));
        }
        // A linear axis starts at zero; a log axis at the decade below the smallest value.
        let base = if self.log_y && lo < f64::MAX {
            lo.floor().min(y1.ceil() - 1.0).max(0.0)
        } else {
            0.0
        };
        for s in &self.shades {
            x0 = x0.min(s.from);
            x1 = x1.max(s.to);
        }
        if x0 > x1 {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 - x0 < 1e-9 {
            x1 = x0 + 1.0;
        }
        let ys = if self.log_y {
            1.0
        } else {
            step(if y1 > 0.0 { y1 } else { 1.0 }, 5.0)
        };
        let ymax = ((y1 / ys).ceil() * ys).max(base + ys);
        let px = |x: f64| L + (x - x0) / (x1 - x0) * (W - L - R);
        let py = |y: f64| H - B - (ty(y) - base) / (ymax - base) * (H - T - B);
        // Tick positions are in drawn units; their labels in data units.
        let pyt = |t: f64| H - B - (t - base) / (ymax - base) * (H - T - B);
        let label = |t: f64| {
            if self.log_y {
                num(10f64.powf(t))
            } else {
                num(t)
            }
        };
        let mut o = format!(
            "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\">",
            esc(&self.title)
        );
        for s in &self.shades {
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{T}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f4a3a3\" fill-opacity=\"0.35\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"shade\">{}</text>",
                px(s.from),
                (px(s.to) - px(s.from)).max(1.0),
                H - T - B,
                px(s.from) + 3.0,
                T + 12.0,
                esc(&s.label)
            );
        }
        let mut y = base;
        while y <= ymax + ys / 2.0 {
            let _ = write!(
                o,
                "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"yt\">{}</text>",
                W - R,
                pyt(y),
                pyt(y),
                L - 6.0,
                pyt(y) + 4.0,
                label(y)
            );
            y += ys;
        }
        let xs = step(x1 - x0, 8.0);
        let mut x = (x0 / xs).ceil() * xs;
        while x <= x1 + 1e-9 {
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xt\">{}</text>",
                px(x),
                H - B + 16.0,
                num(x)
            );
            x += xs;
        }
        let _ = write!(
            o,
            "<line x1=\"{L}\" x2=\"{L}\" y1=\"{T}\" y2=\"{:.1}\" class=\"axis\"/><line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
            H - B,
            W - R,
            H - B,
            H - B
        );
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xl\">{}</text><text x=\"14\" y=\"{:.1}\" class=\"yl\" transform=\"rotate(-90 14 {:.1})\">{}</text>",
            (L + W - R) / 2.0,
            H - 6.0,
            esc(&self.x_label),
            (T + H - B) / 2.0,
            (T + H - B) / 2.0,
            esc(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = write!(
                o,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"/>",
                s.color,
                path.join(" ")
            );
            if self.markers {
                for &(x, y) in &s.points {
                    let _ = write!(
                        o,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                        px(x),
                        py(y),
                        s.color
                    );
                }
            }
            let lx = L + 10.0 + 150.0 * i as f64;
            let _ = write!(
                o,
                "<rect x=\"{lx:.1}\" y=\"8\" width=\"12\" height=\"4\" fill=\"{}\"/><text x=\"{:.1}\" y=\"14\" class=\"lg\">{}</text>",
                s.color,
                lx + 16.0,
                esc(&s.name)
            );
        }
        o.push_str("</svg></figure>\n");
        o
    }
}

/// A whole page around `body` (already HTML).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:900px}}\
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}\
th{{background:#f3f3f3}}td:first-child{{white-space:nowrap}}td.fail{{background:#f8d0d0;font-weight:bold}}td.pass{{background:#d8f0d8}}\
figure{{margin:0 0 1.5em}}figcaption{{font-weight:600;margin-bottom:4px}}\
.grid{{stroke:#e5e5e5}}.axis{{stroke:#888}}.yt{{font-size:11px;text-anchor:end;fill:#555}}.xt{{font-size:11px;text-anchor:middle;fill:#555}}\
.xl,.yl{{font-size:12px;text-anchor:middle;fill:#333}}.lg{{font-size:12px;fill:#333}}.shade{{font-size:11px;fill:#a33}}\
.verdict{{font-size:1.3em;font-weight:bold}}.ok{{color:#1a7f37}}.bad{{color:#c62828}}\
</style></head><body><h1>{t}</h1>\n{body}</body></html>\n",
        t = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_scales_points_and_shades_into_the_frame() {
        let c = Chart {
            title: "p99 <µs>".into(),
            series: vec![Series {
                name: "p99".into(),
                color: "#c00",
                points: vec![(0.0, 10.0), (5.0, 2000.0), (10.0, 50.0)],
            }],
            shades: vec![Shade {
                from: 4.0,
                to: 6.0,
                label: "fault".into(),
            }],
            ..Default::default()
        };
        let svg = c.svg();
        assert!(svg.contains("p99 &lt;µs&gt;"));
        assert!(svg.contains("<rect x=\""), "{svg}");
        // Every polyline coordinate lies inside the viewBox.
        let pts = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for p in pts.split(' ') {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((L..=W - R).contains(&x) && (T..=H - B).contains(&y), "{p}");
        }
    }

    #[test]
    fn log_axis_labels_decades() {
        let c = Chart {
            series: vec![Series {
                name: "p99".into(),
                color: "#c00",
                points: vec![(0.0, 300.0), (1.0, 1_500_000.0)],
            }],
            log_y: true,
            ..Default::default()
        };
        let svg = c.svg();
        for tick in [">100<", ">1000<", ">10k<", ">1.0M<", ">10.0M<"] {
            assert!(svg.contains(tick), "{tick} missing");
        }
        // The axis starts at the decade below the smallest value.
        assert!(!svg.contains(">10<"));
    }

    #[test]
    fn empty_chart_still_renders() {
        assert!(Chart::default().svg().starts_with("<figure>"));
    }
}
