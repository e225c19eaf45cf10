//! PmatData experiment-ii: one 64x27 frame per file, 64 lines of 27 space-separated integers
//! (each line ends with a space), CRLF line endings.

use std::path::{Path, PathBuf};

use super::Input;
use super::text::{parse_value, read_line};
use crate::error::{Position, ReadError};
use crate::pmat::{EXP_II_HEIGHT, EXP_II_WIDTH};

pub(super) struct Reader {
    path: PathBuf,
    input: Input,
    done: bool,
}

impl Reader {
    pub(super) fn new(path: &Path, input: Input) -> Self {
        Self {
            path: path.to_path_buf(),
            input,
            done: false,
        }
    }

    pub(super) fn next_frame(&mut self) -> Result<Option<(Position, Vec<u16>)>, ReadError> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let path = self.path.as_path();
        let mut data = Vec::with_capacity(EXP_II_WIDTH * EXP_II_HEIGHT);
        let mut buf = Vec::with_capacity(256);
        let mut line_no = 0u64;
        while read_line(path, &mut self.input, line_no + 1, &mut buf)? {
            line_no += 1;
            let mut tokens = buf
                .split(|b| b.is_ascii_whitespace())
                .filter(|t| !t.is_empty())
                .peekable();
            let row = data.len() / EXP_II_WIDTH;
            if row == EXP_II_HEIGHT {
                if tokens.peek().is_none() {
                    continue; // blank lines after the last row are harmless
                }
                return Err(ReadError::at_line(
                    path,
                    line_no,
                    format!("more than {EXP_II_HEIGHT} rows: a pmat-ii file holds one frame"),
                ));
            }
            let mut count = 0usize;
            for token in tokens {
                count += 1;
                if count <= EXP_II_WIDTH {
                    data.push(parse_value(path, line_no, count, token)?);
                }
            }
            if count != EXP_II_WIDTH {
                return Err(ReadError::at_line(
                    path,
                    line_no,
                    format!("expected {EXP_II_WIDTH} space-separated values, found {count}"),
                ));
            }
        }
        match data.len() / EXP_II_WIDTH {
            0 => Err(ReadError::whole(path, "empty file: no frames")),
            EXP_II_HEIGHT => Ok(Some((Position::Line(1), data))),
            rows => Err(ReadError::at_line(
                path,
                line_no,
                format!("file ends after {rows} of {EXP_II_HEIGHT} rows (truncated?)"),
            )),
        }
    }
}
