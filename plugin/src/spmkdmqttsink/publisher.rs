//! The MQTT side of a sink: one task per sink on a runtime shared by all of them (hundreds of
//! beds, one thread), one broker connection per sink (its last will is the bed's `offline`).
//! GStreamer-free: the element hands it postures and alerts through the [`Journal`] and the
//! latest pose through a slot, and learns what happened through [`Report`]s.
//!
//! Delivery: the journal is the only record of what is owed. Each connection starts sending at
//! the oldest entry not acknowledged and keeps at most [`WINDOW`] in flight; a PUBACK
//! acknowledges its entry in the journal. A lost connection is dropped whole (with the client
//! library's own retry state) and the next one sends again from the journal, so an entry is
//! delivered at least once and in order; the consumer drops duplicates by `seq`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, watch};

use super::journal::Journal;

/// Postures and alerts in flight on one connection at most.
pub const WINDOW: usize = 32;
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// One runtime for every sink of the process: the network work of a bed is a few messages an
/// hour and a pose a second, far from a thread's worth.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: LazyLock<Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("spmkd-mqtt")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    RUNTIME.as_ref().map_err(Clone::clone)
}

/// The status payload for a state (`online`, `offline`) and the queue as it is now.
pub type StatusPayload = Box<dyn Fn(&str, &Journal) -> String + Send + Sync>;

/// What the sink and its task share.
pub struct Shared {
    pub journal: Mutex<Journal>,
    /// The latest pose (topic, payload) not yet sent: a newer one replaces it.
    pub pose: Mutex<Option<(String, String)>>,
    /// Wakes the task: something was queued.
    pub wake: Notify,
    pub connected: AtomicBool,
    /// Postures and alerts acknowledged by the broker, poses sent.
    pub acknowledged: AtomicU64,
    pub poses_sent: AtomicU64,
    /// The retained status topic, and its payload for a state (`online`, `offline`) now.
    pub status_topic: String,
    pub status: StatusPayload,
}

