//! TLS set-up shared by the gateway (`tls_cert` / `tls_key`) and the client
//! (`ClientOptions::tls_ca_file`): PEM loading and rustls configs, all on the
//! ring crypto provider (the one compiled in; no system OpenSSL).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::CloudError;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file. `what` names the setting in error messages.
///
/// Errors ([`CloudError::Config`]): the file cannot be read, is not PEM, or holds
/// no certificate.
pub(crate) fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, CloudError> {
    let bad = |e: String| CloudError::Config(format!("{what} {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// The TLS acceptor of a gateway: certificate chain and private key from PEM files.
///
/// Errors ([`CloudError::Config`], naming the key): unreadable files, no
/// certificate or key in them, or a key that does not match the certificate.
pub(crate) fn server_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, CloudError> {
    let chain = load_certs(cert, "tls_cert")?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| CloudError::Config(format!("tls_key {}: {e}", key.display())))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CloudError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| CloudError::Config(format!("tls_cert {} / tls_key {}: {e}", cert.display(), key.display())))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The client's rustls config: the public web roots (webpki-roots, as
/// tokio-tungstenite uses by default) plus every certificate in `extra_ca` (a
/// private CA or a self-signed gateway certificate).
///
/// Errors ([`CloudError::Config`]): `extra_ca` unreadable, without certificates,
/// or holding a certificate rustls cannot use as a trust anchor.
pub(crate) fn client_config(extra_ca: &Path) -> Result<Arc<ClientConfig>, CloudError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in load_certs(extra_ca, "tls_ca_file")? {
        roots.add(cert).map_err(|e| CloudError::Config(format!("tls_ca_file {}: {e}", extra_ca.display())))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CloudError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
