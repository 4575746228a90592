//! `DATABASE_URL` with TLS: `sslmode` and `sslrootcert` with libpq's meaning, for every
//! process and the CLI (rustls, ring provider).
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | tried first; plain if the server has no TLS | not checked |
//! | `require` | required | not checked, unless a root CA file is given (or `~/.postgresql/root.crt` exists): then as `verify-ca` |
//! | `verify-ca` | required | chain to `sslrootcert` |
//! | `verify-full` | required | chain to `sslrootcert`, and the host name (or IP) in the certificate |
//!
//! `sslrootcert` is a PEM file of CA certificates; `system` means the Mozilla roots built
//! into the binary (webpki-roots). Unset, `~/.postgresql/root.crt` is used if it exists (as
//! libpq does); `verify-ca`/`verify-full` without any root refuse to start.
//!
//! tokio-postgres knows only `disable|prefer|require` and no `sslrootcert`, so both are
//! taken out of the URL here ([`split_tls_params`]) before it parses the rest.

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::{
    future::Future,
    io,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` tries plain first; we never start plain when TLS is possible.
            other => {
                return Err(format!(
                    "DATABASE_URL: sslmode must be disable, prefer, require, verify-ca or verify-full, not `{other}`"
                ))
            }
        })
    }
}

/// `url` without its `sslmode` and `sslrootcert` parameters, and their values. Both forms
/// of a libpq connection string: `postgres://...?k=v&...` and `k=v k='v w' ...`.
pub fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |k: &str, v: String| match k {
        "sslmode" => {
            mode = Some(v);
            true
        }
        "sslrootcert" => {
            root = Some(v);
            true
        }
        _ => false,
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), None, None);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k, percent_decode(v))
            })
            .collect();
        let rest = match kept.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", kept.join("&")),
        };
        return (rest, mode, root);
    }
    let mut kept = Vec::new();
    for (k, v, raw) in key_values(url) {
        if !take(&k, v) {
            kept.push(raw);
        }
    }
    (kept.join(" "), mode, root)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `k=v` pairs of a key/value connection string: (key, unquoted value, the pair as written).
fn key_values(s: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        chars.next_if(|(_, c)| *c == '=');
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
        }
        let end = chars.peek().map_or(s.len(), |(i, _)| *i);
        out.push((key, value, s[start..end].trim_end().to_string()));
    }
    out
}

/// A parsed `DATABASE_URL`: the tokio-postgres config (with its `ssl_mode` set) and the
/// TLS connector that carries out `sslmode`.
pub fn config(database_url: &str) -> Result<(tokio_postgres::Config, MakeRustls), String> {
    let (rest, mode, root) = split_tls_params(database_url);
    let mode = match mode.as_deref() {
        None => SslMode::Prefer,
        Some(m) => SslMode::parse(m)?,
    };
    let mut pg: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a valid Postgres URL: {e}"))?;
    // Over a Unix socket libpq ignores `sslmode` (the server offers no TLS there); so do we,
    // rather than fail `require` against a socket.
    let all_sockets = pg
        .get_hosts()
        .iter()
        .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
    pg.ssl_mode(match mode {
        _ if all_sockets => PgSslMode::Disable,
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    let root = root.map(PathBuf::from).or_else(|| {
        let default = PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt");
        default.exists().then_some(default)
    });
    let verify = match (mode, &root) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Verify::Nothing,
        (SslMode::Require | SslMode::VerifyCa, Some(_)) => Verify::Chain,
        (SslMode::VerifyFull, Some(_)) => Verify::ChainAndName,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(
                "DATABASE_URL: sslmode=verify-ca/verify-full needs sslrootcert (a PEM file of CA certificates, or `system`)"
                    .into(),
            )
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let client = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
        Verify::Chain | Verify::ChainAndName => {
            let roots = Arc::new(root_store(root.as_ref().expect("a root"))?);
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots.clone(),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("DATABASE_URL: sslrootcert: {e}"))?;
            match verify {
                Verify::ChainAndName => builder.with_root_certificates(roots).with_no_client_auth(),
                _ => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth(),
            }
        }
    };
    Ok((
        pg,
        MakeRustls {
            config: Arc::new(client),
        },
    ))
}

enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

fn root_store(path: &PathBuf) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if path.as_os_str() == "system" {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("DATABASE_URL: sslrootcert {}: {e}", path.display()))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| format!("DATABASE_URL: sslrootcert {}: {e}", path.display()))?;
        store
            .add(cert)
            .map_err(|e| format!("DATABASE_URL: sslrootcert {}: {e}", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!(
            "DATABASE_URL: sslrootcert {} holds no certificate",
            path.display()
        ));
    }
    Ok(store)
}

/// `prefer` and `require` without a root: encrypted, the server unauthenticated (libpq).
/// Neither the certificate nor the handshake signature made with its key is checked: the
/// signature would only prove that the server holds the key of a certificate nobody vouches
/// for (a man in the middle signs with a key of his own just as well), and checking it means
/// parsing the certificate, which webpki refuses for X.509 v1 — what Citus generates for its
/// nodes (`citus-auto-ssl`) and many hand-made server certificates are.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a configured root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
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

/// tokio-postgres' TLS hook over rustls. Used for every connection; with `sslmode=disable`
/// tokio-postgres never calls it.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    /// tokio-postgres asks for a connector for every host, even a Unix socket (whose
    /// "domain" is not a DNS name) and even with `sslmode=disable`: a name that cannot be
    /// one fails only if TLS is actually attempted.
    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_string()).map_err(|e| e.to_string()),
        })
    }
}

pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self
                .name
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_leave_the_url() {
        let (rest, mode, root) = split_tls_params(
            "postgres://u:p@db:5432/x?connect_timeout=10&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u:p@db:5432/x?connect_timeout=10");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, root) = split_tls_params("postgres://u@db/x?sslmode=require");
        assert_eq!(
            (rest.as_str(), mode.as_deref(), root),
            ("postgres://u@db/x", Some("require"), None)
        );
        let (rest, mode, root) =
            split_tls_params("host=db user=u sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=x");
        assert_eq!(rest, "host=db user=u dbname=x");
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/a b/ca.pem"));
        assert_eq!(split_tls_params("postgres://db/x").0, "postgres://db/x");
    }

    #[test]
    fn modes_are_libpq_s() {
        assert!(config("postgres://db/x?sslmode=allow").is_err());
        assert!(config("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent").is_err());
        let (pg, _) = config("postgres://db/x?sslmode=disable").unwrap();
        assert_eq!(pg.get_ssl_mode(), PgSslMode::Disable);
        let (pg, _) = config("postgres://db/x").unwrap();
        assert_eq!(pg.get_ssl_mode(), PgSslMode::Prefer);
        let (pg, _) = config("postgres://db/x?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!(pg.get_ssl_mode(), PgSslMode::Require);
    }
}
