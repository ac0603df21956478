//! Charts as hand-written inline SVG. plotters' SVG backend needs a font backend (fontconfig/freetype
//! or a bundled TTF) to lay out text; SVG text is laid out by the browser anyway, so writing the few
//! shapes here keeps the build free of system libraries and the output small. Every piece of text is
//! XML-escaped here because the HTML template inserts these strings unescaped.

use std::fmt::Write as _;

use gauntlet_measure::Bin;
use gauntlet_results::PowerTrace;

use crate::fmt::xml;

const W: f64 = 560.0;
const H: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 46.0;

/// A plot area with linear axes; shapes are appended to `body` in data coordinates via `x`/`y`.
struct Frame {
    title: String,
    x_label: String,
    y_label: String,
    x: (f64, f64),
    y: (f64, f64),
    body: String,
}

impl Frame {
    fn new(title: &str, x_label: &str, y_label: &str, x: (f64, f64), y: (f64, f64)) -> Self {
        Frame {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            x: widen(x),
            y: widen(y),
            body: String::new(),
        }
    }

    fn x(&self, v: f64) -> f64 {
        LEFT + (v - self.x.0) / (self.x.1 - self.x.0) * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        H - BOTTOM - (v - self.y.0) / (self.y.1 - self.y.0) * (H - TOP - BOTTOM)
    }

    fn finish(self) -> String {
        let mut s = String::with_capacity(self.body.len() + 2048);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="18" class="chart-title">{t}</text>"#,
            t = xml(&self.title)
        );
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        for (t, label) in ticks(self.y.0, self.y.1) {
            let py = self.y(t);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                x0 - 4.0,
                py + 4.0,
                label
            );
        }
        for (t, label) in ticks(self.x.0, self.x.1) {
            let px = self.x(t);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{y1}"/><text class="tick" x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                y1 + 14.0,
                label
            );
        }
        let _ = write!(
            s,
            r#"<rect class="frame" x="{x0}" y="{y0}" width="{}" height="{}"/>{}<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis-label" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text></svg>"#,
            x1 - x0,
            y1 - y0,
            self.body,
            (x0 + x1) / 2.0,
            H - 8.0,
            xml(&self.x_label),
            (y0 + y1) / 2.0,
            xml(&self.y_label)
        );
        s
    }
}

/// A degenerate range (one value) gets room around it so points are not drawn on the frame.
fn widen((lo, hi): (f64, f64)) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

/// About five round tick values (1, 2 or 5 × 10ⁿ apart) inside [lo, hi], with their labels.
fn ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    // As many decimals as the step needs, so neighbouring ticks never read the same.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            (v, tick_label(v, decimals))
        })
        .collect()
}

fn tick_label(v: f64, decimals: usize) -> String {
    let a = v.abs();
    if a >= 1e6 && decimals == 0 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 && decimals == 0 {
        format!("{:.0}k", v / 1e3)
    } else if a != 0.0 && a < 1e-3 {
        format!("{v:.0e}")
    } else {
        format!("{v:.decimals$}")
    }
}

/// A labelled vertical line, e.g. the p50 or p99 on a latency chart.
pub(crate) struct Marker {
    pub label: String,
    pub x: f64,
}

pub(crate) fn histogram(title: &str, x_label: &str, bins: &[Bin], markers: &[Marker]) -> String {
    let lo = bins.first().map_or(0.0, |b| b.lo);
    let hi = bins.last().map_or(1.0, |b| b.hi);
    let top = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let mut f = Frame::new(title, x_label, "samples", (lo, hi), (0.0, top * 1.05));
    let base = f.y(0.0);
    let mut body = String::new();
    for b in bins {
        let (x0, x1) = (f.x(b.lo), f.x(b.hi).max(f.x(b.lo) + 1.0));
        let y = f.y(b.count as f64);
        let _ = write!(
            body,
            r#"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"/>"#,
            x1 - x0,
            base - y
        );
    }
    markers_into(&f, &mut body, markers);
    f.body = body;
    f.finish()
}

