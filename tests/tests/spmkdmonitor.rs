//! `spmkdmonitor` on real recordings with empty stretches between them (noise-only frames at
//! the mat's size, synthesized): occupancy switches within the hold, empty frames get posture
//! `none` and no class, the bed-exit alert comes once at `exit-delay`, the reposition clock
//! pauses while the bed is empty; movement and offloading on a posture change, none on a still
//! recording even with inference-interval; a caps change re-estimates the floor; bad
//! properties are refused.

use std::path::PathBuf;

use gst::prelude::*;
use gstspmkd::posemeta::PoseMeta;
use spmkd_core::schema::{PoseRecord, PostureLabel};
use spmkd_tests::{empty_npy, init, play, sample, usable_frames};

const SECOND: u64 = 1_000_000_000;

struct Run {
    /// The records at the sink.
    records: Vec<PoseRecord>,
    /// Their exposure maps (spmkdmonitor exposure-map=true), seconds under load per cell.
    maps: Vec<Option<Vec<f32>>>,
    messages: Vec<gst::Structure>,
}

fn run(description: &str) -> Run {
    let (seen, messages) = play(description, |b| {
        (
            PoseMeta::read(b).unwrap().unwrap(),
            PoseMeta::exposure_map(b).unwrap(),
        )
    });
    let (records, maps) = seen.into_iter().unzip();
    Run {
        records,
        maps,
        messages,
    }
}

fn named<'a>(run: &'a Run, name: &'a str) -> impl Iterator<Item = &'a gst::Structure> + 'a {
    run.messages.iter().filter(move |s| s.name() == name)
}

fn seconds(s: &gst::Structure, field: &str) -> f64 {
    s.get::<u64>(field).unwrap() as f64 / SECOND as f64
}

#[test]
fn an_empty_stretch_between_two_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let first = sample("1.txt");
    let n = usable_frames(&first);
    let empty = empty_npy(dir.path(), "empty.npy", 40, (32, 64), 0);
    // Supine for n s, empty for 40 s, supine again; the clock's interval is n + 10 s, which
    // an unpaused clock would reach in the empty stretch.
    let interval = (n + 10) * SECOND;
    let run = run(&format!(
        "concat name=c ! spmkdpose ! spmkdmonitor hold-frames=3 exit-delay={} \
         ! spmkdposture reposition-interval={interval} ! fakesink name=sink \
         pmatsrc location={} ! c.  pmatsrc location={} ! c.  pmatsrc location={} ! c.",
        10 * SECOND,
        first.display(),
        empty.display(),
        first.display()
    ));
    let total = 2 * n + 40;
    assert_eq!(run.records.len() as u64, total);
    let occupied: Vec<bool> = run
        .records
        .iter()
        .map(|r| r.monitor.as_ref().unwrap().occupied)
        .collect();
    // Empty is taken at the third empty frame, occupied at the third frame of the second
    // recording: within the hold of 3 frames, and nowhere else.
    let n = n as usize;
    let changes: Vec<usize> = (1..occupied.len())
        .filter(|&i| occupied[i] != occupied[i - 1])
        .collect();
    assert_eq!(changes, [n + 2, n + 42], "{occupied:?}");
    assert!(occupied[0]);
    // No class on an empty frame: posture none, no probabilities.
    for (i, r) in run.records.iter().enumerate() {
        let p = r.posture.as_ref().unwrap();
        if !occupied[i] {
            assert_eq!(p.label, PostureLabel::NONE, "frame {i}");
            assert!(p.probabilities.is_empty());
        } else {
            assert!(
                p.label.posture().is_some() || p.label == PostureLabel::UNCERTAIN,
                "frame {i}: {p:?}"
            );
        }
    }
    // The messages, dated by the first frame of each run.
    let occupancy: Vec<(bool, f64)> = named(&run, "spmkd-occupancy")
        .map(|s| {
            (
                s.get::<bool>("occupied").unwrap(),
                seconds(s, "running-time"),
            )
        })
        .collect();
    assert_eq!(
        occupancy,
        [(true, 0.0), (false, n as f64), (true, (n + 40) as f64)]
    );
    let exits: Vec<f64> = named(&run, "spmkd-bed-exit")
        .map(|s| seconds(s, "running-time"))
        .collect();
    assert_eq!(
        exits,
        [(n + 10) as f64],
        "exactly once, exit-delay after leaving"
    );
    let nones = named(&run, "spmkd-posture")
        .filter(|s| s.get::<String>("posture").unwrap() == "none")
        .count();
    assert_eq!(nones, 1);
    // The clock paused: no reposition alert in the empty stretch; the one alert comes in the
    // second recording, after n + 10 s of occupied time.
    let alerts: Vec<(f64, f64)> = named(&run, "spmkd-reposition")
        .map(|s| (seconds(s, "running-time"), seconds(s, "duration")))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (at, held) = alerts[0];
    assert!(
        at > (n + 40) as f64,
        "alert at {at} s, in the empty stretch"
    );
    assert!((held - (n + 10) as f64).abs() < 1.5, "held {held} s");
}

