//! The TTS text normaliser (`tts::normalize::for_speech`) and the chunker that splits model
//! text into speakable pieces: any text, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let spoken = tts::normalize::for_speech(&text);
    let _ = tts::normalize::for_speech(&spoken);
});