pub(crate) fn cdf(title: &str, x_label: &str, points: &[(f64, f64)], markers: &[Marker]) -> String {
    let lo = points.first().map_or(0.0, |p| p.0);
    let hi = points.last().map_or(1.0, |p| p.0);
    line(
        title,
        (x_label, "fraction of inferences ≤ x"),
        points,
        ((lo, hi), (0.0, 1.0)),
        markers,
    )
}

/// A polyline through `points` on the given axes: `labels` = (x, y), `ranges` = (x, y).
pub(crate) fn line(
    title: &str,
    labels: (&str, &str),
    points: &[(f64, f64)],
    ranges: ((f64, f64), (f64, f64)),
    markers: &[Marker],
) -> String {
    let mut f = Frame::new(title, labels.0, labels.1, ranges.0, ranges.1);
    let mut path = String::new();
    for (i, &(x, p)) in points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            f.x(x),
            f.y(p)
        );
    }
    let mut body = format!(r#"<path class="line" d="{path}"/>"#);
    markers_into(&f, &mut body, markers);
    f.body = body;
    f.finish()
}

/// Dots at `points` with the y = x diagonal drawn: predicted against actual.
pub(crate) fn scatter_vs_diagonal(
    title: &str,
    labels: (&str, &str),
    points: &[(f64, f64)],
) -> String {
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, y)| {
            (lo.min(x).min(y), hi.max(x).max(y))
        });
    let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
    let mut f = Frame::new(title, labels.0, labels.1, (lo, hi), (lo, hi));
    let mut body = format!(
        r#"<line class="marker" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
        f.x(lo),
        f.y(lo),
        f.x(hi),
        f.y(hi)
    );
    for &(x, y) in points {
        let _ = write!(
            body,
            r#"<circle class="dot" cx="{:.1}" cy="{:.1}" r="1.5"/>"#,
            f.x(x),
            f.y(y)
        );
    }
    f.body = body;
    f.finish()
}

fn markers_into(f: &Frame, body: &mut String, markers: &[Marker]) {
    for m in markers.iter().filter(|m| m.x >= f.x.0 && m.x <= f.x.1) {
        let px = f.x(m.x);
        let _ = write!(
            body,
            r#"<line class="marker" x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}"/><text class="marker-label" x="{:.1}" y="{:.1}">{}</text>"#,
            H - BOTTOM,
            px + 3.0,
            TOP + 10.0,
            xml(&m.label)
        );
    }
}

/// One build on a trade-off chart.
pub(crate) struct Point {
    pub label: String,
    pub x: f64,
    pub y: f64,
    /// Drawn hatched: a figure from an emulator or a simulated sensor.
    pub not_measured: bool,
    /// Points of one group (a runtime) share a shape; a legend names the groups when there are
    /// several.
    pub group: String,
}

/// One shape per group, in the order groups first appear: circle, square, diamond, triangle.
const SHAPES: [&str; 4] = ["●", "■", "◆", "▲"];

fn shape(index: usize, class: &str, px: f64, py: f64, r: f64, title: &str) -> String {
    let title = format!("<title>{title}</title>");
    match index % SHAPES.len() {
        0 => {
            format!(r#"<circle class="{class}" cx="{px:.1}" cy="{py:.1}" r="{r}">{title}</circle>"#)
        }
        1 => format!(
            r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}">{title}</rect>"#,
            px - r,
            py - r,
            2.0 * r,
            2.0 * r
        ),
        2 => format!(
            r#"<polygon class="{class}" points="{px:.1},{:.1} {:.1},{py:.1} {px:.1},{:.1} {:.1},{py:.1}">{title}</polygon>"#,
            py - 1.3 * r,
            px + 1.3 * r,
            py + 1.3 * r,
            px - 1.3 * r
        ),
        _ => format!(
            r#"<polygon class="{class}" points="{px:.1},{:.1} {:.1},{:.1} {:.1},{:.1}">{title}</polygon>"#,
            py - 1.3 * r,
            px + 1.2 * r,
            py + r,
            px - 1.2 * r,
            py + r
        ),
    }
}

/// Which points no other point beats: lower or equal `x` with higher or equal `y`, one strictly.
pub(crate) fn pareto_optimal(points: &[Point]) -> Vec<bool> {
    points
        .iter()
        .map(|p| {
            !points
                .iter()
                .any(|q| q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y))
        })
        .collect()
}

