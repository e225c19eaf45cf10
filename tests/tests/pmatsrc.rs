//! gst-check tests of `pmatsrc` on real PmatData recordings and on malformed files.

use std::path::Path;

use gst::prelude::*;
use gst_check::Harness;
use spmkd_core::dataset::{DatasetIndex, Experiment};
use spmkd_core::{Format, Recording};
use spmkd_tests::{data_root, init, npy_bytes, sample};

/// A harness around a `pmatsrc` reading `path`, with extra properties.
fn harness(path: &Path, props: &[(&str, &dyn ToValue)]) -> Harness {
    init();
    let mut builder =
        gst::ElementFactory::make("pmatsrc").property("location", path.to_str().unwrap());
    for (name, value) in props {
        builder = builder.property(name, value.to_value());
    }
    let src = builder.build().expect("pmatsrc exists");
    let mut h = Harness::with_element(&src, None, Some("src"));
    h.play();
    h
}

/// Every buffer until EOS.
fn pull_all(h: &mut Harness) -> Vec<gst::Buffer> {
    let mut out = Vec::new();
    while let Some(buffer) = h.pull_until_eos().expect("a buffer or EOS") {
        out.push(buffer);
    }
    out
}

/// Runs `description` to its end; returns the buffers that reached the element named `sink`,
/// the error message if the pipeline failed, and the element messages posted.
fn run_pipeline(description: &str) -> (usize, Option<String>, Vec<gst::Structure>) {
    let outcome =
        spmkd_tests::run_pipeline(description, &["sink"], gst::ClockTime::from_seconds(60));
    (outcome.buffers[0], outcome.error, outcome.elements)
}

#[test]
fn every_experiment_i_file_gives_its_lines_minus_its_artifacts() {
    let index = DatasetIndex::scan(data_root()).unwrap();
    let files: Vec<_> = index
        .entries
        .iter()
        .filter(|e| e.experiment == Experiment::I)
        .collect();
    assert_eq!(files.len(), 221);
    let mut total = 0;
    for entry in files {
        let lines = std::fs::read(&entry.path)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        // The artifact frames, by the documented rule of spmkd_core::artifacts.
        let flagged: Vec<u64> = Recording::open(&entry.path, Format::PmatI, None)
            .unwrap()
            .map(|f| f.unwrap())
            .filter(|f| f.artifact.is_some())
            .map(|f| f.index)
            .collect();
        assert!(
            flagged.starts_with(&[0, 1]),
            "{}: frames 0 and 1 are artifacts, flagged {flagged:?}",
            entry.path.display()
        );
        let mut h = harness(&entry.path, &[]);
        let buffers = pull_all(&mut h);
        assert_eq!(
            buffers.len(),
            lines - flagged.len(),
            "{}",
            entry.path.display()
        );
        total += buffers.len();
    }
    // 20 024 lines, 442 start-of-file artifacts and 6 later frames with the same corruption.
    assert_eq!(total, 19_576);
}

#[test]
fn frames_sizes_caps_and_timestamps() {
    let path = sample("3.txt");
    let mut h = harness(&path, &[]);
    let buffers = pull_all(&mut h);
    assert_eq!(buffers.len(), 119 - 2);
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Gray16Le);
    assert_eq!((info.width(), info.height()), (32, 64));
    assert_eq!(info.fps(), gst::Fraction::new(1, 1));

    // The pixels are the file's readings: buffer 0 is line 3 (lines 1 and 2 are artifacts).
    let line3: Vec<u16> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .split('\t')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().unwrap())
        .collect();
    for (i, b) in buffers.iter().enumerate() {
        assert_eq!(b.size(), 32 * 64 * 2);
        assert_eq!(b.pts(), Some(gst::ClockTime::from_seconds(i as u64)));
        assert_eq!(b.duration(), Some(gst::ClockTime::SECOND));
        assert_eq!(b.offset(), i as u64);
    }
    let map = buffers[0].map_readable().unwrap();
    let pixels: Vec<u16> = map
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(pixels, line3);
}

#[test]
fn experiment_ii_files_give_one_frame_each() {
    let index = DatasetIndex::scan(data_root()).unwrap();
    let files: Vec<_> = index
        .entries
        .iter()
        .filter(|e| e.experiment == Experiment::II)
        .collect();
    assert_eq!(files.len(), 465);
    for entry in files {
        let mut h = harness(&entry.path, &[]);
        let buffers = pull_all(&mut h);
        assert_eq!(buffers.len(), 1, "{}", entry.path.display());
        let info =
            gst_video::VideoInfo::from_caps(&h.sinkpad().unwrap().current_caps().unwrap()).unwrap();
        assert_eq!((info.width(), info.height()), (27, 64));
        // GRAY16 rows of 27 cells are padded to a 4-byte stride: 56 bytes.
        assert_eq!(buffers[0].size(), info.size());
        assert_eq!(info.stride()[0], 56);
    }
}

