//! `firstword bench …`: benchmarks that print JSON (timing goals live here, never in tests).

mod cloud;
mod echo;
mod gateway_abuse;
mod live;
mod lm;
mod paused;
mod pipeline;
mod speech;
pub mod stats;
mod voices;
mod wakeword;

use anyhow::Result;
use clap::Subcommand;

use daemon::config::Config;

#[derive(Subcommand)]
pub enum Which {
    /// Gateway overhead: concurrent streaming sessions on one in-process gateway with a
    /// scripted instant backend (first delta p50/p99, errors).
    Cloud {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 200)]
        sessions: usize,
    },
    /// The gateway under hostile clients (silent connections, slow readers, malformed
    /// frames, bad-token floods) while well-behaved sessions stream: their errors, p99
    /// first-delta overhead, RSS and open descriptors before/after.
    GatewayAbuse(gateway_abuse::AbuseArgs),
    /// ASR latency and real-time factor on a 3-5 s question; TTS time to first audio for a
    /// 6-word phrase and TTS real-time factor; peak RSS.
    Speech {
        /// Print the JSON report (otherwise a table).
        #[arg(long)]
        json: bool,
        /// Timed repetitions per measurement (after one warm-up run).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// μLM latency and throughput (the paper's fixed-window method), f32 and Q8_0 per preset
    /// (`--precisions`), optionally against llama.cpp on the same GGUF weights.
    Lm(lm::LmBenchArgs),
    /// The headline: voice-to-voice latency and handoff gap over the spoken fixture questions
    /// at several injected cloud latencies, against the cloud-only baseline.
    Pipeline(pipeline::PipelineBenchArgs),
    /// Open-ear audio: echo return loss enhancement on the daemon's own speech, replies that
    /// stop themselves, and user interruptions over a 0 dB echo (simulated echo path, AEC3).
    Echo(echo::EchoBenchArgs),
    /// Wake word: detection rate on voices the reference was not built from, false
    /// activations per hour of speech without the phrase (sets from scripts/make_wakeword.sh).
    Wakeword(wakeword::BenchArgs),
}

/// Runs one benchmark; `config_path` is the config file given on the command line (None:
/// the default), for benchmarks that start the device binary with it.
pub fn run(cfg: &Config, config_path: Option<&std::path::Path>, which: Which) -> Result<()> {
    match which {
        Which::Cloud { json, sessions } => cloud::run(sessions.max(1), json),
        Which::GatewayAbuse(args) => gateway_abuse::run(&args),
        Which::Speech { json, runs } => speech::run(cfg, json, runs.max(1)),
        Which::Lm(args) => lm::run(cfg, &args),
        Which::Pipeline(args) => pipeline::run(cfg, config_path, &args),
        Which::Echo(args) => echo::run(cfg, &args),
        Which::Wakeword(args) => wakeword::run(cfg, &args),
    }
}
