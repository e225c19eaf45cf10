//! PmatData experiment-i: one 64x32 frame per line, 2048 tab-separated integers (the line ends
//! with a tab), CRLF line endings.

use std::path::{Path, PathBuf};

use super::Input;
use super::text::{parse_value, read_line};
use crate::error::{Position, ReadError};
use crate::pmat::{EXP_I_HEIGHT, EXP_I_WIDTH};

const VALUES: usize = EXP_I_WIDTH * EXP_I_HEIGHT;

pub(super) struct Reader {
    path: PathBuf,
    input: Input,
    line_no: u64,
    buf: Vec<u8>,
}

impl Reader {
    pub(super) fn new(path: &Path, input: Input) -> Self {
        Self {
            path: path.to_path_buf(),
            input,
            line_no: 0,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    pub(super) fn next_frame(&mut self) -> Result<Option<(Position, Vec<u16>)>, ReadError> {
        // Blank lines are harmless at the end of the file (an editor's trailing newline), an
        // error before a frame: they are read past here and reported if a frame follows.
        let mut first_blank = None;
        let line_no = loop {
            let line_no = self.line_no + 1;
            if !read_line(&self.path, &mut self.input, line_no, &mut self.buf)? {
                return if self.line_no == 0 || first_blank == Some(1) {
                    Err(ReadError::whole(&self.path, "empty file: no frames"))
                } else {
                    Ok(None)
                };
            }
            self.line_no = line_no;
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                break line_no;
            }
            first_blank.get_or_insert(line_no);
        };
        if let Some(blank) = first_blank {
            return Err(ReadError::at_line(
                &self.path,
                blank,
                format!("blank line: expected {VALUES} tab-separated values"),
            ));
        }
        let line = self.buf.strip_suffix(b"\t").unwrap_or(&self.buf);
        let mut data = Vec::with_capacity(VALUES);
        let mut count = 0usize;
        for token in line.split(|&b| b == b'\t') {
            count += 1;
            if count <= VALUES {
                data.push(parse_value(&self.path, line_no, count, token)?);
            }
        }
        if count != VALUES {
            return Err(ReadError::at_line(
                &self.path,
                line_no,
                format!(
                    "expected {VALUES} values ({EXP_I_HEIGHT} rows x {EXP_I_WIDTH} columns), \
                     found {count}{}",
                    if count < VALUES && self.buf.last() != Some(&b'\t') {
                        " (truncated line?)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(Some((Position::Line(line_no), data)))
    }
}
