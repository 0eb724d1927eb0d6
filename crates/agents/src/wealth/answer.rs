//! The answers' words: figures of the tools formatted as the other agents
//! format them (percentages with two decimals), nothing a tool did not give.

use std::collections::BTreeMap;

use serde_json::Value;

use super::LISTED_HOLDINGS;

pub(super) const HELP: &str = "I can work out risk figures (annual return, volatility, Sharpe ratio, maximum drawdown) of shares you name by ticker or company, or of your portfolio; show how closely shares move together (their correlation); and request an ESG rebalancing of your portfolio. For example: \"how risky are AAPL and MSFT\", \"how correlated are KO and PEP\" or \"rebalance my portfolio to be more sustainable\".";

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

/// Annual return, volatility, Sharpe ratio and maximum drawdown of one
/// metrics object of a risk report, in words.
fn metrics_text(m: &Value) -> String {
    let f = |k: &str| m[k].as_f64().unwrap_or(0.0);
    format!(
        "annual return {}, volatility {}, Sharpe ratio {:.2}, maximum drawdown {}",
        pct(f("cagr")),
        pct(f("volatility")),
        f("sharpe"),
        pct(f("max_drawdown"))
    )
}

/// The period of a report, in words, with a note on it.
fn period(report: &Value, note: &str) -> String {
    format!(
        "from {} to {} ({} daily returns{note})",
        report["start"].as_str().unwrap_or("?"),
        report["end"].as_str().unwrap_or("?"),
        report["observations"].as_u64().unwrap_or(0)
    )
}

/// The rate the Sharpe ratios of a risk report are over, as a note.
fn sharpe_note(report: &Value, ratios: &str) -> String {
    format!(
        "; {ratios} over a {} cash rate",
        pct(report["risk_free_rate"].as_f64().unwrap_or(0.0))
    )
}

/// The answer of a risk report on named tickers.
pub(super) fn risk_text(
    report: &Value,
    names: &BTreeMap<String, String>,
    tickers: &[String],
) -> String {
    let each: Vec<String> = tickers
        .iter()
        .filter(|t| report["assets"].get(t.as_str()).is_some())
        .map(|t| {
            let name = names.get(t).map(|n| format!(" ({n})")).unwrap_or_default();
            format!("{t}{name}: {}", metrics_text(&report["assets"][t.as_str()]))
        })
        .collect();
    format!(
        "Over the prices {}: {}. These are past figures, not a forecast.",
        period(report, &sharpe_note(report, "Sharpe ratios")),
        each.join("; ")
    )
}

/// Weights in words, largest first: the first few named, the rest counted.
fn weights_text(weights: &BTreeMap<String, f64>) -> String {
    let mut sorted: Vec<(&String, &f64)> = weights.iter().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let mut listed: Vec<String> = sorted
        .iter()
        .take(LISTED_HOLDINGS)
        .map(|(t, w)| format!("{t} {}", pct(**w)))
        .collect();
    if sorted.len() > LISTED_HOLDINGS {
        listed.push(format!("{} more", sorted.len() - LISTED_HOLDINGS));
    }
    listed.join(", ")
}

/// The answer of a risk report on a portfolio's weights.
pub(super) fn portfolio_risk_text(portfolio_id: &str, report: &Value) -> String {
    let weights: BTreeMap<String, f64> =
        serde_json::from_value(report["portfolio"]["weights"].clone()).unwrap_or_default();
    format!(
        "Your portfolio {portfolio_id}, at the weights of its latest completed optimization ({}), over the prices {}: {}. These are past figures, not a forecast.",
        weights_text(&weights),
        period(report, &sharpe_note(report, "Sharpe ratio")),
        metrics_text(&report["portfolio"]["metrics"])
    )
}

/// Two tickers and the correlation of their daily returns.
type Pair = (String, String, f64);

