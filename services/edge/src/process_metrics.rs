//! Process metrics read from `/proc/self` at scrape time: resident memory, CPU time, open file
//! descriptors and their limit (`wharf_process_*`). prometheus-client has no process collector;
//! these are the series the dashboards and the restart-storm and fd-exhaustion alerts read.
//!
//! On a system without `/proc` (macOS development) the series are simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The kernel reports CPU times in `/proc` in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// Reads `/proc/self` on every scrape.
#[derive(Debug, Default)]
pub(crate) struct ProcessCollector;

/// One reading of the process.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

fn read() -> Reading {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let status = std::fs::read_to_string("/proc/self/status").ok();
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|dir| i64::try_from(dir.count()).unwrap_or(i64::MAX));
    Reading {
        cpu_seconds: stat.as_deref().and_then(cpu_seconds),
        resident_bytes: status.as_deref().and_then(resident_bytes),
        open_fds,
        max_fds: limits.as_deref().and_then(max_fds),
    }
}

/// utime + stime from `/proc/self/stat` (fields 14 and 15; the command name in field 2 may hold
/// spaces and parentheses, so fields are counted from the last `)`).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Precision is not an issue: 2^53 ticks are millions of years of CPU.
    Some((utime + stime) as f64 / USER_HZ)
}

/// `VmRSS:  1234 kB` from `/proc/self/status`.
fn resident_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft limit of `Max open files` from `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let reading = read();
        if let Some(seconds) = reading.cpu_seconds {
            let metric = ConstCounter::new(seconds);
            metric.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the process, in seconds",
                None,
                metric.metric_type(),
            )?)?;
        }
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory of the process", reading.resident_bytes),
            ("process_open_fds", "Open file descriptors of the process", reading.open_fds),
            ("process_max_fds", "The process's limit on open file descriptors", reading.max_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let metric = ConstGauge::new(value);
                metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn stat_status_and_limits_parse() {
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 100 1 2";
        assert_eq!(cpu_seconds(stat), Some(3.8));
        assert_eq!(resident_bytes("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2048 * 1024));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_fds(limits), Some(1024));
    }

    #[test]
    fn this_process_reads_on_linux() {
        if cfg!(target_os = "linux") {
            let reading = read();
            assert!(reading.resident_bytes.unwrap() > 0);
            assert!(reading.open_fds.unwrap() > 0);
            assert!(reading.cpu_seconds.is_some());
        }
    }
}
