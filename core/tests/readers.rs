//! Readers on real PmatData files and on malformed input.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use spmkd_core::artifacts::Artifact;
use spmkd_core::dataset::DatasetIndex;
use spmkd_core::reader::{npy_header, read_all};
use spmkd_core::{Format, Position, Recording};

fn data_root() -> PathBuf {
    let root = DatasetIndex::locate(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        root.join("experiment-i").is_dir(),
        "PmatData not found at {} (set SPMKD_DATA)",
        root.display()
    );
    root
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A valid pmat-i line: 2048 tab-separated values with the trailing tab, CRLF.
fn pmat_i_line(f: impl Fn(usize) -> u16) -> String {
    let mut s: String = (0..2048).map(|i| format!("{}\t", f(i))).collect();
    s.push_str("\r\n");
    s
}

/// Length of the headers `npy_bytes` writes for these tests (their dicts fit in 128 bytes).
const HDR: u64 = 128;

fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = npy_header(descr, shape);
    assert_eq!(out.len() as u64, HDR, "test header length");
    out.extend_from_slice(data);
    out
}

#[test]
fn experiment_i_file_reads_with_its_artifacts() {
    let path = data_root().join("experiment-i/S1/1.txt");
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    let frames = read_all(&path, Format::Auto, None).unwrap();
    assert_eq!(frames.len(), lines);
    assert_eq!(
        (frames[0].frame.width(), frames[0].frame.height()),
        (32, 64)
    );
    assert_eq!(frames[0].position, Position::Line(1));
    assert_eq!(frames[5].position, Position::Line(6));
    assert_eq!(frames[0].artifact, Some(Artifact::PartialScan));
    assert_eq!(frames[1].artifact, Some(Artifact::Quantized));
    assert!(frames[2..].iter().all(|f| f.artifact.is_none()));
    assert!(
        frames[10].frame.total() > 20_000,
        "a person lies on the mat"
    );
}

#[test]
fn experiment_ii_file_is_one_frame() {
    let path = data_root().join("experiment-ii/S1/Air_Mat/Matrix_Air_B1.txt");
    let mut rec = Recording::open(&path, Format::Auto, None).unwrap();
    assert_eq!(rec.format(), Format::PmatII);
    assert_eq!((rec.width(), rec.height()), (27, 64));
    let frame = rec.next_frame().unwrap().unwrap();
    assert_eq!(frame.frame.get(0, 0), Some(44));
    assert!(frame.frame.data().iter().all(|&v| (38..=4095).contains(&v)));
    assert!(rec.next_frame().unwrap().is_none());
}

#[test]
fn the_first_frame_comes_before_the_rest_is_written() {
    // A recording still being written: the reader hands out what is there, and more later.
    let dir = tempfile::tempdir().unwrap();
    let path = write_tmp(
        &dir,
        "live.txt",
        pmat_i_line(|i| (i % 500) as u16).as_bytes(),
    );
    let mut rec = Recording::open(&path, Format::PmatI, None).unwrap();
    assert!(rec.next_frame().unwrap().is_some());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(pmat_i_line(|_| 7).as_bytes())
        .unwrap();
    let second = rec.next_frame().unwrap().unwrap();
    assert_eq!(second.frame.get(0, 0), Some(7));
    assert_eq!(second.position, Position::Line(2));
}

fn expect_err(path: &Path, format: Format, raw: Option<(usize, usize)>) -> spmkd_core::ReadError {
    match Recording::open(path, format, raw).and_then(|r| r.collect::<Result<Vec<_>, _>>()) {
        Ok(frames) => panic!(
            "{}: expected an error, read {} frames",
            path.display(),
            frames.len()
        ),
        Err(e) => {
            assert_eq!(e.path, path, "the error names the file");
            e
        }
    }
}

