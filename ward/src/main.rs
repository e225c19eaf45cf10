//! `spmkd-ward`: the beds of a ward at a glance, from what their `spmkdmqttsink`s publish.
//!
//! ```text
//! spmkd-ward --host broker.ward --prefix ward/4 --ndjson events.ndjson
//! ```
//!
//! Subscribes to `<prefix>/+/posture`, `/alert` and `/status` (and `/pose` with `--poses`),
//! redraws a table of the beds every `--refresh` seconds (posture, for how long, when the next
//! reposition is due, open alerts, the last `seq` and how many are missing), and with
//! `--ndjson` writes every message it receives as one JSON line (`topic`, `received_ms`,
//! `duplicate`, `message`). With `--client-id` and `--persistent` the broker keeps what is
//! published while it is away.

mod ward;

use std::fs::File;
use std::io::{IsTerminal, LineWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use rumqttc::{Client, Event, Packet, QoS};
use serde_json::json;

use spmkd_core::{broker, mqtt};
use ward::{Applied, Ward, shown};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "The beds of a ward at a glance, from their spmkdmqttsink messages"
)]
struct Args {
    /// The MQTT broker's host.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The broker's port (8883 is usual with --tls).
    #[arg(long, default_value_t = 1883)]
    port: u16,
    /// The sinks' topic-prefix.
    #[arg(long, default_value = "spmkd")]
    prefix: String,
    /// Write every message received to this file, one JSON object per line.
    #[arg(long)]
    ndjson: Option<PathBuf>,
    /// Also take the pose topic (every pose then goes to --ndjson).
    #[arg(long)]
    poses: bool,
    /// The reposition schedule, in minutes (what "reposition due" is counted from).
    #[arg(long, default_value_t = 120)]
    reposition_minutes: u64,
    /// Seconds between two redraws of the table.
    #[arg(long, default_value = "1", value_parser = refresh_seconds)]
    refresh: Duration,
    /// Stop after this many seconds (print the table once more); default: run until killed.
    #[arg(long, value_parser = seconds)]
    duration: Option<Duration>,
    /// No table, only --ndjson.
    #[arg(long)]
    no_table: bool,
    /// MQTT client id (default: spmkd-ward-<pid>).
    #[arg(long)]
    client_id: Option<String>,
    /// Keep the session at the broker (needs --client-id): nothing published while this
    /// program is away is lost to it.
    #[arg(long, requires = "client_id")]
    persistent: bool,
    /// User name for the broker; the password comes from $SPMKD_MQTT_PASSWORD or
    /// --password-file, never from the command line.
    #[arg(long)]
    username: Option<String>,
    #[arg(long, requires = "username")]
    password_file: Option<PathBuf>,
    /// Connect over TLS, checking the broker against --ca-file.
    #[arg(long, requires = "ca_file")]
    tls: bool,
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that authenticate clients by certificate.
    #[arg(long, requires = "key_file")]
    cert_file: Option<PathBuf>,
    #[arg(long, requires = "cert_file")]
    key_file: Option<PathBuf>,
}

/// The connection the options ask for: the password from --password-file, else
/// $SPMKD_MQTT_PASSWORD.
fn connection(args: &Args) -> Result<mqtt::Connection> {
    let id = args
        .client_id
        .clone()
        .unwrap_or_else(|| format!("spmkd-ward-{}", std::process::id()));
    let mut c = mqtt::Connection::new(&args.host, args.port, id);
    c.persistent = args.persistent;
    c.credentials = args.username.as_ref().map(|user| {
        let password = match &args.password_file {
            Some(file) => mqtt::Password::File(file.clone()),
            None => mqtt::Password::Environment,
        };
        (user.clone(), password)
    });
    if args.tls {
        c.tls = Some(mqtt::Tls::new(
            args.ca_file.clone(),
            args.cert_file.clone(),
            args.key_file.clone(),
        )?);
    }
    Ok(c)
}

/// A span of seconds: finite, not negative, and one a `Duration` holds.
fn seconds(s: &str) -> Result<Duration, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("seconds such as 2.5, got {s:?}"))?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("seconds from 0 to about 1.8e19, got {value}"))
}

