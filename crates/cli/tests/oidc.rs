//! Console sign-in with OpenID Connect, end to end: a real `ultracore
//! serve` and a local provider (tests/common/idp.rs), the browser played
//! by hand with reqwest (no redirect followed on its own).

mod common;
#[path = "common/idp.rs"]
mod idp;

use std::sync::atomic::Ordering;

use common::{free_port, Error, Serve, TestResult};
use idp::Idp;
use reqwest::header::{HeaderMap, ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};

const CLIENT_ID: &str = "ultracore-console";
const SECRET: &str = "s3cret-Value:with/odd+chars";

/// The server and its provider.
struct Setup {
    serve: Serve,
    idp: Idp,
    web: Client,
}

impl Setup {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.serve.port)
    }
}

async fn start() -> Result<Setup, Error> {
    let port = free_port()?;
    let redirect = format!("http://127.0.0.1:{port}/console/oidc/callback");
    let idp = Idp::start(CLIENT_ID, SECRET, &redirect)?;
    let issuer = idp.issuer().to_owned();
    let serve = tokio::task::spawn_blocking(move || {
        Serve::start_on(
            port,
            &["--oidc-issuer", &issuer, "--oidc-client-id", CLIENT_ID],
            &[
                ("ULTRACORE_OIDC_REDIRECT_URL", redirect.as_str()),
                ("ULTRACORE_OIDC_CLIENT_SECRET", SECRET),
                // Everything the HTTP client and the edge log, so that a
                // secret logged anywhere on the way shows.
                (
                    "ULTRACORE_LOG_LEVEL",
                    "info,ultracore_http=debug,reqwest=trace,hyper=trace,hyper_util=trace",
                ),
            ],
        )
        .map_err(|e| e.to_string())
    })
    .await??;
    let web = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(Setup { serve, idp, web })
}

/// The value of the cookie `name` set by a response.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn location(headers: &HeaderMap) -> Result<String, Error> {
    Ok(headers
        .get(LOCATION)
        .ok_or("no Location")?
        .to_str()?
        .to_owned())
}

/// What the browser has after `/console/oidc/login`: the provider's URL
/// and the state cookie.
struct Started {
    authorize: String,
    state_cookie: String,
}

/// From the login page's button to the provider's URL.
async fn begin(s: &Setup, next: &str) -> Result<Started, Error> {
    let mut login = reqwest::Url::parse(&format!("{}/login", s.base()))?;
    login.query_pairs_mut().append_pair("next", next);
    let page = s.web.get(login).send().await?.text().await?;
    let href = page
        .split("id=\"sign-in-oidc\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| format!("no organisation sign-in on the login page:\n{page}"))?
        .replace("&amp;", "&");
    let r = s.web.get(format!("{}{href}", s.base())).send().await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let authorize = location(r.headers())?;
    assert!(authorize.starts_with(&format!("{}/auth?", s.idp.issuer())));
    let state_cookie = set_cookie(r.headers(), "uc_oidc_state").ok_or("no state cookie")?;
    Ok(Started {
        authorize,
        state_cookie,
    })
}

/// The provider's answer: the callback URL it sends the browser to.
async fn at_provider(s: &Setup, authorize: &str) -> Result<String, Error> {
    let r = s.web.get(authorize).send().await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await?);
    location(r.headers())
}

/// The callback, with the browser's state cookie.
async fn back(s: &Setup, callback: &str, state_cookie: &str) -> Result<reqwest::Response, Error> {
    Ok(s.web
        .get(callback)
        .header(COOKIE, format!("uc_oidc_state={state_cookie}"))
        .send()
        .await?)
}