#[test]
fn one_glitch_frame_costs_no_occupancy() {
    // 60 frames of S12/3, one whose first row reads 65535 (a reader glitch), then the rest.
    let mut rec = spmkd_core::Recording::open(sample("3.txt"), spmkd_core::Format::Auto, None)
        .expect("sample");
    let mut frames: Vec<spmkd_core::Frame> = Vec::new();
    while let Some(f) = rec.next_frame().unwrap() {
        if f.artifact.is_none() {
            frames.push(f.frame);
        }
    }
    let (width, height) = (frames[0].width(), frames[0].height());
    let mut glitch = frames[60].data().to_vec();
    glitch[..width].fill(u16::MAX);
    let mut data = Vec::new();
    let mut n = 0;
    for (i, f) in frames.iter().enumerate() {
        if i == 60 {
            data.extend(glitch.iter().flat_map(|v| v.to_le_bytes()));
            n += 1;
        }
        data.extend(f.data().iter().flat_map(|v| v.to_le_bytes()));
        n += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glitch.npy");
    std::fs::write(
        &path,
        spmkd_tests::npy_bytes("<u2", &[n, height, width], &data),
    )
    .unwrap();
    let run = run(&format!(
        "pmatsrc location={} framerate=1/1 ! spmkdpose ! spmkdmonitor ! spmkdposture \
         ! fakesink name=sink",
        path.display()
    ));
    assert_eq!(run.records.len(), n);
    let empty: Vec<usize> = run
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.monitor.as_ref().unwrap().occupied)
        .map(|(i, _)| i)
        .collect();
    assert!(empty.is_empty(), "frames read empty: {empty:?}");
    assert_eq!(named(&run, "spmkd-bed-exit").count(), 0);
}

#[test]
fn a_caps_change_estimates_the_floor_again() {
    let dir = tempfile::tempdir().unwrap();
    // An experiment-ii-sized mat reading 44 where no one lies, after an experiment-i recording.
    let offset = empty_npy(dir.path(), "offset.npy", 20, (27, 64), 44);
    let run = run(&format!(
        "concat name=c ! spmkdpose ! spmkdmonitor ! fakesink name=sink \
         pmatsrc location={} ! c.  pmatsrc location={} ! c.",
        sample("1.txt").display(),
        offset.display()
    ));
    let after: Vec<&PoseRecord> = run.records.iter().filter(|r| r.width == 27).collect();
    assert_eq!(after.len(), 20);
    for r in &after {
        let m = r.monitor.as_ref().unwrap();
        assert!((m.floor - 44.0).abs() < 3.0 && m.noise < 4.0, "{m:?}");
        assert!(!m.occupied, "an offset empty mat read as occupied: {m:?}");
    }
    // The empty new mat reads empty from its first frame (a fresh first decision, no hold).
    let left = named(&run, "spmkd-occupancy")
        .filter(|s| !s.get::<bool>("occupied").unwrap())
        .count();
    assert_eq!(
        left, 0,
        "a new mat starts afresh, no leave event from the old one"
    );
}

