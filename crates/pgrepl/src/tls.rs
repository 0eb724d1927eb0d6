//! TLS for every PostgreSQL connection UltraCore makes, with libpq's
//! `sslmode` and `sslrootcert`: the replication client of this crate and
//! the tokio-postgres (and sync `postgres`) clients beside it read the same
//! two URL parameters here, get their rustls configuration from here, and
//! explain a failed handshake with the same words.
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow` | only if a login without it is refused | as for `require` |
//! | `prefer` (default) | if the server offers it | as for `require` |
//! | `require` | always | not checked; chain checked when `sslrootcert` is given |
//! | `verify-ca` | always | chain checked against the roots; host name not |
//! | `verify-full` | always | chain and host name checked |
//!
//! The roots are `sslrootcert=PATH` (PEM, one or more CA certificates) when
//! given, else the system's trust store (`/etc/ssl/certs`, or wherever
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` point). `sslrootcert=system` names the
//! system's store explicitly and, as in libpq 16, needs `verify-full`
//! (it is the default mode then). Unlike libpq there is no default
//! `~/.postgresql/root.crt`, and a failed handshake under `prefer` is an
//! error rather than a silent retry without TLS.
//!
//! The host name verified is the URL's host (with `hostaddr`, the address
//! connected to can differ). Client certificates (`sslcert`, `sslkey`) are
//! not supported. TLS 1.2 and 1.3 (PostgreSQL's own minimum is 1.2), rustls
//! with ring; ALPN `postgresql`, as libpq 17 sends.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// libpq's `sslmode`: whether to use TLS and what to check of the server.
/// See the module documentation for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Without TLS first; with TLS only if the server refuses that login
    /// (a `hostssl`-only `pg_hba.conf`).
    Allow,
    /// TLS if the server offers it, else without (libpq's default).
    #[default]
    Prefer,
    /// TLS or fail; the certificate is checked only against `sslrootcert`,
    /// when given.
    Require,
    /// TLS, and the server's certificate chain must lead to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The parameter value, as in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Without TLS the connection fails (`require`, `verify-ca`, `verify-full`).
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::UnknownMode(other.to_owned())),
        })
    }
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// A PEM file of one or more CA certificates (`sslrootcert=PATH`).
    File(PathBuf),
    /// The system's trust store (`sslrootcert=system`, or `verify-full`
    /// without `sslrootcert`; `verify-ca` needs a file).
    System,
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: the connection is encrypted, but the server is not
    /// authenticated (`require` and weaker without `sslrootcert`).
    None,
    /// The chain leads to a trusted root; any host name.
    Chain,
    /// The chain, and the certificate names the host.
    Full,
}

/// The TLS settings of one connection URL: `sslmode` and `sslrootcert`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// Whether to use TLS and what to check.
    pub mode: SslMode,
    /// `sslrootcert`, if the URL has it.
    pub root_cert: Option<RootCerts>,
}

/// Why TLS settings cannot be used. Each message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `sslmode` has a value libpq does not know either.
    #[error("sslmode={0} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    UnknownMode(String),
    /// `sslrootcert=system` with a mode that would not check the host name.
    #[error(
        "sslrootcert=system trusts every CA of the system's store, so it needs \
         sslmode=verify-full (as in libpq), not sslmode={0}: use verify-full, or give \
         sslrootcert=PATH of your own CA"
    )]
    SystemRootsNeedVerifyFull(SslMode),
    /// `sslmode=verify-ca` without `sslrootcert=PATH`.
    #[error(
        "sslmode=verify-ca checks the certificate's CA but not its name, so it needs \
         sslrootcert=PATH of your own CA (PEM); with the system's CAs use sslmode=verify-full"
    )]
    VerifyCaNeedsRootCert,
    /// The `sslrootcert` file cannot be read or is not PEM.
    #[error("cannot read sslrootcert '{}': {reason}", path.display())]
    RootCertUnreadable { path: PathBuf, reason: String },
    /// The `sslrootcert` file has no usable certificate.
    #[error(
        "sslrootcert '{}' holds no usable CA certificate ({reason}): it must be PEM, \
         -----BEGIN CERTIFICATE----- …",
        path.display()
    )]
    NoRootCert { path: PathBuf, reason: String },
    /// Verification needs roots and the system has none.
    #[error(
        "found no CA certificates in the system's trust store ({0}); set sslrootcert=PATH \
         to the CA certificate (PEM) that signed the server's"
    )]
    NoSystemRoots(String),
    /// The host is not something a certificate can name.
    #[error("host '{0}' cannot be checked against a certificate: {1}")]
    InvalidHost(String, String),
    /// rustls refused the configuration (not expected with ring).
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