/// [`seconds`], above 0.
fn refresh_seconds(s: &str) -> Result<Duration, String> {
    match seconds(s)? {
        d if d.is_zero() => Err("seconds above 0".to_owned()),
        d => Ok(d),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let Some(prefix) = broker::topic_prefix(&args.prefix).map(str::to_owned) else {
        bail!(
            "--prefix {:?} must be a topic without wildcards",
            args.prefix
        );
    };
    let mut kinds = vec![broker::POSTURE, broker::ALERT, broker::STATUS];
    if args.poses {
        kinds.push(broker::POSE);
    }
    // Appended: a recorder started again keeps what it recorded.
    let mut out = match &args.ndjson {
        Some(path) => Some(LineWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => None,
    };
    let mut ward = Ward::new(&prefix, args.reposition_minutes * 60_000);
    let (client, mut connection) = Client::new(connection(&args)?.options()?, 100);
    mqtt::no_delay(&mut connection.eventloop);
    let start = Instant::now();
    // Beyond what the clock can count: until killed.
    let until = args.duration.and_then(|d| start.checked_add(d));
    let refresh = args.refresh;
    let mut next_draw = start;
    let tty = std::io::stdout().is_terminal();
    let mut connected = false;
    // The last reason the broker could not be reached, said once until it changes.
    let mut last_failure: Option<String> = None;
    loop {
        let now = Instant::now();
        if until.is_some_and(|u| now >= u) {
            break;
        }
        if now >= next_draw {
            // With the table or without (a recorder): a bed silent for a day is let go.
            ward.forget_silent(broker::wall_time_ms());
            if !args.no_table && !draw(&ward, tty, connected)? {
                break;
            }
            next_draw = now.checked_add(refresh).unwrap_or(now);
        }
        let wait = next_draw
            .min(until.unwrap_or(next_draw))
            .saturating_duration_since(now);
        let event = match connection.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(event) => event,
            Err(_) => continue, // Nothing in time: redraw.
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected = true;
                last_failure = None;
                for kind in &kinds {
                    client
                        .try_subscribe(format!("{prefix}/+/{kind}"), QoS::AtLeastOnce)
                        .context("subscribing")?;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let applied = ward.apply(&p.topic, &p.payload, broker::wall_time_ms());
                match &applied {
                    Applied::Invalid(why) => eprintln!("spmkd-ward: {}", shown(why)),
                    Applied::TooLarge(bytes) => {
                        eprintln!(
                            "spmkd-ward: {}: a message of {bytes} bytes, larger than any of \
                             spmkd's ({} at most), refused",
                            shown(&p.topic),
                            broker::MAX_PAYLOAD
                        );
                        // Not recorded either: it is no bed's.
                        continue;
                    }
                    _ => {}
                }
                if let Some(out) = out.as_mut() {
                    let message: serde_json::Value = serde_json::from_slice(&p.payload)
                        .unwrap_or_else(|_| String::from_utf8_lossy(&p.payload).into());
                    let line = json!({
                        "topic": p.topic,
                        "received_ms": broker::wall_time_ms(),
                        "duplicate": matches!(applied, Applied::Duplicate(_)),
                        "message": message,
                    });
                    writeln!(out, "{line}").context("writing the NDJSON file")?;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let why = e.to_string();
                if connected {
                    eprintln!("spmkd-ward: lost the broker ({why}); trying again");
                } else if last_failure.as_ref() != Some(&why) {
                    eprintln!("spmkd-ward: cannot reach the broker ({why}); trying again");
                }
                last_failure = Some(why);
                connected = false;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    if !args.no_table {
        draw(&ward, false, connected)?;
    }
    let _ = client.disconnect();
    Ok(())
}

/// Prints the table; `false` when nobody reads it any more (stdout a closed pipe, as after
/// `spmkd-ward ... | head`): then the ward stops, as a filter does.
fn draw(ward: &Ward, tty: bool, connected: bool) -> Result<bool> {
    let table = ward.table(broker::wall_time_ms());
    let link = if connected { "" } else { " (not connected)" };
    let refused = match ward.refused_beds {
        0 => String::new(),
        n => format!(
            " ({n} message(s) of beds beyond {} not kept)",
            ward::MAX_BEDS
        ),
    };
    let large = match ward.refused_large {
        0 => String::new(),
        n => format!(" ({n} message(s) too large to be spmkd's refused)"),
    };
    let mut stdout = std::io::stdout().lock();
    // Home and clear on a terminal: the table stays in place.
    let home = if tty { "\x1b[H\x1b[2J" } else { "" };
    match writeln!(
        stdout,
        "{home}{} bed(s){link}{refused}{large}\n{table}",
        ward.beds.len()
    )
    .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing the table"),
    }
}
