//! The store-and-forward queue of one bed: postures and alerts not yet acknowledged by the
//! broker, in order, bounded, on disk. GStreamer-free.
//!
//! Two files in the queue directory: `<name>.ndjson`, one [`Entry`] per line, appended as events
//! come (one `write` each: the streaming thread never waits for the network, only for its own
//! disk), and `<name>.state.json`, what was acknowledged (the highest `seq` below which all
//! are) and what the bound dropped, replaced atomically. Reopened, the queue holds what was not
//! acknowledged, so a pipeline restarted after a crash still delivers it. When more entries
//! wait than the bound allows, the oldest goes (counted in `dropped`, a gap in `seq` at the
//! consumer): the newest posture is what a nurse station needs.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// One message waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub topic: String,
    pub retain: bool,
    pub payload: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Every entry up to this one was acknowledged (or dropped).
    acked: u64,
    dropped: u64,
}

/// The queues open in this process: two sinks with one client id would write one file.
static OPEN: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "the queue {0} is in use by another sink of this process (give each sink its own client-id or bed)"
    )]
    InUse(PathBuf),
    #[error("cannot use the queue directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot {what} the queue file {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct Journal {
    /// Held for its drop: the queue is free again when the journal goes.
    _claim: Claim,
    log_path: PathBuf,
    state_path: PathBuf,
    log: File,
    /// Lines in the log file, acknowledged ones included (compaction rewrites it).
    lines: usize,
    /// Not acknowledged, in `seq` order.
    pending: VecDeque<Entry>,
    limit: usize,
    next_seq: u64,
    progress: Progress,
    /// Acknowledged above `progress.acked` (acknowledgements may come out of order).
    acked_above: BTreeSet<u64>,
    /// Lines of the log that could not be read when it was opened (a line torn by a crash).
    pub unreadable: usize,
}

/// A queue path this process uses; dropping it frees the path.
struct Claim(PathBuf);

