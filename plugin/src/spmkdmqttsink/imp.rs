//! `spmkdmqttsink` implementation: a BaseSink. Buffers give the pose (rate-limited into a slot
//! the publisher sends from); the spmkd events that `spmkdposture` and `spmkdmonitor` send
//! downstream ([`crate::announce`]) go into the bed's on-disk [`Journal`] and from there to the
//! broker ([`Publisher`]). Nothing here waits for the network.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use spmkd_core::broker::{self, EventMessage, PoseMessage, StatusMessage};
use spmkd_core::mqtt;

use super::journal::{Journal, queue_name};
use super::publisher::{Publisher, Report, Shared};
use crate::posemeta::PoseMeta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spmkdmqttsink",
        gst::DebugColorFlags::empty(),
        Some("Postures and alerts to an MQTT broker"),
    )
});

/// Element message on each connection change: `state` (`connected`, `disconnected`), `reason`.
pub const CONNECTION_MESSAGE: &str = "spmkd-mqtt";
/// Element message when the queue's bound dropped an entry: `dropped` (in all), `queued`.
pub const DROPPED_MESSAGE: &str = "spmkd-mqtt-dropped";

const DEFAULT_PORT: u32 = 1883;
const DEFAULT_PREFIX: &str = "spmkd";
const DEFAULT_KEEP_ALIVE: u32 = 30;
const DEFAULT_POSE_INTERVAL: u64 = 1_000_000_000;
const DEFAULT_QUEUE_LIMIT: u32 = 10_000;
const DEFAULT_EOS_WAIT: u64 = 5_000_000_000;
/// How long stop gives the publisher to say `offline` and disconnect.
const STOP_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Settings {
    host: String,
    port: u32,
    bed: Option<String>,
    prefix: String,
    client_id: Option<String>,
    username: Option<String>,
    /// Never logged, never readable as a property.
    password: Option<String>,
    password_file: Option<PathBuf>,
    tls: bool,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    keep_alive: u32,
    pose_interval: u64,
    queue_dir: Option<PathBuf>,
    queue_limit: u32,
    eos_wait: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            bed: None,
            prefix: DEFAULT_PREFIX.into(),
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            cert_file: None,
            key_file: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            pose_interval: DEFAULT_POSE_INTERVAL,
            queue_dir: None,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            eos_wait: DEFAULT_EOS_WAIT,
        }
    }
}

/// Where queues go when `queue-dir` is unset: `$XDG_STATE_HOME/spmkd/mqtt`, else
/// `~/.local/state/spmkd/mqtt`, else the temporary directory.
fn default_queue_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")));
    match state {
        Some(dir) => dir.join("spmkd/mqtt"),
        None => std::env::temp_dir().join("spmkd-mqtt"),
    }
}

/// Made in start, dropped in stop.
struct State {
    shared: Arc<Shared>,
    publisher: Option<Publisher>,
    bed: String,
    prefix: String,
    pose_topic: String,
    /// Running time of the last pose handed to the publisher.
    last_pose_ns: Option<u64>,
    warned_unposed: bool,
    /// The queue's epoch, in every event.
    epoch: u64,
    /// Said that the disk refuses the queue (said again after it took it once more).
    warned_not_on_disk: bool,
}

#[derive(Default)]
pub struct SpmkdMqttSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

impl SpmkdMqttSink {
    fn state(&self) -> MutexGuard<'_, Option<State>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection `settings` ask for; the password from `password-file`, else the
    /// `password` property, else `$SPMKD_MQTT_PASSWORD`.
    fn connection(
        settings: &Settings,
        client_id: &str,
        status_topic: &str,
        offline: &str,
    ) -> Result<mqtt::Connection, gst::ErrorMessage> {
        let settings_error =
            |e: &dyn std::fmt::Display| gst::error_msg!(gst::LibraryError::Settings, ("{}", e));
        let port = u16::try_from(settings.port)
            .map_err(|_| settings_error(&format!("port {} is not a TCP port", settings.port)))?;
        let mut c = mqtt::Connection::new(&settings.host, port, client_id);
        c.keep_alive = Duration::from_secs(u64::from(settings.keep_alive.max(5)));
        c.last_will = Some((status_topic.to_owned(), offline.to_owned()));
        c.credentials = settings.username.as_ref().map(|user| {
            let password = match (&settings.password_file, &settings.password) {
                (Some(file), _) => mqtt::Password::File(file.clone()),
                (None, Some(given)) => mqtt::Password::Given(given.clone()),
                (None, None) => mqtt::Password::Environment,
            };
            (user.clone(), password)
        });
        if settings.tls {
            c.tls = Some(
                mqtt::Tls::new(
                    settings.ca_file.clone(),
                    settings.cert_file.clone(),
                    settings.key_file.clone(),
                )
                .map_err(|e| settings_error(&e))?,
            );
        } else if settings.cert_file.is_some() || settings.key_file.is_some() {
            return Err(settings_error(&"cert-file and key-file need tls=true"));
        }
        Ok(c)
    }