impl TlsSettings {
    /// The settings from the URL's `sslmode` and `sslrootcert` values
    /// (`None` when absent), with libpq's rules: `sslmode` defaults to
    /// `prefer`, or to `verify-full` with `sslrootcert=system`.
    pub fn from_params(
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
    ) -> Result<TlsSettings, TlsError> {
        let root_cert = sslrootcert.filter(|v| !v.is_empty()).map(|v| match v {
            "system" => RootCerts::System,
            path => RootCerts::File(PathBuf::from(path)),
        });
        let mode = match sslmode {
            Some(mode) => mode.parse()?,
            None if root_cert == Some(RootCerts::System) => SslMode::VerifyFull,
            None => SslMode::default(),
        };
        if root_cert == Some(RootCerts::System) && mode != SslMode::VerifyFull {
            return Err(TlsError::SystemRootsNeedVerifyFull(mode));
        }
        // verify-ca checks no host name: against the system's store any
        // public CA's certificate for any name would pass. libpq refuses it
        // without a root file too.
        if mode == SslMode::VerifyCa && root_cert.is_none() {
            return Err(TlsError::VerifyCaNeedsRootCert);
        }
        Ok(TlsSettings { mode, root_cert })
    }

    /// What a TLS connection with these settings checks of the server.
    pub fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => Verification::Full,
            (SslMode::VerifyCa, _) | (_, Some(_)) => Verification::Chain,
            _ => Verification::None,
        }
    }

    /// The roots verification uses: `sslrootcert`, else the system's.
    fn roots(&self) -> &RootCerts {
        self.root_cert.as_ref().unwrap_or(&RootCerts::System)
    }

    /// The rustls configuration: TLS 1.2 and 1.3 with ring, the verifier
    /// [`TlsSettings::verification`] says, ALPN `postgresql`.
    ///
    /// Reads `sslrootcert` (each call: a renewed CA file is picked up by
    /// the next connection); the system's store is read once per process.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        // ring, not aws-lc-rs (whose build needs cmake). rustls 0.23.48
        // deprecates ring's provider for lacking post-quantum key exchange;
        // PostgreSQL (OpenSSL) negotiates X25519 or P-256 with it.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.verification() {
            Verification::None => Arc::new(NoCheck {
                algorithms: provider.signature_verification_algorithms,
            }),
            Verification::Chain => Arc::new(ChainOnly(webpki(self.roots(), provider)?)),
            Verification::Full => webpki(self.roots(), provider)?,
        };
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// The connector for tokio-postgres and the sync `postgres` client.
    /// It does TLS whenever the client's own `ssl_mode` asks for it (see
    /// [`TlsSettings::client_ssl_mode`]).
    pub fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsError> {
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
            self.client_config()?,
        ))
    }

    /// tokio-postgres's `ssl_mode` for these settings. It knows only
    /// disable, prefer and require: verification is the connector's
    /// business, and `allow` starts without TLS (see
    /// [`crate::url::Target::connect`]).
    pub fn client_ssl_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Client;
        match self.mode {
            SslMode::Disable | SslMode::Allow => Client::Disable,
            SslMode::Prefer => Client::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Client::Require,
        }
    }

    /// The name the certificate is checked against (and sent as SNI when
    /// it is a DNS name).
    pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
        ServerName::try_from(host.to_owned())
            .map_err(|e| TlsError::InvalidHost(host.to_owned(), e.to_string()))
    }

    /// Why the server refusing TLS fails the connection, and what to do.
    pub fn refused(&self) -> String {
        format!(
            "the server does not offer TLS (it answered the SSLRequest with 'N'), and \
             sslmode={} requires it: turn ssl on in the server's postgresql.conf, or connect \
             with sslmode=prefer to fall back to an unencrypted connection",
            self.mode
        )
    }

    /// What a failed TLS handshake or negotiation in `error` (anywhere in
    /// its chain of causes) means and what to do, or `None` when the error
    /// is not about TLS. `host` is the name the certificate was checked
    /// against.
    pub fn explain(&self, error: &(dyn StdError + 'static), host: &str) -> Option<String> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(tls) = rustls_error(e) {
                return Some(self.describe(tls, host));
            }
            // tokio-postgres's words for a server answering 'N' under require.
            if e.to_string() == "server does not support TLS" {
                return Some(self.refused());
            }
            cause = e.source();
        }
        None
    }

    fn describe(&self, error: &rustls::Error, host: &str) -> String {
        let roots = match self.roots() {
            RootCerts::File(path) => format!("sslrootcert '{}'", path.display()),
            RootCerts::System => "the system's trust store; sslrootcert is not set".to_owned(),
        };
        match error {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "the server's certificate is not signed by a CA trusted here ({roots}): set \
                 sslrootcert=PATH to the certificate (PEM) of the CA that signed it"
            ),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected,
                presented,
            }) => format!(
                "the server's certificate is not valid for host '{}' (it names {}): with \
                 sslmode=verify-full the URL's host must be one of the certificate's names; \
                 connect by one of them, or use sslmode=verify-ca to check the CA only",
                expected.to_str(),
                if presented.is_empty() {
                    "none".to_owned()
                } else {
                    presented
                        .iter()
                        .map(|name| bare_name(name))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => format!(
                "the server's certificate is not valid for host '{host}': with \
                 sslmode=verify-full the URL's host must be one of the certificate's names; \
                 connect by one of them, or use sslmode=verify-ca to check the CA only"
            ),
            rustls::Error::InvalidCertificate(
                e @ (CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }),
            ) => format!(
                "the server's certificate is outside its validity period ({e}): renew it, or \
                 check this machine's clock"
            ),
            rustls::Error::InvalidCertificate(e) => {
                format!("the server's certificate was refused ({e}); checked against {roots}")
            }
            rustls::Error::AlertReceived(alert) => format!(
                "the server aborted the TLS handshake ({alert:?}); its log says why (a client \
                 certificate it requires, a TLS version or cipher it refuses)"
            ),
            other => format!("the TLS handshake failed: {other}"),
        }
    }
}

