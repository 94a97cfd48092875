//! The example configuration parses, and bad configurations are refused.

use cloud::backend::BackendConfig;
use cloud::gateway::GatewayConfig;

#[test]
fn example_config_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cloud.toml");
    let c = GatewayConfig::from_file(&path).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8787");
    assert!(!c.token.is_empty());
    assert!(matches!(c.backend, BackendConfig::Local(_)));
    assert!(c.latency.is_some());
}

#[test]
fn every_backend_kind_parses() {
    let base = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\n";
    let openai = format!("{base}[backend]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\nopener_mode = \"prefix\"\n");
    assert!(matches!(
        GatewayConfig::from_toml_str(&openai).unwrap().backend,
        BackendConfig::Openai(_)
    ));
    let scripted = format!(
        "{base}[backend]\nkind = \"scripted\"\ntoken_ms = 5\n[[backend.rules]]\nwhen_query_contains = \"x\"\nreply = \" y\"\n[latency]\nfirst_delta_ms = 800\nfirst_delta_jitter_ms = 200\ndistribution = \"normal\"\ntokens_per_s = 20\n"
    );
    let c = GatewayConfig::from_toml_str(&scripted).unwrap();
    match c.backend {
        BackendConfig::Scripted(s) => assert_eq!((s.token_ms, s.rules.len()), (5, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.latency.unwrap().tokens_per_s, Some(20.0));
}

#[test]
fn bad_configs_are_refused() {
    let bad = [
        "listen = \"x\"\n[backend]\nkind = \"scripted\"\n",                                   // no token
        "listen = \"x\"\ntoken = \"\"\n[backend]\nkind = \"scripted\"\n",                      // empty token
        "listen = \"x\"\ntoken = \"t\"\n[backend]\nkind = \"quantum\"\n",                      // unknown kind
        "listen = \"x\"\ntoken = \"t\"\ntypo = 1\n[backend]\nkind = \"scripted\"\n",           // unknown key
        "listen = \"x\"\ntoken = \"t\"\n[backend]\nkind = \"scripted\"\n[latency]\ntokens_per_s = 0\n",
    ];
    for b in bad {
        assert!(GatewayConfig::from_toml_str(b).is_err(), "accepted: {b}");
    }
}
