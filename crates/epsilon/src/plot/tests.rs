use super::*;

fn weekly(start: NaiveDate, n: usize) -> Vec<NaiveDate> {
    (0..n)
        .map(|i| start + chrono::Duration::weeks(i as i64))
        .collect()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A tiny well-formedness check: tags balance, every `&` starts an
/// entity, `<` only opens tags, attribute values are quoted.
fn check_xml(svg: &str) -> Result<(), String> {
    if !svg.starts_with("<svg") || !svg.trim_end().ends_with("</svg>") {
        return Err("not one <svg> element".into());
    }
    let mut rest = svg;
    while let Some(i) = rest.find('&') {
        rest = &rest[i + 1..];
        let end = rest.find(';').ok_or("unterminated entity")?;
        let name = &rest[..end];
        let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || (name.starts_with('#') && name[1..].chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(format!("bad entity &{name};"));
        }
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        if stack.is_empty() && !rest[..i].trim().is_empty() {
            return Err("text outside the root".into());
        }
        rest = &rest[i + 1..];
        let end = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.contains('<') {
            return Err(format!("'<' inside tag {tag}"));
        }
        if !tag.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in {tag}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            if stack.is_empty() && !rest.trim().is_empty() {
                return Err("content after the root".into());
            }
        } else {
            let name = tag.split_whitespace().next().unwrap_or("");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("bad tag name in <{tag}>"));
            }
            if !tag.ends_with('/') {
                stack.push(name.trim_end_matches('/'));
            }
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

/// The `d` of every `<path`; fails if one has none or an empty one.
fn path_data(svg: &str) -> Vec<&str> {
    svg.split("<path ")
        .skip(1)
        .map(|p| {
            let tag = &p[..p.find('>').unwrap()];
            let start = if tag.starts_with("d=\"") {
                3
            } else {
                tag.find(" d=\"").expect("a <path> without d") + 4
            };
            let d = &p[start..start + p[start..].find('"').unwrap()];
            assert!(!d.is_empty(), "empty d");
            d
        })
        .collect()
}

fn legend_of(svg: &str) -> &str {
    let start = svg.find(r#"<g class="legend">"#).expect("no legend");
    &svg[start..start + svg[start..].find("</g>").unwrap()]
}

/// The y tick labels: right-aligned texts.
fn y_labels(svg: &str) -> Vec<String> {
    svg.split(r#"text-anchor="end">"#)
        .skip(1)
        .map(|t| t[..t.find('<').unwrap()].to_string())
        .collect()
}

/// The x tick labels: centred texts under the plot.
fn x_labels(svg: &str) -> Vec<String> {
    let marker = format!(r#"y="{:.1}" text-anchor="middle">"#, H - BOTTOM + 18.0);
    svg.split(marker.as_str())
        .skip(1)
        .map(|t| t[..t.find('<').unwrap()].to_string())
        .collect()
}

struct Fixture {
    dates: Vec<NaiveDate>,
    values: Vec<Vec<f64>>,
    names: Vec<String>,
}

impl Fixture {
    /// `k` strategies over `n` weeks from 2010-01-04, growing at
    /// different rates with a wobble.
    fn new(k: usize, n: usize) -> Fixture {
        let values = (0..k)
            .map(|j| {
                (0..n)
                    .map(|i| {
                        let t = i as f64;
                        (t * (0.001 + 0.0005 * j as f64) + 0.05 * (t / 13.0 + j as f64).sin()).exp()
                    })
                    .collect()
            })
            .collect();
        Fixture {
            dates: weekly(date(2010, 1, 4), n),
            values,
            names: (0..k).map(|j| format!("strategy {j}")).collect(),
        }
    }

    fn series(&self) -> Vec<Series<'_>> {
        self.names
            .iter()
            .zip(&self.values)
            .map(|(name, values)| Series { name, values })
            .collect()
    }
}

fn input<'a>(dates: &'a [NaiveDate], series: &'a [Series<'a>]) -> ChartInput<'a> {
    ChartInput {
        title: "Backtest",
        dates,
        series,
        highlight: None,
        log_scale: false,
    }
}

#[test]
fn drawdown_of_a_known_series_is_exact() {
    assert_eq!(drawdowns(&[1.0, 1.2, 0.9, 1.3]), vec![0.0, 0.0, -0.25, 0.0]);
    assert_eq!(
        drawdowns(&[2.0, 1.0, 1.5, 0.5]),
        vec![0.0, -0.5, -0.25, -0.75]
    );
    assert!(drawdowns(&[]).is_empty());
}

#[test]
fn drawdown_skips_non_finite_values_and_non_positive_peaks() {
    let dd = drawdowns(&[f64::NAN, 2.0, f64::INFINITY, 1.0, -1.0]);
    assert!(dd[0].is_nan() && dd[2].is_nan());
    assert_eq!(&[dd[1], dd[3]], &[0.0, -0.5]);
    assert_eq!(dd[4], -1.5);
    assert!(drawdowns(&[-1.0, 0.0]).iter().all(|v| v.is_nan()));
}