/// Point labels placed greedily so they neither overlap one another nor run past the plot's
/// right edge: a label goes right of its point unless it would not fit, then left; when it would
/// cover an earlier label it moves up or down a line at a time.
#[derive(Default)]
struct LabelPlacer {
    /// Boxes (x0, x1, y0, y1) of the labels placed so far.
    placed: Vec<(f64, f64, f64, f64)>,
}

impl LabelPlacer {
    /// The 10 px label font is about this wide per character.
    const CHAR_W: f64 = 5.6;
    const LINE: f64 = 11.0;

    fn place(&mut self, label: &str, px: f64, py: f64) -> (f64, f64, &'static str) {
        let width = label.chars().count() as f64 * Self::CHAR_W;
        let (x, anchor, x0) = if px + 8.0 + width <= W - RIGHT {
            (px + 8.0, "start", px + 8.0)
        } else {
            (px - 8.0, "end", px - 8.0 - width)
        };
        let free = |y: f64, placed: &[(f64, f64, f64, f64)]| {
            let (y0, y1) = (y - 9.0, y + 2.0);
            y0 >= TOP
                && y1 <= H - BOTTOM
                && placed
                    .iter()
                    .all(|&(a0, a1, b0, b1)| x0 + width <= a0 || a1 <= x0 || y1 <= b0 || b1 <= y0)
        };
        let y = (0..12)
            .map(|k| {
                let step = f64::from((k + 1) / 2) * if k % 2 == 1 { 1.0 } else { -1.0 };
                py - 6.0 + step * Self::LINE
            })
            .find(|&y| free(y, &self.placed))
            .unwrap_or(py - 6.0);
        self.placed.push((x0, x0 + width, y - 9.0, y + 2.0));
        (x, y, anchor)
    }
}

/// A scatter of builds with the Pareto-optimal ones highlighted and joined by the frontier.
pub(crate) fn pareto(title: &str, x_label: &str, y_label: &str, points: &[Point]) -> String {
    let range = |v: &dyn Fn(&Point) -> f64| {
        let lo = points.iter().map(v).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(v).fold(f64::NEG_INFINITY, f64::max);
        let pad = (hi - lo) * 0.12;
        (lo - pad, hi + pad)
    };
    let mut f = Frame::new(
        title,
        x_label,
        y_label,
        range(&|p: &Point| p.x),
        range(&|p: &Point| p.y),
    );
    let optimal = pareto_optimal(points);
    let mut frontier: Vec<&Point> = points
        .iter()
        .zip(&optimal)
        .filter(|(_, o)| **o)
        .map(|(p, _)| p)
        .collect();
    frontier.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut body = String::new();
    if frontier.len() > 1 {
        let pts: Vec<String> = frontier
            .iter()
            .map(|p| format!("{:.1},{:.1}", f.x(p.x), f.y(p.y)))
            .collect();
        let _ = write!(
            body,
            r#"<polyline class="frontier" points="{}"/>"#,
            pts.join(" ")
        );
    }
    let mut labels = LabelPlacer::default();
    let mut groups: Vec<&str> = Vec::new();
    for p in points {
        if !groups.contains(&p.group.as_str()) {
            groups.push(&p.group);
        }
    }
    for (p, opt) in points.iter().zip(&optimal) {
        let class = match (opt, p.not_measured) {
            (true, false) => "pt optimal",
            (true, true) => "pt optimal not-measured",
            (false, false) => "pt",
            (false, true) => "pt not-measured",
        };
        let (px, py) = (f.x(p.x), f.y(p.y));
        let group = groups.iter().position(|g| *g == p.group).unwrap_or(0);
        let title = format!(
            "{}{}",
            xml(&p.label),
            if *opt { " (Pareto-optimal)" } else { "" }
        );
        body.push_str(&shape(
            group,
            class,
            px,
            py,
            if *opt { 6.0 } else { 4.0 },
            &title,
        ));
        let (x, y, anchor) = labels.place(&p.label, px, py);
        let _ = write!(
            body,
            r#"<text class="pt-label" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
            xml(&p.label)
        );
    }
    if groups.len() > 1 {
        let legend: Vec<String> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| format!("{} {}", SHAPES[i % SHAPES.len()], xml(g)))
            .collect();
        let _ = write!(
            body,
            r#"<text class="legend" x="{:.1}" y="18" text-anchor="end">{}</text>"#,
            W - RIGHT,
            legend.join("   ")
        );
    }
    f.body = body;
    f.finish()
}

