//! SVG equity curves and drawdowns of a backtest, built as plain strings.
//!
//! The look is the frontier chart's (`ultracore_portfolio::frontier_svg`):
//! 800 × 560, sans-serif 12 px, a 16 px title, light grey gridlines in a
//! dark frame, ticks at round 1-2-5 steps. Strategies share the weekly
//! dates; each is one line in the Okabe–Ito palette, which stays
//! distinguishable under the common colour-vision deficiencies. Past eight
//! series the colours repeat with a dash pattern.
//!
//! Nothing here panics on odd input: empty inputs draw an empty frame with
//! a message, non-finite values (and, on a log axis, values ≤ 0) break the
//! line, and a series longer or shorter than the dates is cut to the
//! shorter of the two.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

/// One strategy's curve: `values[i]` belongs to `dates[i]`.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Legend label; any text, escaped for XML here.
    pub name: &'a str,
    /// One value per date; non-finite values are gaps.
    pub values: &'a [f64],
}

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub struct ChartInput<'a> {
    /// Chart title.
    pub title: &'a str,
    /// The common dates, ascending.
    pub dates: &'a [NaiveDate],
    /// The curves, in legend order.
    pub series: &'a [Series<'a>],
    /// The name of the series to draw thicker and on top (the first series
    /// of that name; none if no series has it).
    pub highlight: Option<&'a str>,
    /// Equity chart only: a logarithmic y axis.
    pub log_scale: bool,
}

const W: f64 = 800.0;
const H: f64 = 560.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;
const ROW: f64 = 18.0;
/// At most this many labelled ticks on an axis.
const MAX_TICKS: usize = 12;

/// Okabe and Ito (2008), ordered so the first few are the most distinct on
/// white; yellow, the faintest, comes last.
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];
/// Dash patterns for the second, third… round through the palette.
const DASHES: [&str; 4] = ["", "6 3", "2 3", "8 3 2 3"];

/// Renders the growth of 1: dates on x with year gridlines, wealth on y
/// (logarithmic when `log_scale`, with ticks at 1, 2, 5, 10… where they fit),
/// a darker reference line at 1, and a legend at the top left.
pub fn equity_svg(input: &ChartInput<'_>) -> String {
    render(input, Kind::Equity)
}

/// Renders drawdowns (fractions ≤ 0, as from [`drawdowns`]): y in percent
/// with 0 % at the top, the highlighted series shaded down to its curve,
/// and a legend at the bottom left. `log_scale` is ignored.
pub fn drawdown_svg(input: &ChartInput<'_>) -> String {
    render(input, Kind::Drawdown)
}

