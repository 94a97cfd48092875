//! `firstword cloud serve --config FILE`: a real gateway process, reached by the device's
//! client over 127.0.0.1.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use cloud::client::{ClientOptions, CloudClient, CloudEvent, ContinueParams};
use common::{firstword, root};

/// Kills the gateway when the test ends, pass or fail.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bad_gateway_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cloud.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\ntoken = \"\"\n[backend]\nkind = \"scripted\"\n").unwrap();
    let out = firstword(&["cloud", "serve", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cloud.toml") && err.contains("token"), "{err}");
}

#[test]
fn served_gateway_streams_a_continuation_to_the_client() {
    // A free port: bind, read it, release it for the gateway.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cloud.toml");
    std::fs::write(&cfg, format!("listen = \"127.0.0.1:{port}\"\ntoken = \"t0k3n\"\n[backend]\nkind = \"scripted\"\n")).unwrap();
    let _gw = Child(
        Command::new(env!("CARGO_BIN_EXE_firstword"))
            .args(["cloud", "serve", "--config", cfg.to_str().unwrap()])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = CloudClient::connect(&format!("ws://127.0.0.1:{port}"), "t0k3n", ClientOptions::default()).await.unwrap();
        assert!(client.wait_connected(Duration::from_secs(10)).await, "gateway did not accept the session");
        let mut c = client.continue_(ContinueParams::new("What is the capital of France?", "The capital of France is"));
        let mut text = String::new();
        let done = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(e) = c.events.recv().await {
                match e {
                    CloudEvent::Delta(d) => text.push_str(&d),
                    CloudEvent::Done { .. } => return true,
                    CloudEvent::Error { kind, message } => panic!("{kind:?}: {message}"),
                    _ => {}
                }
            }
            false
        })
        .await
        .unwrap();
        assert!(done, "no done event");
        assert!(!text.trim().is_empty(), "empty continuation");
    });
}