#[test]
fn malformed_text_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = pmat_i_line(|i| i as u16 % 100);

    let short = format!("{good}{}", pmat_i_line(|_| 1).replacen("1\t", "", 1));
    let e = expect_err(
        &write_tmp(&dir, "short.txt", short.as_bytes()),
        Format::PmatI,
        None,
    );
    assert_eq!(e.position, Position::Line(2));
    assert!(
        e.message.contains("expected 2048 values") && e.message.contains("found 2047"),
        "{e}"
    );

    let bad = format!(
        "{good}{good}{}",
        pmat_i_line(|i| i as u16).replacen("\t17\t", "\t1x7\t", 1)
    );
    let e = expect_err(
        &write_tmp(&dir, "bad.txt", bad.as_bytes()),
        Format::PmatI,
        None,
    );
    assert_eq!(e.position, Position::Line(3));
    assert!(e.message.contains("value 18 is \"1x7\""), "{e}");
    assert!(e.to_string().contains("bad.txt:3: "), "{e}");

    let truncated = format!("{good}{}", &good[..3000]);
    let e = expect_err(
        &write_tmp(&dir, "trunc.txt", truncated.as_bytes()),
        Format::PmatI,
        None,
    );
    assert_eq!(e.position, Position::Line(2));
    assert!(e.message.contains("truncated"), "{e}");

    let e = expect_err(&write_tmp(&dir, "empty.txt", b""), Format::PmatI, None);
    assert_eq!(e.position, Position::File);
    assert!(e.message.contains("empty"));
    let e = expect_err(&write_tmp(&dir, "empty2.txt", b""), Format::Auto, None);
    assert!(e.message.contains("empty"));

    let blank = format!("{good}\r\n{good}");
    let e = expect_err(
        &write_tmp(&dir, "blank.txt", blank.as_bytes()),
        Format::PmatI,
        None,
    );
    assert_eq!(e.position, Position::Line(2));

    let too_big = good.replacen("0\t", "70000\t", 1);
    let e = expect_err(
        &write_tmp(&dir, "big.txt", too_big.as_bytes()),
        Format::PmatI,
        None,
    );
    assert!(e.message.contains("\"70000\""), "{e}");
}

#[test]
fn malformed_pmat_ii_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let row = "44 ".repeat(27) + "\r\n";
    let e = expect_err(
        &write_tmp(&dir, "rows.txt", row.repeat(40).as_bytes()),
        Format::PmatII,
        None,
    );
    assert!(e.message.contains("40 of 64 rows"), "{e}");
    let mut text = row.repeat(64);
    text.replace_range(row.len() * 9..row.len() * 9 + 3, "");
    let e = expect_err(
        &write_tmp(&dir, "cols.txt", text.as_bytes()),
        Format::PmatII,
        None,
    );
    assert_eq!(e.position, Position::Line(10));
    assert!(e.message.contains("found 26"), "{e}");
    let e = expect_err(
        &write_tmp(&dir, "more.txt", row.repeat(65).as_bytes()),
        Format::PmatII,
        None,
    );
    assert_eq!(e.position, Position::Line(65));
}