/// `wealth / running maximum − 1`. A non-finite value gives NaN and leaves
/// the running maximum alone; so does any value while that maximum is not
/// positive (a drawdown from a peak ≤ 0 means nothing).
pub fn drawdowns(wealth: &[f64]) -> Vec<f64> {
    let mut peak = f64::NEG_INFINITY;
    wealth
        .iter()
        .map(|&w| {
            if !w.is_finite() {
                return f64::NAN;
            }
            peak = peak.max(w);
            if peak > 0.0 {
                w / peak - 1.0
            } else {
                f64::NAN
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Equity,
    Drawdown,
}

fn render(input: &ChartInput<'_>, kind: Kind) -> String {
    let log = kind == Kind::Equity && input.log_scale;
    let plottable = move |v: f64| v.is_finite() && (!log || v > 0.0);
    let n = input.dates.len();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for series in input.series {
        for &v in series.values.iter().take(n) {
            if plottable(v) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    let y_title = match kind {
        Kind::Equity if log => "Wealth (growth of 1, log scale)",
        Kind::Equity => "Wealth (growth of 1)",
        Kind::Drawdown => "Drawdown from running peak",
    };
    let highlight = input
        .highlight
        .and_then(|h| input.series.iter().position(|s| s.name == h));

    let mut s = String::with_capacity(32 * 1024);
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
    let _ = writeln!(
        s,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">{y_title}</text>"#,
        TOP + (H - TOP - BOTTOM) / 2.0
    );

    let empty = if n == 0 {
        Some("No dates to plot")
    } else if input.series.is_empty() {
        Some("No series to plot")
    } else if lo > hi {
        Some(if log {
            "No positive finite values to plot"
        } else {
            "No finite values to plot"
        })
    } else {
        None
    };
    if let Some(message) = empty {
        frame(&mut s);
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14" fill="#666">{message}</text>"##,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            TOP + (H - TOP - BOTTOM) / 2.0
        );
        legend(&mut s, input.series, highlight, kind, &[]);
        s.push_str("</svg>\n");
        return s;
    }

    // x: days since the first date.
    let mut d0 = input.dates[0];
    let mut d1 = d0;
    for &d in input.dates {
        d0 = d0.min(d);
        d1 = d1.max(d);
    }
    let days = ((d1 - d0).num_days() as f64).max(1.0);
    let sx = move |d: NaiveDate| LEFT + (d - d0).num_days() as f64 / days * (W - LEFT - RIGHT);
    let y = match kind {
        Kind::Equity if log => log_axis(lo, hi),
        Kind::Equity => linear_axis(lo, hi),
        Kind::Drawdown => percent_axis(lo.min(0.0), hi.max(0.0)),
    };
    let sy = |v: f64| H - BOTTOM - y.frac(v) * (H - TOP - BOTTOM);

    // Grid and ticks.
    for t in date_ticks(d0, d1) {
        let x = sx(t.date);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0,
            t.label
        );
    }
    for t in &y.ticks {
        let yy = sy(t.value);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 8.0,
            yy + 4.0,
            t.label
        );
    }
    // Growth of 1 starts at 1: the line to beat.
    if kind == Kind::Equity && y.lo < 1.0 && 1.0 < y.hi {
        let yy = sy(1.0);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#999"/>"##,
            W - RIGHT
        );
    }
    frame(&mut s);

    // Curves, the highlighted one last so it lies on top.
    let mut drawn: Vec<Vec<(f64, f64)>> = Vec::new();
    let order = (0..input.series.len())
        .filter(|&i| Some(i) != highlight)
        .chain(highlight);
    for i in order {
        let series = &input.series[i];
        let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut open = false;
        for (&d, &v) in input.dates.iter().zip(series.values) {
            if !plottable(v) {
                open = false;
                continue;
            }
            if !open {
                segments.push(Vec::new());
                open = true;
            }
            if let Some(seg) = segments.last_mut() {
                seg.push((sx(d), sy(v)));
            }
        }
        if segments.is_empty() {
            continue;
        }
        drawn.extend(segments.iter().cloned());
        let style = Style::of(i, highlight);
        if kind == Kind::Drawdown && Some(i) == highlight {
            let _ = writeln!(
                s,
                r#"<path d="{}" fill="{}" fill-opacity="0.15" stroke="none"/>"#,
                area_data(&segments, sy(0.0)),
                style.colour
            );
        }
        let _ = writeln!(
            s,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="{}"{} stroke-linejoin="round" stroke-linecap="round"><title>{}</title></path>"#,
            line_data(&segments),
            style.colour,
            style.width,
            style.dash_attr(),
            escape(series.name)
        );
    }
    let drawn: Vec<(f64, f64)> = drawn.into_iter().flatten().collect();
    legend(&mut s, input.series, highlight, kind, &drawn);
    s.push_str("</svg>\n");
    s
}

fn frame(s: &mut String) {
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
}

/// Line colour, width and dashes of series `i`.
struct Style {
    colour: &'static str,
    width: f64,
    dash: &'static str,
}

impl Style {
    fn of(i: usize, highlight: Option<usize>) -> Style {
        Style {
            colour: PALETTE[i % PALETTE.len()],
            width: if Some(i) == highlight { 3.0 } else { 1.5 },
            dash: DASHES[(i / PALETTE.len()) % DASHES.len()],
        }
    }

    fn dash_attr(&self) -> String {
        if self.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, self.dash)
        }
    }
}