/// The most and the least correlated pair of a correlation report; `None`
/// with fewer than two tickers.
fn extreme_pairs(report: &Value) -> Option<(Pair, Pair)> {
    let tickers: Vec<String> = serde_json::from_value(report["tickers"].clone()).ok()?;
    let matrix: Vec<Vec<f64>> = serde_json::from_value(report["matrix"].clone()).ok()?;
    let mut pairs = Vec::new();
    for i in 0..tickers.len() {
        for j in i + 1..tickers.len() {
            let c = *matrix.get(i)?.get(j)?;
            pairs.push((tickers[i].clone(), tickers[j].clone(), c));
        }
    }
    let most = pairs.iter().max_by(|a, b| a.2.total_cmp(&b.2))?.clone();
    let least = pairs.iter().min_by(|a, b| a.2.total_cmp(&b.2))?.clone();
    Some((most, least))
}

/// How a correlation reads.
fn strength(c: f64) -> &'static str {
    match c {
        c if c >= 0.7 => "they move strongly together",
        c if c >= 0.4 => "they move together moderately",
        c if c >= 0.1 => "they move together only weakly",
        c if c > -0.1 => "they barely move together",
        _ => "they tend to move in opposite directions",
    }
}

/// The answer of a correlation report.
pub(super) fn correlation_text(report: &Value, of: &str) -> String {
    let Some((most, least)) = extreme_pairs(report) else {
        return "I need two or more shares to compare.".into();
    };
    let n = report["tickers"].as_array().map_or(0, Vec::len);
    if n == 2 {
        format!(
            "Over the prices {}, the daily returns of {} and {} have a correlation of {:.2}: {}.",
            period(report, ""),
            most.0,
            most.1,
            most.2,
            strength(most.2)
        )
    } else {
        format!(
            "Over the prices {}, of {of} the most correlated pair is {} and {} ({:.2}) and the least correlated {} and {} ({:.2}).",
            period(report, ""),
            most.0,
            most.1,
            most.2,
            least.0,
            least.1,
            least.2
        )
    }
}

/// The answer of a request published.
pub(super) fn pending_text(output: &Value, request: &Value) -> String {
    let c = &request["constraints"];
    let mut limits = Vec::new();
    if let Some(s) = c["min_esg_score"].as_f64() {
        limits.push(format!("an ESG score of at least {s:.0}"));
    }
    if let Some(s) = c["max_carbon_intensity"].as_f64() {
        limits.push(format!("carbon intensity at most {s:.0}"));
    }
    if c["exclude_flagged"] == true {
        limits.push("issuers under a controversy flag excluded".into());
    }
    if let Some(max) = c["weight_bounds"][1].as_f64().filter(|m| *m < 1.0) {
        limits.push(format!("at most {} in one holding", pct(max)));
    }
    let objective = match request["objective"]["kind"].as_str() {
        Some("max_sharpe") => "the best Sharpe ratio",
        Some("min_volatility") => "the lowest volatility",
        Some("max_return") => "the best return within a volatility budget",
        Some("esg_tradeoff") => "a balance of return, risk and ESG score",
        _ => "its objective",
    };
    let link = output["link"].as_str().unwrap_or("");
    format!(
        "I've asked for an ESG rebalancing of your portfolio {} from its current holdings, for {objective} with {}. It is pending: request {}. The result (new weights, trades, and figures before and after) will be at {link} once the optimization service has answered.",
        output["portfolio_id"].as_str().unwrap_or("?"),
        limits.join(", "),
        output["request_id"].as_str().unwrap_or("?"),
    )
}

