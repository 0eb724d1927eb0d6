//! The optional language model end to end: the assistant's card agent
//! answers from its tools, and an OpenAI-compatible endpoint — a real HTTP
//! server on 127.0.0.1:0 speaking the chat-completions protocol as vLLM,
//! Ollama and OpenAI do — rewords the answer. A rewording goes out only
//! when it passes the critic and the screen and keeps every figure; any
//! failure of the model leaves the agent's words, with a note of why.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use ultracore_agents::assist::{AgentAnswer, Assistant, PhrasedBy};
use ultracore_agents::{ChatMessage, LanguageModel, ModelError, OpenAiCompatible, Role};
use ultracore_log_embedded::EmbeddedLog;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: &str = "sk-test-5f1c0e7a";
const MODEL: &str = "test-model";
/// The customer's e-mail is masked before any agent or model sees it.
const QUESTION: &str = "what is my card balance? write to me at jane.doe@example.com";

// ---------------------------------------------------------------------
// The endpoint: POST /v1/chat/completions as OpenAI specifies it.
// ---------------------------------------------------------------------

/// What the endpoint does with the next completions.
#[derive(Debug, Clone)]
enum Script {
    /// Answers with this text.
    Reply(String),
    /// Answers after this long.
    Slow(Duration, String),
    /// HTTP 500 with an OpenAI error body.
    Fails,
    /// HTTP 200 with a body that is not JSON.
    Garbled,
    /// A chat completion without choices.
    NoChoices,
}

#[derive(Debug)]
struct Endpoint {
    key: String,
    model: String,
    script: Mutex<Script>,
    /// The bodies of the requests it answered (after their checks).
    seen: Mutex<Vec<Value>>,
    /// Requests refused for their key.
    refused: AtomicU64,
    ids: AtomicU64,
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

/// What is wrong with a request body, as the protocol defines it.
fn bad_body(body: &Value, model: &str) -> Option<String> {
    let Some(obj) = body.as_object() else {
        return Some("the body is not a JSON object".into());
    };
    match obj.get("model").and_then(Value::as_str) {
        Some(m) if m == model => {}
        Some(m) => return Some(format!("The model `{m}` does not exist")),
        None => return Some("you must provide a model parameter".into()),
    }
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Some("'messages' is a required property".into());
    };
    if messages.is_empty() {
        return Some("'messages' must not be empty".into());
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("system" | "user" | "assistant")) {
            return Some(format!("messages[{i}].role: {role:?} is not a role"));
        }
        if m.get("content").and_then(Value::as_str).is_none() {
            return Some(format!("messages[{i}].content must be a string"));
        }
        if m.as_object().is_some_and(|o| o.len() != 2) {
            return Some(format!(
                "messages[{i}] has fields other than role and content"
            ));
        }
    }
    if messages.last().and_then(|m| m["role"].as_str()) != Some("user") {
        return Some("the last message must be the user's".into());
    }
    if obj.get("temperature").and_then(Value::as_f64) != Some(0.0) {
        return Some("temperature must be 0 for this client".into());
    }
    match obj.get("max_tokens").and_then(Value::as_u64) {
        Some(n) if n > 0 => None,
        _ => Some("max_tokens must be a positive integer".into()),
    }
}

