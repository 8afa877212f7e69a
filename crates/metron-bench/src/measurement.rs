//! What one process reports about one job: the protocol shared with `benches/compare/peer.py`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{BenchError, Result};

/// One process's run of one job: its repetitions' times and its memory. Both metron's side and
/// `peer.py` print one of these as the last line of their standard output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The job kind (`knn`, `loss`, `backbone`, `data`, `cgd`).
    pub job: String,
    /// Who ran it (`metron`, `faiss`, `pml`, `torch`, `torchvision`).
    pub peer: String,
    /// What exactly ran, in words (library, version, implementation).
    pub variant: String,
    /// Seconds of each timed repetition, after the warm-up ones.
    pub times_s: Vec<f64>,
    /// Resident memory after the warm-up, right before the first timed repetition, MiB.
    pub base_rss_mb: f64,
    /// The process's peak resident memory (`VmHWM`), MiB.
    pub peak_rss_mb: f64,
    /// Resident memory after the last repetition, MiB: what the job still holds.
    pub after_rss_mb: f64,
    /// The kernel path: GEMM instruction set, BLAS architecture, attention implementation.
    #[serde(default)]
    pub kernel: String,
    /// Library versions.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
}

impl Measurement {
    /// Reads the measurement from a process's standard output: its last non-empty line.
    pub fn from_stdout(stdout: &str, who: &str) -> Result<Self> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| BenchError::Protocol(format!("{who} printed nothing")))?;
        let m: Measurement = serde_json::from_str(line).map_err(|e| {
            BenchError::Protocol(format!(
                "{who}'s last line is not a measurement ({e}): {line}"
            ))
        })?;
        if m.times_s.is_empty() || m.times_s.iter().any(|t| !t.is_finite() || *t < 0.0) {
            return Err(BenchError::Protocol(format!(
                "{who} reported no valid times: {:?}",
                m.times_s
            )));
        }
        Ok(m)
    }
}

/// Resident memory figures of this process from `/proc/self/status`, MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rss {
    /// `VmRSS`: resident now.
    pub current_mb: f64,
    /// `VmHWM`: the peak so far.
    pub peak_mb: f64,
}

/// This process's resident memory; zeros where `/proc` is not available (not Linux).
pub fn rss() -> Rss {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Rss {
        current_mb: status_kib(&status, "VmRSS:") / 1024.0,
        peak_mb: status_kib(&status, "VmHWM:") / 1024.0,
    }
}

fn status_kib(status: &str, field: &str) -> f64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_line_and_refuses_garbage() {
        let line = r#"{"job":"loss","peer":"pml","variant":"x","times_s":[0.5,0.25],"base_rss_mb":1,"peak_rss_mb":3,"after_rss_mb":2}"#;
        let m = Measurement::from_stdout(&format!("warming up\n{line}\n\n"), "peer").unwrap();
        assert_eq!(m.times_s, vec![0.5, 0.25]);
        assert_eq!(m.peak_rss_mb, 3.0);
        assert!(Measurement::from_stdout("", "peer").is_err());
        assert!(Measurement::from_stdout("Traceback ...", "peer").is_err());
        let empty = line.replace("[0.5,0.25]", "[]");
        assert!(Measurement::from_stdout(&empty, "peer").is_err());
    }

    #[test]
    fn status_fields_parse_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  20480 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), 20480.0);
        assert_eq!(status_kib(status, "VmRSS:"), 1024.0);
        assert_eq!(status_kib(status, "VmSwap:"), 0.0);
        #[cfg(target_os = "linux")]
        {
            let r = rss();
            assert!(r.peak_mb >= r.current_mb && r.current_mb > 0.0, "{r:?}");
        }
    }
}
