//! `spmkdmqttsink` against a real broker (mosquitto, started by each test on a free loopback
//! port): every posture change and alert of a recording arrives in order; a broker killed
//! (SIGKILL) mid-stream and back 10 s later costs no frame and no event; a broker absent at start gets
//! everything once it appears; the queue's bound drops the oldest and says so, on the bus and
//! in the status; a bed whose process dies reads offline (the last will); TLS with a password
//! connects, a wrong password is reported and never logged.

use std::path::Path;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstspmkd::spmkdmqttsink::{CONNECTION_MESSAGE, DROPPED_MESSAGE};
use spmkd_core::broker::{EventMessage, StatusMessage};
use spmkd_tests::broker::{Broker, Received, SlowLink, Subscriber, free_port};
use spmkd_tests::{announced, init, sample, usable_frames};

/// The three sample recordings of S12 one after the other (supine, right, left): a posture
/// change at each file, movements between them.
fn chain(sink: &str, framerate: Option<&str>) -> String {
    let rate = framerate.map_or(String::new(), |r| format!(" framerate={r}"));
    let sources: String = ["1.txt", "2.txt", "3.txt"]
        .iter()
        .map(|f| format!(" pmatsrc location={}{rate} ! c.", sample(f).display()))
        .collect();
    format!("concat name=c ! spmkdpose ! spmkdmonitor ! spmkdposture ! {sink} name=sink{sources}")
}

fn frames() -> usize {
    ["1.txt", "2.txt", "3.txt"]
        .iter()
        .map(|f| usable_frames(&sample(f)) as usize)
        .sum()
}

/// What a pipeline gave: the spmkd events on the bus (in order), the sink's messages, buffers
/// rendered, the time it took, the sink's counters at the end.
struct Played {
    events: Vec<gst::Structure>,
    sink_messages: Vec<gst::Structure>,
    /// The text of every warning on the bus.
    warnings: Vec<String>,
    buffers: usize,
    took: Duration,
    dropped: u64,
    queued: u64,
}