async fn completions(State(e): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {}", e.key) {
        e.refused.fetch_add(1, Ordering::SeqCst);
        // OpenAI quotes the key it was given; the client must not repeat it.
        let given = auth.strip_prefix("Bearer ").unwrap_or("none");
        return openai_error(
            StatusCode::UNAUTHORIZED,
            &format!("Incorrect API key provided: {given}."),
            "invalid_request_error",
            "invalid_api_key",
        );
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let parsed: Option<Value> = serde_json::from_slice(&body).ok().filter(|_| json_body);
    let Some(body) = parsed else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            "invalid_json",
        );
    };
    if let Some(problem) = bad_body(&body, &e.model) {
        return openai_error(
            StatusCode::BAD_REQUEST,
            &problem,
            "invalid_request_error",
            "invalid_body",
        );
    }
    e.seen.lock().unwrap().push(body.clone());
    let script = e.script.lock().unwrap().clone();
    let content = match script {
        Script::Reply(text) => text,
        Script::Slow(wait, text) => {
            tokio::time::sleep(wait).await;
            text
        }
        Script::Fails => {
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request: CUDA out of memory.",
                "server_error",
                "internal_error",
            )
        }
        Script::Garbled => return (StatusCode::OK, "<html>upstream gone</html>").into_response(),
        Script::NoChoices => String::new(),
    };
    let id = e.ids.fetch_add(1, Ordering::SeqCst);
    let prompt_tokens: usize = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            m["content"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .sum();
    let completion_tokens = content.split_whitespace().count();
    let choices = if content.is_empty() {
        json!([])
    } else {
        json!([{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": "stop",
        }])
    };
    Json(json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": Utc::now().timestamp(),
        "model": e.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response()
}

/// A running endpoint and its base URL.
struct Running {
    endpoint: Arc<Endpoint>,
    base: String,
}

impl Running {
    async fn start(script: Script) -> Result<Running, Box<dyn std::error::Error>> {
        let endpoint = Arc::new(Endpoint {
            key: KEY.into(),
            model: MODEL.into(),
            script: Mutex::new(script),
            seen: Mutex::new(Vec::new()),
            refused: AtomicU64::new(0),
            ids: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Running { endpoint, base })
    }

    /// The client as the environment would configure it, with `timeout`.
    fn client(&self, timeout: Duration) -> Result<OpenAiCompatible, ModelError> {
        Ok(OpenAiCompatible::new(&self.base, MODEL)?
            .with_api_key(KEY)
            .with_timeout(timeout))
    }

    fn script(&self, script: Script) {
        *self.endpoint.script.lock().unwrap() = script;
    }

    fn seen(&self) -> Vec<Value> {
        self.endpoint.seen.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------
// The assistant, as tests/assist.rs builds it.
// ---------------------------------------------------------------------

struct Fixture {
    _dir: tempfile::TempDir,
    assistant: Assistant<EmbeddedLog>,
    /// The card agent's own answer to [`QUESTION`].
    answer: String,
}

/// The assistant without a model, a card account with a balance of
/// $200.40 of $6,000.00, and its answer to [`QUESTION`].
async fn fixture() -> Result<Fixture, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (log, store) = common::store(dir.path())?;
    common::card_account(
        &store,
        "c-1",
        &[("t1", "Grocer", 120.40), ("t2", "Bookshop", 80.0)],
    )
    .await?;
    let assistant = common::assistant(dir.path(), &log, store).await?;
    let plain = assistant.assist(Some("c-1"), QUESTION, &[]).await?;
    let card = card_answer(&plain.answers)?;
    assert!(card.passed, "{:?}", card.critic);
    assert!(card.text.contains("$200.40"), "{}", card.text);
    // No model: the agent's words, and nothing to say about a model.
    assert_eq!(
        serde_json::to_value(&card.phrasing)?,
        json!({"by": "agent", "model": null, "note": null})
    );
    let answer = card.text.clone();
    Ok(Fixture {
        _dir: dir,
        assistant,
        answer,
    })
}

fn card_answer(answers: &[AgentAnswer]) -> Result<&AgentAnswer, String> {
    answers
        .iter()
        .find(|a| a.agent_id == "card")
        .ok_or_else(|| format!("no card answer in {answers:?}"))
}

/// The card answer to [`QUESTION`] with `model` rewording it.
async fn ask_with(
    fx: &Fixture,
    model: impl LanguageModel,
) -> Result<(AgentAnswer, String), Box<dyn std::error::Error>> {
    let assistant = fx.assistant.clone().with_model(Arc::new(model));
    let reply = assistant.assist(Some("c-1"), QUESTION, &[]).await?;
    let card = card_answer(&reply.answers)?.clone();
    Ok((card, reply.text))
}

/// The rewording was not used: the agent's words went out, with a note.
fn kept_the_agents_words(card: &AgentAnswer, fx: &Fixture) -> Result<String, String> {
    if card.phrasing.by != PhrasedBy::Agent || card.text != fx.answer {
        return Err(format!("the rewording was used: {card:?}"));
    }
    if card.phrasing.model.as_deref() != Some(MODEL) {
        return Err(format!("the model asked is not recorded: {card:?}"));
    }
    card.phrasing
        .note
        .clone()
        .ok_or_else(|| format!("no note: {card:?}"))
}

// ---------------------------------------------------------------------
// (a) a faithful rewording is used.
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faithful_rewording_is_what_the_customer_reads() -> TestResult {
    let fx = fixture().await?;
    // Reworded as a model would: new sentences, the same figures as written.
    let reworded = "You have used $200.40 of your $6,000.00 limit, which leaves $5,799.60 \
                    to spend. Your latest purchases were $80.00 at Bookshop and $120.40 at Grocer."
        .to_owned();
    let endpoint = Running::start(Script::Reply(reworded.clone())).await?;
    let (card, text) = ask_with(&fx, endpoint.client(Duration::from_secs(5))?).await?;
    assert_eq!(card.text, reworded);
    assert_eq!(text, reworded, "the reply joins the reworded answers");
    assert_eq!(
        serde_json::to_value(&card.phrasing)?,
        json!({"by": "model", "model": MODEL, "note": null})
    );
    // The critic's checks are those of the agent's answer, unchanged.
    assert!(card.passed && card.critic.iter().all(|c| c.passed));
    let json = serde_json::to_value(&card)?;
    let fields: Vec<&str> = json
        .as_object()
        .ok_or("not an object")?
        .keys()
        .map(String::as_str)
        .collect();
    assert!(fields.contains(&"phrasing") && fields.contains(&"masked"));

    // What the model was sent: the protocol's shape, the rules, the masked
    // question, the answer and its tools.
    let seen = endpoint.seen();
    assert_eq!(seen.len(), 1);
    let body = &seen[0];
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["temperature"].as_f64(), Some(0.0));
    let messages: Vec<ChatMessage> = serde_json::from_value(body["messages"].clone())?;
    assert_eq!(
        messages.iter().map(|m| m.role).collect::<Vec<_>>(),
        [Role::System, Role::User]
    );
    let system = &messages[0].content;
    for rule in [
        "exactly as written",
        "Add no figures",
        "no advice",
        "no promises",
    ] {
        assert!(system.contains(rule), "{rule:?} not in {system}");
    }
    let user = &messages[1].content;
    assert!(user.contains(&fx.answer), "{user}");
    assert!(user.contains("card_account"), "{user}");
    assert!(user.contains("what is my card balance?"), "{user}");
    assert!(
        !body.to_string().contains("jane.doe@example.com") && user.contains("<EMAIL_ADDRESS>"),
        "the model saw the customer's e-mail: {user}"
    );

    // The client alone: the protocol's answer text.
    let client = endpoint.client(Duration::from_secs(5))?;
    let said = client
        .complete(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")])
        .await?;
    assert_eq!(said, reworded);
    assert_eq!(client.name(), MODEL);
    Ok(())
}

// ---------------------------------------------------------------------
// (b) figures no tool gave, promises and dropped figures are rejected.
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewording_with_a_figure_no_tool_gave_is_rejected() -> TestResult {
    let fx = fixture().await?;
    let endpoint = Running::start(Script::Reply(format!(
        "{} You could also earn 12.5% on it.",
        fx.answer
    )))
    .await?;
    let (card, text) = ask_with(&fx, endpoint.client(Duration::from_secs(5))?).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert_eq!(note, "the model stated 12.5, which no tool gave");
    assert!(!text.contains("12.5"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewording_that_promises_or_drops_a_figure_is_rejected() -> TestResult {
    let fx = fixture().await?;
    let endpoint = Running::start(Script::Reply(format!(
        "{} Your limit is guaranteed.",
        fx.answer
    )))
    .await?;
    let model = endpoint.client(Duration::from_secs(5))?;
    let (card, _) = ask_with(&fx, model.clone()).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(
        note.contains("promise") && note.contains("guarantee"),
        "{note}"
    );

    // The balance left out: every figure of the answer must stay.
    endpoint.script(Script::Reply("Your card account is in good order.".into()));
    let (card, _) = ask_with(&fx, model).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(note.starts_with("the model left out 200.4"), "{note}");
    Ok(())
}

// ---------------------------------------------------------------------
// (c) personal data in a rewording discards it.
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewording_with_personal_data_is_discarded_by_the_screen() -> TestResult {
    let fx = fixture().await?;
    let endpoint = Running::start(Script::Reply(format!(
        "{} Questions? Write to jane.doe@example.com.",
        fx.answer
    )))
    .await?;
    let model = endpoint.client(Duration::from_secs(5))?;
    let (card, text) = ask_with(&fx, model.clone()).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(
        note.contains("personal data") && note.contains("EMAIL_ADDRESS"),
        "{note}"
    );
    assert!(!text.contains("jane.doe@example.com"));

    endpoint.script(Script::Reply(format!(
        "{} Your card 4539 1488 0343 6467 is active.",
        fx.answer
    )));
    let assistant = fx.assistant.clone().with_model(Arc::new(model));
    let reply = assistant.assist(Some("c-1"), QUESTION, &[]).await?;
    let card = card_answer(&reply.answers)?;
    let note = kept_the_agents_words(card, &fx)?;
    assert!(note.contains("CREDIT_CARD"), "{note}");
    assert!(!serde_json::to_string(&reply)?.contains("4539"));
    Ok(())
}

// ---------------------------------------------------------------------
// (d)–(f) the model failing never fails the question.
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_model_is_not_waited_for() -> TestResult {
    let fx = fixture().await?;
    let endpoint = Running::start(Script::Slow(
        Duration::from_secs(10),
        format!("Late: {}", fx.answer),
    ))
    .await?;
    let started = Instant::now();
    let (card, _) = ask_with(&fx, endpoint.client(Duration::from_millis(300))?).await?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(kept_the_agents_words(&card, &fx)?, "timed out after 300 ms");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_garbled_replies_leave_the_agents_words() -> TestResult {
    let fx = fixture().await?;
    let endpoint = Running::start(Script::Fails).await?;
    let model = endpoint.client(Duration::from_secs(5))?;
    let (card, _) = ask_with(&fx, model.clone()).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(
        note.starts_with("the model endpoint answered HTTP 500: ")
            && note.contains("CUDA out of memory"),
        "{note}"
    );

    endpoint.script(Script::Garbled);
    let (card, _) = ask_with(&fx, model.clone()).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(
        note.contains("not a chat completion") && note.contains("<html>upstream gone"),
        "{note}"
    );

    endpoint.script(Script::NoChoices);
    let (card, _) = ask_with(&fx, model.clone()).await?;
    assert_eq!(
        kept_the_agents_words(&card, &fx)?,
        "the model endpoint returned no choices"
    );

    // Nothing listening: the model cannot be reached.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?
    };
    let unreachable = OpenAiCompatible::new(&format!("http://{gone}"), MODEL)?;
    let (card, _) = ask_with(&fx, unreachable).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(
        note.starts_with("the model endpoint could not be asked"),
        "{note}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_is_a_401_in_the_note_without_the_key() -> TestResult {
    let fx = fixture().await?;
    let endpoint = Running::start(Script::Reply(fx.answer.clone())).await?;
    let wrong = "sk-wrong-9d2b41";
    let model = OpenAiCompatible::new(&endpoint.base, MODEL)?.with_api_key(wrong);
    let (card, _) = ask_with(&fx, model.clone()).await?;
    let note = kept_the_agents_words(&card, &fx)?;
    assert!(note.contains("HTTP 401"), "{note}");
    // The endpoint quoted the key it was given; the note does not.
    assert!(!note.contains(wrong), "{note}");
    let e = model
        .complete(&[ChatMessage::user("Hi")])
        .await
        .unwrap_err();
    assert!(matches!(e, ModelError::Status { status: 401, .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains(wrong));

    // No key at all, to an endpoint that wants one.
    let keyless = OpenAiCompatible::new(&endpoint.base, MODEL)?;
    let (card, _) = ask_with(&fx, keyless).await?;
    assert!(kept_the_agents_words(&card, &fx)?.contains("HTTP 401"));
    assert_eq!(endpoint.endpoint.refused.load(Ordering::SeqCst), 3);
    assert!(endpoint.seen().is_empty());
    Ok(())
}

// ---------------------------------------------------------------------
// (g) configuration.
// ---------------------------------------------------------------------

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn the_environment_configures_the_model() -> TestResult {
    // Unset (or empty): no model, and nothing else is read.
    assert!(OpenAiCompatible::from_lookup(vars(&[]))?.is_none());
    assert!(OpenAiCompatible::from_lookup(vars(&[
        ("ULTRACORE_MODEL_URL", ""),
        ("ULTRACORE_MODEL_TIMEOUT_MS", "soon"),
    ]))?
    .is_none());
    // The process's own environment: the tests never set the variables.
    if std::env::var_os("ULTRACORE_MODEL_URL").is_none() {
        assert!(OpenAiCompatible::from_env()?.is_none());
    }

    // https is taken (rustls, the system's CAs); an endpoint that cannot
    // be reached is the model's failure, never the question's.
    let tls = OpenAiCompatible::from_lookup(vars(&[
        ("ULTRACORE_MODEL_URL", "https://127.0.0.1:9/v1"),
        ("ULTRACORE_MODEL", "gpt-4o-mini"),
    ]))?
    .ok_or("an https endpoint is configured")?;
    let e = tls
        .complete(&[ChatMessage::user("hello")])
        .await
        .unwrap_err();
    assert!(!e.to_string().is_empty());

    // Credentials in the URL are refused, without repeating them.
    let e = OpenAiCompatible::from_lookup(vars(&[
        (
            "ULTRACORE_MODEL_URL",
            "https://user:hunter2@api.example.com",
        ),
        ("ULTRACORE_MODEL", "gpt-4o-mini"),
    ]))
    .unwrap_err();
    let said = e.to_string();
    assert!(
        said.starts_with("ULTRACORE_MODEL_URL: ")
            && said.contains("ULTRACORE_MODEL_API_KEY")
            && !said.contains("hunter2"),
        "{said}"
    );

    // A URL without a model.
    let e =
        OpenAiCompatible::from_lookup(vars(&[("ULTRACORE_MODEL_URL", "http://127.0.0.1:11434")]))
            .unwrap_err();
    assert!(e.to_string().starts_with("ULTRACORE_MODEL: not set"), "{e}");

    // A bad timeout.
    let e = OpenAiCompatible::from_lookup(vars(&[
        ("ULTRACORE_MODEL_URL", "http://127.0.0.1:11434"),
        ("ULTRACORE_MODEL", "llama3.1:8b"),
        ("ULTRACORE_MODEL_TIMEOUT_MS", "0"),
    ]))
    .unwrap_err();
    assert!(
        e.to_string().starts_with("ULTRACORE_MODEL_TIMEOUT_MS: "),
        "{e}"
    );

    // Everything set: the key never shows.
    let key = "sk-live-0c4e5b77a1";
    let client = OpenAiCompatible::from_lookup(vars(&[
        ("ULTRACORE_MODEL_URL", "http://127.0.0.1:11434/v1"),
        ("ULTRACORE_MODEL", "llama3.1:8b"),
        ("ULTRACORE_MODEL_API_KEY", key),
        ("ULTRACORE_MODEL_TIMEOUT_MS", "1500"),
    ]))?
    .ok_or("no client")?;
    assert_eq!(client.model(), "llama3.1:8b");
    assert_eq!(client.name(), "llama3.1:8b");
    assert_eq!(client.host(), "127.0.0.1:11434");
    assert_eq!(client.timeout(), Duration::from_millis(1500));
    let debug = format!("{client:?} {client:#?}");
    assert!(
        !debug.contains(key) && debug.contains("<redacted>"),
        "{debug}"
    );
    assert!(debug.contains("/v1/chat/completions"), "{debug}");
    Ok(())
}
