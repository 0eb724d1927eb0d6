"""A real MCP client (the official Python SDK, `mcp`) against UltraCore's MCP server.

    mcp_client.py stdio CHECKS.json -- ULTRACORE [ARGS...]   start `ULTRACORE ARGS...` and talk over stdio
    mcp_client.py http CHECKS.json URL                       talk streamable HTTP to URL (…/mcp)

MCP_CLIENT_MODE=legacy forces the initialize handshake of the protocol
versions before 2026-07-28 (what most deployed clients speak); by default
the SDK discovers the server and speaks the newest version both know.
MCP_CLIENT_ANSWER_WAIT (seconds, default 60) bounds the wait for the
optimization's answer. ULTRACORE_API_KEY, when set, is sent as
`Authorization: Bearer` on every HTTP request.

CHECKS.json holds what the caller computed independently:
    {"risk": {"request": {...calculate_risk_metrics arguments...},
              "assets": {...what `ultracore risk --json` printed for them...}}}

It lists the tools, submits an ESG optimization and polls for its result,
sends bad input and expects tool errors naming the field, and compares the
risk metrics with the expected ones. The first failed check exits non-zero
with the reason on stderr; on success a JSON summary goes to stdout.
"""

import json
import math
import os
import sys
import time

import anyio
from mcp import Client, StdioServerParameters

# The core tools; a server with the agents lists theirs and the ESG tools too.
TOOLS = {"optimize_portfolio_esg", "get_optimization_result", "calculate_risk_metrics", "calculate_correlation"}

REQUEST = {
    "portfolio_id": "pf-agent-1",
    "portfolio": {
        "holdings": [
            {"ticker": "XOM", "units": 400},
            {"ticker": "CVX", "units": 200},
            {"ticker": "AAPL", "units": 150},
            {"ticker": "KO", "units": 300},
        ],
        "cash": 20000.0,
    },
    "objective": {"kind": "max_sharpe"},
    "constraints": {
        "min_esg_score": 60.0,
        "max_carbon_intensity": 150.0,
        "max_turnover": 1.2,
        "transaction_cost_bps": 10.0,
        "weight_bounds": [0.0, 0.3],
    },
    "universe": ["MSFT", "JNJ", "PG", "WMT", "HD", "UNH", "PEP", "LLY"],
    "lookback_years": 5,
}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def log(message):
    print(f"[mcp_client] {message}", file=sys.stderr, flush=True)


def text_of(result):
    return " ".join(getattr(c, "text", "") for c in result.content)


def structured(result):
    check(result.structured_content is not None, f"no structured content in {result}")
    return result.structured_content


async def call_ok(client, tool, arguments):
    result = await client.call_tool(tool, arguments)
    check(not result.is_error, f"{tool} failed: {text_of(result)}")
    return structured(result)


async def expect_tool_error(client, tool, arguments, field):
    """The call must be a tool error (not a protocol error) whose text names `field`."""
    result = await client.call_tool(tool, arguments)
    text = text_of(result)
    check(result.is_error, f"{tool} accepted bad input {arguments}: {text}")
    check(field in text, f"{tool}'s error does not name {field!r}: {text}")
    log(f"{tool} rejected bad {field}: {text}")
    return text


def close(a, b):
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


