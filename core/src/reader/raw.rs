//! Raw GRAY16_LE: frames of `width x height` little-endian u16 readings, back to back, no
//! header (what a mat streams, or `filesink` writes after `pmatsrc`).

use std::path::{Path, PathBuf};

use super::Input;
use crate::error::{Position, ReadError};

pub(super) struct Reader {
    path: PathBuf,
    input: Input,
    file_len: Option<u64>,
    offset: u64,
    bytes: Vec<u8>,
}

/// The largest raw frame accepted, as for `.npy`.
const MAX_FRAME_CELLS: usize = 1 << 24;

impl Reader {
    pub(super) fn new(
        path: &Path,
        input: Input,
        width: usize,
        height: usize,
    ) -> Result<Self, ReadError> {
        let cells = width.saturating_mul(height);
        if cells == 0 || cells > MAX_FRAME_CELLS {
            return Err(ReadError::whole(
                path,
                format!("raw frame size {width} x {height} is not a pressure mat"),
            ));
        }
        // A pipe, FIFO or device has no length: its frames are counted as they come.
        let file_len = super::regular_len(&input);
        if file_len == Some(0) {
            return Err(ReadError::whole(path, "empty file: no frames"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            input,
            file_len,
            offset: 0,
            bytes: vec![0; cells * 2],
        })
    }

    /// Complete frames in the file, when its length is known.
    pub(super) fn frame_count(&self) -> Option<u64> {
        self.file_len.map(|len| len / self.bytes.len() as u64)
    }

    pub(super) fn next_frame(&mut self) -> Result<Option<(Position, Vec<u16>)>, ReadError> {
        let start = self.offset;
        let got = super::read_full(&mut self.input, &mut self.bytes)
            .map_err(|e| ReadError::io(&self.path, Position::Byte(start), &e))?;
        if got == 0 {
            return if start == 0 {
                Err(ReadError::whole(&self.path, "empty input: no frames"))
            } else {
                Ok(None)
            };
        }
        if got < self.bytes.len() {
            return Err(ReadError::at_byte(
                &self.path,
                start,
                format!(
                    "truncated: the last frame has {got} of its {} bytes (wrong width/height?)",
                    self.bytes.len()
                ),
            ));
        }
        self.offset += got as u64;
        let data = self
            .bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Some((Position::Byte(start), data)))
    }
}
