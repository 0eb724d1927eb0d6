//! The OpenID Connect provider of `ultracore serve`: its discovery
//! document, its signing keys (a file, or fetched from its `jwks_uri` and
//! refreshed), the verifiers of its tokens and the console's sign-in.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ultracore_auth::{JwtConfig, JwtVerifier};
use ultracore_http::oidc::{
    discover, http_client, ClientSecret, JwksSource, OidcSettings, OidcSignIn,
    JWKS_REFRESH_INTERVAL,
};
use ultracore_runtime::CancellationToken;

/// The variable the client secret is read from: never a flag (flags show
/// in `ps` and shell history), never printed.
pub const CLIENT_SECRET_ENV: &str = "ULTRACORE_OIDC_CLIENT_SECRET";

/// The OIDC settings of the command line.
#[derive(Debug, Clone, Copy)]
pub struct OidcOptions<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub jwks_file: Option<&'a Path>,
    pub client_id: Option<&'a str>,
    pub redirect_url: Option<&'a str>,
}

/// What the provider gives the server.
#[derive(Debug)]
pub struct Provider {
    /// Checks bearer and pasted tokens (audience: --oidc-audience, or the
    /// client id).
    pub verifier: Arc<JwtVerifier>,
    /// The console's sign-in, with --oidc-client-id.
    pub sign_in: Option<Arc<OidcSignIn>>,
    /// The keys' source when they are fetched (no --oidc-jwks).
    pub jwks: Option<Arc<JwksSource>>,
}

impl OidcOptions<'_> {
    /// Whether keys or endpoints must be fetched from the provider.
    pub fn needs_discovery(&self) -> bool {
        self.issuer.is_some() && (self.client_id.is_some() || self.jwks_file.is_none())
    }

    fn check(&self) -> Result<Option<(&str, &str)>> {
        let Some(issuer) = self.issuer else {
            if self.client_id.is_some() || self.redirect_url.is_some() {
                bail!("--oidc-client-id and --oidc-redirect-url need --oidc-issuer");
            }
            return Ok(None);
        };
        if self.client_id.is_some() != self.redirect_url.is_some() {
            bail!("OpenID Connect sign-in needs both --oidc-client-id and --oidc-redirect-url (ULTRACORE_OIDC_CLIENT_ID, ULTRACORE_OIDC_REDIRECT_URL)");
        }
        let audience = self.audience.or(self.client_id).with_context(|| {
            format!("--oidc-issuer {issuer} needs --oidc-audience (the audience of the tokens) or --oidc-client-id")
        })?;
        Ok(Some((issuer, audience)))
    }

    /// The provider with the keys of the --oidc-jwks file, without fetching
    /// anything (commands that do not run discovery).
    pub fn file_verifier(&self) -> Result<Option<Arc<JwtVerifier>>> {
        let Some((issuer, audience)) = self.check()? else {
            return Ok(None);
        };
        if self.needs_discovery() {
            bail!("this command reads the provider's keys from --oidc-jwks FILE only, and has no OpenID Connect sign-in");
        }
        let file = self.jwks_file.context("--oidc-jwks")?;
        Ok(Some(Arc::new(verifier(
            issuer,
            audience,
            &read_jwks(file)?,
        )?)))
    }

    /// The provider: discovery when needed (and its issuer checked), the
    /// keys from the file or the provider, the verifiers, the sign-in. The
    /// keys' refresh runs until `shutdown`.
    pub async fn provider(&self, shutdown: CancellationToken) -> Result<Option<Provider>> {
        let Some((issuer, audience)) = self.check()? else {
            return Ok(None);
        };
        if !self.needs_discovery() {
            let file = self.jwks_file.context("--oidc-jwks")?;
            let verifier = Arc::new(verifier(issuer, audience, &read_jwks(file)?)?);
            return Ok(Some(Provider {
                verifier,
                sign_in: None,
                jwks: None,
            }));
        }
        let client = http_client()?;
        let meta = discover(&client, issuer)
            .await
            .with_context(|| format!("OpenID Connect discovery of the issuer {issuer}"))?;
        let (text, fetched) = match self.jwks_file {
            Some(file) => (read_jwks(file)?, false),
            None => {
                let source = JwksSource::new(client.clone(), &meta.jwks_uri, Vec::new())?;
                let text = source
                    .fetch()
                    .await
                    .context("fetching the provider's signing keys (jwks_uri)")?;
                (text, true)
            }
        };
        let bearer = Arc::new(verifier(issuer, audience, &text)?);
        let mut verifiers = vec![bearer.clone()];
        // ID tokens name the client id; other tokens may name another
        // audience (an API's), so they get their own verifier then.
        let id_tokens = match self.client_id {
            Some(id) if id != audience => {
                let v = Arc::new(verifier(issuer, id, &text)?);
                verifiers.push(v.clone());
                Some(v)
            }
            Some(_) => Some(bearer.clone()),
            None => None,
        };
        let jwks = if fetched {
            let source = Arc::new(JwksSource::new(client.clone(), &meta.jwks_uri, verifiers)?);
            tokio::spawn(source.clone().run(JWKS_REFRESH_INTERVAL, shutdown));
            eprintln!(
                "the OIDC issuer's signing keys come from {} (fetched again every 15 minutes and when a token names an unknown key)",
                meta.jwks_uri
            );
            Some(source)
        } else {
            None
        };
        let sign_in = match (self.client_id, self.redirect_url, id_tokens) {
            (Some(client_id), Some(redirect_url), Some(id_tokens)) => {
                let secret = std::env::var(CLIENT_SECRET_ENV)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .map(ClientSecret::new);
                let kind = if secret.is_some() {
                    "a confidential client (client_secret_basic)"
                } else {
                    "a public client (PKCE only; no ULTRACORE_OIDC_CLIENT_SECRET)"
                };
                let s = OidcSignIn::new(
                    OidcSettings {
                        issuer: issuer.to_owned(),
                        client_id: client_id.to_owned(),
                        client_secret: secret,
                        redirect_url: redirect_url.to_owned(),
                    },
                    &meta,
                    client,
                    id_tokens,
                    jwks.clone(),
                )
                .context("OpenID Connect sign-in")?;
                eprintln!(
                    "console sign-in with OpenID Connect: issuer {issuer}, client {client_id} as {kind}, callback {redirect_url}"
                );
                Some(Arc::new(s))
            }
            _ => None,
        };
        Ok(Some(Provider {
            verifier: bearer,
            sign_in,
            jwks,
        }))
    }
}

fn read_jwks(file: &Path) -> Result<String> {
    std::fs::read_to_string(file)
        .with_context(|| format!("reading the JWKS file {}", file.display()))
}

fn verifier(issuer: &str, audience: &str, jwks: &str) -> Result<JwtVerifier> {
    JwtVerifier::new(JwtConfig::new(issuer, audience), jwks)
        .with_context(|| format!("loading the signing keys of the OIDC issuer {issuer}"))
}
