//! Whisper's mel filterbank, written into the ggml file (whisper.cpp reads it from there).
//!
//! Same construction as `librosa.filters.mel(sr, n_fft, n_mels)` with fmin 0, fmax sr/2,
//! `htk=False`, `norm="slaney"`: the filters OpenAI shipped in `mel_filters.npz`. Computed in
//! f64 in numpy's operation order and rounded to f32 once at the end.

/// Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;

fn min_log_mel() -> f64 {
    MIN_LOG_HZ / F_SP
}

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney (Auditory Toolbox) Hz → mel.
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        min_log_mel() + (hz / MIN_LOG_HZ).ln() / logstep()
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= min_log_mel() {
        MIN_LOG_HZ * (logstep() * (mel - min_log_mel())).exp()
    } else {
        mel * F_SP
    }
}

/// `numpy.linspace(start, stop, num)`: `i * step + start`, the last point exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// Slaney-normalised triangular mel filters, row-major `[n_mels][n_fft / 2 + 1]` f32, for a
/// sample rate `sr` (Hz) and an FFT of `n_fft` samples (Whisper: 16,000 Hz, 400, 80 bands).
pub fn filterbank(sr: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let fft_freqs = linspace(0.0, sr as f64 / 2.0, n_bins);
    // n_mels + 2 edges: filter i rises from edge i, peaks at i + 1, falls to i + 2.
    let edges: Vec<f64> = linspace(hz_to_mel(0.0), hz_to_mel(sr as f64 / 2.0), n_mels + 2).into_iter().map(mel_to_hz).collect();
    let widths: Vec<f64> = edges.windows(2).map(|w| w[1] - w[0]).collect();
    let mut out = Vec::with_capacity(n_mels * n_bins);
    for i in 0..n_mels {
        // Slaney norm: unit area in Hz, so wide high filters do not outweigh narrow low ones.
        let enorm = 2.0 / (edges[i + 2] - edges[i]);
        for &f in &fft_freqs {
            let rising = -(edges[i] - f) / widths[i];
            let falling = (edges[i + 2] - f) / widths[i + 1];
            let w = 0.0f64.max(rising.min(falling)) * enorm;
            // + 0.0 turns the -0.0 of the ramp at 0 Hz into +0.0, as the reference table has.
            out.push((w + 0.0) as f32);
        }
    }
    out
}
