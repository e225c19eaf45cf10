//! The store-and-forward queue of one bed: postures and alerts not yet acknowledged by the
//! broker, in order, bounded, on disk. GStreamer-free.
//!
//! Three files in the queue directory, named after the sink's client id ([`queue_name`]):
//! `<name>.ndjson`, one [`Entry`] per line, appended as events come (one `write` each: the
//! streaming thread never waits for the network, only for its own disk); `<name>.state.json`,
//! what was acknowledged, what the bound dropped and the queue's epoch, replaced atomically; and
//! `<name>.lock`, locked while a sink (of any process) uses the queue. Reopened, the queue holds
//! what was not acknowledged, so a pipeline restarted after a crash still delivers it. When more
//! entries wait than the bound allows, the oldest goes (counted in `dropped`, a gap in `seq` at
//! the consumer): the newest posture is what a nurse station needs.
//!
//! What can go wrong on disk costs at most what it must:
//! - a line torn by a crash is left out and counted; the rest is delivered;
//! - a state file lost or torn is rebuilt from the log (what the log holds waits, its epoch
//!   goes on): what is sent again is a duplicate by `(epoch, seq)`, nothing is lost;
//! - a queue made anew (its directory deleted, a first start) gets a new epoch: `(epoch, seq)`
//!   is unique per bed, so a consumer tells a restarted `seq` from duplicates;
//! - a full disk: entries are kept in memory (within the bound, counted when it drops them)
//!   and written out when the disk takes them again; a start with a full disk works the same;
//!   no temporary file is left behind.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spmkd_core::broker::wall_time_ms;

/// One message waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// The queue's epoch when it was queued: what a lost state is rebuilt with.
    #[serde(default)]
    pub epoch: u64,
    pub topic: String,
    pub retain: bool,
    pub payload: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Every entry up to this one was acknowledged (or dropped).
    acked: u64,
    dropped: u64,
    /// When the queue was made, ms since the Unix epoch (0 in a state written before epochs).
    #[serde(default)]
    epoch: u64,
}

/// The file name stem of a client id's queue: the id with every byte outside
/// `[A-Za-z0-9._-]` written as `%XX`. Injective (`%` is encoded too), so two client ids never
/// share a queue; ids of those characters only keep their name.
pub fn queue_name(client_id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'_')
        .remove(b'-');
    percent_encoding::utf8_percent_encode(client_id, KEEP).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "the queue {path} is in use by another sink ({owner}): two sinks with one client id, \
         which would also take the broker connection from each other (give each sink its own \
         client-id or bed)"
    )]
    InUse { path: PathBuf, owner: String },
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

/// What [`Journal::open`] found and mended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Lines of the log that could not be read (a write cut short by a crash): left out.
    pub unreadable: usize,
    /// The state file was missing or unreadable while the log was there: rebuilt from the
    /// log (what it holds waits, so some may be sent twice), its epoch from the log's entries
    /// (a new one if it holds none), `dropped` counted afresh.
    pub state_lost: bool,
    /// The queue was made anew (no log, no state): a first start, or a deleted queue.
    pub new_queue: bool,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub seq: u64,
    /// The bound made room by dropping the oldest entry.
    pub dropped: bool,
    /// The entry is on disk (else in memory only: the disk refused it, see [`Journal::on_disk`]).
    pub on_disk: bool,
}

pub struct Journal {
    /// Locked for as long as the journal lives: the queue is one sink's.
    _lock: File,
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
    /// Pending entries acknowledged out of order (acknowledgements may come so).
    acked_above: BTreeSet<u64>,
    /// Whether the log on disk holds every pending entry; when not, the next push or
    /// acknowledgement tries to write it whole again.
    on_disk: bool,
    /// Whether the state file on disk is current.
    saved: bool,
    pub recovery: Recovery,
}

