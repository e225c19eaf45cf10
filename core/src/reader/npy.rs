//! NumPy `.npy` stacks: N x H x W (or one H x W frame), dtype u8, u16 or f32, little endian,
//! C order — the way SLP and SMaL distribute their pressure maps.
//!
//! The header is parsed by `ndarray-npy`; this reader checks it is a layout it can stream, then
//! reads one frame at a time. A header that promises more data than the file holds gives an
//! error at the byte offset of the first incomplete frame, after every complete frame was read.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use ndarray_npy::npy::header::{Header, Layout};

use super::Input;
use crate::error::{Position, ReadError};

pub(crate) const MAGIC: &[u8] = b"\x93NUMPY";

/// Headers above this are not NumPy's (it refuses more than 10 000 bytes by default); checked
/// before the header is read, so a lying length cannot make us allocate gigabytes.
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// The largest frame accepted (4096 x 4096 cells): anything larger is a lying header.
const MAX_FRAME_CELLS: usize = 1 << 24;

/// Element types a pressure `.npy` may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    U8,
    U16,
    F32,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        match descr {
            "|u1" | "<u1" | "u1" => Some(Dtype::U8),
            "<u2" => Some(Dtype::U16),
            "<f4" => Some(Dtype::F32),
            _ => None,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::F32 => 4,
        }
    }
}

pub(super) struct Reader {
    path: PathBuf,
    input: Input,
    dtype: Dtype,
    /// Frames the header's shape describes.
    frames: u64,
    /// Complete frames a regular file holds after the header (`None` for pipes): a header
    /// may promise far more than there is.
    file_frames: Option<u64>,
    width: usize,
    height: usize,
    /// Byte offset of the next frame.
    offset: u64,
    next: u64,
    bytes: Vec<u8>,
}

impl Reader {
    pub(super) fn new(path: &Path, mut input: Input) -> Result<Self, ReadError> {
        let whole = |msg: String| ReadError::whole(path, msg);
        check_header_length(path, &mut input)?;
        let mut counted = CountingReader {
            inner: &mut input,
            count: 0,
        };
        let header = Header::from_reader(&mut counted).map_err(|e| {
            ReadError::at_byte(path, counted.count, format!("bad .npy header: {e}"))
        })?;
        let header_len = counted.count;
        let descr = header
            .type_descriptor
            .as_string()
            .cloned()
            .unwrap_or_else(|| header.type_descriptor.to_string());
        let dtype = Dtype::parse(&descr).ok_or_else(|| {
            whole(format!(
                "unsupported dtype {descr:?}: expected u8 (|u1), u16 (<u2) or f32 (<f4), \
                 little endian"
            ))
        })?;
        if header.layout == Layout::Fortran {
            return Err(whole(
                "Fortran-ordered arrays are not supported: save with C order".into(),
            ));
        }
        let (frames, height, width) = match header.shape[..] {
            [n, h, w] => (n, h, w),
            [h, w] => (1, h, w),
            ref s => {
                return Err(whole(format!(
                    "shape {s:?} is not N x H x W or H x W pressure frames"
                )));
            }
        };
        let cells = height.saturating_mul(width);
        if frames == 0 || cells == 0 {
            return Err(whole(format!("shape {:?} holds no frames", header.shape)));
        }
        if cells > MAX_FRAME_CELLS {
            return Err(whole(format!(
                "frames of {height} x {width} cells are beyond any pressure mat \
                 (at most {MAX_FRAME_CELLS} cells)"
            )));
        }
        let frame_bytes = (cells * dtype.size()) as u64;
        let file_frames =
            super::regular_len(&input).map(|len| len.saturating_sub(header_len) / frame_bytes);
        Ok(Self {
            path: path.to_path_buf(),
            input,
            dtype,
            frames: frames as u64,
            file_frames,
            width,
            height,
            offset: header_len,
            next: 0,
            bytes: vec![0; cells * dtype.size()],
        })
    }

    pub(super) fn width(&self) -> usize {
        self.width
    }

    pub(super) fn height(&self) -> usize {
        self.height
    }

    /// The frames that will be read: the header's count, unless the file is shorter (then the
    /// complete frames it holds come before the truncation error).
    pub(super) fn frame_count(&self) -> u64 {
        self.file_frames.map_or(self.frames, |n| n.min(self.frames))
    }

    pub(super) fn next_frame(&mut self) -> Result<Option<(Position, Vec<u16>)>, ReadError> {
        let start = self.offset;
        if self.next == self.frames {
            // The header's shape has been read in full: anything more means it lied.
            let more = self
                .input
                .fill_buf()
                .map_err(|e| ReadError::io(&self.path, Position::Byte(start), &e))?;
            if !more.is_empty() {
                return Err(ReadError::at_byte(
                    &self.path,
                    start,
                    format!(
                        "data goes on after the {} frames the header describes",
                        self.frames
                    ),
                ));
            }
            return Ok(None);
        }
        let got = super::read_full(&mut self.input, &mut self.bytes)
            .map_err(|e| ReadError::io(&self.path, Position::Byte(start), &e))?;
        if got < self.bytes.len() {
            return Err(ReadError::at_byte(
                &self.path,
                start,
                format!(
                    "truncated: the header promises {} frames of {} x {} but frame {} has only \
                     {got} of its {} bytes",
                    self.frames,
                    self.height,
                    self.width,
                    self.next,
                    self.bytes.len()
                ),
            ));
        }
        let data = match self.dtype {
            Dtype::U8 => self.bytes.iter().map(|&b| u16::from(b)).collect(),
            Dtype::U16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
            Dtype::F32 => f32_readings(&self.path, start, &self.bytes)?,
        };
        self.offset += self.bytes.len() as u64;
        self.next += 1;
        Ok(Some((Position::Byte(start), data)))
    }
}

/// f32 readings become 16-bit readings by rounding to the nearest integer. Values that do not
/// fit (negative, above 65535, NaN, infinite) are errors, not silently clamped.
fn f32_readings(path: &Path, start: u64, bytes: &[u8]) -> Result<Vec<u16>, ReadError> {
    bytes
        .chunks_exact(4)
        .enumerate()
        .map(|(i, c)| {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if v.is_finite() && (-0.5..65535.5).contains(&v) {
                Ok(v.round() as u16)
            } else {
                Err(ReadError::at_byte(
                    path,
                    start + 4 * i as u64,
                    format!("f32 reading {v} does not fit a 16-bit pressure reading"),
                ))
            }
        })
        .collect()
}

/// A format-1.0 `.npy` header for a C-ordered array of `descr` (`"<u2"`, `"|u1"`, `"<f4"`)
/// and `shape`, padded as NumPy pads it; the raw little-endian data follows it.
pub fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + dict + newline: a multiple of 64 bytes.
    while !(10 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Peeks at the fixed part of the header and rejects absurd header lengths before any parser
/// allocates for them.
fn check_header_length(path: &Path, input: &mut Input) -> Result<(), ReadError> {
    let head = input
        .fill_buf()
        .map_err(|e| ReadError::io(path, Position::Byte(0), &e))?;
    if head.is_empty() {
        return Err(ReadError::whole(path, "empty file: no frames"));
    }
    if head.len() >= 12 && head.starts_with(MAGIC) && matches!(head[6], 2 | 3) {
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if len > MAX_HEADER_BYTES {
            return Err(ReadError::at_byte(
                path,
                8,
                format!("header length {len} is implausible (at most {MAX_HEADER_BYTES})"),
            ));
        }
    }
    Ok(())
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
    count: u64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
