//! Config files: the gateway's TOML (`GatewayConfig::from_toml_str`, parse + validate) and
//! the `[vad]` and `[tts]` tables the daemon's config embeds. Any text is a config or an
//! error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = cloud::gateway::GatewayConfig::from_toml_str(text);
    if let Ok(vad) = toml::from_str::<audio::vad::VadConfig>(text) {
        if vad.validate().is_ok() {
            let _ = audio::vad::Vad::pre_roll_samples(&vad);
            let _ = audio::vad::Endpointer::new(&vad);
        }
    }
    let _ = toml::from_str::<tts::TtsConfig>(text);
});