/// Locks `dir/<name>.lock` for this journal, writing who holds it into the file (what a second
/// sink's error names).
fn lock(dir: &Path, name: &str) -> Result<File, JournalError> {
    let path = dir.join(format!("{name}.lock"));
    let fail = |what: &'static str| {
        let path = path.clone();
        move |source| JournalError::File { what, path, source }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(fail("open"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            let owner = match owner.trim().parse::<u32>() {
                Ok(pid) if pid == std::process::id() => "in this process".to_owned(),
                Ok(pid) => format!("process {pid}"),
                Err(_) => "another process".to_owned(),
            };
            return Err(JournalError::InUse {
                path: dir.join(format!("{name}.ndjson")),
                owner,
            });
        }
        Err(TryLockError::Error(source)) => return Err(fail("lock")(source)),
    }
    // Who holds it, for the message above; the lock does not depend on it (a full disk may
    // refuse these bytes).
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()));
    Ok(file)
}

impl Journal {
    /// Opens (or makes) the queue `name` ([`queue_name`]) in `dir`, holding at most `limit`
    /// entries; refused while another sink, in this process or another, has it open.
    pub fn open(dir: &Path, name: &str, limit: usize) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let lock = lock(dir, name)?;
        let log_path = dir.join(format!("{name}.ndjson"));
        let state_path = dir.join(format!("{name}.state.json"));
        let state: Option<Progress> = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let mut pending = VecDeque::new();
        let mut last_seq = state.as_ref().map_or(0, |p| p.acked);
        let mut recovery = Recovery::default();
        let mut log_lines = 0;
        let mut log_existed = false;
        match File::open(&log_path) {
            Ok(file) => {
                log_existed = true;
                for line in BufReader::new(file).split(b'\n') {
                    let line = line.map_err(|source| JournalError::File {
                        what: "read",
                        path: log_path.clone(),
                        source,
                    })?;
                    log_lines += 1;
                    match serde_json::from_slice::<Entry>(&line) {
                        Ok(e) if e.seq > last_seq => {
                            last_seq = e.seq;
                            pending.push_back(e);
                        }
                        Ok(_) => {}
                        Err(_) => recovery.unreadable += 1,
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
        let progress = match state {
            Some(p) if p.epoch != 0 => p,
            // Written before epochs: one is begun, seq goes on.
            Some(p) => Progress {
                epoch: wall_time_ms(),
                ..p
            },
            None => {
                recovery.state_lost = log_existed;
                recovery.new_queue = !log_existed;
                Progress {
                    // What the log holds is what waits: sent again, its entries are
                    // duplicates a consumer drops by (epoch, seq).
                    acked: pending.front().map_or(last_seq, |e| e.seq - 1),
                    dropped: 0,
                    epoch: match pending.back() {
                        Some(e) if e.epoch != 0 => e.epoch,
                        _ => wall_time_ms(),
                    },
                }
            }
        };
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
            _lock: lock,
            log_path,
            state_path,
            log,
            lines: log_lines,
            pending,
            limit: limit.max(1),
            next_seq: last_seq + 1,
            progress,
            acked_above: BTreeSet::new(),
            on_disk: true,
            saved: false,
            recovery,
        };
        while journal.pending.len() > journal.limit {
            journal.drop_oldest();
        }
        // A full disk here is no reason not to start: the next writes try again.
        journal.on_disk = false;
        journal.settle_acked();
        let _ = journal.write_out();
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

    /// The queue's epoch: with `seq`, what tells its events apart from those of any queue
    /// this bed had before.
    pub fn epoch(&self) -> u64 {
        self.progress.epoch
    }

    /// Whether everything waiting is on disk (false while the disk refuses writes).
    pub fn on_disk(&self) -> bool {
        self.on_disk
    }

    /// Appends what `make` builds for the next `seq`. The entry is kept whatever the disk
    /// says: an error here is only that it is not on disk yet ([`Pushed::on_disk`]); it is
    /// written with the next write the disk takes.
    pub fn push(&mut self, make: impl FnOnce(u64) -> (String, bool, String)) -> Pushed {
        let seq = self.next_seq;
        let (topic, retain, payload) = make(seq);
        let entry = Entry {
            seq,
            epoch: self.progress.epoch,
            topic,
            retain,
            payload,
        };
        self.next_seq += 1;
        if self.on_disk {
            let mut line = serde_json::to_string(&entry).expect("an entry always serializes");
            line.push('\n');
            match self.log.write_all(line.as_bytes()) {
                Ok(()) => self.lines += 1,
                // Part of the line may be on disk: the whole log is written again later.
                Err(_) => self.on_disk = false,
            }
        }
        self.pending.push_back(entry);
        let dropped = self.pending.len() > self.limit;
        if dropped {
            self.drop_oldest();
            self.saved = false;
        }
        if !self.on_disk || self.lines > 4 * self.limit.max(256) {
            let _ = self.compact();
        }
        if !self.saved {
            let _ = self.save();
        }
        Pushed {
            seq,
            dropped,
            on_disk: self.on_disk,
        }
    }

    /// The first entry waiting with a `seq` of at least `seq`.
    pub fn next_from(&self, seq: u64) -> Option<&Entry> {
        let i = self.pending.partition_point(|e| e.seq < seq);
        self.pending.get(i)
    }

    /// The broker acknowledged `seq`. When the disk refuses the state, it is written with a
    /// later write; meanwhile a restart would send the entry again (a duplicate the consumer
    /// drops by `seq`), never lose one.
    pub fn ack(&mut self, seq: u64) {
        if self.pending.binary_search_by_key(&seq, |e| e.seq).is_err() {
            return; // Not waiting (acknowledged twice, or dropped).
        }
        self.acked_above.insert(seq);
        self.settle_acked();
        if !self.on_disk {
            let _ = self.compact();
        }
        if !self.saved {
            let _ = self.save();
        }
    }

    /// Pops the front while it was acknowledged; `acked` is then just below the first entry
    /// waiting. Gaps in the log's `seq` (a torn line) so never hold the queue up.
    fn settle_acked(&mut self) {
        while let Some(front) = self.pending.front()
            && self.acked_above.remove(&front.seq)
        {
            self.pending.pop_front();
        }
        let acked = self
            .pending
            .front()
            .map_or(self.next_seq - 1, |e| e.seq - 1);
        if acked != self.progress.acked {
            self.progress.acked = acked;
            self.saved = false;
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(e) = self.pending.pop_front() {
            self.progress.dropped += 1;
            self.acked_above.remove(&e.seq);
            // What was dropped counts as done: it is not delivered later, after a reopen either.
            self.settle_acked();
        }
    }

    /// Writes `what` to `path` through a temporary file and a rename: whole or not at all,
    /// and no temporary left when it fails (a full disk).
    fn replace(path: &Path, what: &[u8]) -> Result<(), JournalError> {
        let tmp = path.with_extension("tmp");
        let fail = |what: &'static str| {
            move |source| JournalError::File {
                what,
                path: path.to_owned(),
                source,
            }
        };
        let written = std::fs::write(&tmp, what)
            .map_err(fail("write"))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(fail("replace")));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    fn save(&mut self) -> Result<(), JournalError> {
        let json = serde_json::to_vec(&self.progress).expect("progress always serializes");
        Self::replace(&self.state_path, &json)?;
        self.saved = true;
        Ok(())
    }

    /// The log and the state, both written whole.
    fn write_out(&mut self) -> Result<(), JournalError> {
        self.compact()?;
        self.save()
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
        self.on_disk = true;
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
                    .seq
            })
            .collect()
    }

    #[test]
    fn what_was_not_acknowledged_is_there_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 100).unwrap();
        assert_eq!(push(&mut j, 5), [1, 2, 3, 4, 5]);
        j.ack(1);
        j.ack(3); // out of order: 2 still waits
        assert_eq!(j.len(), 4);
        j.ack(2);
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
        let pushed = j.push(|s| ("t".into(), true, s.to_string()));
        assert_eq!(
            (pushed.seq, pushed.dropped, j.dropped(), j.len()),
            (4, true, 1, 3)
        );
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
        assert_eq!((j.len(), j.recovery.unreadable), (2, 1));
    }

    #[test]
    fn the_log_is_compacted_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 2).unwrap();
        for _ in 0..5000 {
            let seq = push(&mut j, 1)[0];
            j.ack(seq);
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
        let err = Journal::open(dir.path(), "bed", 10)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("in use by another sink (in this process)") && err.contains("client id"),
            "{err}"
        );
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

    #[test]
    fn queue_names_are_injective_and_plain_ids_keep_theirs() {
        assert_eq!(queue_name("spmkd-ward_4-12.a"), "spmkd-ward_4-12.a");
        let names: Vec<String> = [
            "Zimmer-ä",
            "Zimmer-ö",
            "Zimmer-_",
            "Zimmer-%C3%A4",
            "a/b",
            "a_b",
        ]
        .iter()
        .map(|id| queue_name(id))
        .collect();
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| {
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-%".contains(c))
        }));
    }

    /// The log's lines, as they are on disk.
    fn log_seqs(dir: &Path) -> Vec<u64> {
        std::fs::read_to_string(dir.join("bed.ndjson"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Entry>(l).unwrap().seq)
            .collect()
    }

    #[test]
    fn a_torn_line_and_a_torn_state_never_hold_the_queue_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 100).unwrap();
        push(&mut j, 25);
        for seq in 1..=20 {
            j.ack(seq);
        }
        let epoch = j.epoch();
        drop(j);
        // A crash mid-write: seq 23's line cut in half (and not UTF-8), the state half written.
        let log = dir.path().join("bed.ndjson");
        let text = std::fs::read_to_string(&log).unwrap();
        let mut torn: Vec<u8> = Vec::new();
        for line in text.lines() {
            if line.contains("\"seq\":23,") {
                torn.extend_from_slice(&line.as_bytes()[..10]);
                torn.extend_from_slice(&[0xff, b'\n']);
            } else {
                torn.extend_from_slice(line.as_bytes());
                torn.push(b'\n');
            }
        }
        std::fs::write(&log, torn).unwrap();
        std::fs::write(dir.path().join("bed.state.json"), r#"{"acked":20"#).unwrap();

        let mut j = Journal::open(dir.path(), "bed", 100).unwrap();
        assert_eq!(j.recovery.unreadable, 1);
        assert!(j.recovery.state_lost);
        // What the log holds waits (1..20 again: duplicates by (epoch, seq)), the epoch goes on.
        assert_eq!(j.epoch(), epoch);
        assert_eq!((j.len(), j.next_from(0).unwrap().seq), (24, 1));
        for seq in (1..=25).rev() {
            j.ack(seq);
        }
        assert!(j.is_empty(), "the gap at 23 holds nothing up");
        drop(j);
        let mut j = Journal::open(dir.path(), "bed", 100).unwrap();
        assert!(j.is_empty() && !j.recovery.state_lost);
        assert_eq!(push(&mut j, 1), [26]);
    }

    #[test]
    fn a_queue_made_anew_has_a_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let queue = dir.path().join("q");
        let mut j = Journal::open(&queue, "bed", 10).unwrap();
        assert!(j.recovery.new_queue);
        let first = j.epoch();
        assert!(first > 0);
        push(&mut j, 3);
        drop(j);
        let j = Journal::open(&queue, "bed", 10).unwrap();
        assert_eq!(j.epoch(), first, "kept across a reopen");
        assert!(!j.recovery.new_queue && !j.recovery.state_lost);
        drop(j);

        // The state deleted: rebuilt from the log, its epoch and seq go on.
        std::fs::remove_file(queue.join("bed.state.json")).unwrap();
        let mut j = Journal::open(&queue, "bed", 10).unwrap();
        assert!(j.recovery.state_lost);
        assert_eq!(j.epoch(), first);
        assert_eq!((j.len(), push(&mut j, 1)), (3, vec![4]));
        for seq in 1..=4 {
            j.ack(seq);
        }
        drop(j);

        // ... and with nothing in the log (compacted after everything was acknowledged): seq
        // from 1 under a new epoch.
        std::thread::sleep(std::time::Duration::from_millis(2));
        std::fs::remove_file(queue.join("bed.state.json")).unwrap();
        std::fs::write(queue.join("bed.ndjson"), "").unwrap();
        let mut j = Journal::open(&queue, "bed", 10).unwrap();
        assert!(j.recovery.state_lost);
        let second = j.epoch();
        assert_ne!(second, first);
        assert_eq!(push(&mut j, 1), [1]);
        drop(j);

        // The directory deleted: seq from 1, under yet another epoch.
        std::thread::sleep(std::time::Duration::from_millis(2));
        std::fs::remove_dir_all(&queue).unwrap();
        let mut j = Journal::open(&queue, "bed", 10).unwrap();
        assert!(j.recovery.new_queue);
        assert!(j.epoch() != first && j.epoch() != second);
        assert_eq!(push(&mut j, 1), [1]);
    }

    /// A disk that refuses every write of the queue's files until [`free_disk`]: directories
    /// where the temporary files go (a write there fails as on a full disk, and stays failing).
    fn fill_disk(dir: &Path) {
        for tmp in ["bed.tmp", "bed.state.tmp"] {
            std::fs::create_dir(dir.join(tmp)).unwrap();
        }
    }

    fn free_disk(dir: &Path) {
        for tmp in ["bed.tmp", "bed.state.tmp"] {
            std::fs::remove_dir(dir.join(tmp)).unwrap();
        }
    }

    fn temporaries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
            .collect()
    }

    #[test]
    fn a_full_disk_keeps_events_in_memory_and_writes_them_out_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 5).unwrap();
        push(&mut j, 2);
        j.log = OpenOptions::new().append(true).open("/dev/full").unwrap();
        fill_disk(dir.path());
        // Every event kept, with its seq; the bound still counts what it drops.
        let pushed: Vec<Pushed> = (0..6)
            .map(|_| j.push(|s| ("t".into(), false, s.to_string())))
            .collect();
        assert!(pushed.iter().all(|p| !p.on_disk), "{pushed:?}");
        assert_eq!(
            pushed.iter().map(|p| p.seq).collect::<Vec<_>>(),
            [3, 4, 5, 6, 7, 8]
        );
        assert_eq!((j.len(), j.dropped()), (5, 3));
        assert_eq!(j.next_from(0).unwrap().seq, 4);
        free_disk(dir.path());
        let later = j.push(|s| ("t".into(), false, s.to_string()));
        assert!(later.on_disk && j.on_disk());
        assert_eq!(log_seqs(dir.path()), [5, 6, 7, 8, 9]);
        drop(j);
        let j = Journal::open(dir.path(), "bed", 5).unwrap();
        assert_eq!(
            (j.len(), j.dropped(), j.next_from(0).unwrap().seq),
            (5, 4, 5)
        );
    }

    #[test]
    fn a_start_on_a_full_disk_works() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 10).unwrap();
        push(&mut j, 3);
        drop(j);
        fill_disk(dir.path());
        let mut j = Journal::open(dir.path(), "bed", 10).unwrap();
        assert!(!j.on_disk());
        assert_eq!(j.len(), 3);
        assert_eq!(push(&mut j, 1), [4]);
    }

    #[test]
    fn a_write_the_disk_refuses_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "bed", 10).unwrap();
        // The temporary made on a device that takes no byte: ENOSPC, as a full disk says.
        std::os::unix::fs::symlink("/dev/full", dir.path().join("bed.state.tmp")).unwrap();
        push(&mut j, 1);
        j.ack(1);
        assert!(temporaries(dir.path()).is_empty());
    }
}