#[test]
fn npy_dtypes_read_as_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    let u8s: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8 * 10).collect();
    let frames = read_all(
        write_tmp(&dir, "a.npy", &npy_bytes("|u1", &[2, 3, 4], &u8s)),
        Format::Auto,
        None,
    )
    .unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[0].frame.width(), frames[0].frame.height()), (4, 3));
    assert_eq!(frames[1].frame.get(0, 0), Some(120));
    assert_eq!(frames[1].position, Position::Byte(HDR + 12));

    let u16s: Vec<u8> = [1u16, 4095, 65535, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let frames = read_all(
        write_tmp(&dir, "b.npy", &npy_bytes("<u2", &[2, 2], &u16s)),
        Format::Npy,
        None,
    )
    .unwrap();
    assert_eq!(frames[0].frame.data(), &[1, 4095, 65535, 0]);

    let f32s: Vec<u8> = [0.4f32, 1.6, 4095.0, 12.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let frames = read_all(
        write_tmp(&dir, "c.npy", &npy_bytes("<f4", &[1, 1, 4], &f32s)),
        Format::Npy,
        None,
    )
    .unwrap();
    assert_eq!(frames[0].frame.data(), &[0, 2, 4095, 13]);
}

#[test]
fn malformed_npy_names_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let e = expect_err(
        &write_tmp(&dir, "i8.npy", &npy_bytes("<i8", &[1, 2, 2], &[0; 32])),
        Format::Npy,
        None,
    );
    assert!(e.message.contains("unsupported dtype \"<i8\""), "{e}");
    let e = expect_err(
        &write_tmp(&dir, "be.npy", &npy_bytes(">u2", &[1, 2, 2], &[0; 8])),
        Format::Npy,
        None,
    );
    assert!(e.message.contains("unsupported dtype"), "{e}");

    // The header promises 3 frames of 2 x 2 u16 (24 bytes); the file holds 2.5 frames.
    let e = expect_err(
        &write_tmp(&dir, "lie.npy", &npy_bytes("<u2", &[3, 2, 2], &[1; 20])),
        Format::Npy,
        None,
    );
    assert_eq!(e.position, Position::Byte(HDR + 16));
    assert!(
        e.message.contains("truncated") && e.message.contains("4 of its 8 bytes"),
        "{e}"
    );
    // Frames before the bad one are delivered.
    let mut rec = Recording::open(dir.path().join("lie.npy"), Format::Npy, None).unwrap();
    assert!(rec.next_frame().unwrap().is_some() && rec.next_frame().unwrap().is_some());
    assert!(rec.next_frame().is_err());

    let e = expect_err(
        &write_tmp(&dir, "long.npy", &npy_bytes("<u2", &[1, 2, 2], &[1; 12])),
        Format::Npy,
        None,
    );
    assert_eq!(e.position, Position::Byte(HDR + 8));
    assert!(e.message.contains("goes on after"), "{e}");

    let e = expect_err(
        &write_tmp(&dir, "shape.npy", &npy_bytes("<u2", &[2], &[1; 4])),
        Format::Npy,
        None,
    );
    assert!(e.message.contains("shape"), "{e}");
    let e = expect_err(
        &write_tmp(&dir, "zero.npy", &npy_bytes("<u2", &[0, 64, 32], &[])),
        Format::Npy,
        None,
    );
    assert!(e.message.contains("no frames"), "{e}");
    let e = expect_err(
        &write_tmp(
            &dir,
            "huge.npy",
            &npy_bytes("<u2", &[1, 100000, 100000], &[]),
        ),
        Format::Npy,
        None,
    );
    assert!(e.message.contains("beyond"), "{e}");

    let nan: Vec<u8> = [1.0f32, f32::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let e = expect_err(
        &write_tmp(&dir, "nan.npy", &npy_bytes("<f4", &[1, 1, 2], &nan)),
        Format::Npy,
        None,
    );
    assert_eq!(e.position, Position::Byte(HDR + 4));

    let mut huge_len = b"\x93NUMPY\x02\x00".to_vec();
    huge_len.extend_from_slice(&u32::MAX.to_le_bytes());
    let e = expect_err(&write_tmp(&dir, "hdr.npy", &huge_len), Format::Npy, None);
    assert!(e.message.contains("implausible"), "{e}");

    let e = expect_err(
        &write_tmp(&dir, "magic.npy", b"NUMPY nope"),
        Format::Npy,
        None,
    );
    assert!(e.message.contains("bad .npy header"), "{e}");
}

#[test]
fn raw_frames() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0u16..12).flat_map(|v| v.to_le_bytes()).collect();
    let path = write_tmp(&dir, "x.raw", &bytes);
    let mut rec = Recording::open(&path, Format::Auto, Some((3, 2))).unwrap();
    assert_eq!(
        (rec.format(), rec.frame_count_hint()),
        (Format::Raw, Some(2))
    );
    let frames: Vec<_> = rec.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(frames[1].frame.data(), &[6, 7, 8, 9, 10, 11]);
    assert_eq!(frames[1].position, Position::Byte(12));

    let e = expect_err(&path, Format::Raw, Some((5, 1)));
    assert_eq!(e.position, Position::Byte(20));
    assert!(e.message.contains("4 of its 10 bytes"), "{e}");
    let e = expect_err(&path, Format::Raw, None);
    assert!(e.message.contains("width and a height"));
    let e = expect_err(&path, Format::Raw, Some((0, 3)));
    assert!(e.message.contains("not a pressure mat"));
}

#[test]
fn missing_file() {
    let e = expect_err(Path::new("/nonexistent/spmkd.txt"), Format::PmatI, None);
    assert_eq!(e.position, Position::File);
}

#[test]
fn deeply_nested_npy_header_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let nested = "(".repeat(30_000);
    let mut dict = format!("{{'descr': '<u2', 'fortran_order': False, 'shape': {nested}");
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    expect_err(&write_tmp(&dir, "deep.npy", &bytes), Format::Npy, None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes, read as every format: frames or an error naming the file, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), npy_head in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut content = if npy_head { b"\x93NUMPY\x01\x00".to_vec() } else { Vec::new() };
        content.extend_from_slice(&bytes);
        let path = write_tmp(&dir, "fuzz.bin", &content);
        for format in [Format::Auto, Format::PmatI, Format::PmatII, Format::Npy, Format::Raw] {
            match Recording::open(&path, format, Some((4, 4))) {
                Ok(rec) => for frame in rec {
                    if let Err(e) = frame { prop_assert_eq!(&e.path, &path); }
                },
                Err(e) => prop_assert_eq!(&e.path, &path),
            }
        }
    }

    /// A valid pmat-i line with one byte changed: an error that names line 2, or a valid frame.
    #[test]
    fn mutated_pmat_i_line(pos in 0usize..10_000, byte in any::<u8>()) {
        let dir = tempfile::tempdir().unwrap();
        let good = pmat_i_line(|i| (i * 7 % 4096) as u16);
        let mut second = good.clone().into_bytes();
        let pos = pos % second.len();
        second[pos] = byte;
        let mut content = good.into_bytes();
        content.extend_from_slice(&second);
        let path = write_tmp(&dir, "m.txt", &content);
        match read_all(&path, Format::PmatI, None) {
            Ok(frames) => prop_assert!(frames.len() >= 2),
            Err(e) => prop_assert!(matches!(e.position, Position::Line(2) | Position::Line(3)), "{}", e),
        }
    }
}