#[test]
fn framerate_sets_the_timestamps() {
    let mut h = harness(
        &sample("1.txt"),
        &[("framerate", &gst::Fraction::new(30, 1))],
    );
    let buffers = pull_all(&mut h);
    assert_eq!(
        buffers[3].pts(),
        Some(gst::ClockTime::from_nseconds(100_000_000))
    );
    assert_eq!(
        buffers[3].duration(),
        Some(gst::ClockTime::from_nseconds(33_333_333))
    );
    // No drift: frame n starts at floor(n / 30 s).
    assert_eq!(
        buffers[99].pts(),
        Some(gst::ClockTime::from_nseconds(3_300_000_000))
    );
}

#[test]
fn skip_artifacts_off_gives_every_line() {
    let mut h = harness(&sample("2.txt"), &[("skip-artifacts", &false)]);
    assert_eq!(pull_all(&mut h).len(), 104);
}

#[test]
fn skipped_artifacts_are_reported() {
    let path = sample("1.txt");
    let (count, error, messages) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink sync=false",
        path.display()
    ));
    assert_eq!((count, error), (117, None));
    let artifacts: Vec<_> = messages
        .iter()
        .filter(|s| s.name() == "spmkd-artifact")
        .collect();
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0].get::<u64>("frame").unwrap(), 0);
    assert_eq!(artifacts[0].get::<&str>("kind").unwrap(), "partial-scan");
    assert_eq!(artifacts[1].get::<&str>("kind").unwrap(), "quantized");
    assert_eq!(artifacts[1].get::<u64>("line").unwrap(), 2);
}

#[test]
fn looping_goes_on_with_continuous_timestamps() {
    let mut h = harness(
        &sample("2.txt"),
        &[("loop", &true), ("num-buffers", &250i32)],
    );
    let buffers = pull_all(&mut h);
    assert_eq!(buffers.len(), 250);
    for (i, b) in buffers.iter().enumerate() {
        assert_eq!(b.pts(), Some(gst::ClockTime::from_seconds(i as u64)));
    }
}

#[test]
fn npy_and_raw_recordings() {
    let dir = tempfile::tempdir().unwrap();
    // 3 frames of 4 x 2 u16 as an .npy stack.
    let values: Vec<u16> = (0..24).map(|v| v * 100).collect();
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let npy = npy_bytes("<u2", &[3, 2, 4], &data);
    let npy_path = dir.path().join("stack.npy");
    std::fs::write(&npy_path, &npy).unwrap();

    let mut h = harness(&npy_path, &[]);
    let buffers = pull_all(&mut h);
    assert_eq!(buffers.len(), 3);
    let map = buffers[2].map_readable().unwrap();
    assert_eq!(&map[..], &data[32..48]);
    drop(map);

    // The same readings as raw GRAY16_LE, and the duration query of a sized recording.
    let raw_path = dir.path().join("stack.raw");
    std::fs::write(&raw_path, &data).unwrap();
    let mut h = harness(&raw_path, &[("width", &4u32), ("height", &2u32)]);
    let src = h.element().unwrap();
    assert_eq!(
        src.query_duration::<gst::ClockTime>(),
        Some(gst::ClockTime::from_seconds(3))
    );
    let raw_buffers = pull_all(&mut h);
    assert_eq!(raw_buffers.len(), 3);
    assert_eq!(&raw_buffers[1].map_readable().unwrap()[..], &data[16..32]);
}

#[test]
fn malformed_line_gives_an_error_naming_it_after_the_good_frames() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample("3.txt")).unwrap();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    lines[6] = lines[6].replacen("\t0\t", "\tzero\t", 1);
    let path = dir.path().join("bad.txt");
    std::fs::write(&path, lines[..10].concat()).unwrap();
    let (count, error, _) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink sync=false",
        path.display()
    ));
    let error = error.expect("the pipeline fails");
    assert!(error.contains(&format!("{}:7:", path.display())), "{error}");
    assert!(error.contains("\"zero\""), "{error}");
    // Lines 3..6 were good and were delivered before the error.
    assert_eq!(count, 4);

    let path = dir.path().join("short.txt");
    std::fs::write(&path, format!("{}{}", lines[2], &lines[3][..500])).unwrap();
    let (count, error, _) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink sync=false",
        path.display()
    ));
    let error = error.expect("the pipeline fails");
    assert!(
        error.contains(":2:") && error.contains("truncated"),
        "{error}"
    );
    assert_eq!(count, 1);
}

