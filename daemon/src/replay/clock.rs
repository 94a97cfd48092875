//! Replay's clock: where a turn's events fall on the input's timeline (ms).
//!
//! A turn starts at its anchor (the endpoint, or the pause speculation started at). Waiting
//! for the cloud is real time in both modes — the cloud is another machine (or the gateway's
//! own threads), and replay does not simulate it. What differs is the device's own work:
//!
//! - [`ClockMode::Wall`] (the default, and what benchmarks use): each piece of work (Whisper,
//!   the μLM, Piper) takes the time it really took on this machine, so the timeline is what a
//!   live device would have shown here;
//! - [`ClockMode::Modeled`] (tests): each piece of work takes the time a fixed
//!   [`CostModel`] gives it, whatever this machine's speed or load, so a slow turn on a busy
//!   host cannot make the next question barge in. Wall-clock figures belong to benchmarks,
//!   never to tests (issue 17 §5).
//!
//! Modeled time is wall time with each measured work duration replaced by its modeled cost:
//! `now = anchor + wall elapsed + Σ (cost − measured)`.

use std::time::{Duration, Instant};

/// How the device's work is placed on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// Work takes the wall time it took here (benchmarks; the default).
    #[default]
    Wall,
    /// Work takes the fixed cost of [`CostModel::default`] (tests).
    Modeled,
}

/// One piece of device work, with what its modeled cost depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Work {
    /// Whisper on `audio_ms` of speech.
    Asr { audio_ms: f64 },
    /// The μLM's opener (prefill + a few words) or its local finish.
    Mulm,
    /// Piper synthesizing `audio_ms` of speech.
    Tts { audio_ms: f64 },
}

/// Fixed costs of the device's work, in ms: the medians of `bench speech` and `bench lm` on
/// the 2-core x86-64 development host (README, "Benchmarks", 2026-12-02/03), rounded up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Whisper: fixed part (ms) …
    pub asr_base_ms: f64,
    /// … plus this real-time factor times the audio's length (RTF 0.051 on a 3.1 s question).
    pub asr_rtf: f64,
    /// The μLM's opener or local finish (time to 8 words ≈ 5 ms, prompt included).
    pub mulm_ms: f64,
    /// Piper: fixed part (ms) …
    pub tts_base_ms: f64,
    /// … plus this real-time factor times the synthesized audio's length (RTF 0.081).
    pub tts_rtf: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        Self { asr_base_ms: 60.0, asr_rtf: 0.05, mulm_ms: 10.0, tts_base_ms: 30.0, tts_rtf: 0.09 }
    }
}

impl CostModel {
    /// The modeled duration of `work`, in ms (≥ 0).
    pub fn cost_ms(&self, work: Work) -> f64 {
        let ms = match work {
            Work::Asr { audio_ms } => self.asr_base_ms + self.asr_rtf * audio_ms,
            Work::Mulm => self.mulm_ms,
            Work::Tts { audio_ms } => self.tts_base_ms + self.tts_rtf * audio_ms,
        };
        ms.max(0.0)
    }
}

/// A turn's clock on the input's timeline.
#[derive(Debug, Clone)]
pub struct TurnClock {
    mode: ClockMode,
    model: CostModel,
    anchor_ms: f64,
    wall0: Instant,
    /// Σ (modeled − measured) over the work done so far, in ms (0 on the wall clock).
    offset_ms: f64,
    /// The latest time handed out (modeled clock), so that events never go back in time.
    last_ms: f64,
}

impl TurnClock {
    /// A clock that reads `anchor_ms` at `wall0`.
    pub fn new(mode: ClockMode, model: CostModel, anchor_ms: f64, wall0: Instant) -> Self {
        Self { mode, model, anchor_ms, wall0, offset_ms: 0.0, last_ms: anchor_ms }
    }

    /// Wall instant `at` on the timeline (ms). On the wall clock that is exact (a cloud
    /// event that arrived while Piper was busy keeps its arrival time). On the modeled clock
    /// it is never earlier than a time handed out before: work that finished sooner in the
    /// model than on the wall would otherwise move an event that arrived during it back.
    pub fn at(&mut self, at: Instant) -> f64 {
        let t = self.anchor_ms + at.saturating_duration_since(self.wall0).as_secs_f64() * 1000.0 + self.offset_ms;
        if self.mode == ClockMode::Wall {
            return t;
        }
        self.last_ms = self.last_ms.max(t);
        self.last_ms
    }

    /// Now on the timeline (ms).
    pub fn now(&mut self) -> f64 {
        self.at(Instant::now())
    }

    /// Records that `work` just took `measured` of wall time: in modeled mode the timeline
    /// moves by the modeled cost instead.
    pub fn worked(&mut self, work: Work, measured: Duration) {
        if self.mode == ClockMode::Modeled {
            self.offset_ms += self.model.cost_ms(work) - measured.as_secs_f64() * 1000.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_wall_clock_counts_the_work_as_it_took() {
        let w0 = Instant::now();
        let mut c = TurnClock::new(ClockMode::Wall, CostModel::default(), 1000.0, w0);
        c.worked(Work::Asr { audio_ms: 3000.0 }, MS(700));
        assert_eq!(c.at(w0 + MS(700)), 1700.0);
        // An event that arrived earlier keeps its arrival time.
        assert_eq!(c.at(w0 + MS(300)), 1300.0);
    }

    #[test]
    fn the_modeled_clock_replaces_measured_work_by_its_cost() {
        let w0 = Instant::now();
        let m = CostModel::default();
        let mut c = TurnClock::new(ClockMode::Modeled, m, 1000.0, w0);
        // Whisper took 700 ms on a busy host; the model says 60 + 0.05 × 3000 = 210 ms.
        c.worked(Work::Asr { audio_ms: 3000.0 }, MS(700));
        assert!((c.at(w0 + MS(700)) - 1210.0).abs() < 1e-6);
        // A slower host changes nothing once the work is accounted for.
        let mut slow = TurnClock::new(ClockMode::Modeled, m, 1000.0, w0);
        slow.worked(Work::Asr { audio_ms: 3000.0 }, MS(2500));
        assert!((slow.at(w0 + MS(2500)) - 1210.0).abs() < 1e-6);
        // Waiting (for the cloud) is real time on top: 300 ms later.
        assert!((slow.at(w0 + MS(2800)) - 1510.0).abs() < 1e-6);
    }

    #[test]
    fn time_never_goes_back() {
        let w0 = Instant::now();
        let mut c = TurnClock::new(ClockMode::Modeled, CostModel::default(), 0.0, w0);
        let before = c.at(w0 + MS(500));
        // Piper took 400 ms of wall time but is modeled at 30 + 0.09 × 1000 = 120 ms: an
        // event stamped during it must not land before what was already handed out.
        c.worked(Work::Tts { audio_ms: 1000.0 }, MS(400));
        assert!(c.at(w0 + MS(450)) >= before);
    }

    #[test]
    fn costs_are_never_negative() {
        let m = CostModel { asr_base_ms: -100.0, ..CostModel::default() };
        assert_eq!(m.cost_ms(Work::Asr { audio_ms: 10.0 }), 0.0);
        assert_eq!(CostModel::default().cost_ms(Work::Mulm), 10.0);
    }
}