/// At most this many buckets of a power trace are drawn; longer traces are merged bucket-wise.
pub(crate) const MAX_TRACE_POINTS: usize = 1_000;

/// The power trace as a min–max band with the mean line, measurement windows shaded and labelled.
pub(crate) fn power(title: &str, trace: &PowerTrace) -> String {
    let n = trace
        .t_s
        .len()
        .min(trace.watts_mean.len())
        .min(trace.watts_min.len())
        .min(trace.watts_max.len());
    let step = n.div_ceil(MAX_TRACE_POINTS).max(1);
    let buckets: Vec<(f64, f64, f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| {
            let j = (i + step).min(n);
            let mean = trace.watts_mean[i..j].iter().sum::<f64>() / (j - i) as f64;
            let min = trace.watts_min[i..j]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let max = trace.watts_max[i..j]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            (trace.t_s[i], mean, min, max)
        })
        .collect();
    let t_end = trace
        .t_s
        .last()
        .copied()
        .into_iter()
        .chain(trace.windows.iter().map(|w| w.end_s))
        .fold(0.0, f64::max);
    let w_lo = buckets.iter().map(|b| b.2).fold(f64::INFINITY, f64::min);
    let w_hi = buckets
        .iter()
        .map(|b| b.3)
        .fold(f64::NEG_INFINITY, f64::max);
    let y = if w_lo.is_finite() {
        (w_lo.min(0.0), w_hi * 1.1)
    } else {
        (0.0, 1.0)
    };
    let mut f = Frame::new(title, "time (s)", "power (W)", (0.0, t_end), y);
    let mut body = String::new();
    for (i, w) in trace.windows.iter().enumerate() {
        let (x0, x1) = (f.x(w.start_s), f.x(w.end_s));
        let _ = write!(
            body,
            r#"<rect class="window w{}" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}"><title>{}</title></rect><text class="window-label" x="{:.1}" y="{:.1}">{}</text>"#,
            i % 2,
            (x1 - x0).max(1.0),
            H - TOP - BOTTOM,
            xml(&format!("{}: {:.1}–{:.1} s", w.label, w.start_s, w.end_s)),
            x0 + 3.0,
            TOP + 12.0 + (i % 3) as f64 * 11.0,
            xml(&w.label)
        );
    }
    if !buckets.is_empty() {
        let upper: Vec<String> = buckets
            .iter()
            .map(|b| format!("{:.1},{:.1}", f.x(b.0), f.y(b.3)))
            .collect();
        let lower: Vec<String> = buckets
            .iter()
            .rev()
            .map(|b| format!("{:.1},{:.1}", f.x(b.0), f.y(b.2)))
            .collect();
        let mean: Vec<String> = buckets
            .iter()
            .map(|b| format!("{:.1},{:.1}", f.x(b.0), f.y(b.1)))
            .collect();
        let _ = write!(
            body,
            r#"<polygon class="band" points="{} {}"/><polyline class="line" points="{}"/>"#,
            upper.join(" "),
            lower.join(" "),
            mean.join(" ")
        );
    }
    f.body = body;
    f.finish()
}