#[test]
fn a_posture_change_moves_and_a_still_recording_does_not() {
    // S12/2.txt lies still throughout (its largest load change is 0.055 of the load, see
    // docs/RESULTS.md "Monitoring"); S12/3.txt is the next posture.
    let first = sample("2.txt");
    let other = sample("3.txt");
    for interval in [1, 3] {
        let run = run(&format!(
            "concat name=c ! spmkdpose inference-interval={interval} ! spmkdmonitor \
             ! spmkdposture ! fakesink name=sink \
             pmatsrc location={} ! c.  pmatsrc location={} ! c.",
            first.display(),
            other.display()
        ));
        let n = usable_frames(&first) as usize;
        let moved: Vec<usize> = run
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.monitor.as_ref().unwrap().moved)
            .map(|(i, _)| i)
            .collect();
        // Only at the change of recording (the first frame of the second, and with
        // inference-interval the next computed keypoints may still differ).
        assert!(
            !moved.is_empty() && moved.iter().all(|&i| (n..n + interval).contains(&i)),
            "inference-interval={interval}: moved at {moved:?}, change at {n}"
        );
        // The change offloads what lay loaded: a reposition, by posture or by offloading.
        let offloaded = run
            .records
            .iter()
            .filter(|r| r.monitor.as_ref().unwrap().offloaded)
            .count();
        assert_eq!(offloaded, 1, "inference-interval={interval}");
        // Still time grows through the first recording, one second a frame.
        let still: Vec<u64> = run.records[..n]
            .iter()
            .map(|r| r.monitor.as_ref().unwrap().still_ns / SECOND)
            .collect();
        assert_eq!(still, (0..n as u64).collect::<Vec<_>>());
    }
}

#[test]
fn contradictory_or_out_of_range_properties_are_refused() {
    init();
    // Out of range: GLib refuses the value with a warning naming the property (as for any
    // GStreamer element) and the default stays.
    let monitor = gst::parse::launch("spmkdmonitor enter-area=2 hold-frames=0").unwrap();
    assert!((monitor.property::<f64>("enter-area") - 0.05).abs() < 1e-6);
    assert_eq!(monitor.property::<u32>("hold-frames"), 3);
    let description = format!(
        "pmatsrc location={} ! spmkdpose ! spmkdmonitor enter-area=0.02 leave-area=0.05 ! fakesink",
        sample("1.txt").display()
    );
    let outcome = spmkd_tests::run_pipeline(&description, &[], gst::ClockTime::from_seconds(30));
    let error = outcome.error.expect("the pipeline must fail");
    assert!(
        error.contains("leave-area (0.05) must be below enter-area (0.02)"),
        "{error}"
    );
}

#[test]
fn a_still_night_accumulates_exposure_and_a_turn_resets_it() {
    const MINUTE: u64 = 60 * SECOND;
    // One frame a minute: S12/2.txt lies still for 101 minutes, then S12/3.txt (another
    // posture) for half an hour.
    let still = sample("2.txt");
    let n = usable_frames(&still);
    let run = run(&format!(
        "concat name=c ! spmkdpose ! spmkdmonitor exposure-limit={} exposure-map=true \
         ! fakesink name=sink \
         pmatsrc location={} framerate=1/60 ! c.  pmatsrc location={} framerate=1/60 num-buffers=30 ! c.",
        60 * MINUTE,
        still.display(),
        sample("3.txt").display()
    ));
    let monitor = |i: usize| run.records[i].monitor.as_ref().unwrap();
    // At the end of the still recording its most exposed region has been under load all along.
    let last = monitor(n as usize - 1);
    assert!(last.loaded_cells > 50, "{last:?}");
    assert_eq!(last.regions[0].under_load_ns, (n - 1) * MINUTE);
    assert!(last.regions[0].dose > 0.0);
    // The contact regions loaded from the first minute alert once, when they reach the hour;
    // a cell loaded later alerts an hour after its own loading began, and nothing alerts
    // after the turn (half an hour of the new posture).
    let alerts: Vec<(u64, u32)> = named(&run, "spmkd-exposure")
        .map(|s| {
            (
                s.get::<u64>("running-time").unwrap(),
                s.get::<u32>("cells").unwrap(),
            )
        })
        .collect();
    let at_the_hour: Vec<u32> = alerts
        .iter()
        .filter(|&&(at, _)| at == 60 * MINUTE)
        .map(|&(_, cells)| cells)
        .collect();
    assert!(
        at_the_hour.iter().filter(|&&c| c >= 20).count() >= 2,
        "{alerts:?}"
    );
    for &(at, cells) in &alerts {
        assert!((60 * MINUTE..n * MINUTE).contains(&at), "{alerts:?}");
        // The big regions were loaded from the start: they alert at the hour and only then.
        assert!(at == 60 * MINUTE || cells < 5, "{alerts:?}");
    }
    // The turn (right to left) offloads much of what lay loaded: five minutes after it, of the
    // cells under load for the whole still recording, most have started again.
    let map = |i: usize| run.maps[i].as_ref().expect("exposure-map=true");
    let whole = |v: f32| v >= ((n - 1) * 60) as f32;
    let before = map(n as usize - 1).iter().filter(|&&v| whole(v)).count();
    let after: Vec<f32> = map(n as usize - 1)
        .iter()
        .zip(map(n as usize + 5))
        .filter(|&(&v, _)| whole(v))
        .map(|(_, &w)| w)
        .collect();
    let reset = after.iter().filter(|&&w| w <= (6 * 60) as f32).count();
    assert!(
        before > 50 && 2 * reset > before,
        "{reset} of {before} offloaded"
    );
    assert!((n as usize..n as usize + 2).any(|i| monitor(i).offloaded));
}

