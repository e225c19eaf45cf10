//! `spmkd-ward` against a real broker and real sinks: two beds' pipelines publish through
//! `spmkdmqttsink` while the ward is away; its persistent session gets everything when it comes
//! back, the NDJSON has every posture and alert of both beds in order, and the table shows each
//! bed's last posture.

use std::process::Command;

use gst::prelude::*;
use spmkd_core::broker::EventMessage;
use spmkd_tests::broker::Broker;
use spmkd_tests::{announced, init, sample};

fn ward(port: u16, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_spmkd-ward"))
        .args(["--port", &port.to_string(), "--prefix", "ward/4"])
        .args(["--client-id", "ward-test", "--persistent"])
        .args(args)
        .output()
        .expect("spmkd-ward runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Plays `files` of S12 one after the other into a sink for `bed`; the events on the bus.
fn bed(port: u16, bed: &str, files: &[&str], queue: &std::path::Path) -> Vec<String> {
    init();
    let sources: String = files
        .iter()
        .map(|f| format!(" pmatsrc location={} ! c.", sample(f).display()))
        .collect();
    let pipeline = gst::parse::launch(&format!(
        "concat name=c ! spmkdpose ! spmkdmonitor ! spmkdposture ! spmkdmqttsink port={port} \
         topic-prefix=ward/4 bed={bed} queue-dir={} sync=false{sources}",
        queue.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut events = Vec::new();
    for msg in pipeline
        .bus()
        .unwrap()
        .iter_timed(gst::ClockTime::from_seconds(60))
    {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Element(_) => {
                events.extend(announced(&msg).map(|s| s.name().to_string()));
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    events
}

#[test]
fn the_ward_gets_every_event_of_every_bed() {
    let broker = Broker::started();
    let dir = tempfile::tempdir().unwrap();
    // The ward's session is made at the broker, then the ward goes away.
    ward(broker.port, &["--duration", "1", "--no-table"]);

    let a = bed(broker.port, "a", &["1.txt", "2.txt", "3.txt"], dir.path());
    let b = bed(broker.port, "b", &["3.txt"], dir.path());

    let ndjson = dir.path().join("events.ndjson");
    let table = ward(
        broker.port,
        &["--duration", "3", "--ndjson", ndjson.to_str().unwrap()],
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (name, want) in [("a", &a), ("b", &b)] {
        let got: Vec<EventMessage> = lines
            .iter()
            .filter(|l| {
                let t = l["topic"].as_str().unwrap();
                t == format!("ward/4/{name}/posture") || t == format!("ward/4/{name}/alert")
            })
            .filter(|l| l["duplicate"] == false)
            .map(|l| serde_json::from_value(l["message"].clone()).unwrap())
            .collect();
        let names: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(&names, want, "bed {name}");
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=want.len() as u64).collect::<Vec<_>>(),
            "bed {name}"
        );
    }
    // Both beds in the table, each in its last posture (S12's last recording is left side),
    // and offline (their pipelines stopped).
    for name in ["a", "b"] {
        let row = table
            .lines()
            .rev()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for bed {name}:\n{table}"));
        assert!(
            row.contains("offline") && row.contains("left"),
            "{row}\n{table}"
        );
    }
}

/// `mosquitto_pub` of `payload` (a file) to `topic`, as any client on the broker can.
fn publish(port: u16, topic: &str, payload: &std::path::Path, extra: &[&str]) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-f", payload.to_str().unwrap()])
        .args(extra)
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success(), "mosquitto_pub to {topic}");
}

fn posture_of_bed_13(dir: &std::path::Path) -> std::path::PathBuf {
    let mut real = EventMessage::new("13", 1, "spmkd-posture");
    real.fields.insert("posture".into(), "supine".into());
    let path = dir.join("real.json");
    std::fs::write(&path, serde_json::to_string(&real).unwrap()).unwrap();
    path
}

/// What the NDJSON recorded of bed 13: the events, and the messages that are none (recorded
/// as their text).
fn recorded(ndjson: &std::path::Path) -> (Vec<EventMessage>, Vec<String>) {
    let (mut events, mut others) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(ndjson).unwrap_or_default().lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        if !line["topic"].as_str().unwrap().starts_with("ward/4/13/") {
            continue;
        }
        match serde_json::from_value(line["message"].clone()) {
            Ok(event) => events.push(event),
            Err(_) => others.push(line["message"].to_string()),
        }
    }
    (events, others)
}

#[test]
fn a_message_too_large_to_be_ours_is_refused_and_the_session_goes_on() {
    let broker = Broker::started();
    let dir = tempfile::tempdir().unwrap();
    let retained = dir.path().join("11k");
    std::fs::write(&retained, vec![b'x'; 11 * 1024]).unwrap();
    let huge = dir.path().join("10m");
    std::fs::write(&huge, vec![b'{'; 10 << 20]).unwrap();
    // A careless client leaves a retained 11 KB message on a posture topic ...
    publish(broker.port, "ward/4/13/posture", &retained, &["-r"]);

    // ... the persistent recorder of docs/DEPLOYMENT.md is away while a 10 MB message and a
    // real posture are queued for it ...
    ward(broker.port, &["--duration", "1", "--no-table"]);
    publish(broker.port, "ward/4/13/alert", &huge, &[]);
    publish(
        broker.port,
        "ward/4/13/posture",
        &posture_of_bed_13(dir.path()),
        &[],
    );
    let ndjson = dir.path().join("events.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_spmkd-ward"))
        .args(["--port", &broker.port.to_string(), "--prefix", "ward/4"])
        .args([
            "--client-id",
            "ward-test",
            "--persistent",
            "--duration",
            "3",
        ])
        .args(["--ndjson", ndjson.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    // ... and comes back to every real message, the large ones refused and counted, the
    // connection never lost.
    let (got, others) = recorded(&ndjson);
    assert_eq!(got.len(), 1, "{got:?}\n{stderr}");
    // The 11 KB one is not JSON: recorded as its text, as any payload that does not parse; the
    // 10 MB one is not recorded at all.
    assert_eq!(others.len(), 1, "{} messages", others.len());
    assert_eq!(others[0].len(), 11 * 1024 + 2);
    assert_eq!(got[0].text("posture"), Some("supine"));
    assert!(!stderr.contains("lost the broker"), "{stderr}");
    assert_eq!(stderr.matches("refused").count(), 1, "{stderr}");
    assert!(
        stdout.contains("1 message(s) too large to be spmkd's refused"),
        "{stdout}"
    );
    let row = stdout.lines().rev().find(|l| l.starts_with("13 ")).unwrap();
    assert!(row.contains("supine"), "{row}");
}

/// The highest resident set of process `pid` seen while `running` holds, KiB.
fn watch_rss(
    pid: u32,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut most = 0;
        while running.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                most = most.max(rss);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        most
    })
}

/// A hostile client on the broker, scripted: terminal escapes, a 10 MB payload, the largest
/// seq, 40,000 event names on one bed, 80,000 invented beds; then a real bed's pipeline. The
/// ward's memory stays bounded and every real event reaches its NDJSON and its table.
#[test]
fn the_ward_survives_a_hostile_client_and_shows_every_real_event() {
    use rumqttc::{Client, QoS};
    use spmkd_core::mqtt;

    let broker = Broker::started();
    let dir = tempfile::tempdir().unwrap();
    let ndjson = dir.path().join("events.ndjson");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spmkd-ward"))
        .args(["--port", &broker.port.to_string(), "--prefix", "ward/4"])
        .args(["--duration", "300", "--refresh", "1"])
        .args(["--ndjson", ndjson.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let rss = watch_rss(child.id(), running.clone());
    // Read as it is written: a table nobody reads would block the ward on a full pipe.
    let mut pipe = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    std::thread::sleep(std::time::Duration::from_secs(1));

    let mut options = mqtt::Connection::new("127.0.0.1", broker.port, "hostile")
        .options()
        .unwrap();
    options.set_max_packet_size(mqtt::MAX_INCOMING, mqtt::MAX_INCOMING);
    let (client, mut connection) = Client::new(options, 200_000);
    let pump = std::thread::spawn(move || {
        for event in connection.iter() {
            if event.is_err() {
                break;
            }
        }
    });
    let event = |bed: &str, seq: u64, name: &str, posture: Option<&str>| {
        let mut e = EventMessage::new(bed, seq, name);
        if let Some(p) = posture {
            e.fields.insert("posture".into(), p.into());
        }
        serde_json::to_vec(&e).unwrap()
    };
    let publish = |topic: String, payload: Vec<u8>| {
        client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .unwrap();
    };
    publish(
        "ward/4/a/posture".into(),
        event(
            "a",
            1,
            "spmkd-posture",
            Some("supine\u{1b}[2J\u{1b}[H\nbed13 online supine"),
        ),
    );
    publish("ward/4/a/alert".into(), vec![b'{'; 10 << 20]);
    publish(
        "ward/4/a/alert".into(),
        event("a", u64::MAX, "spmkd-edge", None),
    );
    for i in 0..40_000u64 {
        publish(
            "ward/4/a/alert".into(),
            event("a", 2 + i, &format!("spmkd-x{i}"), None),
        );
    }
    for i in 0..80_000u32 {
        publish(
            format!("ward/4/fake-{i}/status"),
            format!(r#"{{"bed":"fake-{i}","state":"online","wall_time_ms":1}}"#).into_bytes(),
        );
    }
    client.disconnect().unwrap();
    let _ = pump.join();

    // The real bed, after the flood.
    let events = bed(broker.port, "a", &["1.txt", "2.txt", "3.txt"], dir.path());
    // Every real event, in order, none marked a duplicate (the made-up ones carry no epoch).
    let real = || -> Vec<EventMessage> {
        std::fs::read_to_string(&ndjson)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["topic"] == "ward/4/a/posture" || l["topic"] == "ward/4/a/alert")
            .filter(|l| l["duplicate"] == false)
            .filter_map(|l| serde_json::from_value::<EventMessage>(l["message"].clone()).ok())
            .filter(|e| e.epoch.is_some())
            .collect()
    };
    // Until the NDJSON has them all (at most a minute), and a table after that.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < until && real().len() < events.len() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let most_kib = rss.join().unwrap();
    let stdout = reader.join().unwrap();

    let real = real();
    let names: Vec<&str> = real.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, events, "the real bed's events");
    // The last table: the real bed in its last posture, the invented beds bounded, no escape
    // reaching the terminal, no forged row.
    // The last table drawn whole (the kill may have cut the one after it).
    let last = stdout.rsplit("bed(s)").nth(1).unwrap();
    let row = last
        .lines()
        .find(|l| l.starts_with("a "))
        .unwrap_or_else(|| panic!("no row for bed a"));
    assert!(row.contains("left"), "{row}");
    assert!(!stdout.contains('\u{1b}'), "an escape reached the table");
    assert!(
        !stdout.lines().any(|l| l.starts_with("bed13")),
        "a forged row"
    );
    assert!(
        stdout.contains("10000 bed(s)") && stdout.contains("too large to be spmkd's refused"),
        "{}",
        &stdout[..stdout.len().min(400)]
    );
    eprintln!("spmkd-ward's largest resident set: {} MiB", most_kib / 1024);
    assert!(most_kib < 64 * 1024, "{most_kib} KiB");
}
