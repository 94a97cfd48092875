//! Where a figure comes from: every `bench` and `eval` report carries the commit (clean or
//! dirty), the UTC date, the CPU model, the number of hardware threads and the load average at
//! the time of the run (issue 17 §6), so that a published number can be traced and a figure
//! taken on a busy machine can be told apart from one taken on a quiet one.

use anyhow::{Context, Result};
use serde::Serialize;

/// The machine and the source tree a report was produced on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Provenance {
    /// `git rev-parse --short HEAD` of the working directory, `+dirty` when tracked files
    /// have changes, `unknown` outside a git checkout.
    pub commit: String,
    /// UTC time of the run, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// `model name` from /proc/cpuinfo (`unknown` where it has none, e.g. many Arm kernels).
    pub cpu_model: String,
    /// Hardware threads this process may run on (`std::thread::available_parallelism`).
    pub cpu_threads: usize,
    /// 1-, 5- and 15-minute load averages from /proc/loadavg; `None` where it cannot be read.
    pub load_average: Option<[f64; 3]>,
}

impl Provenance {
    /// Reads the provenance of a run starting now. Never fails: a value it cannot read is
    /// recorded as unknown rather than stopping the benchmark.
    pub fn now() -> Self {
        Self {
            commit: git_commit(),
            date: utc_now(),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| cpu_model(&s)).unwrap_or_else(|| "unknown".into()),
            cpu_threads: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average: load_average_now(),
        }
    }

    /// One line for text reports: `AMD EPYC, 2 threads, load 0.15 0.04 0.01`.
    pub fn machine(&self) -> String {
        let load = self.load_average.map_or("load unknown".into(), |[a, b, c]| format!("load {a:.2} {b:.2} {c:.2}"));
        format!("{}, {} threads, {load}", self.cpu_model, self.cpu_threads)
    }
}

/// Serializes `report` as pretty JSON with a `"provenance"` object added (taken now). A report
/// that is not a JSON object is wrapped as `{"report": …, "provenance": …}`.
///
/// Errors: `report` cannot be serialized (a map with non-string keys, a failing `Serialize`).
pub fn report_json<T: Serialize>(report: &T) -> Result<String> {
    let value = serde_json::to_value(report).context("serializing the report")?;
    let stamped = stamp(value, &Provenance::now());
    serde_json::to_string_pretty(&stamped).context("serializing the report")
}

/// `value` with `provenance` under the key `"provenance"` (replacing one already there).
fn stamp(value: serde_json::Value, provenance: &Provenance) -> serde_json::Value {
    let p = serde_json::to_value(provenance).unwrap_or(serde_json::Value::Null);
    match value {
        serde_json::Value::Object(mut map) => {
            map.insert("provenance".into(), p);
            serde_json::Value::Object(map)
        }
        other => serde_json::json!({ "report": other, "provenance": p }),
    }
}

/// The first `model name` of a /proc/cpuinfo text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The 1-, 5- and 15-minute load averages now (/proc/loadavg), without the rest of
/// [`Provenance::now`] (which runs git); `None` where /proc cannot be read.
pub fn load_average_now() -> Option<[f64; 3]> {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| load_average(&s))
}

/// The three load averages of a /proc/loadavg text (`0.15 0.04 0.01 1/123 4567`).
fn load_average(loadavg: &str) -> Option<[f64; 3]> {
    let mut it = loadavg.split_whitespace().map(|f| f.parse::<f64>().ok().filter(|v| v.is_finite()));
    Some([it.next()??, it.next()??, it.next()??])
}

/// Short commit of the working tree (`+dirty` with uncommitted changes to tracked files),
/// `unknown` outside a git checkout or without git.
pub fn git_commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(h) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{h}+dirty"),
            _ => h,
        },
        None => "unknown".into(),
    }
}

/// Current UTC time as `YYYY-MM-DD HH:MM UTC` (civil-from-days, no time-zone crate).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format_utc(secs)
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provenance {
        Provenance {
            commit: "abc1234+dirty".into(),
            date: "2026-12-03 06:00 UTC".into(),
            cpu_model: "AMD EPYC".into(),
            cpu_threads: 2,
            load_average: Some([0.15, 0.04, 0.01]),
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_795_349_100), "2026-11-22 12:05 UTC");
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\
                    processor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(info).as_deref(), Some("AMD EPYC 7B13"));
        // Arm kernels print no model name: unknown, not an empty string.
        assert_eq!(cpu_model("processor\t: 0\nBogoMIPS\t: 48.00\n"), None);
        assert_eq!(cpu_model("model name\t: \n"), None);
    }

    #[test]
    fn load_average_takes_three_finite_numbers() {
        assert_eq!(load_average("0.15 0.04 0.01 1/123 4567\n"), Some([0.15, 0.04, 0.01]));
        assert_eq!(load_average("10.50 9.99 3.00"), Some([10.5, 9.99, 3.0]));
        assert_eq!(load_average("0.15 0.04"), None);
        assert_eq!(load_average("0.15 nan 0.01 1/1 1"), None);
        assert_eq!(load_average("busy 0.04 0.01"), None);
    }

    #[test]
    fn stamp_adds_provenance_to_objects_and_wraps_the_rest() {
        let p = sample();
        let v = stamp(serde_json::json!({"bench": "lm", "provenance": "stale"}), &p);
        assert_eq!(v["bench"], "lm");
        assert_eq!(v["provenance"]["commit"], "abc1234+dirty");
        assert_eq!(v["provenance"]["cpu_threads"], 2);
        assert_eq!(v["provenance"]["load_average"][0], 0.15);
        let w = stamp(serde_json::json!([1, 2]), &p);
        assert_eq!(w["report"], serde_json::json!([1, 2]));
        assert_eq!(w["provenance"]["cpu_model"], "AMD EPYC");
    }

    #[test]
    fn machine_line_says_when_load_is_unknown() {
        assert_eq!(sample().machine(), "AMD EPYC, 2 threads, load 0.15 0.04 0.01");
        let p = Provenance { load_average: None, ..sample() };
        assert_eq!(p.machine(), "AMD EPYC, 2 threads, load unknown");
    }

    #[test]
    fn report_json_stamps_a_real_run() {
        #[derive(Serialize)]
        struct R {
            p50_ms: f64,
        }
        let text = report_json(&R { p50_ms: 1.5 }).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["p50_ms"], 1.5);
        assert!(v["provenance"]["date"].as_str().unwrap().ends_with(" UTC"));
        assert!(v["provenance"]["cpu_threads"].as_u64().unwrap() >= 1);
    }
}
