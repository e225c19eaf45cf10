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
    reading(token).ok_or_else(|| {
        let shown: String = String::from_utf8_lossy(token).chars().take(24).collect();
        ReadError::at_line(
            path,
            line_no,
            format!("value {index} is {shown:?}, not an integer reading in 0..=65535"),
        )
    })
}

/// A reading: ASCII digits only (`str::parse` would also take a sign, `+5`, which no mat
/// writes), at most 65535. One pass over the bytes: a text frame is 2,048 of these, and
/// UTF-8 validation, a digit check and `str::parse` in turn were most of the time `pmatsrc`
/// spent on a frame.
fn reading(token: &[u8]) -> Option<u16> {
    if token.is_empty() {
        return None;
    }
    let value = token.iter().try_fold(0u32, |value, &b| {
        let digit = b.wrapping_sub(b'0');
        // Past 65535 already: stop (a long run of digits cannot overflow the u32).
        (digit < 10 && value <= u32::from(u16::MAX)).then(|| value * 10 + u32::from(digit))
    })?;
    u16::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::reading;

    #[test]
    fn every_reading_in_range_reads_back() {
        for n in 0..=u16::MAX {
            assert_eq!(reading(n.to_string().as_bytes()), Some(n));
        }
        assert_eq!(reading(b"00017"), Some(17));
        assert_eq!(reading(b"0000000000065535"), Some(65535));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b""[..],
            b"65536",
            b"70000",
            b"99999999999999999999999",
            b"+5",
            b"-0",
            b" 5",
            b"5 ",
            b"1x7",
            b"zero",
            "\u{0663}".as_bytes(),
        ] {
            assert_eq!(reading(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