/// Plays `description` to EOS (failing on an error), calling `at(seconds)` from the bus loop
/// once per `tick`.
fn play(description: &str, tick: Duration, mut at: impl FnMut(Duration)) -> Played {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline.by_name("sink").unwrap();
    let buffers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let b = buffers.clone();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            b.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let (mut events, mut sink_messages, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
    let mut next_tick = tick;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no EOS in 2 minutes"
        );
        if start.elapsed() >= next_tick {
            at(start.elapsed());
            next_tick += tick;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}: {:?}", e.error(), e.debug()),
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => {
                if let Some(event) = announced(&msg) {
                    events.push(event);
                } else if let Some(s) = e
                    .structure()
                    .filter(|s| [CONNECTION_MESSAGE, DROPPED_MESSAGE].contains(&s.name().as_str()))
                {
                    sink_messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    let took = start.elapsed();
    let (dropped, queued) = (
        sink.property::<u64>("dropped"),
        sink.property::<u64>("queued"),
    );
    pipeline.set_state(gst::State::Null).unwrap();
    Played {
        events,
        sink_messages,
        warnings,
        buffers: buffers.load(std::sync::atomic::Ordering::SeqCst),
        took,
        dropped,
        queued,
    }
}

fn mqtt_sink(port: u16, queue: &Path, extra: &str) -> String {
    format!(
        "spmkdmqttsink port={port} topic-prefix=ward bed=b1 queue-dir={} {extra}",
        queue.display()
    )
}

/// The events (postures and alerts) among `received`, duplicates (a `seq` seen before) left
/// out; panics on a gap in `seq` from `first`.
fn events(received: &[Received], first: u64) -> Vec<EventMessage> {
    let mut out: Vec<EventMessage> = Vec::new();
    for r in received {
        if !(r.topic.ends_with("/posture") || r.topic.ends_with("/alert")) {
            continue;
        }
        let e: EventMessage = serde_json::from_str(&r.payload).unwrap();
        let expected = out.last().map_or(first, |l| l.seq + 1);
        if e.seq < expected {
            continue; // A duplicate: delivered again after a reconnect, marked by its seq.
        }
        assert_eq!(e.seq, expected, "a gap before {:?}", r.payload);
        out.push(e);
    }
    out
}

/// The bus events as (name, running time): what the subscriber must have, in this order.
fn expected(played: &Played) -> Vec<(String, Option<u64>)> {
    played
        .events
        .iter()
        .map(|s| (s.name().to_string(), s.get::<u64>("running-time").ok()))
        .collect()
}

fn got(events: &[EventMessage]) -> Vec<(String, Option<u64>)> {
    events
        .iter()
        .map(|e| (e.event.clone(), e.running_time_ns))
        .collect()
}

/// Waits (at most `timeout`) until every posture and alert `played` announced on the bus has
/// reached `subscriber`, and asserts they all arrived, in order from `seq` 1; returns what
/// arrived and those events.
fn assert_delivered(
    subscriber: &Subscriber,
    played: &Played,
    timeout: Duration,
) -> (Vec<Received>, Vec<EventMessage>) {
    let want = expected(played);
    let received = subscriber.wait_for(timeout, |r| events(r, 1).len() >= want.len());
    let delivered = events(&received, 1);
    assert_eq!(got(&delivered), want);
    (received, delivered)
}

/// One connection, said online once (and offline at the stop): events coming while it was being
/// made did not make the sink start another (each such start gave consumers the bed's last
/// will, offline).
fn assert_online_once(received: &[Received]) {
    let states: Vec<String> = statuses(received).into_iter().map(|s| s.state).collect();
    assert!(
        states == ["online"] || states == ["online", "offline"],
        "{states:?}"
    );
}

fn statuses(received: &[Received]) -> Vec<StatusMessage> {
    statuses_of(received, "b1")
}

#[test]
fn every_posture_change_and_alert_arrives_in_order() {
    let broker = Broker::started();
    let queue = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::new(broker.port, "test-in-order", "ward/#");
    let played = play(
        &chain(&mqtt_sink(broker.port, queue.path(), "sync=false"), None),
        Duration::from_secs(1),
        |_| {},
    );
    assert_eq!(played.buffers, frames());
    let want = expected(&played);
    let postures = want.iter().filter(|(n, _)| n == "spmkd-posture").count();
    assert!(postures >= 3 && want.len() > postures, "{want:?}");
    let (received, events) = assert_delivered(&subscriber, &played, Duration::from_secs(10));
    // Postures on the posture topic, retained; the rest on alert.
    for e in &events {
        assert_eq!(e.kind() == "posture", e.event == "spmkd-posture", "{e:?}");
        assert_eq!(e.bed, "b1");
    }
    assert_eq!(events[1].text("posture"), Some("supine"));
    // Poses, rate-limited to one per second of running time (the recordings are at 1 Hz).
    let poses = received
        .iter()
        .filter(|r| r.topic == "ward/b1/pose")
        .count();
    assert!(poses > 0 && poses <= frames(), "{poses} poses");
    assert_online_once(&received);
    assert_eq!(played.queued, 0);

    // A consumer that comes later learns the current posture at once (retained), and the
    // bed's status: offline, said by the sink as it stopped.
    let late = Subscriber::new(broker.port, "test-late", "ward/#");
    let retained = late.wait_for(Duration::from_secs(5), |r| r.len() >= 2);
    let posture = retained
        .iter()
        .find(|r| r.topic == "ward/b1/posture")
        .expect("the last posture is retained");
    assert!(posture.retained);
    let last: EventMessage = serde_json::from_str(&posture.payload).unwrap();
    assert_eq!(last.text("posture"), Some("left"));
    assert_eq!(
        statuses(&retained).last().map(|s| s.state.clone()),
        Some("offline".into())
    );
}

#[test]
fn a_broker_slow_to_answer_gets_one_connection_not_one_per_event() {
    let broker = Broker::started();
    // The broker's CONNACK comes 1 s late: the first events are queued while the connection is
    // being made.
    let link = SlowLink::to(broker.port, Duration::from_secs(1));
    let queue = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::new(broker.port, "test-slow", "ward/#");
    // 100 frames/s in real time: about 3 s, the first posture at once.
    let played = play(
        &chain(&mqtt_sink(link.port, queue.path(), ""), Some("100/1")),
        Duration::from_secs(1),
        |_| {},
    );
    let (received, _) = assert_delivered(&subscriber, &played, Duration::from_secs(10));
    let connections = std::fs::read_to_string(broker.log())
        .unwrap()
        .matches("as spmkd-ward-b1 ")
        .count();
    assert_eq!(connections, 1, "the sink connected {connections} times");
    assert_online_once(&received);
}

#[test]
fn a_broker_killed_mid_stream_and_back_10_s_later_costs_no_frame_and_no_event() {
    let mut broker = Broker::started();
    let queue = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::new(broker.port, "test-restart", "ward/#");
    // The broker saves the subscriber's session within a second.
    std::thread::sleep(Duration::from_millis(1500));
    // 20 frames/s in real time (sync=true): about 17 s; the broker is away from 2 s to 12 s,
    // across the posture changes at about 6 s and 11 s.
    let mut restarted = false;
    let played = play(
        &chain(&mqtt_sink(broker.port, queue.path(), ""), Some("20/1")),
        Duration::from_secs(2),
        |t| {
            if t < Duration::from_secs(4) {
                broker.kill();
            } else if t >= Duration::from_secs(12) && !restarted {
                broker.start();
                restarted = true;
            }
        },
    );
    assert!(restarted);
    // Real time kept: the stream took its own length, give or take scheduling.
    let length = Duration::from_millis(50 * frames() as u64);
    assert_eq!(played.buffers, frames());
    assert!(
        played.took < length + Duration::from_secs(3),
        "{:?} for {:?} of stream",
        played.took,
        length
    );
    let states: Vec<String> = played
        .sink_messages
        .iter()
        .filter(|s| s.name() == CONNECTION_MESSAGE)
        .map(|s| s.get::<String>("state").unwrap())
        .collect();
    assert_eq!(states, ["connected", "disconnected", "connected"]);

    assert_delivered(&subscriber, &played, Duration::from_secs(15));
    assert_eq!((played.dropped, played.queued), (0, 0));
}

#[test]
fn a_broker_absent_at_start_gets_everything_when_it_appears() {
    let mut broker = Broker::started();
    let queue = tempfile::tempdir().unwrap();
    // The subscriber's session exists at the broker (persisted across its restart).
    let subscriber = Subscriber::new(broker.port, "test-absent", "ward/#");
    broker.stop();
    let mut started = false;
    let played = play(
        &chain(&mqtt_sink(broker.port, queue.path(), ""), Some("50/1")),
        Duration::from_secs(3),
        |_| {
            if !started {
                broker.start();
                started = true;
            }
        },
    );
    assert_eq!(played.buffers, frames());
    assert_delivered(&subscriber, &played, Duration::from_secs(15));
}

/// A sink for `bed` at `port` with its queue in `queue`, EOS not waiting for the broker.
fn bed_sink(port: u16, bed: &str, queue: &Path) -> String {
    format!(
        "spmkdmqttsink port={port} topic-prefix=ward bed={bed} queue-dir={} eos-wait=0 sync=false",
        queue.display()
    )
}

#[test]
fn beds_never_share_a_queue_and_a_queue_made_anew_is_told_apart() {
    let broker = Broker::started();
    let queue = tempfile::tempdir().unwrap();
    // Bed ä with no broker to reach: its events wait in the queue.
    let a = play(
        &chain(&bed_sink(free_port(), "Zimmer-ä", queue.path()), None),
        Duration::from_secs(1),
        |_| {},
    );
    assert!(a.queued > 0);
    // Bed ö with the same queue directory, then: only its own events, from seq 1.
    let subscriber = Subscriber::new(broker.port, "test-names", "ward/#");
    let o = play(
        &chain(&bed_sink(broker.port, "Zimmer-ö", queue.path()), None),
        Duration::from_secs(1),
        |_| {},
    );
    let (received, first) = assert_delivered(&subscriber, &o, Duration::from_secs(10));
    assert!(
        received
            .iter()
            .all(|r| r.topic.starts_with("ward/Zimmer-ö/")),
        "{:?}",
        received.iter().map(|r| &r.topic).collect::<Vec<_>>()
    );
    let epoch = first[0]
        .epoch
        .expect("every event carries its queue's epoch");
    assert!(first.iter().all(|e| e.epoch == Some(epoch)));

    // Its queue lost: seq counts from 1 again, under a new epoch the status announces.
    std::fs::remove_dir_all(queue.path()).unwrap();
    let again = play(
        &chain(&bed_sink(broker.port, "Zimmer-ö", queue.path()), None),
        Duration::from_secs(1),
        |_| {},
    );
    let n = first.len() + expected(&again).len();
    let received = subscriber.wait_for(Duration::from_secs(10), |r| {
        r.iter().filter(|m| !m.topic.ends_with("/status")).count() >= n
    });
    let events: Vec<EventMessage> = received
        .iter()
        .filter(|r| r.topic.ends_with("/posture") || r.topic.ends_with("/alert"))
        .map(|r| serde_json::from_str(&r.payload).unwrap())
        .collect();
    let second: Vec<&EventMessage> = events.iter().filter(|e| e.epoch != Some(epoch)).collect();
    assert_eq!(second.len(), expected(&again).len());
    assert_eq!(second[0].seq, 1);
    let pairs: std::collections::HashSet<(Option<u64>, u64)> =
        events.iter().map(|e| (e.epoch, e.seq)).collect();
    assert_eq!(
        pairs.len(),
        events.len(),
        "(epoch, seq) tells every event apart"
    );
    let announced: Vec<Option<u64>> = statuses_of(&received, "Zimmer-ö")
        .iter()
        .map(|s| s.epoch)
        .collect();
    assert!(announced.contains(&second[0].epoch), "{announced:?}");
}

#[test]
fn the_queue_bound_drops_the_oldest_and_says_so() {
    let port = free_port(); // No broker there yet.
    let queue = tempfile::tempdir().unwrap();
    let sink = mqtt_sink(port, queue.path(), "sync=false queue-limit=2");
    let played = play(&chain(&sink, None), Duration::from_secs(1), |_| {});
    let n = played.events.len() as u64;
    assert!(n > 2, "{n} events");
    assert_eq!((played.dropped, played.queued), (n - 2, 2));
    let dropped: Vec<u64> = played
        .sink_messages
        .iter()
        .filter(|s| s.name() == DROPPED_MESSAGE)
        .map(|s| s.get::<u64>("dropped").unwrap())
        .collect();
    assert_eq!(dropped, (1..=n - 2).collect::<Vec<_>>());

    // The broker appears; the next run delivers the two kept (the newest), then its own, and
    // its status counts what was dropped. It runs with the default bound: with 2, its own
    // events could push the kept ones out before its connection is made.
    let mut broker = Broker::on_port(port);
    broker.start();
    let subscriber = Subscriber::new(port, "test-bound", "ward/#");
    let again = play(
        &chain(&mqtt_sink(port, queue.path(), "sync=false"), None),
        Duration::from_secs(1),
        |_| {},
    );
    assert_eq!(again.dropped, n - 2, "the second run dropped more");
    let total = 2 + again.events.len();
    let received =
        subscriber.wait_for(Duration::from_secs(10), |r| events(r, n - 1).len() >= total);
    let delivered = events(&received, n - 1);
    assert_eq!(delivered.len(), total);
    assert_eq!(
        got(&delivered[..2]),
        expected(&played)[played.events.len() - 2..]
    );
    let online = statuses(&received)
        .into_iter()
        .find(|s| s.state == "online")
        .expect("an online status");
    assert_eq!(online.dropped, n - 2);
}

/// A CA, a certificate for `localhost` signed by it, and a mosquitto password file with the
/// user `bed` and `password`, written to `dir` (readable by the broker's own user).
fn tls_files(dir: &Path, password: &str) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    run(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=spmkd test CA",
    ]);
    run(&[
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    run(&["mosquitto_passwd", "-b", "-c", "passwd", "bed", password]);
    for f in ["ca.pem", "server.pem", "server.key", "passwd"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

#[test]
fn tls_with_a_password_delivers_and_a_wrong_password_is_reported_never_logged() {
    const PASSWORD: &str = "s3cret-Pass-41";
    const WRONG: &str = "wrong-Pass-97";
    init();
    // Everything spmkdmqttsink logs, at every level.
    let logged: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    {
        let logged = logged.clone();
        gst::log::add_log_function(move |cat, _, _, _, _, _, msg| {
            if cat.name() == "spmkdmqttsink" {
                logged
                    .lock()
                    .unwrap()
                    .push(msg.get().map(|m| m.to_string()).unwrap_or_default());
            }
        });
    }
    // Captured here, not printed on stderr by GStreamer's own log function.
    gst::log::remove_default_log_function();
    gst::log::set_threshold_for_name("spmkdmqttsink", gst::DebugLevel::Trace);

    let tls_port = free_port();
    let mut broker = Broker::configured(free_port(), |dir| {
        tls_files(dir, PASSWORD);
        let d = dir.display();
        format!(
            "listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\npassword_file {d}/passwd\nallow_anonymous false\n"
        )
    });
    broker.start();
    let ca = broker.dir().join("ca.pem");
    let subscriber = Subscriber::new(broker.port, "test-tls", "ward/#");
    let queue = tempfile::tempdir().unwrap();
    let sink = |password: &str| {
        format!(
            "spmkdmqttsink host=localhost port={tls_port} tls=true ca-file={} username=bed password={password} topic-prefix=ward bed=b1 queue-dir={} sync=false eos-wait=0",
            ca.display(),
            queue.path().display()
        )
    };

    // The right password over TLS: delivered, with the advice that a property is the wrong
    // place for it.
    let played = play(
        &chain(&sink(PASSWORD), None),
        Duration::from_secs(1),
        |_| {},
    );
    assert_delivered(&subscriber, &played, Duration::from_secs(10));
    let advice = |p: &Played| {
        p.warnings
            .iter()
            .filter(|w| w.contains("use password-file"))
            .count()
    };
    assert_eq!(advice(&played), 1, "{:?}", played.warnings);

    // The same from a password file (as `echo` writes it): delivered, no advice.
    let file = queue.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let other_queue = tempfile::tempdir().unwrap();
    let b2 = Subscriber::new(broker.port, "test-tls-b2", "ward/b2/#");
    let from_file = play(
        &chain(
            &format!(
                "spmkdmqttsink host=localhost port={tls_port} tls=true ca-file={} username=bed password-file={} topic-prefix=ward bed=b2 queue-dir={} sync=false eos-wait=0",
                ca.display(),
                file.display(),
                other_queue.path().display()
            ),
            None,
        ),
        Duration::from_secs(1),
        |_| {},
    );
    assert_delivered(&b2, &from_file, Duration::from_secs(10));
    assert_eq!(advice(&from_file), 0, "{:?}", from_file.warnings);

    // A wrong one: refused, said on the bus, the stream unharmed, the events kept.
    let refused = play(&chain(&sink(WRONG), None), Duration::from_secs(1), |_| {});
    assert_eq!(refused.buffers, frames());
    let reasons: Vec<String> = refused
        .sink_messages
        .iter()
        .filter(|s| s.get::<String>("state").as_deref() == Ok("disconnected"))
        .map(|s| s.get::<String>("reason").unwrap())
        .collect();
    assert!(
        reasons
            .first()
            .is_some_and(|r| r.to_lowercase().contains("refused")),
        "{reasons:?}"
    );
    assert_eq!(refused.queued, refused.events.len() as u64);

    let logged = logged.lock().unwrap();
    assert!(logged.len() > 10, "the sink logged: {logged:?}");
    for line in logged.iter().chain(&reasons).chain(&played.warnings) {
        assert!(
            !line.contains(PASSWORD) && !line.contains(WRONG),
            "a password in: {line}"
        );
    }
}

/// Not a test of its own: the bed that `a_bed_whose_process_dies_reads_offline` runs in a child
/// process and kills. It plays until killed when SPMKD_CHILD_BED_PORT is set, else returns.
#[test]
#[ignore = "run by a_bed_whose_process_dies_reads_offline"]
fn child_bed_until_killed() {
    let Ok(port) = std::env::var("SPMKD_CHILD_BED_PORT") else {
        return;
    };
    let queue = std::env::var("SPMKD_CHILD_BED_QUEUE").unwrap();
    init();
    let pipeline = gst::parse::launch(&format!(
        "pmatsrc location={} loop=true framerate=10/1 ! spmkdpose ! spmkdposture ! spmkdmqttsink \
         port={port} topic-prefix=ward bed=dies keep-alive=5 queue-dir={queue}",
        sample("1.txt").display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// [`child_bed_until_killed`] in a child process, once `subscriber` (of its status) saw it
/// online.
fn child_bed(port: u16, queue: &Path, subscriber: &Subscriber) -> std::process::Child {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_bed_until_killed",
            "--nocapture",
        ])
        .env("SPMKD_CHILD_BED_PORT", port.to_string())
        .env("SPMKD_CHILD_BED_QUEUE", queue)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let online = subscriber.wait_for(Duration::from_secs(30), |r| {
        statuses_of(r, "dies").iter().any(|s| s.state == "online")
    });
    assert!(
        statuses_of(&online, "dies")
            .iter()
            .any(|s| s.state == "online"),
        "the child bed never came online"
    );
    child
}

#[test]
fn a_second_process_on_the_same_bed_and_queue_fails_at_start_and_says_why() {
    init();
    let broker = Broker::started();
    let queue = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::new(broker.port, "test-second", "ward/dies/#");
    let mut child = child_bed(broker.port, queue.path(), &subscriber);
    // The same bed, prefix and queue directory, from this process: refused at start.
    let pipeline = gst::parse::launch(&format!(
        "pmatsrc location={} ! spmkdpose ! spmkdposture ! spmkdmqttsink port={} \
         topic-prefix=ward bed=dies queue-dir={}",
        sample("1.txt").display(),
        broker.port,
        queue.path().display()
    ))
    .unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    let error = pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::from_seconds(5))
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error on the bus");
    pipeline.set_state(gst::State::Null).unwrap();
    let owner = format!("in use by another sink (process {})", child.id());
    assert!(
        error.contains(&owner) && error.contains("client id"),
        "{error}"
    );
    // The child's connection was never taken over: online once, no offline.
    std::thread::sleep(Duration::from_secs(1));
    let states: Vec<String> = statuses_of(&subscriber.messages(), "dies")
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["online"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_bed_whose_process_dies_reads_offline() {
    let broker = Broker::started();
    let queue = tempfile::tempdir().unwrap();
    let subscriber = Subscriber::new(broker.port, "test-will", "ward/dies/status");
    let mut child = child_bed(broker.port, queue.path(), &subscriber);
    // A crash: no chance to say offline. The broker says it for the bed (the last will): at
    // once here, the kernel closing the dead process's connection without a DISCONNECT; after
    // 1.5 keep-alives (7.5 s) of silence when the network is cut instead.
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    let after = subscriber.wait_for(Duration::from_secs(20), |r| {
        statuses_of(r, "dies")
            .last()
            .is_some_and(|s| s.state == "offline")
    });
    assert_eq!(
        statuses_of(&after, "dies").last().map(|s| s.state.as_str()),
        Some("offline"),
        "no last will in {:?}",
        killed.elapsed()
    );
}

fn statuses_of(received: &[Received], bed: &str) -> Vec<StatusMessage> {
    received
        .iter()
        .filter(|r| r.topic == format!("ward/{bed}/status"))
        .map(|r| serde_json::from_str(&r.payload).unwrap())
        .collect()
}