    fn report(element: &super::SpmkdMqttSink, endpoint: &str, report: Report) {
        let imp = element.imp();
        let (state, reason) = match report {
            Report::Connected => {
                gst::info!(CAT, imp = imp, "connected to {endpoint}");
                ("connected", String::new())
            }
            Report::Disconnected(reason) => {
                gst::warning!(
                    CAT,
                    imp = imp,
                    "no connection to {endpoint} ({reason}); queueing postures and alerts, trying again"
                );
                ("disconnected", reason)
            }
        };
        let s = gst::Structure::builder(CONNECTION_MESSAGE)
            .field("state", state)
            .field("reason", reason)
            .build();
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    }

    /// A spmkd event from upstream into the journal.
    fn queue_event(&self, s: &gst::StructureRef) {
        let mut guard = self.state();
        let Some(state) = guard.as_mut() else {
            return;
        };
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let mut message = EventMessage::new(&state.bed, 0, s.name());
        for (name, value) in s.iter() {
            if name == "running-time" {
                let rt = value.get::<u64>().ok();
                message.running_time_ns = rt;
                message.pts_ns = rt.zip(segment).and_then(|(rt, seg)| {
                    seg.position_from_running_time(gst::ClockTime::from_nseconds(rt))
                        .map(gst::ClockTime::nseconds)
                });
                continue;
            }
            let key = name.replace('-', "_");
            let json = if let Ok(ns) = value.get::<u64>() {
                // Every u64 of an spmkd event is a time (GstClockTime).
                message.fields.insert(format!("{key}_ns"), ns.into());
                continue;
            } else if let Ok(v) = value.get::<String>() {
                v.into()
            } else if let Ok(v) = value.get::<bool>() {
                v.into()
            } else if let Ok(v) = value.get::<f64>() {
                v.into()
            } else if let Ok(v) = value.get::<f32>() {
                f64::from(v).into()
            } else if let Ok(v) = value.get::<u32>() {
                v.into()
            } else if let Ok(v) = value.get::<i32>() {
                v.into()
            } else {
                gst::debug!(CAT, imp = self, "{} of {} left out", name, s.name());
                continue;
            };
            message.fields.insert(key, json);
        }
        let kind = message.kind();
        let topic = broker::topic(&state.prefix, &state.bed, kind);
        let epoch = state.epoch;
        let pushed = state.shared.journal().push(|seq| {
            message.seq = seq;
            message.epoch = Some(epoch);
            let payload = serde_json::to_string(&message).expect("an event always serializes");
            (topic, kind == broker::POSTURE, payload)
        });
        gst::debug!(CAT, imp = self, "{} queued as {}", s.name(), pushed.seq);
        if pushed.dropped {
            let (dropped, queued) = {
                let journal = state.shared.journal();
                (journal.dropped(), journal.len() as u64)
            };
            gst::warning!(
                CAT,
                imp = self,
                "the queue is full: dropped its oldest entry ({dropped} in all)"
            );
            let s = gst::Structure::builder(DROPPED_MESSAGE)
                .field("dropped", dropped)
                .field("queued", queued)
                .build();
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        // Once per stretch of a disk that refuses the queue: the events are kept in memory.
        match (pushed.on_disk, state.warned_not_on_disk) {
            (false, false) => {
                state.warned_not_on_disk = true;
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::NoSpaceLeft,
                    ("the queue cannot be written to disk (full?): postures and alerts are kept in memory (at most queue-limit, what the bound drops is counted) and written out when the disk takes them")
                );
            }
            (true, true) => {
                state.warned_not_on_disk = false;
                gst::info!(CAT, imp = self, "the queue is on disk again");
            }
            _ => {}
        }
        state.shared.wake.notify_one();
    }

