//! Reader errors: every one names the file and where in it the problem is.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a text recording.
    Line(u64),
    /// 0-based byte offset of a binary recording.
    Byte(u64),
    /// The file as a whole (cannot be opened, is empty, ...).
    File,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `file:line: message`, as compilers print it, so editors can jump there.
            Position::Line(line) => write!(f, ":{line}"),
            Position::Byte(offset) => write!(f, " (byte {offset})"),
            Position::File => Ok(()),
        }
    }
}

/// A recording that cannot be read, with the file and the position that says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{position}: {message}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub position: Position,
    pub message: String,
}

impl ReadError {
    pub fn new(path: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            position,
            message: message.into(),
        }
    }

    pub fn at_line(path: &Path, line: u64, message: impl Into<String>) -> Self {
        Self::new(path, Position::Line(line), message)
    }

    pub fn at_byte(path: &Path, offset: u64, message: impl Into<String>) -> Self {
        Self::new(path, Position::Byte(offset), message)
    }

    pub fn whole(path: &Path, message: impl Into<String>) -> Self {
        Self::new(path, Position::File, message)
    }

    pub(crate) fn io(path: &Path, position: Position, err: &std::io::Error) -> Self {
        Self::new(path, position, format!("I/O error: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_and_position() {
        let p = Path::new("S1/1.txt");
        assert_eq!(
            ReadError::at_line(p, 12, "expected 2048 values, found 3").to_string(),
            "S1/1.txt:12: expected 2048 values, found 3"
        );
        assert_eq!(
            ReadError::at_byte(p, 128, "truncated").to_string(),
            "S1/1.txt (byte 128): truncated"
        );
        assert_eq!(ReadError::whole(p, "empty").to_string(), "S1/1.txt: empty");
    }
}