/// `M x,y L x,y x,y …` per segment, two decimals: later pairs after `L`
/// are implicit line-tos, which keeps a thousand weekly points short. A
/// lone point is drawn as a dot (zero-length line, round cap).
fn line_data(segments: &[Vec<(f64, f64)>]) -> String {
    let mut d = String::with_capacity(segments.iter().map(|g| g.len() * 14).sum());
    for seg in segments {
        for (j, &(x, y)) in seg.iter().enumerate() {
            let _ = match j {
                0 => write!(d, "M{x:.2},{y:.2}"),
                1 => write!(d, "L{x:.2},{y:.2}"),
                _ => write!(d, " {x:.2},{y:.2}"),
            };
        }
        if seg.len() == 1 {
            d.push_str("h0");
        }
    }
    d
}

/// Each segment closed up to the zero line `top`: the area of a drawdown.
fn area_data(segments: &[Vec<(f64, f64)>], top: f64) -> String {
    let mut d = String::new();
    for seg in segments.iter().filter(|g| g.len() > 1) {
        d.push_str(&line_data(std::slice::from_ref(seg)));
        let _ = write!(d, "V{top:.2}H{:.2}Z", seg[0].0);
    }
    d
}

/// The legend: one row per series, in input order, in columns if they do
/// not fit the plot's height. It goes in the corner covering the fewest
/// `drawn` points, ties going to the usual place: top left for equity
/// (curves rise to the right), bottom left for drawdowns (curves hang from
/// the top).
fn legend(
    s: &mut String,
    series: &[Series<'_>],
    highlight: Option<usize>,
    kind: Kind,
    drawn: &[(f64, f64)],
) {
    if series.is_empty() {
        return;
    }
    let per_col = (((H - TOP - BOTTOM - 36.0) / ROW).floor() as usize).max(1);
    let cols = series.len().div_ceil(per_col);
    let rows = series.len().min(per_col);
    let longest = series
        .iter()
        .map(|g| g.name.chars().count())
        .max()
        .unwrap_or(0);
    // About 7 px a character at 12 px sans-serif: a box, not typesetting.
    let col_w = 34.0 + 7.0 * longest as f64;
    let box_w = col_w * cols as f64 + 4.0;
    let box_h = ROW * rows as f64 + 8.0;
    let (left, right) = (LEFT + 10.0, W - RIGHT - 10.0 - box_w);
    let (top, bottom) = (TOP + 10.0, H - BOTTOM - 10.0 - box_h);
    let corners = match kind {
        Kind::Equity => [(left, top), (right, bottom), (left, bottom), (right, top)],
        Kind::Drawdown => [(left, bottom), (right, bottom), (left, top), (right, top)],
    };
    let covered = |&(x, y): &(f64, f64)| {
        drawn
            .iter()
            .filter(|p| p.0 >= x && p.0 <= x + box_w && p.1 >= y && p.1 <= y + box_h)
            .count()
    };
    // `min_by_key` keeps the first of equal minima: the preferred corner.
    let (bx, by) = corners
        .into_iter()
        .min_by_key(covered)
        .unwrap_or((left, top));
    let _ = writeln!(s, r#"<g class="legend">"#);
    let _ = writeln!(
        s,
        r##"<rect x="{bx:.1}" y="{by:.1}" width="{box_w:.1}" height="{box_h:.1}" fill="white" fill-opacity="0.85" stroke="#ccc"/>"##
    );
    for (i, g) in series.iter().enumerate() {
        let style = Style::of(i, highlight);
        let lx = bx + 8.0 + col_w * (i / per_col) as f64;
        let ly = by + 4.0 + ROW * ((i % per_col) as f64 + 0.5);
        let weight = if Some(i) == highlight {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="{}"{}/><text x="{:.1}" y="{:.1}"{weight}>{}</text>"#,
            lx + 18.0,
            style.colour,
            style.width,
            style.dash_attr(),
            lx + 24.0,
            ly + 4.0,
            escape(g.name)
        );
    }
    let _ = writeln!(s, "</g>");
}

/// A y axis: its range, whether logarithmic, and its labelled ticks.
#[derive(Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<Tick>,
}

#[derive(Debug)]
struct Tick {
    value: f64,
    label: String,
}

impl Axis {
    /// Position of `v` in the range, 0 at `lo`, 1 at `hi`; clamped, so
    /// nothing lands outside the frame (only clamped ranges can miss data).
    fn frac(&self, v: f64) -> f64 {
        // Not `clamp`, which panics on a NaN bound.
        let v = v.max(self.lo).min(self.hi);
        if self.log {
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            // Halves first: `hi - lo` may overflow near ±f64::MAX.
            (v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0)
        }
    }
}

/// Like the frontier chart: 5 % headroom, then widened to round ticks.
fn linear_axis(lo: f64, hi: f64) -> Axis {
    // Room for headroom and rounding without overflowing.
    let (mut lo, mut hi) = (lo.max(-f64::MAX / 4.0), hi.min(f64::MAX / 4.0));
    if hi - lo < 1e-12 * hi.abs().max(1.0) {
        let d = (0.05 * hi.abs()).max(1e-6);
        lo -= d;
        hi += d;
    }
    let pad = 0.05 * (hi - lo);
    let ((lo, hi), step, ticks) = nice_ticks(lo - pad, hi + pad);
    Axis {
        lo,
        hi,
        log: false,
        ticks: ticks
            .into_iter()
            .map(|t| Tick {
                value: t,
                label: fmt_tick(t, step),
            })
            .collect(),
    }
}

/// Fractions shown as percent, the top at `hi` (0 for drawdowns) so the
/// zero line is the frame's top edge; 5 % headroom below.
fn percent_axis(lo: f64, hi: f64) -> Axis {
    let lo = if hi - lo < 1e-9 { hi - 0.05 } else { lo };
    // Bounded so that headroom, rounding and × 100 cannot overflow.
    let (lo, hi) = (lo.max(-f64::MAX / 1e3), hi.min(f64::MAX / 1e3));
    let ((lo, hi), step, ticks) = nice_ticks(lo - 0.05 * (hi - lo), hi);
    Axis {
        lo,
        hi,
        log: false,
        ticks: ticks
            .into_iter()
            .map(|t| Tick {
                value: t,
                label: format!("{}%", fmt_tick(t * 100.0, step * 100.0)),
            })
            .collect(),
    }
}

/// A log axis over positive `lo..=hi`, padded by 4 % of its log span each
/// side. Ticks at 1, 2, 5 × 10^k when that gives 3 to 12 of them; at every
/// (or every 2nd, 5th, 10th…) power of ten when the range is wider; and at
/// linear round steps (1.0, 1.1, 1.2…) when it is too narrow for 1-2-5.
fn log_axis(lo: f64, hi: f64) -> Axis {
    // In logs, so that 1e-300..1e300 does not overflow.
    let (l0, l1) = (lo.ln(), hi.ln());
    let pad = (0.04 * (l1 - l0)).max(1.01f64.ln());
    let lo = (l0 - pad).exp().max(f64::MIN_POSITIVE);
    let hi = (l1 + pad).exp().min(f64::MAX);
    let inside = |v: f64| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12);
    let k0 = (lo.log10().floor() as i32).max(-320);
    let k1 = (hi.log10().ceil() as i32).min(320);
    let decade_ticks = |mantissas: &[f64], every: i32| -> Vec<Tick> {
        let mut out = Vec::new();
        for k in (k0..=k1).filter(|k| k.rem_euclid(every) == 0) {
            for &m in mantissas {
                let v = m * 10f64.powi(k);
                if v > 0.0 && v.is_finite() && inside(v) {
                    out.push(Tick {
                        value: v,
                        label: fmt_tick(v, 10f64.powi(k)),
                    });
                }
            }
        }
        out
    };
    let mut ticks = decade_ticks(&[1.0, 2.0, 5.0], 1);
    if ticks.len() > MAX_TICKS {
        let mut every = 1;
        ticks = decade_ticks(&[1.0], every);
        while ticks.len() > MAX_TICKS && every < 1000 {
            every = next_nice(every);
            ticks = decade_ticks(&[1.0], every);
        }
    } else if ticks.len() < 3 {
        let (_, step, values) = nice_ticks(lo, hi);
        ticks = values
            .into_iter()
            .filter(|&v| v > 0.0 && inside(v))
            .map(|v| Tick {
                value: v,
                label: fmt_tick(v, step),
            })
            .collect();
    }
    Axis {
        lo,
        hi,
        log: true,
        ticks,
    }
}