    /// At EOS: waits, at most `eos-wait`, while connected, for the broker to acknowledge what
    /// is queued (so a file processed to EOS is delivered before the pipeline stops).
    fn drain(&self) {
        let wait = Duration::from_nanos(
            self.settings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .eos_wait,
        );
        let Some(shared) = self.state().as_ref().map(|s| s.shared.clone()) else {
            return;
        };
        let until = Instant::now() + wait;
        while Instant::now() < until
            && shared.connected.load(Ordering::Relaxed)
            && !shared.journal().is_empty()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = shared.journal().len();
        if left > 0 {
            gst::info!(
                CAT,
                imp = self,
                "EOS with {left} postures and alerts not acknowledged: kept in the queue"
            );
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpmkdMqttSink {
    const NAME: &'static str = "GstSpmkdMqttSink";
    type Type = super::SpmkdMqttSink;
    type ParentType = gst_base::BaseSink;
}

fn string(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .filter(|s| !s.is_empty())
}

impl ObjectImpl for SpmkdMqttSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let text = |name: &str, nick: &str, blurb: &str| {
                glib::ParamSpecString::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .mutable_ready()
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("host")
                    .nick("Broker host")
                    .blurb("Host name or address of the MQTT broker")
                    .default_value(Some("localhost"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("port")
                    .nick("Broker port")
                    .blurb("TCP port of the broker (8883 is usual with tls=true)")
                    .minimum(1)
                    .maximum(65535)
                    .default_value(DEFAULT_PORT)
                    .mutable_ready()
                    .build(),
                text("bed", "Bed", "The bed's name in the topics <topic-prefix>/<bed>/...; no '/', '+' or '#' (unset: the element's name)"),
                glib::ParamSpecString::builder("topic-prefix")
                    .nick("Topic prefix")
                    .blurb("Topics are <topic-prefix>/<bed>/pose, /posture, /alert, /status")
                    .default_value(Some(DEFAULT_PREFIX))
                    .mutable_ready()
                    .build(),
                text("client-id", "Client id", "MQTT client id, unique per broker (unset: spmkd-<topic-prefix>-<bed>); also names the queue's files"),
                text("username", "User name", "User name for the broker (unset: none)"),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("Password for the broker, with username (write-only, never logged by this element). Not on a launch line: GStreamer logs the line and the process table shows it; use password-file or $SPMKD_MQTT_PASSWORD there")
                    .write_only()
                    .mutable_ready()
                    .build(),
                text("password-file", "Password file", "File whose first line is the broker's password, with username (preferred over password; neither set: $SPMKD_MQTT_PASSWORD)"),
                glib::ParamSpecBoolean::builder("tls")
                    .nick("TLS")
                    .blurb("Connect over TLS (rustls), checking the broker against ca-file")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                text("ca-file", "CA file", "PEM certificate(s) of the CA the broker's certificate must chain to (tls=true)"),
                text("cert-file", "Client certificate", "PEM client certificate, for brokers that authenticate clients by certificate (with key-file)"),
                text("key-file", "Client key", "PEM private key of cert-file"),
                glib::ParamSpecUInt::builder("keep-alive")
                    .nick("Keep-alive")
                    .blurb("MQTT keep-alive, seconds (at least 5): how soon a dead link is noticed, and the broker publishes the last will")
                    .minimum(5)
                    .maximum(65535)
                    .default_value(DEFAULT_KEEP_ALIVE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("pose-interval")
                    .nick("Pose interval")
                    .blurb("At most one pose message per this much running time, ns (0: every frame). Poses are QoS 0 and not queued while the broker is away; postures and alerts always are")
                    .default_value(DEFAULT_POSE_INTERVAL)
                    .mutable_playing()
                    .build(),
                text("queue-dir", "Queue directory", "Where postures and alerts wait for the broker, on disk (unset: $XDG_STATE_HOME/spmkd/mqtt, else ~/.local/state/spmkd/mqtt); what was not delivered when the pipeline stopped is delivered by the next start. One sink at a time per client id (locked across processes)"),
                glib::ParamSpecUInt::builder("queue-limit")
                    .nick("Queue limit")
                    .blurb("Postures and alerts the queue holds at most; beyond, the oldest is dropped, counted in dropped, in the status and in a spmkd-mqtt-dropped message")
                    .minimum(1)
                    .default_value(DEFAULT_QUEUE_LIMIT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("eos-wait")
                    .nick("EOS wait")
                    .blurb("At EOS, wait at most this long (ns) for the broker to acknowledge what is queued, while connected")
                    .default_value(DEFAULT_EOS_WAIT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("connected")
                    .nick("Connected")
                    .blurb("Whether the broker connection is up")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("queued")
                    .nick("Queued")
                    .blurb("Postures and alerts waiting for the broker")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("dropped")
                    .nick("Dropped")
                    .blurb("Postures and alerts the queue's bound dropped (kept across restarts with the queue)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("acknowledged")
                    .nick("Acknowledged")
                    .blurb("Postures and alerts the broker acknowledged since start")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let path = |v: &glib::Value| string(v).map(PathBuf::from);
        match pspec.name() {
            "host" => s.host = string(value).unwrap_or_else(|| "localhost".into()),
            "port" => s.port = value.get().expect("type checked upstream"),
            "bed" => s.bed = string(value),
            "topic-prefix" => s.prefix = string(value).unwrap_or_else(|| DEFAULT_PREFIX.into()),
            "client-id" => s.client_id = string(value),
            "username" => s.username = string(value),
            "password" => s.password = string(value),
            "password-file" => s.password_file = path(value),
            "tls" => s.tls = value.get().expect("type checked upstream"),
            "ca-file" => s.ca_file = path(value),
            "cert-file" => s.cert_file = path(value),
            "key-file" => s.key_file = path(value),
            "keep-alive" => s.keep_alive = value.get().expect("type checked upstream"),
            "pose-interval" => s.pose_interval = value.get().expect("type checked upstream"),
            "queue-dir" => s.queue_dir = path(value),
            "queue-limit" => s.queue_limit = value.get().expect("type checked upstream"),
            "eos-wait" => s.eos_wait = value.get().expect("type checked upstream"),
            other => unreachable!("no property {other}"),
        }
        // The name only: a password never reaches the log.
        gst::debug!(CAT, imp = self, "{} set", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let state = self.state();
        let shared = state.as_ref().map(|s| &s.shared);
        match pspec.name() {
            "host" => s.host.to_value(),
            "port" => s.port.to_value(),
            "bed" => s.bed.to_value(),
            "topic-prefix" => s.prefix.to_value(),
            "client-id" => s.client_id.to_value(),
            "username" => s.username.to_value(),
            "password-file" => path(&s.password_file).to_value(),
            "tls" => s.tls.to_value(),
            "ca-file" => path(&s.ca_file).to_value(),
            "cert-file" => path(&s.cert_file).to_value(),
            "key-file" => path(&s.key_file).to_value(),
            "keep-alive" => s.keep_alive.to_value(),
            "pose-interval" => s.pose_interval.to_value(),
            "queue-dir" => path(&s.queue_dir).to_value(),
            "queue-limit" => s.queue_limit.to_value(),
            "eos-wait" => s.eos_wait.to_value(),
            "connected" => shared
                .is_some_and(|s| s.connected.load(Ordering::Relaxed))
                .to_value(),
            "queued" => shared.map_or(0, |s| s.journal().len() as u64).to_value(),
            "dropped" => shared.map_or(0, |s| s.journal().dropped()).to_value(),
            "acknowledged" => shared
                .map_or(0, |s| s.acknowledged.load(Ordering::Relaxed))
                .to_value(),
            other => unreachable!("no property {other}"),
        }
    }
}

impl GstObjectImpl for SpmkdMqttSink {}

impl ElementImpl for SpmkdMqttSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Pressure-mat events to MQTT",
                "Sink/Network",
                "Publishes a bed's pose (rate-limited, QoS 0) and every posture change (QoS 1, \
                 retained) and alert (QoS 1) that spmkdposture and spmkdmonitor upstream send, to \
                 <topic-prefix>/<bed>/pose, /posture, /alert, with its status (online, offline \
                 as last will) on /status. Postures and alerts wait in a bounded queue on disk \
                 while the broker is away and are delivered in order, at least once, each with a \
                 per-bed seq; the pipeline never waits for the network. Posts spmkd-mqtt \
                 (state, reason) on connection changes and spmkd-mqtt-dropped (dropped, queued) \
                 when the queue's bound drops an entry",
                "spmkd developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // Any video: only the meta is read.
            let caps = gst::Caps::builder("video/x-raw").build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("sink template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for SpmkdMqttSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let bed = settings
            .bed
            .clone()
            .unwrap_or_else(|| self.obj().name().to_string());
        if !broker::valid_bed(&bed) {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "bed {:?} cannot be part of a topic (empty, or with '/', '+' or '#')",
                    bed
                )
            ));
        }
        let Some(prefix) = broker::topic_prefix(&settings.prefix).map(str::to_owned) else {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                (
                    "topic-prefix {:?} must be a topic without wildcards",
                    settings.prefix
                )
            ));
        };
        let client_id = settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("spmkd-{}-{bed}", prefix.replace('/', "_")));
        let queue_dir = settings.queue_dir.clone().unwrap_or_else(default_queue_dir);
        let queue_name = queue_name(&client_id);
        let journal = Journal::open(&queue_dir, &queue_name, settings.queue_limit as usize)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", e)))?;
        let recovery = &journal.recovery;
        if recovery.unreadable > 0 {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                (
                    "{} unreadable line(s) in the queue in {} (a write cut short?) left out",
                    recovery.unreadable,
                    queue_dir.display()
                )
            );
        }
        if recovery.state_lost {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                (
                    "the queue's state in {} was lost or torn: rebuilt from its log ({} waiting); a new epoch {} begins, so consumers tell its events from earlier ones",
                    queue_dir.display(),
                    journal.len(),
                    journal.epoch()
                )
            );
        }
        if !journal.on_disk() {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::NoSpaceLeft,
                (
                    "the queue in {} cannot be written (full disk?): starting with it in memory",
                    queue_dir.display()
                )
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "bed {bed} to {}:{} as {client_id}, {} waiting in the queue in {} (epoch {}{})",
            settings.host,
            settings.port,
            journal.len(),
            queue_dir.display(),
            journal.epoch(),
            if journal.recovery.new_queue {
                ", new"
            } else {
                ""
            }
        );
        let status_topic = broker::topic(&prefix, &bed, broker::STATUS);
        let status_bed = bed.clone();
        let status = move |state: &str, journal: &Journal| {
            serde_json::to_string(&StatusMessage {
                bed: status_bed.clone(),
                state: state.into(),
                wall_time_ms: broker::wall_time_ms(),
                queued: journal.len() as u64,
                dropped: journal.dropped(),
                epoch: Some(journal.epoch()),
            })
            .expect("a status always serializes")
        };
        // The last will is fixed when the connection is made: its time is this start's.
        let epoch = journal.epoch();
        let will = status("offline", &journal);
        if settings.password.is_some() && settings.password_file.is_none() {
            // Said once a start, on the bus: where a launch line is, the password was in it.
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                (
                    "password is set as a property: on a launch line it reaches GStreamer's log \
                     and the process table; use password-file or ${}",
                    mqtt::PASSWORD_ENV
                )
            );
        }
        let options = Self::connection(&settings, &client_id, &status_topic, &will)?
            .options()
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)))?;
        let shared = Arc::new(Shared {
            journal: Mutex::new(journal),
            pose: Mutex::new(None),
            wake: Default::default(),
            connected: Default::default(),
            acknowledged: Default::default(),
            poses_sent: Default::default(),
            status_topic,
            status: Box::new(status),
        });
        let element = self.obj().downgrade();
        let endpoint = format!("{}:{}", settings.host, settings.port);
        let publisher = Publisher::spawn(shared.clone(), options, move |report| {
            if let Some(element) = element.upgrade() {
                Self::report(&element, &endpoint, report);
            }
        })
        .map_err(|e| {
            gst::error_msg!(
                gst::CoreError::Thread,
                ("cannot start the MQTT runtime: {}", e)
            )
        })?;
        *self.state() = Some(State {
            shared,
            publisher: Some(publisher),
            pose_topic: broker::topic(&prefix, &bed, broker::POSE),
            bed,
            prefix,
            last_pose_ns: None,
            warned_unposed: false,
            epoch,
            warned_not_on_disk: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = self.state().take();
        if let Some(mut state) = state
            && let Some(publisher) = state.publisher.take()
            && !publisher.stop(STOP_WAIT)
        {
            gst::warning!(CAT, imp = self, "the publisher did not stop in time");
        }
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn event(&self, event: gst::Event) -> bool {
        if let Some(s) = crate::announce::is_spmkd_event(&event) {
            self.queue_event(s);
        } else if event.type_() == gst::EventType::Eos {
            self.drain();
        }
        self.parent_event(event)
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let interval = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pose_interval;
        let segment = self.obj().segment();
        let running_time = crate::running_time::of(&segment, buffer);
        let mut guard = self.state();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let due = match (state.last_pose_ns, running_time) {
            (Some(last), Some(now)) => now < last || now - last >= interval,
            _ => true,
        };
        if !due {
            return Ok(gst::FlowSuccess::Ok);
        }
        let mut record = match PoseMeta::read(buffer) {
            Ok(Some(r)) => r,
            Ok(None) => {
                if !state.warned_unposed {
                    state.warned_unposed = true;
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("a buffer without SpmkdPoseMeta (is spmkdpose upstream?): no pose published for it")
                    );
                }
                return Ok(gst::FlowSuccess::Ok);
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        record.features.clear();
        record.running_time_ns = running_time;
        let message = PoseMessage {
            bed: state.bed.clone(),
            wall_time_ms: broker::wall_time_ms(),
            record,
        };
        let payload = serde_json::to_string(&message).expect("a pose always serializes");
        state.last_pose_ns = running_time;
        *state.shared.pose.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((state.pose_topic.clone(), payload));
        state.shared.wake.notify_one();
        Ok(gst::FlowSuccess::Ok)
    }
}
