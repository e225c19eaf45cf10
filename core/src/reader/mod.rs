//! Streaming readers for real pressure recordings.
//!
//! [`Recording::open`] looks at the header (or first line) only; every call to
//! [`Recording::next_frame`] reads one more frame, so the first frame of a long recording comes
//! before the rest of the file is read. A malformed file gives a [`ReadError`] naming the file
//! and the line (text) or byte offset (binary) at the point where it goes wrong; frames before
//! that point have already been delivered, so nothing valid is lost.

pub(crate) mod npy;
mod pmat_i;
mod pmat_ii;
mod raw;
mod text;

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use crate::artifacts::{self, Artifact};
use crate::error::{Position, ReadError};
use crate::format::Format;
use crate::frame::Frame;

pub use npy::{Dtype, header as npy_header};

/// What the readers read from: the bytes `auto` already looked at, then the rest of the file.
/// The file is opened once and never reopened, so a pipe, a FIFO or `/dev/stdin` loses nothing
/// to format detection.
pub(crate) type Input = BufReader<std::io::Chain<Cursor<Vec<u8>>, File>>;

/// The file's length when it is a regular file; `None` for pipes, FIFOs and devices, whose
/// metadata says 0 whatever they will deliver.
pub(crate) fn regular_len(input: &Input) -> Option<u64> {
    let (_, file) = input.get_ref().get_ref();
    file.metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

/// One frame of a recording, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFrame {
    /// 0-based index of the frame in the file, artifacts included.
    pub index: u64,
    /// Where the frame starts: its line (text formats) or byte offset (binary formats).
    pub position: Position,
    pub frame: Frame,
    /// Set when the frame is a known capture artifact (see [`crate::artifacts`]).
    pub artifact: Option<Artifact>,
}

enum Inner {
    PmatI(pmat_i::Reader),
    PmatII(pmat_ii::Reader),
    Npy(npy::Reader),
    Raw(raw::Reader),
}

/// An open recording: its format, frame geometry, and the frames still to come.
pub struct Recording {
    path: PathBuf,
    format: Format,
    width: usize,
    height: usize,
    inner: Inner,
    next_index: u64,
    finished: bool,
}

impl Recording {
    /// Opens `path` and reads its header (or sniffs its first line). `raw_size` is the
    /// `(width, height)` of raw recordings and is ignored otherwise.
    pub fn open(
        path: impl AsRef<Path>,
        format: Format,
        raw_size: Option<(usize, usize)>,
    ) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| ReadError::io(path, Position::File, &e))?;
        let (format, head) = match format {
            Format::Auto => {
                let head = Format::sniff(path, &mut file)?;
                (Format::detect_bytes(path, Format::first_line(&head))?, head)
            }
            f => (f, Vec::new()),
        };
        let input = BufReader::with_capacity(64 * 1024, Cursor::new(head).chain(file));
        let (inner, width, height) = match format {
            Format::PmatI => (
                Inner::PmatI(pmat_i::Reader::new(path, input)),
                crate::pmat::EXP_I_WIDTH,
                crate::pmat::EXP_I_HEIGHT,
            ),
            Format::PmatII => (
                Inner::PmatII(pmat_ii::Reader::new(path, input)),
                crate::pmat::EXP_II_WIDTH,
                crate::pmat::EXP_II_HEIGHT,
            ),
            Format::Npy => {
                let reader = npy::Reader::new(path, input)?;
                let (w, h) = (reader.width(), reader.height());
                (Inner::Npy(reader), w, h)
            }
            Format::Raw => {
                let (w, h) = raw_size.ok_or_else(|| {
                    ReadError::whole(path, "raw recordings need a width and a height")
                })?;
                (Inner::Raw(raw::Reader::new(path, input, w, h)?), w, h)
            }
            Format::Auto => unreachable!("resolved above"),
        };
        Ok(Self {
            path: path.to_path_buf(),
            format,
            width,
            height,
            inner,
            next_index: 0,
            finished: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format the file was read as (never `Auto`).
    pub fn format(&self) -> Format {
        self.format
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The number of frames, when the header or the file size tells it before reading.
    pub fn frame_count_hint(&self) -> Option<u64> {
        match &self.inner {
            Inner::PmatI(_) => None,
            Inner::PmatII(_) => Some(1),
            Inner::Npy(r) => Some(r.frame_count()),
            Inner::Raw(r) => r.frame_count(),
        }
    }

    /// The next frame, `Ok(None)` at the end. After an error the recording is finished.
    pub fn next_frame(&mut self) -> Result<Option<RecordedFrame>, ReadError> {
        if self.finished {
            return Ok(None);
        }
        let next = match &mut self.inner {
            Inner::PmatI(r) => r.next_frame(),
            Inner::PmatII(r) => r.next_frame(),
            Inner::Npy(r) => r.next_frame(),
            Inner::Raw(r) => r.next_frame(),
        };
        let (position, data) = match next {
            Ok(Some(v)) => v,
            Ok(None) => {
                self.finished = true;
                return Ok(None);
            }
            Err(e) => {
                self.finished = true;
                return Err(e);
            }
        };
        let frame = Frame::new(self.width, self.height, data)
            .expect("readers return exactly width x height values");
        // The artifact rule is calibrated on experiment-i's capture software; other sources
        // have no known artifacts and are never second-guessed.
        let artifact = match self.format {
            Format::PmatI => artifacts::detect_pmat_i(&frame),
            _ => None,
        };
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(RecordedFrame {
            index,
            position,
            frame,
            artifact,
        }))
    }
}

impl Iterator for Recording {
    type Item = Result<RecordedFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Like `read_exact`, but says how much it got before the end of the file.
pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads a whole recording: every frame (artifacts flagged, not dropped), or the first error.
pub fn read_all(
    path: impl AsRef<Path>,
    format: Format,
    raw_size: Option<(usize, usize)>,
) -> Result<Vec<RecordedFrame>, ReadError> {
    Recording::open(path, format, raw_size)?.collect()
}
