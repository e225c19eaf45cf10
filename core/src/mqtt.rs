//! How every spmkd MQTT connection is made (feature `mqtt`): `spmkdmqttsink`, `spmkd-ward`, the
//! tests' subscriber and the ward benchmark. The topics and payloads are in [`crate::broker`].

use rumqttc::{EventLoop, MqttOptions, TlsConfiguration, Transport};

/// TLS through rustls on ring, the broker checked against `ca` (PEM), with a client certificate
/// and key (PEM) for brokers that authenticate clients by certificate.
pub fn use_tls(options: &mut MqttOptions, ca: Vec<u8>, client_auth: Option<(Vec<u8>, Vec<u8>)>) {
    // Once per process; an error only says a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    }));
}

/// No Nagle on the connection: messages are small and each should leave at once (with the
/// peer's delayed ACK, Nagle held a message up to 40 ms; docs/BENCHMARKS.md).
pub fn no_delay(eventloop: &mut EventLoop) {
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
}
