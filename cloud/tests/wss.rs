//! `wss://`: the gateway terminating TLS itself (`tls_cert` / `tls_key`) and the device
//! client trusting a private CA (`ClientOptions::tls_ca_file`). The CA and the server
//! certificate are generated here, so nothing about them is trusted by default.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloud::backend::scripted::ScriptedConfig;
use cloud::client::{ClientOptions, CloudClient, CloudEvent, ContinueParams};
use cloud::gateway::{GatewayConfig, GatewayHandle};
use cloud::protocol::FinishReason;
use cloud::CloudError;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// PEM files of one test PKI: a CA, and a server certificate it signed for
/// `localhost` and `127.0.0.1`.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "firstword test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "firstword test gateway");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();

    let p = Pki { ca: dir.path().join("ca.pem"), cert: dir.path().join("gateway.pem"), key: dir.path().join("gateway.key"), _dir: dir };
    std::fs::write(&p.ca, ca.pem()).unwrap();
    std::fs::write(&p.cert, cert.pem()).unwrap();
    std::fs::write(&p.key, key.serialize_pem()).unwrap();
    p
}

fn tls_config(cert: &Path, key: &Path) -> GatewayConfig {
    let mut cfg = config("127.0.0.1:0");
    cfg.tls_cert = Some(cert.to_path_buf());
    cfg.tls_key = Some(key.to_path_buf());
    cfg
}

async fn tls_gateway(p: &Pki) -> GatewayHandle {
    let scripted = ScriptedConfig { rules: vec![rule("capital of france", " Paris, on the Seine.")], ..Default::default() };
    gateway(tls_config(&p.cert, &p.key), scripted).await.0
}

fn opts(ca: Option<&Path>) -> ClientOptions {
    ClientOptions {
        connect_timeout_ms: 3_000,
        backoff_initial_ms: 50,
        backoff_max_ms: 200,
        tls_ca_file: ca.map(Path::to_path_buf),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn client_streams_a_continuation_over_wss_with_a_private_ca() {
    let p = pki();
    let gw = tls_gateway(&p).await;
    let url = gw.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");

    let client = CloudClient::connect(&url, TOKEN, opts(Some(&p.ca))).await.expect("client starts");
    assert!(client.is_connected(), "TLS session open: {:?}", client.stats().last_error);
    let mut c = client.continue_(ContinueParams::new("What is the capital of France?", "The capital of France is"));
    let mut text = String::new();
    let last = loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), c.events.recv())
            .await
            .expect("event within 5 s")
            .expect("terminal event before the channel closes");
        match ev {
            CloudEvent::Delta(t) => text.push_str(&t),
            CloudEvent::Repair(_) | CloudEvent::FirstDeltaTimeout { .. } => {}
            e @ (CloudEvent::Done { .. } | CloudEvent::Error { .. }) => break e,
        }
    };
    assert_eq!(text, " Paris, on the Seine.");
    assert!(matches!(last, CloudEvent::Done { finish_reason: FinishReason::Stop, .. }), "{last:?}");
    let s = gw.stats();
    assert_eq!((s.sessions_total, s.requests_completed), (1, 1), "{s:?}");
    client.close();
}

#[tokio::test]
async fn client_refuses_a_gateway_certificate_it_does_not_trust() {
    let p = pki();
    let gw = tls_gateway(&p).await;
    // Public roots only: the test CA is unknown, so no session may open.
    let quick = ClientOptions { connect_timeout_ms: 1_500, ..opts(None) };
    let client = CloudClient::connect(&gw.url(), TOKEN, quick).await.expect("client starts (and keeps retrying)");
    assert!(!client.is_connected());
    let err = client.stats().last_error.unwrap_or_default();
    assert!(err.to_lowercase().contains("certificate"), "error should name the certificate: {err:?}");
    // A plain ws:// client cannot talk to the TLS gateway either.
    let plain = format!("ws://{}", gw.local_addr());
    let r =
        tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(plain.as_str())).await.expect("refused within 5 s");
    assert!(r.is_err(), "plain WebSocket upgrade must fail on a TLS port");
    assert_eq!(gw.stats().sessions_total, 0);
    client.close();
}

#[tokio::test]
async fn unusable_tls_settings_are_refused_at_start() {
    let p = pki();
    // Only one of the pair.
    let mut cfg = config("127.0.0.1:0");
    cfg.tls_cert = Some(p.cert.clone());
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("tls_cert and tls_key"), "{e}");

    // Missing certificate file: the error names the key and the path.
    let cfg = tls_config(&p.cert.with_extension("missing"), &p.key);
    let e = cloud::gateway::spawn(cfg).await.err().expect("refused");
    assert!(matches!(&e, CloudError::Config(m) if m.contains("tls_cert") && m.contains("missing")), "{e}");

    // A key that does not belong to the certificate.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let e = cloud::gateway::spawn(tls_config(&p.cert, other.path())).await.err().expect("refused");
    assert!(matches!(&e, CloudError::Config(m) if m.contains("tls_key")), "{e}");

    // The client checks its CA file when it starts.
    let e = CloudClient::connect("wss://127.0.0.1:9", TOKEN, opts(Some(&p.key))).await.err().expect("a key file is not a CA certificate");
    assert!(matches!(&e, CloudError::Config(m) if m.contains("tls_ca_file")), "{e}");
}

#[test]
fn tls_keys_parse_from_toml() {
    let text = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\ntls_cert = \"certs/gateway.pem\"\ntls_key = \"certs/gateway.key\"\n[backend]\nkind = \"scripted\"\n";
    let c = GatewayConfig::from_toml_str(text).unwrap();
    assert!(c.tls_enabled());
    assert_eq!(c.tls_cert.as_deref(), Some(Path::new("certs/gateway.pem")));
    assert_eq!(c.tls_key.as_deref(), Some(Path::new("certs/gateway.key")));
    let half = text.replace("tls_key = \"certs/gateway.key\"\n", "");
    assert!(GatewayConfig::from_toml_str(&half).is_err());
}
