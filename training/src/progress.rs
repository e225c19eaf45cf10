//! Progress of long work: a bar on a terminal, and where stderr is not one (a log file, a pipe,
//! a service's journal) a line at a bounded rate that says the same: stage, epoch and step,
//! loss, time spent and about how much is left.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a line is written when stderr is not a terminal (and once at each epoch's end).
const LINE_EVERY: Duration = Duration::from_secs(15);

/// The progress of one stage (a training phase, a posture fit, loading graphs).
pub struct Progress {
    bar: ProgressBar,
    stage: String,
    /// Where the stage is: `epoch/epochs` when it has epochs.
    epoch: Option<(usize, usize)>,
    loss: Option<f64>,
    started: Instant,
    last_line: Option<Instant>,
    /// Lines instead of a bar (stderr is not a terminal).
    lines: bool,
}

impl Progress {
    /// `total` steps of `stage` (for training: steps per epoch times the epochs to go).
    pub fn new(stage: &str, total: u64) -> Self {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stage.to_owned());
        Self {
            lines: bar.is_hidden(),
            bar,
            stage: stage.to_owned(),
            epoch: None,
            loss: None,
            started: Instant::now(),
            last_line: None,
        }
    }

    /// A stage that counts items, not epochs (`what`: "recordings", "frames").
    pub fn items(stage: &str, total: u64, what: &str) -> Self {
        let progress = Self::new(stage, total);
        progress.bar.set_message(what.to_owned());
        progress
    }

    /// Epoch `epoch` (from 1) of `epochs` begins.
    pub fn epoch(&mut self, epoch: usize, epochs: usize) {
        self.epoch = Some((epoch, epochs));
        self.bar
            .set_prefix(format!("{} {epoch}/{epochs}", self.stage));
    }

    /// One step done, with its loss.
    pub fn step(&mut self, loss: f32) {
        self.loss = Some(f64::from(loss));
        self.bar.set_message(format!("loss {loss:.4}"));
        self.advance();
    }

    /// One item done.
    pub fn inc(&mut self) {
        self.advance();
    }

    /// The epoch ended with a mean loss of `mean`: always a line when writing lines.
    pub fn end_epoch(&mut self, mean: f64) {
        self.loss = Some(mean);
        if self.lines {
            self.line("mean loss");
        }
    }

    /// The stage is done.
    pub fn finish(self) {
        self.bar.finish_and_clear();
        if self.lines {
            eprintln!("{}: done in {}", self.stage, clock(self.started.elapsed()));
        }
    }

    fn advance(&mut self) {
        self.bar.inc(1);
        if self.lines && self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY) {
            self.line("loss");
        }
    }

    fn line(&mut self, loss_name: &str) {
        self.last_line = Some(Instant::now());
        let (done, total) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let elapsed = self.started.elapsed();
        let mut line = self.stage.clone();
        if let Some((epoch, epochs)) = self.epoch {
            line.push_str(&format!(" epoch {epoch}/{epochs}"));
        }
        line.push_str(&format!(
            " step {done}/{total} ({:.0} %)",
            100.0 * done as f64 / total.max(1) as f64
        ));
        if let Some(loss) = self.loss {
            line.push_str(&format!(", {loss_name} {loss:.4}"));
        }
        line.push_str(&format!(", {} elapsed", clock(elapsed)));
        if done > 0 && done < total {
            let left = elapsed.mul_f64((total - done) as f64 / done as f64);
            line.push_str(&format!(", about {} left", clock(left)));
        }
        eprintln!("{line}");
    }
}

/// `1h 02m`, `3m 07s`, `12s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_clock() {
        assert_eq!(clock(Duration::from_secs(12)), "12s");
        assert_eq!(clock(Duration::from_secs(187)), "3m 07s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h 02m");
    }
}