/// Axis range widened to round steps (1, 2 or 5 × 10^k), the step and the
/// ticks. Ticks are integer multiples of the step, so 0 is exactly 0.
fn nice_ticks(lo: f64, hi: f64) -> ((f64, f64), f64, Vec<f64>) {
    let span = (hi - lo).max(1e-12);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let k0 = (lo / step).floor();
    let k1 = (hi / step).ceil();
    // The cap only matters for non-finite or absurd ranges.
    let count = ((k1 - k0).round() as usize).min(100);
    let ticks = (0..=count).map(|i| (k0 + i as f64) * step).collect();
    ((k0 * step, k1 * step), step, ticks)
}

/// A multiple of a 1-2-5 `step` with just the digits the step needs:
/// `0.05`, `1.5`, `20`; in exponent form (`1e12`, `2.5e-8`) far from 1.
fn fmt_tick(v: f64, step: f64) -> String {
    // `+ 0.0` turns −0 into 0.
    let v = v + 0.0;
    let step_exp = (step.log10() + 1e-9).floor();
    if v.abs() >= 1e9 || step_exp < -6.0 {
        if v == 0.0 {
            return "0".into();
        }
        let precision = (v.abs().log10().floor() - step_exp).clamp(0.0, 16.0) as usize;
        format!("{v:.precision$e}")
    } else {
        format!("{v:.*}", (-step_exp).max(0.0) as usize)
    }
}