/// A whole sign-in; the session cookie and the page the callback opens.
async fn sign_in(s: &Setup, next: &str) -> Result<(String, String), Error> {
    let started = begin(s, next).await?;
    let callback = at_provider(s, &started.authorize).await?;
    let r = back(s, &callback, &started.state_cookie).await?;
    let status = r.status();
    let session = set_cookie(r.headers(), "uc_session");
    let body = r.text().await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = session.ok_or("no session cookie")?;
    let target = body
        .split("url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("no refresh target")?
        .replace("&amp;", "&");
    Ok((session, target))
}

/// A callback's answer: the status and the problem's detail.
async fn refused(r: reqwest::Response) -> Result<(StatusCode, String), Error> {
    let status = r.status();
    assert!(set_cookie(r.headers(), "uc_session").is_none());
    let body: serde_json::Value = serde_json::from_str(&r.text().await?)?;
    Ok((status, body["detail"].as_str().unwrap_or("").to_owned()))
}

/// `url` with its query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> Result<String, Error> {
    let mut u = reqwest::Url::parse(url)?;
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    Ok(u.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organisation_sign_in_opens_a_session_and_refuses_what_it_must() -> TestResult {
    let s = start().await?;
    let mut answers = String::new();

    // The whole flow: a session that opens /portfolios.
    let (session, target) = sign_in(&s, "/portfolios").await?;
    assert_eq!(target, "/portfolios");
    let page = s
        .web
        .get(format!("{}{target}", s.base()))
        .header(ACCEPT, "text/html")
        .header(COOKIE, format!("uc_session={session}"))
        .send()
        .await?;
    assert_eq!(page.status(), StatusCode::OK);
    let who: serde_json::Value = s
        .web
        .get(format!("{}/console/session", s.base()))
        .header(COOKIE, format!("uc_session={session}"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(who["principal"], "jwt:alice");
    assert_eq!(who["role"], "viewer");
    assert_eq!(who["name"], "Alice Example");
    // Without the cookie, the same page sends the browser to sign in.
    let anonymous = s
        .web
        .get(format!("{}/portfolios", s.base()))
        .header(ACCEPT, "text/html")
        .send()
        .await?;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);

    // A state used once is gone; a made-up one was never there.
    let started = begin(&s, "/").await?;
    let callback = at_provider(&s, &started.authorize).await?;
    assert_eq!(
        back(&s, &callback, &started.state_cookie).await?.status(),
        StatusCode::OK
    );
    let (status, detail) = refused(back(&s, &callback, &started.state_cookie).await?).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{detail}");
    assert!(detail.contains("sign in again"), "{detail}");
    answers.push_str(&detail);
    let wrong = with_param(&callback, "state", "not-a-state-this-server-made")?;
    let (status, detail) = refused(back(&s, &wrong, "not-a-state-this-server-made").await?).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{detail}");
    assert!(detail.contains("sign in again"), "{detail}");

    // A sign-in finished in another browser (no state cookie) is refused.
    let started = begin(&s, "/").await?;
    let callback = at_provider(&s, &started.authorize).await?;
    let (status, detail) = refused(s.web.get(&callback).send().await?).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{detail}");
    assert!(detail.contains("not started in this browser"), "{detail}");

    // The provider's refusal reaches the user as such.
    let started = begin(&s, "/").await?;
    let state = reqwest::Url::parse(&started.authorize)?
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .ok_or("no state")?;
    let denied = format!(
        "{}/console/oidc/callback?error=access_denied&error_description=user+cancelled&state={state}",
        s.base()
    );
    let (status, detail) = refused(back(&s, &denied, &started.state_cookie).await?).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{detail}");
    assert!(detail.contains("access_denied"), "{detail}");

    // A nonce other than the sign-in's (an ID token injected from another
    // sign-in): refused.
    let started = begin(&s, "/").await?;
    let tampered = with_param(&started.authorize, "nonce", "someone-elses-nonce")?;
    let callback = at_provider(&s, &tampered).await?;
    let (status, detail) = refused(back(&s, &callback, &started.state_cookie).await?).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{detail}");
    answers.push_str(&detail);

    // An ID token for another client: refused.
    *s.idp.provider.audience_override.lock().unwrap() = Some("another-client".into());
    let started = begin(&s, "/").await?;
    let callback = at_provider(&s, &started.authorize).await?;
    let (status, detail) = refused(back(&s, &callback, &started.state_cookie).await?).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{detail}");
    *s.idp.provider.audience_override.lock().unwrap() = None;

    // A code challenge changed on the way: the provider refuses the
    // verifier, and the callback says so.
    let started = begin(&s, "/").await?;
    let tampered = with_param(
        &started.authorize,
        "code_challenge",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )?;
    let callback = at_provider(&s, &tampered).await?;
    let (status, detail) = refused(back(&s, &callback, &started.state_cookie).await?).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{detail}");
    assert!(detail.contains("PKCE verification failed"), "{detail}");
    answers.push_str(&detail);

    // The provider rotates its key: the first ID token with the new kid
    // makes the server fetch the keys again, and the sign-in succeeds.
    let fetches = s.idp.provider.jwks_fetches.load(Ordering::SeqCst);
    s.idp.rotate("key-2")?;
    let (session, target) = sign_in(&s, "/topics?x=1&y=2").await?;
    assert_eq!(target, "/topics?x=1&y=2");
    assert!(!session.is_empty());
    assert!(s.idp.provider.jwks_fetches.load(Ordering::SeqCst) > fetches);

    // The secret went to the token endpoint only: not into the server's
    // output, not into any answer.
    let output = s.serve.output.lock().unwrap().clone();
    assert!(
        !output.contains(SECRET),
        "the secret is in the server's output"
    );
    assert!(!answers.contains(SECRET));
    assert!(
        output.contains("wrong-nonce"),
        "the log says why:\n{output}"
    );
    assert!(
        output.contains("wrong-audience"),
        "the log says why:\n{output}"
    );
    assert!(output.contains("console sign-in with OpenID Connect"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_with_a_new_key_makes_the_server_fetch_the_keys() -> TestResult {
    let s = start().await?;
    let url = format!("{}/api/v1/openapi.json", s.base());
    let call = |token: String| {
        s.web
            .get(&url)
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    assert_eq!(call(s.idp.mint()?).await?.status(), StatusCode::OK);
    let fetches = s.idp.provider.jwks_fetches.load(Ordering::SeqCst);
    s.idp.rotate("key-b")?;
    let token = s.idp.mint()?;
    // The first call is answered at once with the keys the server has;
    // it fetches the new ones behind it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match call(token.clone()).await?.status() {
            StatusCode::OK => break,
            StatusCode::UNAUTHORIZED if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return Err(format!("got {other}").into()),
        }
    }
    assert_eq!(
        s.idp.provider.jwks_fetches.load(Ordering::SeqCst),
        fetches + 1,
        "one fetch, however many requests named the new key"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_provider_that_names_another_issuer() -> TestResult {
    let port = free_port()?;
    let redirect = format!("http://127.0.0.1:{port}/console/oidc/callback");
    let idp = Idp::start(CLIENT_ID, SECRET, &redirect)?;
    *idp.provider.discovered_issuer.lock().unwrap() = "https://impostor.example.com".into();
    let issuer = idp.issuer().to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        Serve::start_on(
            port,
            &[
                "--oidc-issuer",
                &issuer,
                "--oidc-client-id",
                CLIENT_ID,
                "--oidc-redirect-url",
                &redirect,
            ],
            &[("ULTRACORE_OIDC_CLIENT_SECRET", SECRET)],
        )
        .map(drop)
        .map_err(|e| e.to_string())
    })
    .await?;
    let message = outcome.err().ok_or("serve started")?;
    assert!(
        message.contains("names the issuer 'https://impostor.example.com'"),
        "{message}"
    );
    assert!(!message.contains(SECRET));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_plain_http_to_a_remote_provider() -> TestResult {
    let outcome = tokio::task::spawn_blocking(|| {
        Serve::start(&[
            "--oidc-issuer",
            "http://idp.example.com/realms/bank",
            "--oidc-client-id",
            CLIENT_ID,
            "--oidc-redirect-url",
            "https://console.example.com/console/oidc/callback",
        ])
        .map(drop)
        .map_err(|e| e.to_string())
    })
    .await?;
    let message = outcome.err().ok_or("serve started")?;
    assert!(message.contains("is not https"), "{message}");
    Ok(())
}
