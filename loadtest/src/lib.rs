//! An open-loop load generator: requests start on a fixed schedule whether or not earlier ones
//! finished, and latency is measured from the scheduled start, so a stalled server shows up
//! in the percentiles instead of silently slowing the test (no coordinated omission). The same
//! requests are also timed from their actual send: tokio's timer wakes on whole milliseconds,
//! so a send starts up to a millisecond after its schedule, which the first figure includes.

pub mod bundler;
pub mod inclusion;
pub mod paymaster;
pub mod report;

pub use report::Report;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How hard and how long to push.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Requests started per second.
    pub rate: f64,
    /// How long to keep starting requests.
    pub duration: Duration,
    /// Requests in flight at most; a request due while this many are pending is counted as
    /// `client-saturated` instead of queueing without bound.
    pub max_in_flight: usize,
}

impl Plan {
    /// Requests the plan starts in all.
    pub fn total(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }
}

/// The outcome of one request: `Err` carries a short label (an error code, "timeout", ...).
pub type Outcome = Result<(), String>;

/// Runs `request(i)` for i = 0, 1, … at `plan.rate` for `plan.duration`, and reports.
pub async fn run<F, Fut>(plan: Plan, request: F) -> Report
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let total = plan.total();
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let report = Arc::new(Mutex::new(Report::new()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    let request = Arc::new(request);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut last_progress = Instant::now();
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            report.lock().unwrap().record_error("client-saturated");
            continue;
        };
        let (task_report, request) = (report.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = request(i).await;
            let latency = sent.elapsed();
            drop(permit);
            task_report.lock().unwrap().record(sent.saturating_duration_since(due), latency, outcome);
        }));
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let done = report.lock().unwrap().count();
            eprint!("\r{}", progress_bar(done, total, started.elapsed()));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    eprintln!("\r{}", progress_bar(total, total, started.elapsed()));
    let mut report = Arc::try_unwrap(report)
        .map(|m| m.into_inner().unwrap())
        .unwrap_or_else(|a| a.lock().unwrap().clone());
    report.finish(started.elapsed(), plan.rate);
    report
}

/// `[#########           ]  45%  4500/10000  4.5s`
fn progress_bar(done: u64, total: u64, elapsed: Duration) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH).min(WIDTH) as usize;
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    format!(
        "[{}{}] {percent:>3}%  {done}/{total}  {:.1}s",
        "#".repeat(filled),
        " ".repeat(WIDTH as usize - filled),
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_fills_in_proportion() {
        let at = Duration::from_millis(4_500);
        assert_eq!(progress_bar(0, 10, at), format!("[{}]   0%  0/10  4.5s", " ".repeat(30)));
        assert_eq!(
            progress_bar(5, 10, at),
            format!("[{}{}]  50%  5/10  4.5s", "#".repeat(15), " ".repeat(15))
        );
        assert_eq!(progress_bar(0, 0, at), format!("[{}] 100%  0/0  4.5s", "#".repeat(30)));
    }
}