#[test]
fn an_unfamiliar_mat_gets_lower_trust_and_uncertain_postures() {
    // Experiment-ii as recorded (another mat, the head at the other end), one subject on one
    // mat, against a held-out experiment-i recording: the default pipeline, no decoder.
    let dir = spmkd_tests::data_root().join("experiment-ii/S5/Sponge_Mat");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let trust_of = |sources: &str| {
        let run = run(&format!(
            "concat name=c ! spmkdpose ! spmkdmonitor ! spmkdposture ! fakesink name=sink {sources}"
        ));
        let mut trust: Vec<f32> = run
            .records
            .iter()
            .map(|r| r.monitor.as_ref().unwrap().trust)
            .collect();
        trust.sort_by(f32::total_cmp);
        let uncertain = run
            .records
            .iter()
            .filter(|r| r.posture.as_ref().unwrap().label == PostureLabel::UNCERTAIN)
            .count() as f32
            / run.records.len() as f32;
        (trust[trust.len() / 2], uncertain)
    };
    let (familiar, familiar_uncertain) = trust_of(&format!(
        "pmatsrc location={} ! c.",
        sample("1.txt").display()
    ));
    let sources: String = files
        .iter()
        .map(|f| format!(" pmatsrc location={} ! c.", f.display()))
        .collect();
    let (unfamiliar, unfamiliar_uncertain) = trust_of(&sources);
    assert!(
        unfamiliar < familiar,
        "median trust: experiment-ii {unfamiliar}, held-out experiment-i {familiar}"
    );
    assert!(
        unfamiliar_uncertain > 0.5 && familiar_uncertain < 0.1,
        "uncertain: experiment-ii {unfamiliar_uncertain}, experiment-i {familiar_uncertain}"
    );
}

#[test]
fn a_mat_laid_head_to_foot_reads_uncertain_by_its_layout() {
    // The built-in encoder (trained with augmentation) reconstructs a turned mat about as well
    // as a right one and is about as confident on it; its layout reference is what tells them
    // apart. No decoder: confidence and layout only. The three held-out sample recordings, as
    // recorded and flipped head to foot.
    let sources: String = ["1.txt", "2.txt", "3.txt"]
        .iter()
        .map(|f| format!(" pmatsrc location={} ! c.", sample(f).display()))
        .collect();
    let read = |flip: &str| {
        let run = run(&format!(
            "concat name=c ! {flip} spmkdpose ! spmkdmonitor ! spmkdposture ! fakesink name=sink \
             {sources}"
        ));
        let n = run.records.len() as f32;
        let mut layout: Vec<f32> = run
            .records
            .iter()
            .map(|r| r.layout.expect("the encoder carries a layout reference"))
            .collect();
        layout.sort_by(f32::total_cmp);
        let uncertain = run
            .records
            .iter()
            .filter(|r| r.posture.as_ref().unwrap().label == PostureLabel::UNCERTAIN)
            .count() as f32;
        let ramp = run.records[0]
            .layout_ramp
            .expect("the encoder carries its own layout ramp");
        (layout[layout.len() / 2], uncertain / n, ramp)
    };
    let (laid, laid_uncertain, ramp) = read("");
    let (turned, turned_uncertain, _) = read("videoflip video-direction=vert !");
    let start = ramp.0;
    assert!(
        turned < start && laid > start,
        "median layout: as recorded {laid}, turned {turned}"
    );
    assert!(
        turned_uncertain > 0.75 && laid_uncertain < 0.05,
        "uncertain: turned {turned_uncertain}, as recorded {laid_uncertain}"
    );
}
