//! `bench pipeline --live`: voice-to-voice as a user hears it. The voice fixtures are joined
//! into one WAV (1 s of silence first, `gap_s` after each question), and the device binary
//! `firstword run --input-wav … --report-json …` plays it at real-time pace into its
//! simulated microphone: listener thread, VAD, speculation, the conversation loop, the
//! speaker ring — the live path, not replay's. The cloud is the scripted backend behind a
//! gateway this process serves on 127.0.0.1 (a remote cloud costs the device's cores
//! nothing), with the injected first-delta latency.
//!
//! The daemon runs as a child process so that its output stays out of the report, and so
//! that what is measured is the binary users run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::pipeline::Question;
use super::stats::{summarize, Summary};

/// Silence before the first question (s): the VAD and the cloud link settle.
const LEAD_S: f64 = 1.0;
/// Time the daemon gets beyond the input's length (s): model loading, the last reply.
const CHILD_SLACK_S: f64 = 120.0;

/// One live run at one injected cloud latency.
#[derive(Debug, Serialize)]
pub struct LiveRow {
    pub cloud_latency_ms: f64,
    /// Questions in the input WAV.
    pub questions: usize,
    pub voice_to_voice_ms: Option<Summary>,
    pub handoff_gap_ms: Option<Summary>,
    /// Every turn the daemon reported (a question it split would show as two).
    pub turns: Vec<daemon::live::TurnSummary>,
}

/// The questions' audio joined: [`LEAD_S`] of silence, then each question followed by
/// `gap_s` of silence (16 kHz mono).
pub fn join_questions(questions: &[(Question, Vec<f32>)], gap_s: f64) -> Vec<f32> {
    let rate = audio::ASR_RATE_HZ as f64;
    let mut out = vec![0.0; (LEAD_S * rate) as usize];
    for (_, x) in questions {
        out.extend_from_slice(x);
        out.resize(out.len() + (gap_s * rate) as usize, 0.0);
    }
    out
}

/// The device binary beside this one (`target/release/firstword` next to `firstword-lab`).
fn device_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating firstword-lab")?;
    let bin = exe.with_file_name(if cfg!(windows) { "firstword.exe" } else { "firstword" });
    if !bin.is_file() {
        bail!("--live runs the device binary, and {} does not exist: build it (cargo build --release -p daemon)", bin.display());
    }
    Ok(bin)
}

/// The daemon's config for the run: the bench's config file (or the built-in defaults)
/// with the cloud pointed at the scripted gateway and the metrics endpoint off.
fn live_config(base: Option<&Path>, url: &str, token: &str) -> Result<String> {
    let base_path = base.map(Path::to_path_buf).or_else(|| Some(PathBuf::from(daemon::config::DEFAULT_CONFIG)).filter(|p| p.is_file()));
    let mut table: toml::Table = match &base_path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => toml::Table::new(),
    };
    let section = |t: &mut toml::Table, name: &str| -> Result<toml::Table> {
        match t.remove(name) {
            None => Ok(toml::Table::new()),
            Some(toml::Value::Table(s)) => Ok(s),
            Some(_) => bail!("[{name}] in the config is not a table"),
        }
    };
    let mut cloud = section(&mut table, "cloud")?;
    cloud.insert("url".into(), url.into());
    cloud.insert("token".into(), token.into());
    table.insert("cloud".into(), cloud.into());
    let mut metrics = section(&mut table, "metrics")?;
    metrics.insert("listen".into(), "".into());
    table.insert("metrics".into(), metrics.into());
    Ok(toml::to_string(&table)?)
}

