//! GGUF headers as `lm::load_gguf` reads them: the alignment check, then candle's parser
//! only for headers that pass it. Any bytes are a header or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut r = Cursor::new(data);
    if lm::gguf_check::check_gguf_alignment(&mut r).is_ok() {
        if let Ok(content) = candle_core::quantized::gguf_file::Content::read(&mut r) {
            let _ = lm::load::gguf_model_config(&content);
        }
    }
});
