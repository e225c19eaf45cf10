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
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::json;

use spmkd_core::broker;
use ward::{Applied, Ward};

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
    #[arg(long, default_value_t = 1.0)]
    refresh: f64,
    /// Stop after this many seconds (print the table once more); default: run until killed.
    #[arg(long)]
    duration: Option<f64>,
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

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

fn options(args: &Args) -> Result<MqttOptions> {
    let id = args
        .client_id
        .clone()
        .unwrap_or_else(|| format!("spmkd-ward-{}", std::process::id()));
    let mut options = MqttOptions::new(id, args.host.clone(), args.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(!args.persistent);
    if let Some(user) = &args.username {
        let password = match (&args.password_file, std::env::var("SPMKD_MQTT_PASSWORD")) {
            (Some(file), _) => String::from_utf8(read(file, "password file")?)
                .context("the password file is not UTF-8")?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (None, Ok(p)) => p,
            (None, Err(_)) => String::new(),
        };
        options.set_credentials(user.clone(), password);
    }
    if args.tls {
        let ca = match &args.ca_file {
            Some(f) => read(f, "CA certificate")?,
            None => bail!("--tls needs --ca-file"),
        };
        let client_auth = match (&args.cert_file, &args.key_file) {
            (Some(c), Some(k)) => Some((read(c, "client certificate")?, read(k, "client key")?)),
            _ => None,
        };
        spmkd_core::mqtt::use_tls(&mut options, ca, client_auth);
    }
    Ok(options)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.refresh.is_finite() || args.refresh <= 0.0 {
        bail!("--refresh must be above 0");
    }
    let prefix = args.prefix.trim_end_matches('/').to_owned();
    if prefix.is_empty() || prefix.contains(['+', '#']) {
        bail!(
            "--prefix {:?} must be a topic without wildcards",
            args.prefix
        );
    }
    let mut kinds = vec![broker::POSTURE, broker::ALERT, broker::STATUS];
    if args.poses {
        kinds.push(broker::POSE);
    }
    let mut out = match &args.ndjson {
        Some(path) => {
            Some(LineWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };
    let mut ward = Ward::new(&prefix, args.reposition_minutes * 60_000);
    let (client, mut connection) = Client::new(options(&args)?, 100);
    spmkd_core::mqtt::no_delay(&mut connection.eventloop);
    let start = Instant::now();
    let until = args.duration.map(|d| start + Duration::from_secs_f64(d));
    let refresh = Duration::from_secs_f64(args.refresh);
    let mut next_draw = start;
    let tty = std::io::stdout().is_terminal();
    let mut connected = false;
    loop {
        let now = Instant::now();
        if until.is_some_and(|u| now >= u) {
            break;
        }
        if !args.no_table && now >= next_draw {
            draw(&ward, tty, connected);
            next_draw = now + refresh;
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
                for kind in &kinds {
                    client
                        .try_subscribe(format!("{prefix}/+/{kind}"), QoS::AtLeastOnce)
                        .context("subscribing")?;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let applied = ward.apply(&p.topic, &p.payload);
                if let Applied::Invalid(why) = &applied {
                    eprintln!("spmkd-ward: {why}");
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
                if connected {
                    eprintln!("spmkd-ward: lost the broker ({e}); trying again");
                }
                connected = false;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    if !args.no_table {
        draw(&ward, false, connected);
    }
    let _ = client.disconnect();
    Ok(())
}

fn draw(ward: &Ward, tty: bool, connected: bool) {
    let table = ward.table(broker::wall_time_ms());
    if tty {
        // Home and clear: the table stays in place.
        print!("\x1b[H\x1b[2J");
    }
    let link = if connected { "" } else { " (not connected)" };
    println!("{} bed(s){link}\n{table}", ward.beds.len());
}