/// Runs `firstword run` on `input` once per latency, each against a fresh scripted gateway.
///
/// Errors: the device binary is missing, the gateway does not start, the daemon fails (its
/// stderr is in the message), or its report is unreadable.
pub fn run(
    base_config: Option<&Path>,
    questions: &[(Question, Vec<f32>)],
    gap_s: f64,
    latencies_ms: &[f64],
    gateway_toml: impl Fn(f64) -> Result<String>,
) -> Result<Vec<LiveRow>> {
    let bin = device_binary()?;
    // Removed when this returns, on every path.
    let dir = tempfile::Builder::new().prefix("firstword-bench-live-").tempdir().context("creating a temporary directory")?;
    let input = dir.path().join("questions.wav");
    let joined = join_questions(questions, gap_s);
    audio::write_wav(&input, &joined, audio::ASR_RATE_HZ).context("writing the joined questions")?;
    // The input plays in real time; the daemon then finishes the last reply and exits. Past
    // this it is taken as hung and killed.
    let limit = Duration::from_secs_f64(joined.len() as f64 / audio::ASR_RATE_HZ as f64 + CHILD_SLACK_S);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let mut rows = Vec::new();
    for &latency in latencies_ms {
        let gw_cfg = cloud::gateway::GatewayConfig::from_toml_str(&gateway_toml(latency)?)?;
        let token = gw_cfg.token.clone();
        let gateway = rt.block_on(cloud::gateway::spawn(gw_cfg)).context("starting the scripted gateway")?;
        let cfg_path = dir.path().join("firstword.toml");
        std::fs::write(&cfg_path, live_config(base_config, &gateway.url(), &token)?)?;
        let report = dir.path().join(format!("turns-{latency:.0}.json"));
        let stderr = dir.path().join(format!("stderr-{latency:.0}.txt"));
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(&cfg_path).args(["run", "--input-wav"]).arg(&input).arg("--report-json").arg(&report);
        let ran = run_bounded(cmd, &stderr, limit);
        rt.block_on(gateway.shutdown());
        ran.with_context(|| format!("firstword run at {latency:.0} ms cloud latency"))?;
        let text = std::fs::read_to_string(&report).with_context(|| format!("reading {}", report.display()))?;
        let log: daemon::live::TurnLog = serde_json::from_str(&text).with_context(|| format!("parsing {}", report.display()))?;
        let v2v: Vec<f64> = log.turns.iter().filter_map(|t| t.voice_to_voice_ms).collect();
        let gap: Vec<f64> = log.turns.iter().filter_map(|t| t.handoff_gap_ms).collect();
        rows.push(LiveRow {
            cloud_latency_ms: latency,
            questions: questions.len(),
            voice_to_voice_ms: summarize(&v2v),
            handoff_gap_ms: summarize(&gap),
            turns: log.turns,
        });
    }
    Ok(rows)
}

/// Runs `cmd` (stdout discarded, stderr into `stderr_file`) for at most `limit`. Errors: it
/// could not start, it failed (with the end of its stderr), or it ran past `limit` (killed).
fn run_bounded(mut cmd: Command, stderr_file: &Path, limit: Duration) -> Result<()> {
    let err = std::fs::File::create(stderr_file).with_context(|| format!("creating {}", stderr_file.display()))?;
    let mut child = cmd.stdout(Stdio::null()).stderr(err).spawn().context("starting the device binary")?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {:.0} s: killed", limit.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        let text = std::fs::read_to_string(stderr_file).unwrap_or_default();
        let tail: String = text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        bail!("failed ({status}): {tail}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str) -> Question {
        Question { id: id.into(), text: String::new(), keyword: String::new(), cloud_reply: String::new() }
    }

    #[test]
    fn questions_are_joined_after_a_lead_with_a_gap_after_each() {
        let x = join_questions(&[(q("a"), vec![0.5; 3]), (q("b"), vec![-0.5; 2])], 0.001);
        let lead = 16_000;
        assert_eq!(x.len(), lead + 3 + 16 + 2 + 16);
        assert!(x[..lead].iter().all(|&s| s == 0.0));
        assert_eq!(&x[lead..lead + 3], &[0.5; 3]);
        assert!(x[lead + 3..lead + 19].iter().all(|&s| s == 0.0));
        assert_eq!(&x[lead + 19..lead + 21], &[-0.5; 2]);
    }

    #[test]
    fn a_child_is_bounded_and_its_failure_names_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let err = dir.path().join("err.txt");
        let mut sh = Command::new("sh");
        sh.args(["-c", "echo no model here >&2; exit 3"]);
        let e = run_bounded(sh, &err, Duration::from_secs(10)).unwrap_err().to_string();
        assert!(e.contains("no model here") && e.contains('3'), "{e}");
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        let t = Instant::now();
        let e = run_bounded(sleeper, &err, Duration::from_millis(300)).unwrap_err().to_string();
        assert!(e.contains("killed") && t.elapsed() < Duration::from_secs(10), "{e}");
        assert!(run_bounded(Command::new("true"), &err, Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn the_live_config_points_the_cloud_at_the_gateway_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("firstword-live-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("base.toml");
        std::fs::write(
            &base,
            "[vad]\npause_ms = 64\n[cloud]\nurl = \"wss://example.invalid\"\nmax_tokens = 9\n[metrics]\nlisten = \"127.0.0.1:9100\"\n",
        )
        .unwrap();
        let t: toml::Table = toml::from_str(&live_config(Some(&base), "ws://127.0.0.1:1/", "tok").unwrap()).unwrap();
        assert_eq!(t["vad"]["pause_ms"].as_integer(), Some(64));
        assert_eq!(t["cloud"]["url"].as_str(), Some("ws://127.0.0.1:1/"));
        assert_eq!(t["cloud"]["token"].as_str(), Some("tok"));
        assert_eq!(t["cloud"]["max_tokens"].as_integer(), Some(9));
        assert_eq!(t["metrics"]["listen"].as_str(), Some(""));
        std::fs::write(&base, "cloud = 3\n").unwrap();
        assert!(live_config(Some(&base), "ws://x/", "t").unwrap_err().to_string().contains("[cloud]"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
