//! A real MQTT broker for the tests and the ward benchmark: Debian's mosquitto on a free loopback
//! port, stopped when dropped, restartable with its sessions (persistence on, saved every
//! second, so a subscriber's session and the QoS 1 messages queued for it survive a restart or
//! a crash, as on a production broker);
//! and a subscriber with a persistent session that records what it receives.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, Packet, QoS};
use spmkd_core::mqtt;

/// mosquitto: on `PATH`, else where Debian puts it.
fn mosquitto() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .expect("mosquitto not found: apt-get install mosquitto (scripts/setup does)")
}

/// A free loopback port (free when this returns; nothing else here takes ports).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    /// A broker on a free port, not started yet.
    pub fn new() -> Self {
        Self::on_port(free_port())
    }

    /// A broker on `port`, not started yet.
    pub fn on_port(port: u16) -> Self {
        Self::configured(port, |_| String::new())
    }

    /// A broker on `port` (anonymous, plain) with more listeners: `extra(dir)` gives their
    /// configuration lines (each `listener` line followed by its own settings), `dir` being the
    /// broker's directory, where their files may go.
    pub fn configured(port: u16, extra: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Started as root, mosquitto runs as the user mosquitto: it must be able to write its
        // sessions here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                .expect("the broker's directory is writable");
        }
        let config = format!(
            "per_listener_settings true\nset_tcp_nodelay true\npersistence true\nautosave_interval 1\npersistence_location {}/\nmax_queued_messages 100000\n{}listener {port} 127.0.0.1\nallow_anonymous true\n",
            dir.path().display(),
            extra(dir.path())
        );
        std::fs::File::create(dir.path().join("mosquitto.conf"))
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .expect("the broker's configuration is written");
        Self {
            port,
            dir,
            child: None,
        }
    }

    /// Started and accepting connections.
    pub fn started() -> Self {
        let mut broker = Self::new();
        broker.start();
        broker
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the broker runs already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("the broker's log opens");
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "mosquitto does not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it as a service manager would (SIGTERM: it saves its sessions) and waits.
    pub fn stop(&mut self) {
        self.signal("-TERM");
    }

    /// Kills it (SIGKILL: a crash; the sessions it saved within the last second survive).
    pub fn kill(&mut self) {
        self.signal("-KILL");
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
            let until = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Broker {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as the subscriber got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: String,
    pub retained: bool,
    pub at: Instant,
}

/// A subscriber to `<filter>` with a persistent session (`client_id`, clean session off, QoS
/// 1): what is published for it while it is away waits at the broker. It reconnects by itself.
pub struct Subscriber {
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    client: Client,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects and subscribes, returning once the broker confirmed the subscription.
    pub fn new(port: u16, client_id: &str, filter: &str) -> Self {
        let mut connection = mqtt::Connection::new("127.0.0.1", port, client_id);
        connection.persistent = true;
        connection.keep_alive = Duration::from_secs(5);
        let options = connection
            .options()
            .expect("a plain connection needs no file");
        let (client, mut connection) = Client::new(options, 1000);
        mqtt::no_delay(&mut connection.eventloop);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .expect("the subscription is queued");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (subscribed, confirmed) = std::sync::mpsc::channel();
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                for event in connection.iter() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match event {
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = subscribed.send(());
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            received.lock().unwrap().push(Received {
                                topic: p.topic.clone(),
                                payload: String::from_utf8_lossy(&p.payload).into_owned(),
                                retained: p.retain,
                                at: Instant::now(),
                            });
                        }
                        Ok(_) => {}
                        // The broker is away: try again shortly (the session is kept there).
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
        };
        confirmed
            .recv_timeout(Duration::from_secs(10))
            .expect("the broker confirms the subscription");
        Self {
            received,
            stop,
            client,
            thread: Some(thread),
        }
    }

    /// What arrived so far.
    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what arrived, at most `timeout`; returns what arrived.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let until = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if done(&messages) || Instant::now() >= until {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.disconnect();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A loopback TCP relay to a broker that holds the broker's first answer on each connection
/// for a while: a broker slow to accept (far away, busy, a long TLS handshake). Stops relaying
/// new connections when dropped.
pub struct SlowLink {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl SlowLink {
    /// Relays connections on a free port to `broker_port`, the broker's first bytes (its
    /// CONNACK) held for `delay`.
    pub fn to(broker_port: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        let port = listener.local_addr().expect("its address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Ok(broker) = TcpStream::connect(("127.0.0.1", broker_port)) {
                            relay(client, broker, delay);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies both ways until either side closes; the broker's first read waits `delay`.
fn relay(client: TcpStream, broker: TcpStream, delay: Duration) {
    use std::io::{Read, copy};
    let _ = client.set_nonblocking(false);
    let (Ok(mut client_in), Ok(mut broker_out)) = (client.try_clone(), broker.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = copy(&mut client_in, &mut broker_out);
        let _ = broker_out.shutdown(std::net::Shutdown::Both);
    });
    std::thread::spawn(move || {
        let (mut broker_in, mut client_out) = (broker, client);
        let mut first = [0u8; 4096];
        if let Ok(n @ 1..) = broker_in.read(&mut first) {
            std::thread::sleep(delay);
            if client_out.write_all(&first[..n]).is_ok() {
                let _ = copy(&mut broker_in, &mut client_out);
            }
        }
        let _ = client_out.shutdown(std::net::Shutdown::Both);
    });
}
