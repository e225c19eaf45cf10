//! `spmkd-ward` as a command: options it cannot honour are refused without a panic (and a
//! credential or certificate it cannot read is said at once), it stops
//! quietly when the reader of its table goes away (`| head`), it says why the broker cannot be
//! reached from the first try (once, not every retry), and `--ndjson` appends to what a
//! recorder wrote before.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn ward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spmkd-ward"))
        .args(["--host", "127.0.0.1", "--port", &closed_port().to_string()])
        .args(args)
        .output()
        .expect("spmkd-ward runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn durations_it_cannot_count_are_refused_without_a_panic() {
    for arg in [
        "--duration=nan",
        "--duration=inf",
        "--duration=1e30",
        "--duration=-1",
        "--refresh=1e30",
        "--refresh=0",
    ] {
        let args = [arg];
        let o = ward(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("seconds"), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_reader_that_goes_away_stops_the_ward_quietly() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spmkd-ward"))
        .args(["--host", "127.0.0.1", "--port", &closed_port().to_string()])
        .args(["--refresh", "0.01", "--duration", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("bed(s)"), "{first}");
    // The pipe closes here, as `| head -1` closes it.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10), "it stopped");
}

#[test]
fn why_the_broker_cannot_be_reached_is_said_once_from_the_first_try() {
    let o = ward(&["--duration", "2", "--no-table"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stderr(&o).matches("cannot reach the broker").count();
    assert_eq!(said, 1, "{}", stderr(&o));
}

#[test]
fn the_ndjson_of_an_earlier_run_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.ndjson");
    std::fs::write(&path, "{\"recorded\":\"before\"}\n").unwrap();
    let file = path.to_str().unwrap();
    let o = ward(&["--duration", "0.3", "--no-table", "--ndjson", file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\"recorded\":\"before\"}\n"), "{text}");
}

#[test]
fn a_credential_or_certificate_it_cannot_read_is_said_at_once() {
    for (args, said) in [
        (
            &["--username", "u", "--password-file", "/nonexistent/pw"][..],
            "cannot read the password file /nonexistent/pw",
        ),
        (
            &["--tls", "--ca-file", "/nonexistent/ca.pem"][..],
            "cannot read the CA certificate /nonexistent/ca.pem",
        ),
    ] {
        let o = ward(args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(said), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}
