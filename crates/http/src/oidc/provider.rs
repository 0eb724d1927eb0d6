//! The provider's side: discovery, its signing keys, the HTTP client and
//! the rule for the URLs the server fetches or sends browsers to.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use ultracore_auth::JwtVerifier;

use super::{OidcError, Result};

/// How often the signing keys are fetched again.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Fetches forced by an unknown `kid` happen at most this often: anyone can
/// send a token with a made-up `kid`, and must not make the server hammer
/// the provider.
const MIN_FORCED_REFRESH: Duration = Duration::from_secs(30);
/// Discovery documents and key sets larger than this are refused.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// How long one exchange with the provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The client for the provider: no redirects followed (a redirect could
/// lead to plain http or to another host), bounded time.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("ultracore/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OidcError::Config {
            reason: format!("cannot build the HTTP client: {e}"),
        })
}

/// `url` parsed, when it is https, or http to a loopback host; `what`
/// names it in the error ("issuer", "token endpoint", …).
pub fn check_url(what: &'static str, url: &str) -> Result<Url> {
    let bad = |reason: &str| OidcError::BadUrl {
        what,
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it carries credentials"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("it has a #fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(OidcError::InsecureUrl {
            what,
            url: url.to_owned(),
        }),
        other => Err(bad(&format!("the scheme is {other}, not https"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The parts of a provider's discovery document the sign-in uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

/// Fetches `{issuer}/.well-known/openid-configuration` and checks it: the
/// `issuer` it names is the configured one exactly (OpenID Connect
/// Discovery §4.3), and every endpoint passes [`check_url`].
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<ProviderMetadata> {
    check_url("issuer", issuer)?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = get(client, &url).await?;
    let meta: ProviderMetadata =
        serde_json::from_slice(&body).map_err(|e| OidcError::Document {
            url: url.clone(),
            reason: format!("not a discovery document ({e})"),
        })?;
    if meta.issuer != issuer {
        return Err(OidcError::IssuerMismatch {
            configured: issuer.to_owned(),
            discovered: meta.issuer,
        });
    }
    check_url("authorization endpoint", &meta.authorization_endpoint)?;
    check_url("token endpoint", &meta.token_endpoint)?;
    check_url("JWKS URI", &meta.jwks_uri)?;
    if !meta.code_challenge_methods_supported.is_empty()
        && !meta
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        return Err(OidcError::Document {
            url,
            reason:
                "the provider does not support PKCE with S256 (code_challenge_methods_supported)"
                    .into(),
        });
    }
    Ok(meta)
}

/// A GET of a JSON document, at most [`MAX_DOCUMENT_BYTES`].
async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fetch_error(url, &e))?;
    if !resp.status().is_success() {
        return Err(OidcError::Status {
            url: url.to_owned(),
            status: resp.status().as_u16(),
        });
    }
    read_limited(resp, url, MAX_DOCUMENT_BYTES).await
}

/// The body of `resp`, refused past `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_error(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(OidcError::Document {
                url: url.to_owned(),
                reason: format!("larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn fetch_error(url: &str, e: &reqwest::Error) -> OidcError {
    // The error's own text can repeat the URL; the source says why.
    let mut reason = if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the exchange failed".to_owned()
    };
    if let Some(source) = std::error::Error::source(e) {
        reason = format!("{reason} ({source})");
    }
    OidcError::Fetch {
        url: url.to_owned(),
        reason,
    }
}

/// The provider's signing keys at its `jwks_uri`, installed into the
/// verifiers that check its tokens: at start, every
/// [`JWKS_REFRESH_INTERVAL`], and when a token names a `kid` none of them
/// knows (the provider rotated its keys). A failed fetch keeps the keys
/// the verifiers have and logs a warning.
#[derive(Debug)]
pub struct JwksSource {
    client: reqwest::Client,
    url: String,
    verifiers: Vec<Arc<JwtVerifier>>,
    /// When the last fetch forced by an unknown `kid` started.
    last_forced: Mutex<Option<Instant>>,
    /// One forced fetch at a time; the requests that wait for it retry
    /// with its keys instead of fetching again.
    forced: tokio::sync::Mutex<()>,
}

impl JwksSource {
    /// Checks `jwks_uri` ([`check_url`]); fetches nothing yet.
    pub fn new(
        client: reqwest::Client,
        jwks_uri: &str,
        verifiers: Vec<Arc<JwtVerifier>>,
    ) -> Result<JwksSource> {
        check_url("JWKS URI", jwks_uri)?;
        Ok(JwksSource {
            client,
            url: jwks_uri.to_owned(),
            verifiers,
            last_forced: Mutex::new(None),
            forced: tokio::sync::Mutex::new(()),
        })
    }

    /// The key set's text, as the provider serves it now.
    pub async fn fetch(&self) -> Result<String> {
        let body = get(&self.client, &self.url).await?;
        String::from_utf8(body).map_err(|_| OidcError::Document {
            url: self.url.clone(),
            reason: "not UTF-8".into(),
        })
    }

    /// Fetches the keys and installs them into every verifier; returns how
    /// many are usable. On an error the verifiers keep their keys.
    pub async fn refresh(&self) -> Result<usize> {
        let text = self.fetch().await?;
        let mut usable = 0;
        for v in &self.verifiers {
            usable = v.set_jwks(&text).map_err(|source| OidcError::Jwks {
                url: self.url.clone(),
                source,
            })?;
        }
        tracing::debug!(url = %self.url, usable, "JWKS refreshed");
        Ok(usable)
    }

    /// A token named a `kid` no verifier knows: fetch the keys now, unless
    /// a forced fetch started less than 30 s ago. Returns once the keys are
    /// as fresh as they will get, so the caller can verify again.
    pub async fn refresh_for_unknown_kid(&self) {
        let _one = self.forced.lock().await;
        {
            let mut last = self
                .last_forced
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < MIN_FORCED_REFRESH) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self.refresh().await {
            Ok(usable) => {
                tracing::info!(url = %self.url, usable, "JWKS fetched again: a token named an unknown key")
            }
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed: the current keys stay"),
        }
    }

    /// [`JwksSource::refresh_for_unknown_kid`] on a task of its own, unless
    /// one runs or ran within the minimum interval: a flood of tokens with
    /// made-up `kid`s starts at most one task at a time.
    pub fn refresh_soon_for_unknown_kid(self: &Arc<Self>) {
        let recent = self
            .last_forced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|t| t.elapsed() < MIN_FORCED_REFRESH);
        if recent || self.forced.try_lock().is_err() {
            return;
        }
        let source = self.clone();
        tokio::spawn(async move { source.refresh_for_unknown_kid().await });
    }

    /// Refreshes every `every` until `shutdown`.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now, and the keys were just fetched at start.
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.refresh().await {
                        tracing::warn!(error = %e, "JWKS refresh failed: the current keys stay");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for ok in [
            "https://idp.example.com/realms/bank",
            "http://127.0.0.1:8080/",
            "http://localhost/x",
            "http://[::1]:9000",
            "http://127.0.0.2/",
        ] {
            assert!(check_url("issuer", ok).is_ok(), "{ok}");
        }
        let insecure = check_url("issuer", "http://idp.example.com").unwrap_err();
        assert!(matches!(insecure, OidcError::InsecureUrl { .. }));
        assert!(insecure.to_string().contains("loopback"), "{insecure}");
        for bad in [
            "idp.example.com",
            "ftp://idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/#x",
            "http://localhost.example.com/",
        ] {
            assert!(check_url("issuer", bad).is_err(), "{bad}");
        }
    }
}
