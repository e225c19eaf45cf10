//! Line-oriented helpers shared by the PmatData text readers.

use std::io::{BufRead, Read};
use std::path::Path;

use super::Input;
use crate::error::{Position, ReadError};

/// Longest line accepted (a 2048-value PmatData line is about 10 KiB): a binary file read as
/// text must give an error, not exhaust memory.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Reads the next line into `buf` without its line ending. `Ok(false)` at the end of the file.
pub(super) fn read_line(
    path: &Path,
    input: &mut Input,
    line_no: u64,
    buf: &mut Vec<u8>,
) -> Result<bool, ReadError> {
    buf.clear();
    let n = input
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', buf)
        .map_err(|e| ReadError::io(path, Position::Line(line_no), &e))?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n as u64 == MAX_LINE_BYTES {
        return Err(ReadError::at_line(
            path,
            line_no,
            format!("line longer than {MAX_LINE_BYTES} bytes: not a pressure recording"),
        ));
    }
    Ok(true)
}

/// Parses one reading. `index` is 1-based, for the message.
pub(super) fn parse_value(
    path: &Path,
    line_no: u64,
    index: usize,
    token: &[u8],
) -> Result<u16, ReadError> {
    // Digits only: `str::parse` would also take a sign (`+5`), which no mat writes.
    std::str::from_utf8(token)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            let shown: String = String::from_utf8_lossy(token).chars().take(24).collect();
            ReadError::at_line(
                path,
                line_no,
                format!("value {index} is {shown:?}, not an integer reading in 0..=65535"),
            )
        })
}
