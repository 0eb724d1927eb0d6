//! An optional language model that rephrases the agents' answers.
//!
//! The agents answer without one: their answers are built from their
//! tools' results, and the critic checks every figure against those
//! results. A model, when one is configured, only rewords an answer that
//! already passed; the assistant checks the rewrite again (see
//! [`crate::assist`]) and keeps the agent's own words whenever the model
//! fails, is slow, or says more than it was given.
//!
//! [`OpenAiCompatible`] speaks the OpenAI chat-completions protocol
//! (`POST {base}/v1/chat/completions`), as vLLM, Ollama, the llama.cpp
//! server and OpenAI do, over http or https (rustls, the system's CAs).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

/// How long a model is given unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5_000);

/// The most tokens asked of a model for one rewrite (answers are a few
/// sentences).
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// Longest reply body read from an endpoint: a chat completion of
/// [`DEFAULT_MAX_TOKENS`] is a few kilobytes.
const MAX_REPLY: usize = 1 << 20;

/// Most bytes of an error body quoted in [`ModelError::Status`].
const QUOTED: usize = 200;

/// Who wrote a [`ChatMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of a chat, as the chat-completions protocol sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// Why a model gave no text. No variant carries an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A configuration variable is missing or has a bad value.
    #[error("{variable}: {reason}")]
    Config {
        variable: &'static str,
        reason: String,
    },
    /// The endpoint answered with a status other than 2xx.
    #[error("the model endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("timed out after {ms} ms")]
    Timeout { ms: u64 },
    /// The endpoint could not be reached, or the exchange broke off.
    #[error("the model endpoint could not be asked: {0}")]
    Request(String),
    /// The reply is not a chat completion.
    #[error("the model endpoint's reply is not a chat completion: {0}")]
    Malformed(String),
    #[error("the model endpoint returned no choices")]
    NoChoices,
}

/// The future of [`LanguageModel::complete`].
pub type Completion<'a> = Pin<Box<dyn Future<Output = Result<String, ModelError>> + Send + 'a>>;

/// A chat model.
pub trait LanguageModel: Send + Sync + 'static {
    /// The text the model adds to `messages` (the last one the user's).
    ///
    /// # Errors
    ///
    /// The model could not be asked, did not answer within
    /// [`LanguageModel::timeout`], or its reply has no text. Errors never
    /// carry a credential.
    fn complete<'a>(&'a self, messages: &'a [ChatMessage]) -> Completion<'a>;

    /// The model's name, as it is recorded on the answers it phrased.
    fn name(&self) -> &str;

    /// How long a caller should wait for [`LanguageModel::complete`].
    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }
}

/// A client of an OpenAI-compatible chat-completions endpoint over plain
/// http.
#[derive(Clone)]
pub struct OpenAiCompatible {
    /// `{base}/v1/chat/completions`.
    endpoint: Url,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
    max_tokens: u32,
    client: reqwest::Client,
}

// By hand: the API key is shown as redacted, never as it is.
impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

const URL_VAR: &str = "ULTRACORE_MODEL_URL";
const MODEL_VAR: &str = "ULTRACORE_MODEL";
const KEY_VAR: &str = "ULTRACORE_MODEL_API_KEY";
const TIMEOUT_VAR: &str = "ULTRACORE_MODEL_TIMEOUT_MS";

