//! The agents on a running server, as the bank's app, its CRM and a price
//! feed reach them: a customer's key asks only about its own customer and
//! portfolios; the analytics count what ran; the CRM's webhook masks
//! personal data before it is published; a price feed's closes reach the
//! data mesh.

mod common;

use std::time::{Duration, Instant};

use common::{http, Error, Serve, TestResult};
use serde_json::{json, Value};

fn key(server: &Serve, args: &[&str]) -> Result<String, Error> {
    let out = common::ultracore()
        .args(["--data-dir", server.data_dir().to_str().ok_or("path")?])
        .args(["keys", "create", "--json"])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let key = v["key"].as_str().ok_or("no key")?.to_owned();
    // The server reloads the key file within a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::status(server.port, "POST", "/api/v1/assist", "{}", Some(&key)) == Some(401) {
        if Instant::now() > deadline {
            return Err("the server never accepted the new key".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(key)
}

fn post(server: &Serve, path: &str, body: &Value, key: &str) -> Result<(u16, Value), Error> {
    let (s, text) =
        http(server.port, "POST", path, &body.to_string(), Some(key)).ok_or("no answer")?;
    Ok((
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

#[test]
fn customers_ask_about_themselves_and_outside_systems_feed_the_log() -> TestResult {
    let mut server = Serve::start(&[])?;
    server.wait_ready()?;
    let c1 = key(
        &server,
        &[
            "--role",
            "customer",
            "--customer",
            "c-1",
            "--portfolio",
            "pf-c1",
        ],
    )?;

    // A customer key cannot be made without its customer, nor for all portfolios.
    let dir = server.data_dir().to_str().ok_or("path")?.to_owned();
    for bad in [
        vec!["--role", "customer"],
        vec![
            "--role",
            "customer",
            "--customer",
            "c-1",
            "--all-portfolios",
        ],
        vec!["--role", "viewer", "--customer", "c-1", "--all-portfolios"],
    ] {
        let out = common::ultracore()
            .args(["--data-dir", &dir, "keys", "create"])
            .args(&bad)
            .output()?;
        assert!(!out.status.success(), "{bad:?} was accepted");
    }

    // Its own question: answered by the loan agent from its tools.
    let q = json!({"query": "I earn 120k a year, how much could I borrow?"});
    let (s, reply) = post(&server, "/api/v1/assist", &q, &c1)?;
    assert_eq!(s, 200, "{reply}");
    assert_eq!(reply["customer_id"], "c-1");
    assert_eq!(reply["answers"][0]["agent_id"], "loan", "{reply}");
    assert_eq!(reply["answers"][0]["passed"], true, "{reply}");
    let execution = reply["answers"][0]["execution_id"]
        .as_str()
        .ok_or("no execution id")?
        .to_owned();
    // Someone else's customer or portfolio is not found, as if absent.
    for body in [
        json!({"query": "what is my balance", "customer_id": "c-2"}),
        json!({"query": "how risky is my portfolio", "portfolios": ["pf-c2"]}),
    ] {
        let (s, p) = post(&server, "/api/v1/assist", &body, &c1)?;
        assert_eq!(s, 404, "{p}");
    }
    let (s, p) = post(&server, "/api/v1/assist", &json!({"query": ""}), &c1)?;
    assert_eq!((s, p["field"].as_str()), (422, Some("query")), "{p}");
    // Staff with the assist permission name the customer.
    let (s, reply) = post(
        &server,
        "/api/v1/assist",
        &json!({"query": "what's my card balance", "customer_id": "c-2"}),
        &server.admin,
    )?;
    assert_eq!(
        (s, reply["customer_id"].as_str()),
        (200, Some("c-2")),
        "{reply}"
    );

    // The analytics service counts the executions (auditors read it).
    let auditor = server.key("auditor", None)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let loan = loop {
        let (s, body) = http(
            server.port,
            "GET",
            "/api/v1/analytics/agents/loan",
            "",
            Some(&auditor),
        )
        .ok_or("no answer")?;
        if s == 200 {
            break serde_json::from_str::<Value>(&body)?;
        }
        assert!(
            Instant::now() < deadline,
            "no analytics for loan: {s} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(loan["total"].as_u64() >= Some(1), "{loan}");
    assert_eq!(
        common::status(
            server.port,
            "GET",
            "/api/v1/analytics/agents",
            "",
            Some(&c1)
        ),
        Some(403)
    );

    // The CRM's webhook: personal data masked before it is published.
    let crm = key(&server, &["--role", "integration", "--name", "crm"])?;
    let interaction = json!({
        "interaction_id": "CRM-1", "customer_id": "c-1", "channel": "phone", "kind": "complaint",
        "summary": "Caller gave TFN 123 456 782 and asked about a declined payment.",
        "occurred_at": "2026-12-01T10:00:00Z", "source": "salesforce"});
    let (s, logged) = post(&server, "/api/v1/external/crm/events", &interaction, &crm)?;
    assert_eq!(s, 202, "{logged}");
    assert_eq!(logged["masked"], json!(["AU_TFN"]), "{logged}");
    let mut bad = interaction.clone();
    bad["channel"] = json!("pigeon");
    let (s, _) = post(&server, "/api/v1/external/crm/events", &bad, &crm)?;
    assert_eq!(s, 400);
    // An outside system reads nothing.
    assert_eq!(
        common::status(server.port, "GET", "/api/v1/notifications", "", Some(&crm)),
        Some(403)
    );

    // A price feed: validated, all or nothing, published.
    let today = chrono::Utc::now().date_naive();
    let update = json!({"updates": [{"ticker": "QUAL", "source": "feed-1",
        "prices": [{"date": today.pred_opt().ok_or("date")?, "close": 181.25}, {"date": today, "close": 182.5}]}]});
    let (s, published) = post(&server, "/api/v1/external/market-data", &update, &crm)?;
    assert_eq!(s, 202, "{published}");
    let mut negative = update.clone();
    negative["updates"][0]["prices"][1]["close"] = json!(-1.0);
    let (s, p) = post(&server, "/api/v1/external/market-data", &negative, &crm)?;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("updates[0].prices[1].close")),
        "{p}"
    );
    server.child.kill()?;
    server.child.wait()?;

    // With the server stopped, the execution replays to the same answer.
    let out = common::ultracore()
        .args(["--data-dir", &dir, "agents", "replay", &execution, "--json"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replay: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(replay["same"], true, "{replay}");
    assert_eq!(replay["agent_id"], "loan");
    let events = common::ultracore()
        .args(["--data-dir", &dir, "events", "tail", "external.crm.events"])
        .args(["--from-beginning", "--no-follow", "--json"])
        .output()?;
    let text = String::from_utf8(events.stdout)?;
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        !text.contains("123 456 782") && !text.contains("123456782"),
        "{text}"
    );
    Ok(())
}

/// The assistant keeps its conversations in the conversations table: the
/// question (masked) and the answer, in the customer's conversation, each
/// a captured change.
#[test]
fn answers_are_kept_in_the_customers_conversation() -> TestResult {
    let server = Serve::start(&[])?;
    server.wait_ready()?;
    let c1 = key(
        &server,
        &[
            "--role",
            "customer",
            "--customer",
            "c-1",
            "--portfolio",
            "pf-c1",
        ],
    )?;
    let q = json!({"query": "what is my card balance? my email is ada@example.com"});
    let (s, reply) = post(&server, "/api/v1/assist", &q, &c1)?;
    assert_eq!(s, 200, "{reply}");
    let id = reply["conversation_id"]
        .as_str()
        .ok_or("no conversation id")?
        .to_owned();
    assert!(
        !reply["question"]
            .as_str()
            .unwrap_or("")
            .contains("ada@example.com"),
        "{reply}"
    );
    // The same conversation again.
    let q = json!({"query": "and my recent transactions?", "conversation_id": id});
    let (s, reply) = post(&server, "/api/v1/assist", &q, &c1)?;
    assert_eq!(
        (s, reply["conversation_id"].as_str()),
        (200, Some(id.as_str())),
        "{reply}"
    );
    let (s, body) = http(
        server.port,
        "GET",
        &format!("/api/v1/conversations/{id}"),
        "",
        Some(&c1),
    )
    .ok_or("no answer")?;
    assert_eq!(s, 200, "{body}");
    let conversation: Value = serde_json::from_str(&body)?;
    let messages = conversation["messages"].as_array().ok_or("no messages")?;
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["customer", "agent", "customer", "agent"], "{body}");
    assert!(
        !body.contains("ada@example.com"),
        "personal data was kept: {body}"
    );
    // Another customer's conversation is not found, before anything is answered.
    let (s, _) = post(
        &server,
        "/api/v1/assist",
        &json!({"query": "what is my balance", "customer_id": "c-2", "conversation_id": id}),
        &server.admin,
    )?;
    assert_eq!(s, 404);
    Ok(())
}
