//! The machine a report was measured on: CPU, threads, peak rate, toolchain and commit.

use std::process::Command;

use serde::{Deserialize, Serialize};

/// Where and with what a suite ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU's model name with its family and model numbers.
    pub cpu: String,
    /// Threads both sides ran on.
    pub threads: usize,
    /// Whether the CPU has AVX-512F.
    pub avx512: bool,
    /// The f32 FMA peak of `threads` threads, GFLOP/s, measured with a register-resident FMA
    /// loop on all of them at once (`None` without AVX2/AVX-512).
    pub peak_gflops: Option<f64>,
    /// The instruction set the `gemm` crate dispatches to.
    pub gemm_isa: String,
    /// `rustc --version`, when a toolchain is on the PATH.
    pub rustc: String,
    /// The git commit measured (with `-dirty` for uncommitted changes).
    pub commit: String,
    /// The date, UTC, `YYYY-MM-DD`.
    pub date: String,
}

impl Machine {
    /// Describes this machine; measures the FMA peak on `threads` threads (about half a second).
    pub fn detect(threads: usize) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let model_name = field("model name");
        let cpu = if model_name.is_empty() {
            std::env::consts::ARCH.to_string()
        } else {
            format!(
                "{model_name} (family {}, model {})",
                field("cpu family"),
                field("model")
            )
        };
        Machine {
            cpu,
            threads,
            avx512: field("flags").split_whitespace().any(|f| f == "avx512f"),
            peak_gflops: metron_metrics::fma_peak(threads, 0.5).map(|p| p.gflops),
            gemm_isa: metron_metrics::gemm_isa().to_string(),
            rustc: command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
            commit: commit(),
            date: today(),
        }
    }
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn commit() -> String {
    let Some(hash) = command_line("git", &["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    if dirty { format!("{hash}-dirty") } else { hash }
}

/// Today's UTC date from the system clock.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_date((secs / 86_400) as i64)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_by_hand() {
        assert_eq!(civil_date(0), "1970-01-01");
        // 2000-03-01: 30 years (7 leap days) + Jan + Feb of a leap year.
        assert_eq!(civil_date(30 * 365 + 7 + 31 + 29), "2000-03-01");
        assert_eq!(civil_date(-1), "1969-12-31");
    }
}
