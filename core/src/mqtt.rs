//! How every spmkd MQTT connection is made (feature `mqtt`): `spmkdmqttsink`, `spmkd-ward`, the
//! tests' subscriber and the ward benchmark build their client options from one [`Connection`],
//! so credentials, TLS, the packet bound and the timings cannot drift between them. The topics
//! and payloads are in [`crate::broker`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::{EventLoop, LastWill, MqttOptions, TlsConfiguration, Transport};

/// Where a password comes from when no file is named: the environment, never the command line
/// (a launch line reaches GStreamer's log and `/proc/<pid>/cmdline`).
pub const PASSWORD_ENV: &str = "SPMKD_MQTT_PASSWORD";

/// The largest packet a connection takes in: MQTT's own bound (a remaining length of
/// 268,435,455 bytes). Any lower bound in the client would be a way to break the session: the
/// client library drops the connection on a packet above its bound, and a retained or queued
/// message above it comes back at every reconnect, forever. A message too large to be spmkd's
/// is refused after it arrived ([`crate::broker::MAX_PAYLOAD`]); the broker's own
/// `max_packet_size` is what bounds the memory a client on it can make this take.
pub const MAX_INCOMING: usize = 268_435_455;

/// Why a connection cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the password file {} is not UTF-8", .0.display())]
    PasswordNotUtf8(PathBuf),
    #[error("a client certificate and its key go together: {0} given without {1}")]
    HalfPair(&'static str, &'static str),
    #[error("TLS needs the broker's CA certificate (PEM)")]
    NoCa,
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, MqttError> {
    std::fs::read(path).map_err(|source| MqttError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A password file's text: its first line's end (`\n`, `\r\n`) is not part of the password, as
/// `echo secret > file` writes it.
pub fn read_password_file(path: &Path) -> Result<String, MqttError> {
    let text = String::from_utf8(read(path, "password file")?)
        .map_err(|_| MqttError::PasswordNotUtf8(path.to_path_buf()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Where a user's password is: a file (preferred), [`PASSWORD_ENV`], or given in the program
/// (a GStreamer property; see `spmkdmqttsink password`).
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    File(PathBuf),
    Environment,
    Given(String),
}

impl std::fmt::Debug for Password {
    // Never the password itself, whatever prints a connection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Password::File(p) => write!(f, "File({})", p.display()),
            Password::Environment => write!(f, "Environment({PASSWORD_ENV})"),
            Password::Given(_) => write!(f, "Given(..)"),
        }
    }
}

impl Password {
    /// The password's text (empty when [`PASSWORD_ENV`] is unset).
    pub fn read(&self) -> Result<String, MqttError> {
        match self {
            Password::File(path) => read_password_file(path),
            Password::Environment => Ok(std::env::var(PASSWORD_ENV).unwrap_or_default()),
            Password::Given(p) => Ok(p.clone()),
        }
    }
}

/// TLS: the broker checked against a CA, and a client certificate for brokers that
/// authenticate clients by certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca_file: PathBuf,
    /// Certificate and key (PEM).
    pub client: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// From the options as given: a CA is needed, and a certificate without its key (or the
    /// reverse) is refused rather than ignored.
    pub fn new(
        ca_file: Option<PathBuf>,
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
    ) -> Result<Self, MqttError> {
        let client = match (cert_file, key_file) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => return Err(MqttError::HalfPair("a certificate", "its key")),
            (None, Some(_)) => return Err(MqttError::HalfPair("a key", "its certificate")),
        };
        Ok(Self {
            ca_file: ca_file.ok_or(MqttError::NoCa)?,
            client,
        })
    }
}

/// Everything one connection to the broker is made of.
#[derive(Debug, Clone)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keep_alive: Duration,
    /// A session the broker keeps while the client is away (clean session off).
    pub persistent: bool,
    /// User name and where its password is.
    pub credentials: Option<(String, Password)>,
    pub tls: Option<Tls>,
    /// `(topic, payload)` the broker publishes, retained, QoS 1, when the connection dies.
    pub last_will: Option<(String, String)>,
}

impl Connection {
    /// A plain connection: no credentials, no TLS, no last will, a clean session, a 30 s
    /// keep-alive.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: client_id.into(),
            keep_alive: Duration::from_secs(30),
            persistent: false,
            credentials: None,
            tls: None,
            last_will: None,
        }
    }

    /// The client library's options, the files named read now (a missing file is an error
    /// here, not a connection that fails later without saying why).
    pub fn options(&self) -> Result<MqttOptions, MqttError> {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_keep_alive(self.keep_alive)
            .set_clean_session(!self.persistent)
            .set_max_packet_size(MAX_INCOMING, crate::broker::MAX_PAYLOAD + 1024);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user, password.read()?);
        }
        if let Some((topic, payload)) = &self.last_will {
            options.set_last_will(LastWill::new(
                topic,
                payload.as_bytes().to_vec(),
                rumqttc::QoS::AtLeastOnce,
                true,
            ));
        }
        if let Some(tls) = &self.tls {
            let ca = read(&tls.ca_file, "CA certificate")?;
            let client_auth = match &tls.client {
                Some((cert, key)) => {
                    Some((read(cert, "client certificate")?, read(key, "client key")?))
                }
                None => None,
            };
            // Once per process; an error only says a provider is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            }));
        }
        Ok(options)
    }
}

/// No Nagle on the connection: messages are small and each should leave at once (with the
/// peer's delayed ACK, Nagle held a message up to 40 ms; docs/BENCHMARKS.md).
pub fn no_delay(eventloop: &mut EventLoop) {
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_certificate_pair_is_refused_either_way() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert!(matches!(
            Tls::new(p("ca"), p("cert"), None),
            Err(MqttError::HalfPair(..))
        ));
        assert!(matches!(
            Tls::new(p("ca"), None, p("key")),
            Err(MqttError::HalfPair(..))
        ));
        assert!(matches!(Tls::new(None, None, None), Err(MqttError::NoCa)));
        assert_eq!(
            Tls::new(p("ca"), p("c"), p("k")).unwrap().client,
            Some(("c".into(), "k".into()))
        );
    }

    #[test]
    fn a_password_file_loses_its_line_end_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, " s3cret \r\n").unwrap();
        assert_eq!(Password::File(path.clone()).read().unwrap(), " s3cret ");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            Password::File(path).read(),
            Err(MqttError::PasswordNotUtf8(_))
        ));
        let missing = Password::File(dir.path().join("none")).read().unwrap_err();
        assert!(missing.to_string().contains("password file"), "{missing}");
    }

    #[test]
    fn no_password_is_printed() {
        let given = format!("{:?}", Password::Given("hunter2".into()));
        assert!(!given.contains("hunter2"), "{given}");
        let mut c = Connection::new("h", 1, "id");
        c.credentials = Some(("u".into(), Password::Given("hunter2".into())));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn a_missing_file_is_said_when_the_options_are_made() {
        let mut c = Connection::new("h", 1, "id");
        c.tls = Some(Tls::new(Some("/nonexistent/ca.pem".into()), None, None).unwrap());
        let e = c.options().unwrap_err().to_string();
        assert!(
            e.contains("CA certificate") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }
}