impl OpenAiCompatible {
    /// The client of the server at `base_url` (`http://127.0.0.1:8000`; a
    /// trailing `/v1` is accepted) asking `model`, without an API key,
    /// with [`DEFAULT_TIMEOUT`] and [`DEFAULT_MAX_TOKENS`].
    ///
    /// # Errors
    ///
    /// `base_url` is not an `http://` or `https://` URL, carries
    /// credentials, or `model` is empty.
    pub fn new(base_url: &str, model: &str) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::Config {
            variable: URL_VAR,
            reason,
        };
        let mut base = Url::parse(base_url.trim())
            .map_err(|e| bad(format!("{:?} is not a URL: {e}", shown(base_url))))?;
        match base.scheme() {
            "http" | "https" => {}
            other => {
                return Err(bad(format!(
                    "{} has scheme {other:?}: give the server's http:// or https:// address, \
                     e.g. http://127.0.0.1:8000",
                    shown(base_url)
                )))
            }
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(bad(format!(
                "{} carries credentials: give the address alone, and the key in {KEY_VAR}",
                shown(base_url)
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad(format!("{} names no host", shown(base_url))));
        }
        if model.trim().is_empty() {
            return Err(ModelError::Config {
                variable: MODEL_VAR,
                reason: "the model name is empty".into(),
            });
        }
        // `{base}/v1/chat/completions`, whether the base was given with
        // `/v1` (as OpenAI's own clients take it) or without.
        let path = base.path().trim_end_matches('/');
        let path = path.strip_suffix("/v1").unwrap_or(path).to_owned();
        base.set_path(&format!("{path}/v1/chat/completions"));
        base.set_query(None);
        base.set_fragment(None);
        Ok(OpenAiCompatible {
            endpoint: base,
            model: model.trim().to_owned(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_tokens: DEFAULT_MAX_TOKENS,
            client: reqwest::Client::new(),
        })
    }

    /// Sends `key` as a bearer token (an empty key sends none).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.api_key = (!key.is_empty()).then_some(key);
        self
    }

    /// How long one completion may take, from connecting to the last byte.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// The client the environment configures: `ULTRACORE_MODEL_URL` (unset
    /// or empty: no model, `Ok(None)`), `ULTRACORE_MODEL` (the model's
    /// name, required with a URL), `ULTRACORE_MODEL_API_KEY` (optional)
    /// and `ULTRACORE_MODEL_TIMEOUT_MS` (default 5000).
    ///
    /// # Errors
    ///
    /// A URL is set and the model is not, or a variable has a bad value
    /// (see [`OpenAiCompatible::new`]).
    pub fn from_env() -> Result<Option<Self>, ModelError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`OpenAiCompatible::from_env`] with the variables read by `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ModelError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let Some(url) = set(URL_VAR) else {
            return Ok(None);
        };
        let Some(model) = set(MODEL_VAR) else {
            return Err(ModelError::Config {
                variable: MODEL_VAR,
                reason: format!(
                    "not set, and {URL_VAR} is: name the model to ask at {} (e.g. \
                     ULTRACORE_MODEL=llama3.1:8b), or unset {URL_VAR} to answer without one",
                    shown(&url)
                ),
            });
        };
        let mut client = OpenAiCompatible::new(&url, &model)?;
        if let Some(key) = set(KEY_VAR) {
            client = client.with_api_key(key.trim());
        }
        if let Some(ms) = set(TIMEOUT_VAR) {
            let ms = ms
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=600_000).contains(ms))
                .ok_or_else(|| ModelError::Config {
                    variable: TIMEOUT_VAR,
                    reason: format!("{ms:?} is not a number of milliseconds from 1 to 600000"),
                })?;
            client = client.with_timeout(Duration::from_millis(ms));
        }
        Ok(Some(client))
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The endpoint's `host:port`, for logs.
    pub fn host(&self) -> String {
        let host = self.endpoint.host_str().unwrap_or_default();
        match self.endpoint.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    async fn ask(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        #[derive(Serialize)]
        struct Request<'a> {
            model: &'a str,
            messages: &'a [ChatMessage],
            temperature: f32,
            max_tokens: u32,
        }
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .timeout(self.timeout)
            .json(&Request {
                model: &self.model,
                messages,
                temperature: 0.0,
                max_tokens: self.max_tokens,
            });
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| self.failed(e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_REPLY {
                return Err(ModelError::Malformed(format!(
                    "the reply is over {MAX_REPLY} bytes"
                )));
            }
        }
        // Redacted whole, before any quoting could cut the key in two.
        let body = self.redact(&String::from_utf8_lossy(&body));
        if !status.is_success() {
            return Err(ModelError::Status {
                status: status.as_u16(),
                body: quote(body.as_bytes()),
            });
        }
        completion_text(body.as_bytes())
    }

    fn failed(&self, e: reqwest::Error) -> ModelError {
        if e.is_timeout() {
            return ModelError::Timeout {
                ms: self.timeout.as_millis().try_into().unwrap_or(u64::MAX),
            };
        }
        // reqwest's message is "error sending request"; the cause
        // (connection refused, reset, …) is in its sources. The URL is left
        // out: it is in the configuration.
        let e = e.without_url();
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        ModelError::Request(self.redact(&reason))
    }

    /// `text` with the API key, should an endpoint echo it, replaced.
    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) => text.replace(key.as_str(), "<redacted>"),
            None => text.to_owned(),
        }
    }
}

impl LanguageModel for OpenAiCompatible {
    fn complete<'a>(&'a self, messages: &'a [ChatMessage]) -> Completion<'a> {
        Box::pin(self.ask(messages))
    }

    fn name(&self) -> &str {
        &self.model
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// `choices[0].message.content` of a chat completion.
fn completion_text(body: &[u8]) -> Result<String, ModelError> {
    #[derive(Deserialize)]
    struct Completion {
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        content: Option<String>,
    }
    let completion: Completion = serde_json::from_slice(body)
        .map_err(|e| ModelError::Malformed(format!("{e}; the reply begins {:?}", quote(body))))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or(ModelError::NoChoices)?;
    match choice.message.content {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(ModelError::Malformed(
            "choices[0].message.content is empty".into(),
        )),
    }
}

/// The first [`QUOTED`] bytes of `body`, as text.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].trim().to_owned();
    if end < text.len() {
        out.push('…');
    }
    out
}

/// `url` without a user name or password, for messages.
fn shown(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.split('@').next_back().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_base_and_the_protocol_path() {
        for base in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/",
            "http://127.0.0.1:8000/v1",
            "http://127.0.0.1:8000/v1/",
        ] {
            let c = OpenAiCompatible::new(base, "m").unwrap();
            assert_eq!(
                c.endpoint.as_str(),
                "http://127.0.0.1:8000/v1/chat/completions"
            );
            assert_eq!(c.host(), "127.0.0.1:8000");
        }
        let c = OpenAiCompatible::new("http://gw.local/ollama", "m").unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "http://gw.local/ollama/v1/chat/completions"
        );
        assert_eq!(c.host(), "gw.local:80");
    }

    #[test]
    fn http_and_https_are_taken() {
        let c = OpenAiCompatible::new("https://api.openai.com/v1", "m").unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert!(OpenAiCompatible::new("ftp://host", "m").is_err());
        assert!(OpenAiCompatible::new("localhost:8000", "m").is_err());
        assert!(OpenAiCompatible::new("http://host", " ").is_err());
        let e = OpenAiCompatible::new("https://me:secret@host", "m").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.to_string().contains("ULTRACORE_MODEL_API_KEY"), "{e}");
    }

    #[test]
    fn a_completion_is_its_first_choice() {
        let ok = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}"#;
        assert_eq!(completion_text(ok).unwrap(), "Hi.");
        assert_eq!(
            completion_text(br#"{"choices":[]}"#).unwrap_err(),
            ModelError::NoChoices
        );
        assert!(matches!(
            completion_text(br#"{"choices":[{"message":{"content":null}}]}"#),
            Err(ModelError::Malformed(_))
        ));
        assert!(matches!(
            completion_text(b"<html>"),
            Err(ModelError::Malformed(_))
        ));
    }

    #[test]
    fn quotes_stop_at_200_bytes_on_a_character() {
        let long = "é".repeat(300);
        let q = quote(long.as_bytes());
        assert!(q.len() <= QUOTED + '…'.len_utf8());
        assert!(q.ends_with('…'));
        assert_eq!(quote(b" short "), "short");
    }
}