#[test]
fn equity_and_drawdown_charts_are_well_formed() -> Result<(), String> {
    let f = Fixture::new(5, 600);
    let series = f.series();
    let dd: Vec<Vec<f64>> = f.values.iter().map(|v| drawdowns(v)).collect();
    let dd_series: Vec<Series<'_>> = f
        .names
        .iter()
        .zip(&dd)
        .map(|(name, values)| Series { name, values })
        .collect();
    for log_scale in [false, true] {
        let mut chart = input(&f.dates, &series);
        chart.log_scale = log_scale;
        chart.highlight = Some("strategy 2");
        let svg = equity_svg(&chart);
        check_xml(&svg)?;
        assert_eq!(path_data(&svg).len(), 5);
    }
    let mut chart = input(&f.dates, &dd_series);
    chart.highlight = Some("strategy 2");
    let svg = drawdown_svg(&chart);
    check_xml(&svg)?;
    // Five lines and the highlighted area.
    assert_eq!(path_data(&svg).len(), 6);
    Ok(())
}

#[test]
fn the_checker_rejects_broken_xml() {
    assert!(check_xml("<svg><g></svg>").is_err());
    assert!(check_xml("<svg><text>a & b</text></svg>").is_err());
    assert!(check_xml("<svg><text>a &amp; b</text></svg>").is_ok());
    assert!(check_xml("<svg/><svg/>").is_err());
    assert!(check_xml(r#"<svg><path d="M1,2/></svg>"#).is_err());
}

#[test]
fn path_data_has_two_decimals() {
    let f = Fixture::new(2, 100);
    let series = f.series();
    let svg = equity_svg(&input(&f.dates, &series));
    for d in path_data(&svg) {
        for number in d.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')) {
            if let Some((_, frac)) = number.split_once('.') {
                assert_eq!(frac.len(), 2, "{number} in {d}");
            }
        }
    }
}

#[test]
fn the_legend_names_every_series_in_order() {
    let f = Fixture::new(11, 50);
    let series = f.series();
    let svg = equity_svg(&input(&f.dates, &series));
    let legend = legend_of(&svg);
    let mut from = 0;
    for name in &f.names {
        let at = legend[from..]
            .find(&format!(">{name}</text>"))
            .unwrap_or_else(|| panic!("{name} missing from the legend"));
        from += at;
    }
    // Past eight series the colours repeat, dashed.
    assert_eq!(legend.matches("stroke-dasharray").count(), 3);
}

#[test]
fn text_is_escaped() -> Result<(), String> {
    let dates = weekly(date(2020, 1, 6), 10);
    let values = [1.0; 10];
    let series = [
        Series {
            name: "60/40 & <bonds> \"x\"\u{1}",
            values: &values,
        },
        Series {
            name: "plain",
            values: &values,
        },
    ];
    let mut chart = input(&dates, &series);
    chart.title = "Risk & <return>";
    chart.highlight = Some("60/40 & <bonds> \"x\"\u{1}");
    let svg = equity_svg(&chart);
    check_xml(&svg)?;
    assert!(svg.contains("Risk &amp; &lt;return&gt;</text>"));
    assert!(legend_of(&svg).contains(">60/40 &amp; &lt;bonds&gt; &quot;x&quot;</text>"));
    assert!(!svg.contains("<bonds>") && !svg.contains('\u{1}'));
    // The highlight matched the raw name: bold in the legend.
    assert!(svg.contains(r#"font-weight="bold">60/40"#));
    Ok(())
}

#[test]
fn the_legend_avoids_the_curves() {
    let dates = weekly(date(2020, 1, 6), 100);
    let legend_at = |values: &[f64]| -> String {
        let series = [Series { name: "a", values }];
        let svg = equity_svg(&input(&dates, &series));
        let legend = legend_of(&svg);
        let rect = &legend[legend.find("<rect x=").unwrap()..];
        rect[..rect.find(" width").unwrap()].to_string()
    };
    let rising: Vec<f64> = (0..100).map(|i| 1.0 + i as f64 / 100.0).collect();
    // From 0.95 (axis −0.2..1.0, so near the top) down to 0.
    let falling: Vec<f64> = (0..100).map(|i| 0.95 * (1.0 - i as f64 / 99.0)).collect();
    // Rising: the top left is free. Falling: it is not, the bottom right is.
    assert_eq!(legend_at(&rising), r#"<rect x="90.0" y="60.0""#);
    assert_eq!(legend_at(&falling), r#"<rect x="715.0" y="454.0""#);
}

#[test]
fn the_highlight_is_thicker_and_on_top() {
    let f = Fixture::new(4, 60);
    let series = f.series();
    let mut chart = input(&f.dates, &series);
    chart.highlight = Some("strategy 1");
    let svg = equity_svg(&chart);
    let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with("<path")).collect();
    let last = lines.last().unwrap();
    assert!(last.contains("<title>strategy 1</title>"), "{last}");
    assert!(last.contains(r#"stroke-width="3""#));
    assert!(lines[..3]
        .iter()
        .all(|l| l.contains(r#"stroke-width="1.5""#)));
    // An unknown name highlights nothing.
    chart.highlight = Some("nope");
    assert!(!equity_svg(&chart).contains(r#"stroke-width="3""#));
}

#[test]
fn log_ticks_are_1_2_5_steps() {
    let ticks = |lo, hi| -> Vec<String> {
        log_axis(lo, hi)
            .ticks
            .into_iter()
            .map(|t| t.label)
            .collect()
    };
    assert_eq!(ticks(1.0, 20.0), ["1", "2", "5", "10", "20"]);
    // 1-2-5 would leave only 1 and 2: linear round steps instead.
    assert_eq!(ticks(0.6, 3.0), ["1.0", "1.5", "2.0", "2.5", "3.0"]);
    assert_eq!(ticks(0.3, 8.0), ["0.5", "1", "2", "5"]);
    // Too wide for 1-2-5: powers of ten only.
    assert_eq!(
        ticks(0.001, 1e6),
        ["0.001", "0.01", "0.1", "1", "10", "100", "1000", "10000", "100000", "1000000"]
    );
    // Too narrow: linear round steps.
    assert_eq!(ticks(0.95, 1.3), ["1.0", "1.1", "1.2", "1.3"]);
}

#[test]
fn a_log_chart_labels_its_ticks_and_spaces_decades_evenly() {
    let dates = weekly(date(2000, 1, 3), 3);
    let values = [1.0, 10.0, 100.0];
    let series = [Series {
        name: "x",
        values: &values,
    }];
    let mut chart = input(&dates, &series);
    chart.log_scale = true;
    let svg = equity_svg(&chart);
    let labels = y_labels(&svg);
    assert_eq!(labels, ["1", "2", "5", "10", "20", "50", "100"]);
    // On a log axis 1→10 and 10→100 are the same height.
    let d = path_data(&svg)[0];
    let ys: Vec<f64> = d
        .split(['M', 'L', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once(',').unwrap().1.parse().unwrap())
        .collect();
    assert!(((ys[0] - ys[1]) - (ys[1] - ys[2])).abs() < 0.02, "{ys:?}");
    // Zero and negative wealth cannot be drawn on a log axis: a gap.
    let values = [1.0, 0.0, -1.0, 2.0, 3.0];
    let dates = weekly(date(2000, 1, 3), 5);
    let series = [Series {
        name: "x",
        values: &values,
    }];
    let mut chart = input(&dates, &series);
    chart.log_scale = true;
    let d = path_data(&equity_svg(&chart))[0].to_string();
    assert_eq!(d.matches('M').count(), 2, "{d}");
}

#[test]
fn linear_equity_ticks_are_round_and_mark_one() {
    let f = Fixture::new(3, 520);
    let series = f.series();
    let svg = equity_svg(&input(&f.dates, &series));
    let labels: Vec<f64> = y_labels(&svg).iter().map(|l| l.parse().unwrap()).collect();
    assert!(labels.len() >= 3 && labels.len() <= 12, "{labels:?}");
    let step = labels[1] - labels[0];
    assert!(labels.windows(2).all(|w| (w[1] - w[0] - step).abs() < 1e-9));
    assert!(svg.contains(r##"stroke="#999""##), "no reference line at 1");
}

#[test]
fn drawdown_axis_is_percent_with_zero_at_the_top() {
    let dates = weekly(date(2019, 1, 7), 4);
    let dd = drawdowns(&[1.0, 1.2, 0.9, 1.3]);
    let series = [Series {
        name: "a",
        values: &dd,
    }];
    let svg = drawdown_svg(&input(&dates, &series));
    let labels = y_labels(&svg);
    assert!(labels.iter().all(|l| l.ends_with('%')), "{labels:?}");
    assert_eq!(labels.last().map(String::as_str), Some("0%"));
    assert!(labels.contains(&"-25%".to_string()) || labels.contains(&"-20%".to_string()));
    let zero = format!(r#"y="{:.1}" text-anchor="end">0%<"#, TOP + 4.0);
    assert!(svg.contains(&zero), "0% is not at the top");
    // All-zero drawdowns still get an axis.
    let zeros = [0.0; 4];
    let series = [Series {
        name: "a",
        values: &zeros,
    }];
    let labels = y_labels(&drawdown_svg(&input(&dates, &series)));
    assert_eq!(labels.first().map(String::as_str), Some("-6%"));
}

#[test]
fn year_ticks_stay_at_twelve_or_fewer() {
    let labels =
        |d0, d1| -> Vec<String> { date_ticks(d0, d1).into_iter().map(|t| t.label).collect() };
    assert_eq!(
        labels(date(2015, 1, 5), date(2020, 12, 28)),
        ["2016", "2017", "2018", "2019", "2020"]
    );
    assert_eq!(labels(date(2015, 1, 1), date(2016, 3, 1)), ["2015", "2016"]);
    let long = labels(date(1990, 3, 2), date(2024, 6, 28));
    assert_eq!(long, ["1995", "2000", "2005", "2010", "2015", "2020"]);
    let wide = labels(date(1901, 1, 1), date(2024, 1, 1));
    assert!(wide.len() <= MAX_TICKS && wide.len() >= 6, "{wide:?}");
    // Under two new years: months, then just the ends.
    assert_eq!(
        labels(date(2023, 11, 6), date(2024, 3, 25)),
        ["2023-12", "2024-01", "2024-02", "2024-03"]
    );
    assert_eq!(labels(date(2023, 6, 5), date(2024, 9, 30)).len(), 8);
    assert_eq!(
        labels(date(2024, 3, 4), date(2024, 3, 25)),
        ["2024-03-04", "2024-03-25"]
    );
    // And the chart draws them under the plot.
    let f = Fixture::new(1, 52 * 30);
    let series = f.series();
    let svg = equity_svg(&input(&f.dates, &series));
    let xs = x_labels(&svg);
    assert!(xs.len() <= MAX_TICKS && xs.len() >= 5, "{xs:?}");
}

#[test]
fn empty_inputs_draw_a_message() -> Result<(), String> {
    let dates = weekly(date(2020, 1, 6), 3);
    let nan = [f64::NAN; 3];
    let series = [Series {
        name: "only NaN",
        values: &nan,
    }];
    let cases: [(&[NaiveDate], &[Series<'_>], &str); 4] = [
        (&[], &[], "No dates to plot"),
        (&[], &series, "No dates to plot"),
        (&dates, &[], "No series to plot"),
        (&dates, &series, "No finite values to plot"),
    ];
    for (dates, series, message) in cases {
        for log_scale in [false, true] {
            let mut chart = input(dates, series);
            chart.log_scale = log_scale;
            chart.highlight = Some("only NaN");
            let equity_message = match message {
                "No finite values to plot" if log_scale => "No positive finite values to plot",
                m => m,
            };
            for (svg, message) in [
                (equity_svg(&chart), equity_message),
                (drawdown_svg(&chart), message),
            ] {
                check_xml(&svg)?;
                assert!(
                    svg.contains(&format!(">{message}</text>")),
                    "{message}: {svg}"
                );
                assert!(!svg.contains("<path"));
                // The legend still names the series there are.
                assert_eq!(svg.contains(r#"<g class="legend">"#), !series.is_empty());
            }
        }
    }
    Ok(())
}

#[test]
fn odd_values_and_lengths_do_not_panic() -> Result<(), String> {
    let dates = weekly(date(2020, 1, 6), 6);
    let gappy = [1.0, f64::NAN, 1.1, 1.2, f64::INFINITY, 1.3];
    let short = [1.0, 1.1];
    let long = [1.0; 50];
    let one = [f64::NAN, f64::NAN, 2.0, f64::NAN, f64::NAN, f64::NAN];
    let huge = [1e-300, 1e300, 1.0, 1.0, 1.0, 1.0];
    let extreme = [-f64::MAX, f64::MAX, 0.0, 1.0, 1.0, 1.0];
    let series = [
        Series {
            name: "gappy",
            values: &gappy,
        },
        Series {
            name: "short",
            values: &short,
        },
        Series {
            name: "long",
            values: &long,
        },
        Series {
            name: "one",
            values: &one,
        },
        Series {
            name: "huge",
            values: &huge,
        },
        Series {
            name: "extreme",
            values: &extreme,
        },
    ];
    for log_scale in [false, true] {
        let mut chart = input(&dates, &series[..4]);
        chart.log_scale = log_scale;
        let svg = equity_svg(&chart);
        check_xml(&svg)?;
        let d = path_data(&svg);
        // The gaps break the line: three pieces.
        assert_eq!(d[0].matches('M').count(), 3, "{}", d[0]);
        // A lone point is a dot.
        assert!(d[3].ends_with("h0"), "{}", d[3]);
        let mut chart = input(&dates, &series);
        chart.log_scale = log_scale;
        for svg in [equity_svg(&chart), drawdown_svg(&chart)] {
            check_xml(&svg)?;
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }
    // One date only.
    let svg = equity_svg(&input(&dates[..1], &series));
    check_xml(&svg)?;
    Ok(())
}