#[test]
fn missing_empty_and_unreadable_files_fail_at_the_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let (_, error, _) = run_pipeline("pmatsrc location=/nonexistent/S1/1.txt ! fakesink name=sink");
    let error = error.expect("fails");
    assert!(
        error.contains("/nonexistent/S1/1.txt") && error.contains("No such file"),
        "{error}"
    );

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let (_, error, _) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink",
        empty.display()
    ));
    assert!(error.expect("fails").contains("empty file"));

    let binary = dir.path().join("junk.bin");
    std::fs::write(&binary, [0xffu8, 0xfe, 0x00, 0x10]).unwrap();
    let (_, error, _) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink",
        binary.display()
    ));
    assert!(error.expect("fails").contains("cannot tell the format"));

    let (_, error, _) = run_pipeline(&format!(
        "pmatsrc location={} format=raw ! fakesink name=sink",
        binary.display()
    ));
    assert!(error.expect("fails").contains("width and a height"));

    let (_, error, _) = run_pipeline("pmatsrc ! fakesink name=sink");
    assert!(error.expect("fails").contains("No location"));
}

#[test]
fn truncated_npy_names_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let npy = npy_bytes("<u2", &[5, 64, 32], &[0u8; 2 * 4096 + 100]);
    let header = npy.len() - (2 * 4096 + 100);
    let path = dir.path().join("lying.npy");
    std::fs::write(&path, &npy).unwrap();
    let (count, error, _) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink sync=false",
        path.display()
    ));
    let error = error.expect("fails");
    assert!(
        error.contains(&format!("(byte {})", header + 2 * 4096)),
        "{error}"
    );
    assert_eq!(count, 2);
}

/// A FIFO in `dir` that a writer thread fills with `bytes` once a reader opens it; the thread
/// returns whether every byte was taken (false: the reader closed early, the writer got EPIPE).
fn fifo(dir: &Path, bytes: Vec<u8>) -> (std::path::PathBuf, std::thread::JoinHandle<bool>) {
    use std::io::Write;
    let path = dir.join("mat.fifo");
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
        bytes.chunks(1500).all(|c| f.write_all(c).is_ok())
    });
    (path, writer)
}

#[test]
fn pipes_and_fifos_are_read_to_their_end() {
    let dir = tempfile::tempdir().unwrap();
    // raw from a FIFO (what `cat rec.raw | pmatsrc location=/dev/stdin format=raw` reads).
    let frames: Vec<u8> = (0u16..32 * 64 * 5).flat_map(|v| v.to_le_bytes()).collect();
    let (path, writer) = fifo(dir.path(), frames.clone());
    let (count, error, _) = run_pipeline(&format!(
        "pmatsrc location={} format=raw width=32 height=64 ! fakesink name=sink sync=false",
        path.display()
    ));
    assert!(writer.join().unwrap(), "the writer lost its reader");
    assert_eq!((count, error), (5, None));
    std::fs::remove_file(&path).unwrap();

    // auto on a FIFO: the format is told from the head, which is then read again, not lost.
    let text = std::fs::read(sample("3.txt")).unwrap();
    let (path, writer) = fifo(dir.path(), text);
    let (count, error, _) = run_pipeline(&format!(
        "pmatsrc location={} ! fakesink name=sink sync=false",
        path.display()
    ));
    assert!(writer.join().unwrap(), "the writer lost its reader");
    assert_eq!((count, error), (117, None));
    std::fs::remove_file(&path).unwrap();

    // Looping needs a file that can be read again.
    let (path, writer) = fifo(dir.path(), frames);
    let (_, error, _) = run_pipeline(&format!(
        "pmatsrc location={} format=raw width=32 height=64 loop=true ! fakesink name=sink",
        path.display()
    ));
    let error = error.expect("loop on a FIFO fails");
    assert!(error.contains("loop=true needs a regular file"), "{error}");
    // The writer is still blocked in open(): let it through so the thread ends.
    drop(std::fs::File::open(&path));
    let _ = writer.join();
}

#[test]
fn the_duration_of_a_lying_npy_header_is_what_the_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0u16..3 * 8).flat_map(|v| v.to_le_bytes()).collect();
    let path = dir.path().join("huge.npy");
    std::fs::write(&path, npy_bytes("<u2", &[1 << 60, 2, 4], &data)).unwrap();
    let h = harness(&path, &[]);
    let src = h.element().unwrap();
    assert_eq!(
        src.query_duration::<gst::ClockTime>(),
        Some(gst::ClockTime::from_seconds(3))
    );
}
