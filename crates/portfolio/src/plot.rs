//! An SVG chart of the efficient frontier, built as a plain string.

use std::fmt::Write as _;

use crate::{Frontier, FrontierPoint};

/// What to draw besides the frontier.
#[derive(Debug, Clone, Copy)]
pub struct PlotInput<'a> {
    /// The frontier (its minimum-volatility portfolio is marked too).
    pub frontier: &'a Frontier,
    /// The chosen portfolio: label and position.
    pub chosen: Option<(&'a str, FrontierPoint)>,
    /// Asset names, parallel to `asset_points`.
    pub asset_names: &'a [String],
    /// Each asset alone: `(√Σ_ii, μ_i)`.
    pub asset_points: &'a [FrontierPoint],
    /// Chart title.
    pub title: &'a str,
}

const W: f64 = 800.0;
const H: f64 = 560.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;

/// Renders the chart: volatility on x, expected return on y, both as
/// percentages with gridlines; the frontier as a line, assets as grey dots
/// with their names, the minimum-volatility point as a blue diamond and the
/// chosen portfolio as a red star, and a legend.
pub fn frontier_svg(input: &PlotInput<'_>) -> String {
    let mut all: Vec<FrontierPoint> = input.frontier.points.clone();
    all.extend_from_slice(input.asset_points);
    if let Some((_, p)) = input.chosen {
        all.push(p);
    }
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let x0 = 0.0f64;
    let mut x1 = f64::MIN;
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for p in &all {
        x1 = x1.max(finite(p.volatility));
        y0 = y0.min(finite(p.expected_return));
        y1 = y1.max(finite(p.expected_return));
    }
    y0 = y0.min(0.0);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let ((x0, x1), xt) = nice_ticks(x0, x1 * 1.05);
    let ((y0, y1), yt) = nice_ticks(y0, y1 + 0.05 * (y1 - y0));
    let sx = move |v: f64| LEFT + (finite(v) - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let sy = move |v: f64| H - BOTTOM - (finite(v) - y0) / (y1 - y0) * (H - TOP - BOTTOM);

    let mut s = String::with_capacity(16 * 1024);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        W / 2.0,
        escape(input.title)
    );
    // Grid and ticks.
    for &t in &xt {
        let x = sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{:.0}%</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0,
            t * 100.0
        );
    }
    for &t in &yt {
        let y = sy(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}%</text>"##,
            W - RIGHT,
            LEFT - 8.0,
            y + 4.0,
            t * 100.0
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">Volatility (annualised)</text>"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 25.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">Expected return (annualised)</text>"#,
        TOP + (H - TOP - BOTTOM) / 2.0
    );
    // Frontier.
    let path: Vec<String> = input
        .frontier
        .points
        .iter()
        .map(|p| format!("{:.2},{:.2}", sx(p.volatility), sy(p.expected_return)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
    // Assets.
    for (name, p) in input.asset_names.iter().zip(input.asset_points) {
        let (x, y) = (sx(p.volatility), sy(p.expected_return));
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.2}" cy="{y:.2}" r="3.5" fill="#888"/><text x="{:.2}" y="{:.2}" fill="#555" font-size="10">{}</text>"##,
            x + 5.0,
            y - 4.0,
            escape(name)
        );
    }
    // Minimum volatility.
    let mv = &input.frontier.min_volatility;
    let (x, y) = (sx(mv.volatility), sy(mv.expected_return));
    let _ = writeln!(
        s,
        r##"<path d="M {x:.2} {:.2} L {:.2} {y:.2} L {x:.2} {:.2} L {:.2} {y:.2} Z" fill="#1f77b4"/>"##,
        y - 7.0,
        x + 7.0,
        y + 7.0,
        x - 7.0
    );
    // Chosen portfolio.
    if let Some((_, p)) = input.chosen {
        let (cx, cy) = (sx(p.volatility), sy(p.expected_return));
        let _ = writeln!(s, r##"<path d="{}" fill="#d62728"/>"##, star(cx, cy, 9.0));
    }
    // Legend.
    let lx = LEFT + 12.0;
    let mut ly = TOP + 16.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="#1f77b4" stroke-width="2"/><text x="{}" y="{}">efficient frontier</text>"##,
        lx + 18.0,
        lx + 24.0,
        ly + 4.0
    );
    ly += 18.0;
    let _ = writeln!(
        s,
        r##"<path d="M {:.1} {:.1} L {:.1} {ly} L {:.1} {:.1} L {lx} {ly} Z" fill="#1f77b4"/><text x="{}" y="{}">minimum volatility ({:.1}%, {:.1}%)</text>"##,
        lx + 6.0,
        ly - 6.0,
        lx + 12.0,
        lx + 6.0,
        ly + 6.0,
        lx + 24.0,
        ly + 4.0,
        mv.volatility * 100.0,
        mv.expected_return * 100.0
    );
    if let Some((label, p)) = input.chosen {
        ly += 18.0;
        let _ = writeln!(
            s,
            r##"<path d="{}" fill="#d62728"/><text x="{}" y="{}">{} ({:.1}%, {:.1}%)</text>"##,
            star(lx + 6.0, ly, 7.0),
            lx + 24.0,
            ly + 4.0,
            escape(label),
            p.volatility * 100.0,
            p.expected_return * 100.0
        );
    }
    if !input.asset_points.is_empty() {
        ly += 18.0;
        let _ = writeln!(
            s,
            r##"<circle cx="{}" cy="{ly}" r="3.5" fill="#888"/><text x="{}" y="{}">single assets</text>"##,
            lx + 6.0,
            lx + 24.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn star(cx: f64, cy: f64, r: f64) -> String {
    let mut d = String::new();
    for i in 0..10 {
        let rr = if i % 2 == 0 { r } else { r * 0.45 };
        let a = std::f64::consts::PI * (i as f64) / 5.0 - std::f64::consts::FRAC_PI_2;
        let _ = write!(
            d,
            "{} {:.2} {:.2} ",
            if i == 0 { "M" } else { "L" },
            cx + rr * a.cos(),
            cy + rr * a.sin()
        );
    }
    d.push('Z');
    d
}

/// Axis range widened to round steps (1, 2 or 5 × 10^k), and the ticks.
fn nice_ticks(lo: f64, hi: f64) -> ((f64, f64), Vec<f64>) {
    let span = (hi - lo).max(1e-12);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let count = ((end - start) / step).round() as usize;
    let ticks = (0..=count).map(|i| start + i as f64 * step).collect();
    ((start, end), ticks)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