/// The portfolio a question is about: the one it names, else the caller's
/// only one. `Err` is the answer when there is none or several.
pub(super) fn pick(named: &[String], caller: &[String]) -> Result<String, String> {
    if let Some(first) = named.first() {
        return Ok(first.clone());
    }
    match caller {
        [] => Err("I can't see a portfolio of yours: ask with the portfolio your login gives you access to, or name shares by ticker or company.".into()),
        [only] => Ok(only.clone()),
        several => Err(format!(
            "Which portfolio do you mean: {}?",
            several.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn risk_answers_state_the_tool_figures_as_percentages() {
        let report = json!({
            "assets": {"AAPL": {"cagr": 0.23414, "volatility": 0.28096, "sharpe": 0.95123, "max_drawdown": -0.31429}},
            "start": "2017-12-28", "end": "2022-12-28", "observations": 1259, "risk_free_rate": 0.02,
        });
        let names: BTreeMap<String, String> = [("AAPL".to_owned(), "Apple Inc.".to_owned())].into();
        let text = risk_text(&report, &names, &["AAPL".to_owned()]);
        assert_eq!(
            text,
            "Over the prices from 2017-12-28 to 2022-12-28 (1259 daily returns; Sharpe ratios over a 2.00 % cash rate): AAPL (Apple Inc.): annual return 23.41 %, volatility 28.10 %, Sharpe ratio 0.95, maximum drawdown -31.43 %. These are past figures, not a forecast."
        );
        let checks = crate::assist::critique(
            &text,
            "how risky is AAPL",
            &json!({"data": {}}),
            &[ultracore_events::agents::ToolCall {
                tool: "risk_metrics".into(),
                input: json!({"tickers": ["AAPL"], "lookback_years": 5.0, "risk_free_rate": 0.02}),
                output: report,
                ok: true,
                error: None,
                duration_ms: 1.0,
            }],
            ultracore_events::agents::ExecutionStatus::Succeeded,
        );
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
    }

    #[test]
    fn correlation_answers_name_the_extreme_pairs() {
        let two = json!({"tickers": ["KO", "PEP"], "matrix": [[1.0, 0.7812], [0.7812, 1.0]],
                         "start": "2017-12-28", "end": "2022-12-28", "observations": 1259});
        assert_eq!(
            correlation_text(&two, "these shares"),
            "Over the prices from 2017-12-28 to 2022-12-28 (1259 daily returns), the daily returns of KO and PEP have a correlation of 0.78: they move strongly together."
        );
        let three = json!({"tickers": ["AAPL", "KO", "XOM"],
                           "matrix": [[1.0, 0.31, 0.18], [0.31, 1.0, 0.42], [0.18, 0.42, 1.0]],
                           "start": "2017-12-28", "end": "2022-12-28", "observations": 1259});
        let text = correlation_text(&three, "these shares");
        assert!(
            text.ends_with("the most correlated pair is KO and XOM (0.42) and the least correlated AAPL and XOM (0.18)."),
            "{text}"
        );
    }

    #[test]
    fn a_pending_request_says_where_its_result_will_be() {
        let request = serde_json::to_value(ultracore_flow::setup::sample_request("pf-1")).unwrap();
        let id = request["request_id"].as_str().unwrap().to_owned();
        let output = json!({"status": "pending", "request_id": id, "portfolio_id": "pf-1",
                            "link": format!("/api/v1/optimizations/{id}")});
        let text = pending_text(&output, &request);
        assert!(text.contains("It is pending"), "{text}");
        assert!(
            text.contains(&format!("/api/v1/optimizations/{id}")),
            "{text}"
        );
        assert!(
            text.contains("an ESG score of at least 60, carbon intensity at most 150"),
            "{text}"
        );
        assert!(text.contains("at most 25.00 % in one holding"), "{text}");
    }

    #[test]
    fn which_portfolio() {
        let mine = vec!["pf-1".to_owned(), "pf-2".to_owned()];
        assert_eq!(pick(&["pf-2".to_owned()], &mine), Ok("pf-2".to_owned()));
        assert_eq!(pick(&[], &mine[..1]), Ok("pf-1".to_owned()));
        assert_eq!(
            pick(&[], &mine),
            Err("Which portfolio do you mean: pf-1, pf-2?".to_owned())
        );
        assert!(pick(&[], &[]).is_err());
    }
}
