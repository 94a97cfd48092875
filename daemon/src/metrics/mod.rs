//! The daemon's Prometheus metrics: per-stage latency histograms (seconds, the Prometheus
//! base unit) and counters, rendered in the text exposition format and served by
//! [`http::serve`] when `[metrics] listen` is set.

pub mod http;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, Registry, TextEncoder};

/// Histogram bucket bounds for stage latencies, in seconds (5 ms .. 10 s).
const LATENCY_BUCKETS_S: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];

/// Every metric the live loop reports. Cheap to share (`Arc`); updates are lock-free.
pub struct Metrics {
    registry: Registry,
    /// Last voiced sample → endpoint decision (the VAD hangover as it played out).
    pub vad_endpoint: Histogram,
    /// Whisper's wall time per transcription (speculative ones included).
    pub asr: Histogram,
    /// μLM opener wall time.
    pub opener: Histogram,
    /// Endpoint → first reply audio queued for playback.
    pub tts_first_audio: Histogram,
    /// Cloud `continue` sent → first continuation text.
    pub cloud_first_delta: Histogram,
    /// Last voiced sample of the question → first reply sample played.
    pub voice_to_voice: Histogram,
    /// End of the opener's audio → start of the first continuation audio.
    pub handoff_gap: Histogram,
    /// Turns ended (one per utterance answered or dismissed).
    pub turns: IntCounter,
    /// Turns where the cloud repaired a wrong opener.
    pub repairs: IntCounter,
    /// Turns that fell back locally (cloud failed, timed out or unreachable).
    pub fallbacks: IntCounter,
    /// Turns that spoke the filler while waiting for the cloud.
    pub fillers: IntCounter,
    /// Replies stopped because the user spoke over them.
    pub barge_ins: IntCounter,
    /// Cloud sessions re-established after a disconnect.
    pub cloud_reconnects: IntCounter,
    /// Capture callbacks that dropped samples (plus device-reported capture xruns).
    pub audio_overruns: IntCounter,
    /// Playback callbacks that ran dry mid-reply (plus device-reported playback xruns).
    pub audio_underruns: IntCounter,
    /// Times an audio device went away (unplugged, dropout) while the daemon ran.
    pub audio_device_losses: IntCounter,
    /// Earlier turns forgotten because no history budget could hold them any more.
    pub conversation_turns_dropped: IntCounter,
    /// Conversations ended (idle timeout or end phrase).
    pub conversations_ended: IntCounter,
}

// The names and buckets are constants of this file (checked by the tests below), so a
// failure here is a programming error, not bad input: `expect` states the invariant.
fn histogram(registry: &Registry, name: &str, help: &str) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS_S.to_vec())).expect("valid histogram");
    registry.register(Box::new(h.clone())).expect("unique metric name");
    h
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid counter");
    registry.register(Box::new(c.clone())).expect("unique metric name");
    c
}

impl Metrics {
    /// A fresh registry holding every metric at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        Self {
            vad_endpoint: histogram(&r, "firstword_vad_endpoint_seconds", "Last voiced sample to the VAD's endpoint decision"),
            asr: histogram(&r, "firstword_asr_seconds", "Whisper transcription wall time"),
            opener: histogram(&r, "firstword_opener_seconds", "Micro LM opener wall time"),
            tts_first_audio: histogram(&r, "firstword_tts_first_audio_seconds", "Endpoint to the first reply audio queued"),
            cloud_first_delta: histogram(&r, "firstword_cloud_first_delta_seconds", "Cloud request sent to its first continuation text"),
            voice_to_voice: histogram(&r, "firstword_voice_to_voice_seconds", "End of the user's speech to the first reply sample played"),
            handoff_gap: histogram(&r, "firstword_handoff_gap_seconds", "End of the opener's audio to the first continuation audio"),
            turns: counter(&r, "firstword_turns_total", "Turns ended"),
            repairs: counter(&r, "firstword_repairs_total", "Turns where the cloud repaired the opener"),
            fallbacks: counter(&r, "firstword_fallbacks_total", "Turns that fell back locally"),
            fillers: counter(&r, "firstword_fillers_total", "Turns that spoke the filler"),
            barge_ins: counter(&r, "firstword_barge_ins_total", "Replies stopped by the user speaking"),
            cloud_reconnects: counter(&r, "firstword_cloud_reconnects_total", "Cloud sessions re-established"),
            audio_overruns: counter(&r, "firstword_audio_overruns_total", "Capture overruns (samples dropped)"),
            audio_underruns: counter(&r, "firstword_audio_underruns_total", "Playback underruns mid-reply"),
            audio_device_losses: counter(&r, "firstword_audio_device_losses_total", "Audio devices that went away (unplugged, dropout)"),
            conversation_turns_dropped: counter(
                &r,
                "firstword_conversation_turns_dropped_total",
                "Earlier turns dropped from the conversation (history budgets full)",
            ),
            conversations_ended: counter(
                &r,
                "firstword_conversations_ended_total",
                "Conversations ended by the idle timeout or an end phrase",
            ),
            registry: r,
        }
    }

    /// Records a latency given in ms (negative values, clock noise, count as 0).
    pub fn observe_ms(h: &Histogram, ms: f64) {
        h.observe(ms.max(0.0) / 1000.0);
    }

    /// Raises a counter to `total` (a monotonic count kept elsewhere, e.g. an atomic).
    pub fn sync_counter(c: &IntCounter, total: u64) {
        let now = c.get();
        if total > now {
            c.inc_by(total - now);
        }
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_counters_and_histograms_in_seconds() {
        let m = Metrics::new();
        m.turns.inc();
        Metrics::observe_ms(&m.asr, 120.0);
        Metrics::sync_counter(&m.audio_overruns, 3);
        Metrics::sync_counter(&m.audio_overruns, 2); // never goes back
        let text = m.render();
        assert!(text.contains("firstword_turns_total 1"), "{text}");
        assert!(text.contains("firstword_asr_seconds_count 1"), "{text}");
        assert!(text.contains("firstword_asr_seconds_sum 0.12"), "{text}");
        assert!(text.contains("firstword_asr_seconds_bucket{le=\"0.15\"} 1"), "{text}");
        assert!(text.contains("firstword_asr_seconds_bucket{le=\"0.1\"} 0"), "{text}");
        assert!(text.contains("firstword_audio_overruns_total 3"), "{text}");
        assert!(text.contains("firstword_handoff_gap_seconds_count 0"), "{text}");
        m.conversation_turns_dropped.inc_by(2);
        assert!(m.render().contains("firstword_conversation_turns_dropped_total 2"));
    }
}
