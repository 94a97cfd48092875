//! Profile helper: time prefill (18 tokens) and single-token decode of a random-weight μLM in
//! Q8_0 (through GGUF export/import, the deployment path), in loops long enough for `perf`.
//!
//! `cargo run --release -p lm --example decode_profile -- [preset] [seconds] [prefill|decode]`
//! (`LM_THREADS=n` sets the model's thread pool.)

use std::time::Instant;

use lm::gguf_export::ExportType;
use lm::Preset;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    lm::configure_candle_threads(1);
    let args: Vec<String> = std::env::args().collect();
    let preset = Preset::from_name(args.get(1).map(String::as_str).unwrap_or("512-8"))?;
    let secs: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let dir = tempfile::tempdir()?;
    let (ck, weights, mulm) = lm::dev::write_dev_checkpoint(dir.path(), preset.name(), &preset.config(), 1)?;
    let gguf = dir.path().join("model.gguf");
    lm::export_gguf(&weights, &mulm, &ck.tokenizer_json, &gguf, ExportType::Q8_0)?;
    let (mut model, _) = lm::load_gguf(&gguf, Some(&mulm))?;
    if let Some(n) = std::env::var("LM_THREADS").ok().and_then(|v| v.parse().ok()) {
        model.set_threads(n)?;
    }
    let prompt: Vec<u32> = (10..28).collect();
    let mut cache = model.new_cache()?;
    model
        .install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let only = std::env::args().nth(3);
            for phase in ["prefill", "decode"] {
                if only.as_deref().is_some_and(|o| o != phase) {
                    continue;
                }
                let t0 = Instant::now();
                let mut n = 0usize;
                while t0.elapsed().as_secs_f64() < secs {
                    match phase {
                        "prefill" => {
                            cache.reset();
                            model.forward(&prompt, &mut cache, false)?;
                        }
                        _ => {
                            cache.truncate(prompt.len());
                            if cache.len() < prompt.len() {
                                cache.reset();
                                model.forward(&prompt, &mut cache, false)?;
                            }
                            model.forward(&[42], &mut cache, false)?;
                        }
                    }
                    n += 1;
                }
                println!("{phase}: {:.3} ms per call ({n} calls)", t0.elapsed().as_secs_f64() * 1e3 / n as f64);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