impl Shared {
    pub fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the task tells the element.
#[derive(Debug)]
pub enum Report {
    Connected,
    /// The connection failed or was lost (the reason), and is tried again.
    Disconnected(String),
}

/// A running publisher; [`Publisher::stop`] ends it.
pub struct Publisher {
    stop: watch::Sender<bool>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Publisher {
    pub fn spawn(
        shared: Arc<Shared>,
        options: MqttOptions,
        report: impl Fn(Report) + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let (stop, stopped) = watch::channel(false);
        let (finished, done) = std::sync::mpsc::channel();
        runtime()?.spawn(async move {
            run(shared, options, stopped, report).await;
            let _ = finished.send(());
        });
        Ok(Self { stop, done })
    }

    /// Says `offline` (when connected), disconnects and waits for the task, at most `wait`.
    /// What was not acknowledged stays in the journal for the next start.
    pub fn stop(self, wait: Duration) -> bool {
        let _ = self.stop.send(true);
        self.done.recv_timeout(wait).is_ok()
    }
}

/// A publish handed to the client whose packet id is not known yet.
enum Sent {
    /// A journal entry (QoS 1), by `seq`.
    Entry(u64),
    /// A pose (QoS 0) or the `online` status.
    Other,
    /// The `offline` status of a stop.
    Offline,
}

/// Publishes what is due on `client`: journal entries from `next` while fewer than [`WINDOW`]
/// are in flight, then the latest pose.
fn send_due(
    shared: &Shared,
    client: &AsyncClient,
    next: &mut u64,
    awaiting: &mut VecDeque<Sent>,
    in_flight: usize,
) {
    let mut pending = awaiting
        .iter()
        .filter(|s| matches!(s, Sent::Entry(_)))
        .count()
        + in_flight;
    while pending < WINDOW {
        let Some(entry) = shared.journal().next_from(*next).cloned() else {
            break;
        };
        // A full request channel: the rest goes when acknowledgements make room.
        if client
            .try_publish(entry.topic, QoS::AtLeastOnce, entry.retain, entry.payload)
            .is_err()
        {
            break;
        }
        awaiting.push_back(Sent::Entry(entry.seq));
        *next = entry.seq + 1;
        pending += 1;
    }
    let pose = shared
        .pose
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some((topic, payload)) = pose
        && client
            .try_publish(topic, QoS::AtMostOnce, false, payload)
            .is_ok()
    {
        awaiting.push_back(Sent::Other);
        shared.poses_sent.fetch_add(1, Ordering::Relaxed);
    }
}

async fn run(
    shared: Arc<Shared>,
    options: MqttOptions,
    mut stop: watch::Receiver<bool>,
    report: impl Fn(Report),
) {
    let mut backoff = FIRST_BACKOFF;
    // Said once per outage, not at every attempt.
    let mut reported_down = false;
    loop {
        let (client, mut eventloop) = AsyncClient::new(options.clone(), 2 * WINDOW + 8);
        spmkd_core::mqtt::no_delay(&mut eventloop);
        let mut next = 0;
        let mut awaiting: VecDeque<Sent> = VecDeque::new();
        let mut in_flight: HashMap<u16, u64> = HashMap::new();
        let mut connected = false;
        let lost = loop {
            if connected {
                send_due(&shared, &client, &mut next, &mut awaiting, in_flight.len());
            }
            // The poll is never given up for a wake: cancelled while connecting, it drops the
            // half-made connection and the next poll makes another, which the broker takes for
            // the bed going away (its last will, `offline`, to every consumer). A wake sends
            // what is due into the client's channel while the same poll goes on.
            let event = {
                let poll = eventloop.poll();
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        event = &mut poll => break Some(event),
                        _ = stop.changed() => break None,
                        _ = shared.wake.notified(), if connected => {
                            send_due(&shared, &client, &mut next, &mut awaiting, in_flight.len());
                        }
                    }
                }
            };
            let Some(event) = event else {
                if connected {
                    say_offline(&shared, &client, &mut eventloop, awaiting).await;
                }
                shared.connected.store(false, Ordering::Relaxed);
                return;
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    reported_down = false;
                    backoff = FIRST_BACKOFF;
                    shared.connected.store(true, Ordering::Relaxed);
                    let online = (shared.status)("online", &shared.journal());
                    if client
                        .try_publish(shared.status_topic.clone(), QoS::AtLeastOnce, true, online)
                        .is_ok()
                    {
                        awaiting.push_back(Sent::Other);
                    }
                    report(Report::Connected);
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(Sent::Entry(seq)) = awaiting.pop_front() {
                        in_flight.insert(pkid, seq);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(seq) = in_flight.remove(&ack.pkid) {
                        shared.acknowledged.fetch_add(1, Ordering::Relaxed);
                        shared.journal().ack(seq);
                    }
                }
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        shared.connected.store(false, Ordering::Relaxed);
        if !reported_down {
            reported_down = true;
            report(Report::Disconnected(lost));
        }
        drop(client);
        drop(eventloop);
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Publishes the `offline` status (the last will is only for a connection that dies) and
/// disconnects once the broker has it, giving it at most a second.
async fn say_offline(
    shared: &Shared,
    client: &AsyncClient,
    eventloop: &mut rumqttc::EventLoop,
    mut awaiting: VecDeque<Sent>,
) {
    let offline = (shared.status)("offline", &shared.journal());
    if client
        .try_publish(shared.status_topic.clone(), QoS::AtLeastOnce, true, offline)
        .is_err()
    {
        return;
    }
    awaiting.push_back(Sent::Offline);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut offline_pkid = None;
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(Sent::Offline) = awaiting.pop_front() {
                        offline_pkid = Some(pkid);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) if Some(ack.pkid) == offline_pkid => {
                    if client.try_disconnect().is_err() {
                        break;
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}
