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
