//! The WAV reader (`audio::decode_wav`): any bytes are a decoded WAV or an error, never a
//! panic; a decoded WAV's samples are finite and its rate and channels non-zero.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = audio::decode_wav(data) {
        assert!(w.rate_hz > 0 && w.channels > 0, "decoded with rate {} and {} channels", w.rate_hz, w.channels);
        assert!(w.mono.iter().all(|s| s.is_finite()), "non-finite sample");
        let _ = w.duration_ms();
    }
});