#[test]
fn trailing_blank_lines_end_a_pmat_i_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = pmat_i_line(|i| i as u16 % 100);
    for tail in ["\r\n", "\n\n", "\t\r\n \r\n"] {
        let path = write_tmp(&dir, "tail.txt", format!("{good}{good}{tail}").as_bytes());
        let frames = read_all(&path, Format::Auto, None).unwrap();
        assert_eq!(frames.len(), 2, "{tail:?}");
    }
    // Blank lines before a frame are still an error at the first of them.
    let path = write_tmp(&dir, "gap.txt", format!("{good}\r\n\r\n{good}").as_bytes());
    let e = expect_err(&path, Format::PmatI, None);
    assert_eq!(e.position, Position::Line(2));
    assert!(e.message.contains("blank line"), "{e}");
    let e = expect_err(
        &write_tmp(&dir, "blanks.txt", b"\r\n\r\n"),
        Format::PmatI,
        None,
    );
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn a_reading_is_digits_only() {
    let dir = tempfile::tempdir().unwrap();
    let good = pmat_i_line(|i| i as u16 % 100);
    for bad in ["+5", "-0", " 5", "5 "] {
        let line = good.replacen("\t17\t", &format!("\t{bad}\t"), 1);
        let e = expect_err(
            &write_tmp(&dir, "sign.txt", line.as_bytes()),
            Format::PmatI,
            None,
        );
        assert!(e.message.contains(&format!("{bad:?}")), "{bad}: {e}");
    }
    let row = "44 ".repeat(26) + "+4 \r\n";
    let e = expect_err(
        &write_tmp(&dir, "plus.txt", row.repeat(64).as_bytes()),
        Format::PmatII,
        None,
    );
    assert!(e.message.contains("\"+4\""), "{e}");
}

/// A FIFO in `dir` fed with `bytes` by a writer thread (which gets EPIPE if the reader
/// closes early, and reports it).
fn fifo(dir: &tempfile::TempDir, bytes: Vec<u8>) -> (PathBuf, std::thread::JoinHandle<bool>) {
    let path = dir.path().join("mat.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_path)
            .unwrap();
        // In pieces, as a live writer would: the reader sees short reads.
        bytes.chunks(1000).all(|c| f.write_all(c).is_ok())
    });
    (path, writer)
}

#[test]
fn pipes_and_fifos_read_once_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    // Text through auto: the first line is sniffed, then read again, from the one open file.
    let text = (0..5)
        .map(|n| pmat_i_line(move |i| (i + n) as u16 % 100))
        .collect::<String>();
    let (path, writer) = fifo(&dir, text.into_bytes());
    let frames = read_all(&path, Format::Auto, None).unwrap();
    assert!(writer.join().unwrap(), "the writer lost its reader");
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[3].frame.get(0, 0), Some(3));
    std::fs::remove_file(&path).unwrap();

    // Raw: a FIFO has no length, frames are counted as they come.
    let bytes: Vec<u8> = (0u16..3 * 2 * 400).flat_map(|v| v.to_le_bytes()).collect();
    let (path, writer) = fifo(&dir, bytes);
    let mut rec = Recording::open(&path, Format::Raw, Some((3, 2))).unwrap();
    assert_eq!(rec.frame_count_hint(), None);
    let frames: Vec<_> = rec.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(writer.join().unwrap());
    assert_eq!(frames.len(), 400);
    assert_eq!(frames[399].frame.data()[5], 3 * 2 * 400 - 1);
    std::fs::remove_file(&path).unwrap();

    // npy through auto from a FIFO.
    let data: Vec<u8> = (0u16..4 * 6).flat_map(|v| v.to_le_bytes()).collect();
    let (path, writer) = fifo(&dir, npy_bytes("<u2", &[4, 2, 3], &data));
    let frames = read_all(&path, Format::Auto, None).unwrap();
    assert!(writer.join().unwrap());
    assert_eq!(frames.len(), 4);
    std::fs::remove_file(&path).unwrap();

    // Nothing at all from a pipe is an error, as an empty file is.
    let (path, writer) = fifo(&dir, Vec::new());
    let e = expect_err(&path, Format::Raw, Some((3, 2)));
    assert!(writer.join().unwrap());
    assert!(e.message.contains("no frames"), "{e}");
}

#[test]
fn npy_frame_count_is_what_the_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0u16..3 * 6).flat_map(|v| v.to_le_bytes()).collect();
    // The header promises 2^60 frames; the file holds 3.
    let path = write_tmp(&dir, "huge.npy", &npy_bytes("<u2", &[1 << 60, 2, 3], &data));
    let rec = Recording::open(&path, Format::Auto, None).unwrap();
    assert_eq!(rec.frame_count_hint(), Some(3));
    let e = expect_err(&path, Format::Npy, None);
    assert!(e.message.contains("truncated"), "{e}");
}
