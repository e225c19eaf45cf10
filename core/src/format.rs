//! Recording formats and how `auto` tells them apart.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use crate::error::ReadError;

/// How far `auto` reads to find the first line.
const SNIFF_BYTES: usize = 64 * 1024;

/// The recording formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Tell from the content: `.npy` magic, then a `.raw` extension, then the first text line.
    #[default]
    Auto,
    /// PmatData experiment-i: one 64x32 frame per line, tab-separated.
    PmatI,
    /// PmatData experiment-ii: one 64x27 frame per file, space-separated rows.
    PmatII,
    /// NumPy `.npy`: N x H x W (or H x W), u8 / u16 / f32, little endian, C order.
    Npy,
    /// Headerless GRAY16_LE frames of a given width and height, back to back.
    Raw,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::PmatI,
        Format::PmatII,
        Format::Npy,
        Format::Raw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::PmatI => "pmat-i",
            Format::PmatII => "pmat-ii",
            Format::Npy => "npy",
            Format::Raw => "raw",
        }
    }

    /// Decide what `Auto` means for this file by looking at its first bytes.
    pub fn detect(path: &Path) -> Result<Format, ReadError> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| ReadError::io(path, crate::Position::File, &e))?;
        let head = Self::sniff(path, &mut file)?;
        Self::detect_bytes(path, Self::first_line(&head))
    }

    /// Reads the start of `input` until its first newline (at most [`SNIFF_BYTES`], or the end
    /// of the input) and returns every byte read, which may go past the newline: a caller that
    /// cannot seek (a pipe) reads them again from the returned buffer.
    pub(crate) fn sniff(path: &Path, input: &mut impl Read) -> Result<Vec<u8>, ReadError> {
        let mut head = Vec::with_capacity(16 * 1024);
        let mut chunk = [0u8; 8 * 1024];
        while head.len() < SNIFF_BYTES && !head.contains(&b'\n') {
            match input.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::io(path, crate::Position::File, &e)),
            }
        }
        Ok(head)
    }

    /// `head` up to and including its first newline (all of it without one).
    pub(crate) fn first_line(head: &[u8]) -> &[u8] {
        let end = head
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| i + 1);
        &head[..end.min(SNIFF_BYTES)]
    }

    /// `head` is the start of the file up to and including its first newline (or less).
    pub(crate) fn detect_bytes(path: &Path, head: &[u8]) -> Result<Format, ReadError> {
        if head.starts_with(crate::reader::npy::MAGIC) {
            return Ok(Format::Npy);
        }
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("raw"))
        {
            return Ok(Format::Raw);
        }
        if head.is_empty() {
            return Err(ReadError::whole(path, "empty file: no frames"));
        }
        let line = head.strip_suffix(b"\n").unwrap_or(head);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let numeric = line
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'\t' | b' ' | b'.' | b'-'));
        if numeric && line.contains(&b'\t') {
            Ok(Format::PmatI)
        } else if numeric && line.contains(&b' ') {
            Ok(Format::PmatII)
        } else {
            Err(ReadError::at_line(
                path,
                1,
                "cannot tell the format: not .npy, and the first line is neither tab-separated \
                 (pmat-i) nor space-separated (pmat-ii) numbers; set the format explicitly \
                 (raw recordings need format=raw with width and height)",
            ))
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!("unknown format {s:?}: expected auto, pmat-i, pmat-ii, npy or raw")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_from_content() {
        let p = Path::new("x.txt");
        assert_eq!(
            Format::detect_bytes(p, b"0\t1\t2\t\r\n").unwrap(),
            Format::PmatI
        );
        assert_eq!(
            Format::detect_bytes(p, b"44 44 50 \r\n").unwrap(),
            Format::PmatII
        );
        assert_eq!(
            Format::detect_bytes(p, b"\x93NUMPY\x01\x00").unwrap(),
            Format::Npy
        );
        assert_eq!(
            Format::detect_bytes(Path::new("a.RAW"), b"\x01\x02").unwrap(),
            Format::Raw
        );
        let err = Format::detect_bytes(p, b"hello world\n").unwrap_err();
        assert_eq!(err.position, crate::Position::Line(1));
        assert!(
            Format::detect_bytes(p, b"")
                .unwrap_err()
                .message
                .contains("empty")
        );
    }

    #[test]
    fn parses_names() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        assert!("csv".parse::<Format>().is_err());
    }
}
