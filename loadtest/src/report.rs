//! Latency percentiles (HDR histogram, microseconds) and outcomes, as text and JSON.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One run's latencies of successful requests and counts of failed ones by label.
#[derive(Clone)]
pub struct Report {
    latencies_us: Histogram<u64>,
    /// The same requests timed from when they were sent rather than scheduled.
    service_us: Histogram<u64>,
    /// How late the generator sent each request after its scheduled start: its timer's
    /// granularity (1 ms in tokio) and its own CPU, not the server's doing.
    lag_us: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    elapsed: Duration,
    target_rate: f64,
}

/// The figures, for `--json`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Requests per second the plan asked for.
    pub target_rate: f64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Failed requests by label: JSON-RPC error code, `http-<status>`, `client-saturated`, ...
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second of the run's wall time.
    pub ok_per_second: f64,
    /// Median latency of successful requests from their scheduled start, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile latency, in milliseconds.
    pub p999_ms: f64,
    /// The highest latency, in milliseconds.
    pub max_ms: f64,
    /// Median latency from the moment each request was sent, in milliseconds.
    pub sent_p50_ms: f64,
    /// 99th percentile latency from the moment each request was sent, in milliseconds.
    pub sent_p99_ms: f64,
    /// Median delay of the sends after their scheduled start, in milliseconds.
    pub lag_p50_ms: f64,
    /// 99th percentile delay of the sends after their scheduled start, in milliseconds.
    pub lag_p99_ms: f64,
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        // 1 µs to 60 s at 3 significant digits.
        let histogram = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Self {
            latencies_us: histogram(),
            service_us: histogram(),
            lag_us: histogram(),
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
            target_rate: 0.0,
        }
    }

    /// Records one finished request: `lag` after its scheduled start it was sent, and `latency`
    /// after that it finished; the latencies if it succeeded, its label if it failed.
    pub fn record(&mut self, lag: Duration, latency: Duration, outcome: Result<(), String>) {
        let us = |d: Duration| (d.as_micros() as u64).max(1);
        self.lag_us.saturating_record(us(lag));
        match outcome {
            Ok(()) => {
                self.latencies_us.saturating_record(us(lag + latency));
                self.service_us.saturating_record(us(latency));
            }
            Err(label) => self.record_error(&label),
        }
    }

    /// Counts one failure under `label`.
    pub fn record_error(&mut self, label: &str) {
        *self.errors.entry(label.to_owned()).or_default() += 1;
    }

    /// Requests recorded so far, successes and failures.
    pub fn count(&self) -> u64 {
        self.latencies_us.len() + self.errors.values().sum::<u64>()
    }

    pub(crate) fn finish(&mut self, elapsed: Duration, target_rate: f64) {
        self.elapsed = elapsed;
        self.target_rate = target_rate;
    }

    /// The run's figures.
    pub fn summary(&self) -> Summary {
        let ms = |q: f64| self.latencies_us.value_at_quantile(q) as f64 / 1_000.0;
        Summary {
            target_rate: self.target_rate,
            ok: self.latencies_us.len(),
            errors: self.errors.clone(),
            ok_per_second: self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.latencies_us.max() as f64 / 1_000.0,
            sent_p50_ms: self.service_us.value_at_quantile(0.5) as f64 / 1_000.0,
            sent_p99_ms: self.service_us.value_at_quantile(0.99) as f64 / 1_000.0,
            lag_p50_ms: self.lag_us.value_at_quantile(0.5) as f64 / 1_000.0,
            lag_p99_ms: self.lag_us.value_at_quantile(0.99) as f64 / 1_000.0,
        }
    }

    /// The figures as text: rate and percentiles, then one line per error label.
    pub fn text(&self) -> String {
        let s = self.summary();
        let mut out = format!(
            "target {:.0}/s  ok {} ({:.1}/s)\nlatency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n\
             from the send ms  p50 {:.3}  p99 {:.3}  (sent after the schedule by p50 {:.3}  p99 {:.3})\n",
            s.target_rate,
            s.ok,
            s.ok_per_second,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.p999_ms,
            s.max_ms,
            s.sent_p50_ms,
            s.sent_p99_ms,
            s.lag_p50_ms,
            s.lag_p99_ms
        );
        for (label, n) in &s.errors {
            out.push_str(&format!("error {label}: {n}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_errors_are_counted_exactly() {
        let mut report = Report::new();
        for ms in 1..=100u64 {
            report.record(Duration::from_millis(1), Duration::from_millis(ms - 1), Ok(()));
        }
        report.record(Duration::ZERO, Duration::from_millis(5), Err("-32501".into()));
        report.record_error("-32501");
        report.record_error("timeout");
        report.finish(Duration::from_secs(2), 50.0);
        let s = report.summary();
        assert_eq!(s.ok, 100);
        assert_eq!(s.ok_per_second, 50.0);
        assert_eq!(s.errors, BTreeMap::from([("-32501".into(), 2), ("timeout".into(), 1)]));
        // 3 significant digits: 50 ms is reported within 0.1%.
        assert!((s.p50_ms - 50.0).abs() <= 0.05, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() <= 0.1, "{}", s.p99_ms);
        assert!((s.max_ms - 100.0).abs() <= 0.1, "{}", s.max_ms);
        // Timed from the send, one millisecond less; the sends were that late.
        assert!((s.sent_p50_ms - 49.0).abs() <= 0.05, "{}", s.sent_p50_ms);
        assert!((s.lag_p99_ms - 1.0).abs() <= 0.01, "{}", s.lag_p99_ms);
        assert_eq!(report.count(), 103);
        assert!(report.text().contains("error timeout: 1"));
    }
}