/// Reference and new samples over shared bins, as shares of each sample: the reference filled,
/// the new sample outlined on top.
pub(crate) fn paired_histogram(
    title: &str,
    x_label: &str,
    bins: &[gauntlet_measure::drift::PairedBin],
) -> String {
    let lo = bins.first().map_or(0.0, |b| b.lo);
    let hi = bins.last().map_or(1.0, |b| b.hi);
    let total = |f: fn(&gauntlet_measure::drift::PairedBin) -> u64| {
        bins.iter().map(f).sum::<u64>().max(1) as f64
    };
    let (nr, nn) = (total(|b| b.reference), total(|b| b.new));
    let top = bins
        .iter()
        .map(|b| (b.reference as f64 / nr).max(b.new as f64 / nn))
        .fold(0.01, f64::max);
    let mut f = Frame::new(
        title,
        x_label,
        "share of windows",
        (lo, hi),
        (0.0, top * 1.1),
    );
    let base = f.y(0.0);
    let mut body = String::new();
    for b in bins {
        let (x0, x1) = (f.x(b.lo), f.x(b.hi).max(f.x(b.lo) + 1.0));
        let yr = f.y(b.reference as f64 / nr);
        let yn = f.y(b.new as f64 / nn);
        let _ = write!(
            body,
            r#"<rect class="bar" x="{x0:.1}" y="{yr:.1}" width="{:.1}" height="{:.1}"/><rect class="bar-new" x="{x0:.1}" y="{yn:.1}" width="{:.1}" height="{:.1}"/>"#,
            x1 - x0,
            base - yr,
            x1 - x0,
            base - yn
        );
    }
    let _ = write!(
        body,
        r#"<rect class="bar" x="{:.1}" y="{TOP}" width="10" height="8"/><text class="legend" x="{:.1}" y="{:.1}">reference</text><rect class="bar-new" x="{:.1}" y="{:.1}" width="10" height="8"/><text class="legend" x="{:.1}" y="{:.1}">new</text>"#,
        W - RIGHT - 90.0,
        W - RIGHT - 76.0,
        TOP + 8.0,
        W - RIGHT - 90.0,
        TOP + 12.0,
        W - RIGHT - 76.0,
        TOP + 20.0
    );
    f.body = body;
    f.finish()
}

