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
    let openai =
        format!("{base}[backend]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\nopener_mode = \"prefix\"\n");
    assert!(matches!(GatewayConfig::from_toml_str(&openai).unwrap().backend, BackendConfig::Openai(_)));
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
        "listen = \"x\"\n[backend]\nkind = \"scripted\"\n",                          // no token
        "listen = \"x\"\ntoken = \"\"\n[backend]\nkind = \"scripted\"\n",            // empty token
        "listen = \"x\"\ntoken = \"t\"\n[backend]\nkind = \"quantum\"\n",            // unknown kind
        "listen = \"x\"\ntoken = \"t\"\ntypo = 1\n[backend]\nkind = \"scripted\"\n", // unknown key
        "listen = \"x\"\ntoken = \"t\"\n[backend]\nkind = \"scripted\"\n[latency]\ntokens_per_s = 0\n",
    ];
    for b in bad {
        assert!(GatewayConfig::from_toml_str(b).is_err(), "accepted: {b}");
    }
}

fn config_err(text: &str) -> String {
    GatewayConfig::from_toml_str(text).expect_err(text).to_string()
}

#[test]
fn non_finite_numbers_are_refused_naming_the_key() {
    let base = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\n[backend]\nkind = \"scripted\"\n";
    for (table, key) in [
        ("[latency]\nfirst_delta_ms = nan\n", "latency.first_delta_ms"),
        ("[latency]\nfirst_delta_ms = inf\n", "latency.first_delta_ms"),
        ("[latency]\nfirst_delta_jitter_ms = -inf\n", "latency.first_delta_jitter_ms"),
        ("[latency]\ntokens_per_s = nan\n", "latency.tokens_per_s"),
        ("[latency]\ntokens_per_s = inf\n", "latency.tokens_per_s"),
    ] {
        let e = config_err(&format!("{base}{table}"));
        assert!(e.contains(key), "{table}: {e}");
    }
    let top = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\nrequests_per_s = nan\n[backend]\nkind = \"scripted\"\n";
    assert!(config_err(top).contains("requests_per_s"));
    let local = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\n[backend]\nkind = \"local\"\ntemperature = nan\n";
    assert!(config_err(local).contains("backend.temperature"));
    let local = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\n[backend]\nkind = \"local\"\nrepeat_penalty = inf\n";
    assert!(config_err(local).contains("backend.repeat_penalty"));
    let openai = "listen = \"127.0.0.1:0\"\ntoken = \"t\"\n[backend]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\ntemperature = nan\n";
    assert!(config_err(openai).contains("backend.temperature"));
}

#[test]
fn well_known_or_short_tokens_are_refused_off_loopback() {
    let cfg = |listen: &str, token: &str| format!("listen = \"{listen}\"\ntoken = \"{token}\"\n[backend]\nkind = \"scripted\"\n");
    for token in ["change-me", "firstword-local", "short"] {
        for listen in ["0.0.0.0:8787", "192.168.1.5:8787", "[::]:8787", "gateway.example:8787"] {
            let e = config_err(&cfg(listen, token));
            assert!(e.contains("token"), "{listen} {token}: {e}");
        }
        for listen in ["127.0.0.1:8787", "[::1]:8787", "localhost:8787"] {
            GatewayConfig::from_toml_str(&cfg(listen, token)).expect(listen);
        }
    }
    GatewayConfig::from_toml_str(&cfg("0.0.0.0:8787", "a-long-random-secret-0123456789")).unwrap();
}