/// `localhost` for rustls's `DnsName("localhost")`, `127.0.0.1` for
/// `IpAddress(127.0.0.1)`; anything else as it is.
fn bare_name(presented: &str) -> &str {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map(|inner| inner.trim_matches('"'))
        .unwrap_or(presented)
}

/// A rustls error in `e` itself or inside an `io::Error` (tokio-rustls
/// reports handshake failures so, and `io::Error::source` skips the error
/// it wraps).
fn rustls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// rustls's standard verifier (chain, validity, name) over `roots`.
fn webpki(
    roots: &RootCerts,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(root_store(roots)?, provider)
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))
}

fn root_store(roots: &RootCerts) -> Result<Arc<RootCertStore>, TlsError> {
    match roots {
        RootCerts::File(path) => {
            let unreadable = |reason: String| TlsError::RootCertUnreadable {
                path: path.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(pem_reason(e)))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(pem_reason(e)))?;
            let found = certs.len();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TlsError::NoRootCert {
                    path: path.clone(),
                    reason: format!("{found} certificates found, none parsable as a CA"),
                });
            }
            Ok(Arc::new(store))
        }
        RootCerts::System => {
            // Parsing a few hundred certificates takes milliseconds: once
            // per process, not per connection.
            static SYSTEM: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
            SYSTEM
                .get_or_init(|| {
                    let found = rustls_native_certs::load_native_certs();
                    let mut store = RootCertStore::empty();
                    store.add_parsable_certificates(found.certs);
                    if store.is_empty() {
                        let errors: Vec<String> =
                            found.errors.iter().map(|e| e.to_string()).collect();
                        return Err(if errors.is_empty() {
                            "none installed".to_owned()
                        } else {
                            errors.join("; ")
                        });
                    }
                    Ok(Arc::new(store))
                })
                .clone()
                .map_err(TlsError::NoSystemRoots)
        }
    }
}

fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not PEM: {other}"),
    }
}

/// Accepts any certificate (`require` without `sslrootcert`: encryption
/// against passive eavesdropping, no authentication of the server, as in
/// libpq). The handshake signatures are still verified, so the server must
/// hold the key of the certificate it presents.
#[derive(Debug)]
struct NoCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: rustls's verifier, except that a certificate valid for
/// another name passes. rustls checks the chain (and validity) before the
/// name, so reaching the name error means everything else held.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_as_libpq_spells_them() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>(), Ok(mode));
        }
        assert_eq!(
            "verify_full".parse::<SslMode>(),
            Err(TlsError::UnknownMode("verify_full".into()))
        );
        assert_eq!(SslMode::default(), SslMode::Prefer);
    }

    #[test]
    fn verification_follows_libpq() {
        let v = |mode: Option<&str>, root: Option<&str>| {
            TlsSettings::from_params(mode, root).unwrap().verification()
        };
        assert_eq!(v(None, None), Verification::None);
        assert_eq!(v(Some("require"), None), Verification::None);
        // libpq: with a root certificate, require checks the chain.
        assert_eq!(v(Some("require"), Some("/ca.crt")), Verification::Chain);
        assert_eq!(v(Some("prefer"), Some("/ca.crt")), Verification::Chain);
        assert_eq!(v(Some("verify-ca"), Some("/ca.crt")), Verification::Chain);
        assert_eq!(v(Some("verify-full"), None), Verification::Full);
        assert_eq!(v(None, Some("system")), Verification::Full);
        assert_eq!(
            TlsSettings::from_params(Some("require"), Some("system")),
            Err(TlsError::SystemRootsNeedVerifyFull(SslMode::Require))
        );
        // verify-ca checks no name: it needs the operator's own CA.
        for root in [None, Some("")] {
            assert_eq!(
                TlsSettings::from_params(Some("verify-ca"), root),
                Err(TlsError::VerifyCaNeedsRootCert)
            );
        }
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let settings =
            TlsSettings::from_params(Some("verify-full"), Some("/nonexistent/ultracore-ca.crt"))
                .unwrap();
        let err = settings.client_config().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sslrootcert '/nonexistent/ultracore-ca.crt'"),
            "{text}"
        );

        let dir = std::env::temp_dir().join(format!("pgrepl-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let settings = TlsSettings::from_params(Some("verify-ca"), empty.to_str()).unwrap();
        let err = settings.client_config().unwrap_err();
        assert!(matches!(err, TlsError::NoRootCert { .. }), "{err}");
        assert!(err.to_string().contains("PEM"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unverified_modes_build_without_any_roots() {
        for mode in ["disable", "allow", "prefer", "require"] {
            let settings = TlsSettings::from_params(Some(mode), None).unwrap();
            let config = settings.client_config().unwrap();
            assert_eq!(config.alpn_protocols, vec![b"postgresql".to_vec()]);
        }
    }

    #[test]
    fn handshake_failures_are_explained() {
        let settings = TlsSettings::from_params(Some("verify-full"), Some("/etc/ca.crt")).unwrap();
        let unknown = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let text = settings.explain(&unknown, "db").unwrap();
        assert!(text.contains("sslrootcert '/etc/ca.crt'"), "{text}");

        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("db.example").unwrap().to_owned(),
            presented: vec!["DnsName(\"localhost\")".into()],
        });
        let text = settings.explain(&name, "db.example").unwrap();
        assert!(text.contains("not valid for host 'db.example'"), "{text}");
        assert!(text.contains("(it names localhost)"), "{text}");
        assert!(text.contains("verify-ca"), "{text}");

        let plain = std::io::Error::other("connection reset");
        assert_eq!(settings.explain(&plain, "db"), None);
    }
}
