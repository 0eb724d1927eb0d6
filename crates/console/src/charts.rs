//! Small SVG charts rendered on the server: paired bars (before and after)
//! and the efficient frontier with a portfolio's position on it. Colours
//! are presentation attributes (the pages' policy allows no inline style).

use std::fmt::Write;

use crate::diagram::esc;

const BEFORE: &str = "#9ca3af";
const AFTER: &str = "#4f46e5";
const INK: &str = "#111827";
const MUTED: &str = "#6b7280";

/// Horizontal paired bars: one row per label, the before value in grey
/// and the after value in colour, `fmt` writing the numbers.
pub fn paired_bars(
    title: &str,
    rows: &[(String, f64, f64)],
    fmt: impl Fn(f64) -> String,
) -> String {
    let label_w = 110.0;
    let bar_w = 300.0;
    let row_h = 30.0;
    let top = 34.0;
    let height = top + row_h * rows.len() as f64 + 30.0;
    let width = label_w + bar_w + 90.0;
    let max = rows
        .iter()
        .flat_map(|r| [r.1.abs(), r.2.abs()])
        .fold(0.0_f64, f64::max)
        .max(1e-12);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="{t}"><title>{t}</title><text x="0" y="16" font-size="13" font-weight="600" fill="{INK}">{t}</text>"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<rect x="{x:.0}" y="6" width="10" height="10" fill="{BEFORE}"/><text x="{tx:.0}" y="15" font-size="11" fill="{MUTED}">before</text><rect x="{x2:.0}" y="6" width="10" height="10" fill="{AFTER}"/><text x="{tx2:.0}" y="15" font-size="11" fill="{MUTED}">after</text>"#,
        x = width - 130.0,
        tx = width - 116.0,
        x2 = width - 66.0,
        tx2 = width - 52.0
    );
    for (i, (label, before, after)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let wb = before.abs() / max * bar_w;
        let wa = after.abs() / max * bar_w;
        let _ = write!(
            s,
            r#"<g class="bar-row" data-label="{l}"><text x="0" y="{ty:.1}" font-size="12" fill="{INK}">{l}</text><rect x="{label_w}" y="{y1:.1}" width="{wb:.1}" height="10" fill="{BEFORE}"><title>before {vb}</title></rect><rect x="{label_w}" y="{y2:.1}" width="{wa:.1}" height="10" fill="{AFTER}"><title>after {va}</title></rect><text x="{nx:.1}" y="{ty:.1}" font-size="11" fill="{MUTED}">{vb} → {va}</text></g>"#,
            l = esc(label),
            ty = y + 13.0,
            y1 = y + 2.0,
            y2 = y + 13.0,
            nx = label_w + wb.max(wa) + 6.0,
            vb = esc(&fmt(*before)),
            va = esc(&fmt(*after)),
        );
    }
    s.push_str("</svg>");
    s
}

/// A point marked on the frontier chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Marked<'a> {
    pub label: &'a str,
    pub volatility: f64,
    pub expected_return: f64,
    pub colour: &'a str,
}

/// The efficient frontier (volatility on x, expected return on y, both
/// in percent) with portfolios marked on it.
pub fn frontier(title: &str, points: &[(f64, f64)], marks: &[Marked<'_>]) -> String {
    let (w, h) = (520.0, 340.0);
    let (left, right, top, bottom) = (56.0, 16.0, 30.0, 40.0);
    let xs = points
        .iter()
        .map(|p| p.0)
        .chain(marks.iter().map(|m| m.volatility));
    let ys = points
        .iter()
        .map(|p| p.1)
        .chain(marks.iter().map(|m| m.expected_return));
    let (x0, x1) = bounds(xs);
    let (y0, y1) = bounds(ys);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let sy = |y: f64| h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart frontier" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><text x="0" y="16" font-size="13" font-weight="600" fill="{INK}">{t}</text>"#,
        t = esc(title)
    );
    // Axes with four ticks each.
    let _ = write!(
        s,
        r#"<line x1="{left}" y1="{yb}" x2="{xr}" y2="{yb}" stroke="{MUTED}"/><line x1="{left}" y1="{top}" x2="{left}" y2="{yb}" stroke="{MUTED}"/>"#,
        yb = h - bottom,
        xr = w - right
    );
    for k in 0..=4 {
        let fx = x0 + (x1 - x0) * k as f64 / 4.0;
        let fy = y0 + (y1 - y0) * k as f64 / 4.0;
        let _ = write!(
            s,
            r#"<text x="{tx:.1}" y="{ty:.1}" font-size="10" fill="{MUTED}" text-anchor="middle">{vx:.1}%</text><text x="{lx:.1}" y="{ly:.1}" font-size="10" fill="{MUTED}" text-anchor="end">{vy:.1}%</text>"#,
            tx = sx(fx),
            ty = h - bottom + 14.0,
            vx = fx * 100.0,
            lx = left - 4.0,
            ly = sy(fy) + 3.0,
            vy = fy * 100.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{cx:.1}" y="{by:.1}" font-size="11" fill="{MUTED}" text-anchor="middle">volatility (annual)</text><text x="12" y="{cy:.1}" font-size="11" fill="{MUTED}" transform="rotate(-90 12 {cy:.1})" text-anchor="middle">expected return</text>"#,
        cx = (left + w - right) / 2.0,
        by = h - 6.0,
        cy = (top + h - bottom) / 2.0
    );
    if points.len() >= 2 {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="frontier-line" points="{}" fill="none" stroke="{AFTER}" stroke-width="2"/>"#,
            path.join(" ")
        );
    }
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for m in marks {
        // A label that would sit on an earlier one moves below it.
        let (mx, my) = (sx(m.volatility), sy(m.expected_return));
        let mut ty = my + 4.0;
        while placed
            .iter()
            .any(|(px, py)| (px - mx).abs() < 60.0 && (py - ty).abs() < 12.0)
        {
            ty += 13.0;
        }
        placed.push((mx, ty));
        let _ = write!(
            s,
            r#"<g class="mark" data-label="{l}"><circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{c}"/><text x="{tx:.1}" y="{ty:.1}" font-size="11" fill="{INK}">{l}</text></g>"#,
            l = esc(m.label),
            x = sx(m.volatility),
            y = sy(m.expected_return),
            c = esc(m.colour),
            tx = mx + 8.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// A range around the values with a margin (never empty).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.005);
    (lo - pad, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_frontier_render_their_data() {
        let svg = paired_bars(
            "Weights",
            &[("MSFT".into(), 0.1, 0.4), ("KO <".into(), 0.5, 0.0)],
            |v| format!("{:.0}%", v * 100.0),
        );
        assert!(svg.contains(r#"data-label="MSFT""#) && svg.contains("10% → 40%"));
        assert!(svg.contains("KO &lt;"), "{svg}");
        // The longest bar is the full width.
        assert!(svg.contains(r#"width="300.0""#), "{svg}");
        let f = frontier(
            "Frontier",
            &[(0.1, 0.05), (0.2, 0.1), (0.3, 0.12)],
            &[Marked {
                label: "after",
                volatility: 0.2,
                expected_return: 0.1,
                colour: "#4f46e5",
            }],
        );
        assert!(f.contains("<polyline") && f.contains(r#"data-label="after""#));
        assert_eq!(bounds([].into_iter()), (0.0, 1.0));
        let (lo, hi) = bounds([0.1, 0.1].into_iter());
        assert!(lo < 0.1 && hi > 0.1);
    }
}