/// 1 → 2 → 5 → 10 → 20 …
fn next_nice(n: i32) -> i32 {
    let mut mag = 1;
    while mag * 10 <= n {
        mag *= 10;
    }
    match n / mag {
        1 => 2 * mag,
        2..=4 => 5 * mag,
        _ => 10 * mag,
    }
}

#[derive(Debug)]
struct DateTick {
    date: NaiveDate,
    label: String,
}

/// Ticks at 1 January every 1, 2, 5, 10… years, the smallest step giving at
/// most 12; spans without two new years get month ticks (every 1, 2, 3 or
/// 6 months), and spans without two month starts just their two ends.
fn date_ticks(d0: NaiveDate, d1: NaiveDate) -> Vec<DateTick> {
    let first_year = if (d0.month(), d0.day()) == (1, 1) {
        d0.year()
    } else {
        d0.year() + 1
    };
    if d1.year() > first_year {
        let mut every = 1;
        loop {
            let years: Vec<i32> = (first_year..=d1.year())
                .filter(|y| y.rem_euclid(every) == 0)
                .collect();
            if years.len() <= MAX_TICKS || every >= 100_000 {
                return years
                    .into_iter()
                    .filter_map(|y| NaiveDate::from_ymd_opt(y, 1, 1))
                    .map(|date| DateTick {
                        date,
                        label: date.year().to_string(),
                    })
                    .collect();
            }
            every = next_nice(every);
        }
    }
    // Months counted from year 0: index = 12·year + month0.
    let index = |d: NaiveDate| 12 * d.year() + d.month0() as i32;
    let first = if d0.day() == 1 {
        index(d0)
    } else {
        index(d0) + 1
    };
    let last = index(d1);
    if last > first {
        for every in [1, 2, 3, 6] {
            let months: Vec<i32> = (first..=last)
                .filter(|m| m.rem_euclid(12).rem_euclid(every) == 0)
                .collect();
            if months.len() <= MAX_TICKS || every == 6 {
                return months
                    .into_iter()
                    .filter_map(|m| {
                        NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)
                    })
                    .map(|date| DateTick {
                        date,
                        label: format!("{}-{:02}", date.year(), date.month()),
                    })
                    .collect();
            }
        }
    }
    let mut ends = vec![d0];
    if d1 != d0 {
        ends.push(d1);
    }
    ends.into_iter()
        .map(|date| DateTick {
            date,
            label: date.format("%Y-%m-%d").to_string(),
        })
        .collect()
}

/// Escapes text for XML content and attributes, and drops the control
/// characters XML 1.0 does not allow at all.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