impl Drop for Claim {
    fn drop(&mut self) {
        OPEN.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

impl Journal {
    /// Opens (or makes) the queue `name` in `dir`, holding at most `limit` entries.
    pub fn open(dir: &Path, name: &str, limit: usize) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let log_path = dir.join(format!("{name}.ndjson"));
        let state_path = dir.join(format!("{name}.state.json"));
        let claimed = dir
            .canonicalize()
            .map_err(|source| JournalError::Directory {
                path: dir.to_owned(),
                source,
            })?
            .join(format!("{name}.ndjson"));
        if !OPEN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(claimed.clone())
        {
            return Err(JournalError::InUse(log_path));
        }
        // Given back on every way out from here: by the guard until the journal owns the claim.
        let claim = Claim(claimed);
        let progress: Progress = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let mut pending = VecDeque::new();
        let mut last_seq = progress.acked;
        let mut unreadable = 0;
        match File::open(&log_path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(|source| JournalError::File {
                        what: "read",
                        path: log_path.clone(),
                        source,
                    })?;
                    match serde_json::from_str::<Entry>(&line) {
                        Ok(e) if e.seq > last_seq => {
                            last_seq = e.seq;
                            pending.push_back(e);
                        }
                        Ok(_) => {}
                        Err(_) => unreadable += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(JournalError::File {
                    what: "open",
                    path: log_path,
                    source,
                });
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| JournalError::File {
                what: "open",
                path: log_path.clone(),
                source,
            })?;
        let mut journal = Self {
            _claim: claim,
            log_path,
            state_path,
            log,
            lines: 0,
            pending,
            limit: limit.max(1),
            next_seq: last_seq + 1,
            progress,
            acked_above: BTreeSet::new(),
            unreadable,
        };
        while journal.pending.len() > journal.limit {
            journal.drop_oldest();
        }
        journal.compact()?;
        journal.save()?;
        Ok(journal)
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Entries the bound dropped, ever (the count is kept on disk).
    pub fn dropped(&self) -> u64 {
        self.progress.dropped
    }

    /// Appends what `make` builds for the next `seq`; returns the `seq` and, when the bound
    /// made room by dropping the oldest entry, `true`.
    pub fn push(
        &mut self,
        make: impl FnOnce(u64) -> (String, bool, String),
    ) -> Result<(u64, bool), JournalError> {
        let seq = self.next_seq;
        let (topic, retain, payload) = make(seq);
        let entry = Entry {
            seq,
            topic,
            retain,
            payload,
        };
        let mut line = serde_json::to_string(&entry).expect("an entry always serializes");
        line.push('\n');
        self.log
            .write_all(line.as_bytes())
            .map_err(|source| JournalError::File {
                what: "write",
                path: self.log_path.clone(),
                source,
            })?;
        self.lines += 1;
        self.next_seq += 1;
        self.pending.push_back(entry);
        let dropped = self.pending.len() > self.limit;
        if dropped {
            self.drop_oldest();
            self.save()?;
        }
        if self.lines > 4 * self.limit.max(256) {
            self.compact()?;
        }
        Ok((seq, dropped))
    }

    /// The first entry waiting with a `seq` of at least `seq`.
    pub fn next_from(&self, seq: u64) -> Option<&Entry> {
        let i = self.pending.partition_point(|e| e.seq < seq);
        self.pending.get(i)
    }

    /// The broker acknowledged `seq`.
    pub fn ack(&mut self, seq: u64) -> Result<(), JournalError> {
        if seq <= self.progress.acked {
            return Ok(());
        }
        self.acked_above.insert(seq);
        let before = self.progress.acked;
        while self.acked_above.remove(&(self.progress.acked + 1)) {
            self.progress.acked += 1;
        }
        while self
            .pending
            .front()
            .is_some_and(|e| e.seq <= self.progress.acked)
        {
            self.pending.pop_front();
        }
        if self.progress.acked != before {
            self.save()?;
        }
        Ok(())
    }

    fn drop_oldest(&mut self) {
        if let Some(e) = self.pending.pop_front() {
            self.progress.dropped += 1;
            // What was dropped counts as done: it is not delivered later, after a reopen either.
            self.acked_above.insert(e.seq);
            while self.acked_above.remove(&(self.progress.acked + 1)) {
                self.progress.acked += 1;
            }
        }
    }

    /// Writes `what` to `path` through a temporary file and a rename: whole or not at all.
    fn replace(path: &Path, what: &[u8]) -> Result<(), JournalError> {
        let tmp = path.with_extension("tmp");
        let fail = |what: &'static str| {
            move |source| JournalError::File {
                what,
                path: path.to_owned(),
                source,
            }
        };
        std::fs::write(&tmp, what).map_err(fail("write"))?;
        std::fs::rename(&tmp, path).map_err(fail("replace"))
    }

    fn save(&self) -> Result<(), JournalError> {
        let json = serde_json::to_vec(&self.progress).expect("progress always serializes");
        Self::replace(&self.state_path, &json)
    }

    /// Rewrites the log with only the entries waiting.
    fn compact(&mut self) -> Result<(), JournalError> {
        let mut text = String::new();
        for e in &self.pending {
            text.push_str(&serde_json::to_string(e).expect("an entry always serializes"));
            text.push('\n');
        }
        Self::replace(&self.log_path, text.as_bytes())?;
        self.log = OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .map_err(|source| JournalError::File {
                what: "open",
                path: self.log_path.clone(),
                source,
            })?;
        self.lines = self.pending.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(j: &mut Journal, n: u64) -> Vec<u64> {
        (0..n)
            .map(|_| {
                j.push(|seq| ("t".into(), false, format!("{{\"seq\":{seq}}}")))
                    .unwrap()
                    .0
            })
            .collect()
    }

    #[test]
    fn what_was_not_acknowledged_is_there_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 100).unwrap();
        assert_eq!(push(&mut j, 5), [1, 2, 3, 4, 5]);
        j.ack(1).unwrap();
        j.ack(3).unwrap(); // out of order: 2 still waits
        assert_eq!(j.len(), 4);
        j.ack(2).unwrap();
        assert_eq!(j.next_from(0).unwrap().seq, 4);
        drop(j);

        let mut j = Journal::open(dir.path(), "bed", 100).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j.next_from(0).unwrap().payload, r#"{"seq":4}"#);
        assert_eq!(j.next_from(5).unwrap().seq, 5);
        assert!(j.next_from(6).is_none());
        // Numbering goes on where it was.
        assert_eq!(push(&mut j, 1), [6]);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_counts_it_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 3).unwrap();
        push(&mut j, 3);
        let (seq, dropped) = j.push(|s| ("t".into(), true, s.to_string())).unwrap();
        assert_eq!((seq, dropped, j.dropped(), j.len()), (4, true, 1, 3));
        assert_eq!(j.next_from(0).unwrap().seq, 2);
        drop(j);
        let j = Journal::open(dir.path(), "bed", 3).unwrap();
        assert_eq!(
            (j.dropped(), j.len(), j.next_from(0).unwrap().seq),
            (1, 3, 2)
        );
    }

    #[test]
    fn a_torn_last_line_is_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 10).unwrap();
        push(&mut j, 2);
        drop(j);
        let log = dir.path().join("bed.ndjson");
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("{\"seq\":3,\"top");
        std::fs::write(&log, text).unwrap();
        let j = Journal::open(dir.path(), "bed", 10).unwrap();
        assert_eq!((j.len(), j.unreadable), (2, 1));
    }

    #[test]
    fn the_log_is_compacted_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 2).unwrap();
        for _ in 0..5000 {
            let seq = push(&mut j, 1)[0];
            j.ack(seq).unwrap();
        }
        let lines = std::fs::read_to_string(dir.path().join("bed.ndjson"))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 4 * 256, "{lines} lines");
        assert_eq!((j.len(), j.dropped()), (0, 0));
    }

    #[test]
    fn a_queue_is_one_sinks_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Journal::open(dir.path(), "bed", 10).unwrap();
        let err = Journal::open(dir.path(), "bed", 10).err().unwrap();
        assert!(err.to_string().contains("in use by another sink"), "{err}");
        drop(first);
        Journal::open(dir.path(), "bed", 10).unwrap();
    }

    #[test]
    fn an_unusable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = Journal::open(&file.join("queue"), "bed", 10).err().unwrap();
        assert!(
            err.to_string().contains("cannot use the queue directory"),
            "{err}"
        );
    }
}
