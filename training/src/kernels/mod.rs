//! Faster kernels for the network's hottest operations on Burn's CPU backend, added through
//! Burn's backend extension with their own backward passes (docs/BENCHMARKS.md says why and by
//! how much). Each kernel is plain Rust on slices, tested against the operation's definition
//! ([`dense`], [`depthwise`], [`norm`], [`resample`]); [`extension`] wires it into Burn for the flex backend and its
//! autodiff, and falls back to Burn's own operation for shapes, machines and backends the kernel
//! does not take (the ONNX exporter's capture backend among them).
//!
//! `SPMKD_KERNELS=burn` in the environment turns them off for the process: every convolution
//! then runs Burn's own, to compare speeds or rule the kernels out when something looks wrong.

use std::sync::LazyLock;

pub mod activation;
pub mod dense;
pub mod depthwise;
pub mod extension;
pub mod norm;
pub mod resample;
#[cfg(test)]
mod testing;

/// The environment variable that turns the kernels off (`burn`) or on (`spmkd`, the default).
pub const ENV: &str = "SPMKD_KERNELS";

/// Whether the kernels are in use (read once per process from [`ENV`]).
pub fn enabled() -> bool {
    static ENABLED: LazyLock<bool> =
        LazyLock::new(|| std::env::var(ENV).map_or(true, |v| v != "burn"));
    *ENABLED
}