async def exercise(client, checks):
    summary = {}

    # The tools and their input schemas.
    listed = (await client.list_tools()).tools
    names = {t.name for t in listed}
    check(TOOLS <= names, f"tools listed: {sorted(names)}")
    by_name = {t.name: t for t in listed}
    props = by_name["optimize_portfolio_esg"].input_schema.get("properties", {})
    for field in ["portfolio_id", "portfolio", "objective", "constraints", "universe"]:
        check(field in props, f"optimize_portfolio_esg's schema lacks {field}: {sorted(props)}")
    check("request_id" not in props, "optimize_portfolio_esg's schema asks for request_id")
    check("tickers" in by_name["calculate_risk_metrics"].input_schema.get("properties", {}),
          "calculate_risk_metrics's schema lacks tickers")
    summary["tools"] = sorted(names)

    # Submit, then poll until the optimization service has answered.
    submitted = await call_ok(client, "optimize_portfolio_esg", REQUEST)
    check(submitted.get("status") == "pending", f"submission: {submitted}")
    check(isinstance(submitted.get("message"), str) and submitted["message"], f"no message: {submitted}")
    request_id = submitted.get("request_id")
    check(isinstance(request_id, str) and len(request_id) == 36, f"request_id: {submitted}")
    log(f"submitted {request_id}")
    wait = float(os.environ.get("MCP_CLIENT_ANSWER_WAIT", "60"))
    deadline = time.monotonic() + wait
    polls = 0
    while True:
        polls += 1
        answer = await call_ok(client, "get_optimization_result", {"request_id": request_id})
        check(answer.get("request_id") == request_id, f"answer for another request: {answer}")
        if answer.get("status") != "pending":
            break
        check(time.monotonic() < deadline, f"no answer within {wait:.0f} s")
        await anyio.sleep(0.2)
    check(answer.get("status") == "completed", f"the optimization did not complete: {answer}")
    result = answer.get("result") or {}
    weights = result.get("weights") or {}
    check(len(weights) >= 2, f"weights: {weights}")
    check(abs(sum(weights.values()) - 1.0) < 1e-4, f"weights add up to {sum(weights.values())}")
    trades = result.get("trades") or []
    check(len(trades) > 0, "no trades")
    for t in trades:
        check(t.get("side") in ("buy", "sell") and t.get("ticker"), f"trade: {t}")
    check(result.get("after", {}).get("esg_score", 0) >= 60.0 - 1e-6, f"after: {result.get('after')}")
    check(result.get("explanation"), "no explanation")
    log(f"completed after {polls} polls: {len(weights)} weights, {len(trades)} trades")
    summary.update(request_id=request_id, polls=polls, weights=weights, trades=len(trades))

    # Bad input: tool errors naming the field.
    bad = json.loads(json.dumps(REQUEST))
    bad["portfolio"]["holdings"][0]["units"] = -5
    await expect_tool_error(client, "optimize_portfolio_esg", bad, "portfolio.holdings[0].units")
    bad = dict(REQUEST, lookback_years="five")
    await expect_tool_error(client, "optimize_portfolio_esg", bad, "lookback_years")
    bad = dict(REQUEST, universe=["MSFT", "NOPE"])
    await expect_tool_error(client, "optimize_portfolio_esg", bad, "universe[1]")
    bad = dict(REQUEST, constraints={"min_esg_scor": 60})
    await expect_tool_error(client, "optimize_portfolio_esg", bad, "min_esg_scor")
    bad = dict(REQUEST, request_id="0190f5a0-0000-7000-8000-000000000001")
    await expect_tool_error(client, "optimize_portfolio_esg", bad, "request_id")
    bad = {k: v for k, v in REQUEST.items() if k != "portfolio_id"}
    await expect_tool_error(client, "optimize_portfolio_esg", bad, "portfolio_id")
    await expect_tool_error(client, "get_optimization_result", {"request_id": "not-a-uuid"}, "request_id")
    await expect_tool_error(client, "get_optimization_result",
                            {"request_id": "0190f5a0-0000-7000-8000-00000000dead"}, "request_id")

    # Risk metrics: equal to `ultracore risk --json` on the same input.
    risk = checks["risk"]
    report = await call_ok(client, "calculate_risk_metrics", risk["request"])
    got, want = report.get("assets", {}), risk["assets"]
    check(set(got) == set(want), f"risk tickers {sorted(got)} != {sorted(want)}")
    for ticker, metrics in want.items():
        for name, value in metrics.items():
            check(close(got[ticker].get(name), value),
                  f"{ticker} {name}: {got[ticker].get(name)} != ultracore risk's {value}")
    log(f"risk metrics of {sorted(got)} equal ultracore risk's")
    # A portfolio all in one ticker has that ticker's metrics.
    tickers = risk["request"]["tickers"]
    one = dict(risk["request"], weights={tickers[0]: 1.0})
    report = await call_ok(client, "calculate_risk_metrics", one)
    for name, value in want[tickers[0]].items():
        check(close(report["portfolio"]["metrics"].get(name), value),
              f"portfolio {name}: {report['portfolio']['metrics'].get(name)} != {value}")
    await expect_tool_error(client, "calculate_risk_metrics", {"tickers": ["NOPE"]}, "tickers[0]")
    await expect_tool_error(client, "calculate_risk_metrics",
                            dict(risk["request"], weights={tickers[0]: 0.5}), "weights")
    summary["risk_tickers"] = sorted(got)
    return summary


def first_check_failed(e):
    """The CheckFailed in `e` or in the exception groups around it."""
    if isinstance(e, CheckFailed):
        return e
    for inner in getattr(e, "exceptions", ()):
        found = first_check_failed(inner)
        if found is not None:
            return found
    return None


async def main(argv):
    if len(argv) < 3 or argv[0] not in ("stdio", "http"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, checks_path = argv[0], argv[1]
    with open(checks_path) as f:
        checks = json.load(f)
    if mode == "stdio":
        rest = argv[2:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        server = StdioServerParameters(command=rest[0], args=rest[1:])
    else:
        server = argv[2]
        # A server behind UltraCore's guard needs the key on every request.
        key = os.environ.get("ULTRACORE_API_KEY")
        if key:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
            server = streamable_http_client(server, http_client=http)
    try:
        with anyio.fail_after(180 + float(os.environ.get("MCP_CLIENT_ANSWER_WAIT", "60"))):
            async with Client(server, mode=os.environ.get("MCP_CLIENT_MODE", "auto")) as client:
                log(f"connected over {mode}, protocol {client.protocol_version}")
                summary = await exercise(client, checks)
                summary["protocol_version"] = client.protocol_version
    except Exception as e:  # the SDK's task groups wrap what the checks raise
        failed = first_check_failed(e)
        if failed is None:
            raise
        print(f"[mcp_client] CHECK FAILED: {failed}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1:]))