/// One horizontal bar per subject (e.g. each feature's PSI), with a dashed line at the gate's
/// threshold; bars beyond it are drawn in the failing colour.
pub(crate) fn drift_bars(title: &str, bars: &[(String, f64)], threshold: Option<f64>) -> String {
    let row = 18.0;
    let label_w = 170.0;
    let height = TOP + row * bars.len() as f64 + 30.0;
    let top = bars
        .iter()
        .map(|b| b.1)
        .chain(threshold)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let x = |v: f64| label_w + v / top * (W - label_w - RIGHT - 40.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{t}"><title>{t}</title><text x="8" y="18" class="chart-title">{t}</text>"#,
        t = xml(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = TOP + row * i as f64;
        let over = threshold.is_some_and(|t| *v > t);
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="{}" x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}"/><text class="tick" x="{:.1}" y="{:.1}">{}</text>"#,
            label_w - 6.0,
            y + 12.0,
            xml(label),
            if over { "bar-over" } else { "bar" },
            y + 3.0,
            (x(*v) - label_w).max(1.0),
            row - 6.0,
            x(*v) + 4.0,
            y + 12.0,
            tick_label(*v, 3)
        );
    }
    if let Some(t) = threshold {
        let _ = write!(
            s,
            r#"<line class="marker" x1="{:.1}" y1="{TOP}" x2="{:.1}" y2="{:.1}"/><text class="marker-label" x="{:.1}" y="{:.1}">gate {}</text>"#,
            x(t),
            x(t),
            height - 24.0,
            x(t) + 3.0,
            height - 12.0,
            tick_label(t, 3)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(label: &str, x: f64, y: f64) -> Point {
        Point {
            label: label.into(),
            x,
            y,
            not_measured: false,
            group: "tract".into(),
        }
    }

    #[test]
    fn pareto_keeps_only_undominated_points() {
        let pts = [
            pt("fast", 100.0, 0.90),
            pt("accurate", 400.0, 0.95),
            pt("worse", 500.0, 0.93),
            pt("tie-slower", 100.0, 0.89),
        ];
        assert_eq!(pareto_optimal(&pts), [true, true, false, false]);
        let svg = pareto("t", "x", "y", &pts);
        assert_eq!(svg.matches("class=\"pt optimal\"").count(), 2);
        assert_eq!(svg.matches("<polyline class=\"frontier\"").count(), 1);
        assert!(
            !svg.contains("class=\"legend\""),
            "one group needs no legend"
        );
    }

    #[test]
    fn each_runtime_gets_its_shape_and_a_legend() {
        let mut ort = pt("fp32@onnxruntime", 30.0, 0.97);
        ort.group = "onnxruntime".into();
        let pts = [pt("fp32@tract", 50.0, 0.97), ort];
        let svg = pareto("t", "x", "y", &pts);
        assert_eq!(svg.matches("<circle class=").count(), 1, "{svg}");
        assert_eq!(svg.matches("<rect class=\"pt").count(), 1, "{svg}");
        assert!(svg.contains(">● tract   ■ onnxruntime</text>"), "{svg}");
    }

    #[test]
    fn point_labels_neither_overlap_nor_leave_the_plot() {
        // Three builds at almost the same place, one at the right edge.
        let pts = [
            pt("cwru_cnn:int8_qdq@tract", 50.0, 97.3),
            pt("cwru_cnn:int8_qop@onnxruntime", 50.5, 97.4),
            pt("cwru_cnn:fp32@onnxruntime", 51.0, 97.3),
            pt("cwru_cnn:fp16@tract", 3700.0, 97.9),
        ];
        let svg = pareto("t", "x", "y", &pts);
        let boxes: Vec<(f64, f64, f64)> = svg
            .split("<text class=\"pt-label\" ")
            .skip(1)
            .map(|t| {
                let attr = |name: &str| -> f64 {
                    let at = t.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    t[at..at + t[at..].find('"').unwrap()].parse().unwrap()
                };
                let text = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                let width = text.chars().count() as f64 * LabelPlacer::CHAR_W;
                let x = attr("x");
                let x0 = if t.contains("text-anchor=\"end\"") {
                    x - width
                } else {
                    x
                };
                assert!(
                    x0 >= 0.0 && x0 + width <= W - RIGHT,
                    "{text} leaves the plot"
                );
                (x0, x0 + width, attr("y"))
            })
            .collect();
        assert_eq!(boxes.len(), 4);
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart = a.1 <= b.0 || b.1 <= a.0 || (a.2 - b.2).abs() >= LabelPlacer::LINE;
                assert!(apart, "labels overlap: {a:?} {b:?}");
            }
        }
    }

    #[test]
    fn every_label_is_escaped() {
        let hostile = "<script>alert(1)</script>";
        let svg = pareto(hostile, hostile, hostile, &[pt(hostile, 1.0, 1.0)]);
        assert!(!svg.contains("<script"));
        assert!(svg.contains("&lt;script&gt;"));
        let h = histogram(
            hostile,
            "x",
            &[Bin {
                lo: 1.0,
                hi: 2.0,
                count: 3,
            }],
            &[Marker {
                label: hostile.into(),
                x: 1.5,
            }],
        );
        assert!(!h.contains("<script"));
    }

    #[test]
    fn ticks_are_round_inside_and_distinct() {
        let labels = |lo, hi| {
            ticks(lo, hi)
                .into_iter()
                .map(|(_, l)| l)
                .collect::<Vec<_>>()
        };
        assert_eq!(labels(0.0, 1.0), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(labels(91.8, 94.2), ["92.0", "92.5", "93.0", "93.5", "94.0"]);
        assert_eq!(labels(0.0, 30_000.0), ["0", "10k", "20k", "30k"]);
        let t = ticks(123.0, 987.0);
        assert!(t.iter().all(|(v, _)| (123.0..=987.0).contains(v)) && t.len() >= 4);
    }

    #[test]
    fn long_power_traces_are_bucketed() {
        let n = 10 * MAX_TRACE_POINTS;
        let trace = PowerTrace {
            sensor: "s".into(),
            source: gauntlet_results::Source::Measured,
            t_s: (0..n).map(|i| i as f64).collect(),
            watts_mean: vec![1.0; n],
            watts_min: vec![0.5; n],
            watts_max: vec![1.5; n],
            windows: vec![],
            sample_hz: 1.0,
            samples: n,
            late_fraction: 0.0,
        };
        let svg = power("p", &trace);
        let mean = svg
            .split("class=\"line\" points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(mean.split(' ').count(), MAX_TRACE_POINTS);
    }
}
