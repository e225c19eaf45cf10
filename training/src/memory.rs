//! How a training process keeps the memory its tensors free.
//!
//! Why: every training step allocates and frees the same large tensors (the decoder's 64 x 64
//! activations are 25 MB each at batch 32). glibc's malloc serves blocks above its mmap
//! threshold (128 KiB at first, raised by each such block freed, at most 32 MiB) with a fresh
//! `mmap` and returns them at `free`, and trims the heap's top once more than twice the
//! threshold is free there; so the next step faults the same memory in again, page by page,
//! zeroed by the kernel. On the shipped network that was about 48,000 page faults a step and a
//! fifth of the process's CPU time spent in the kernel (docs/BENCHMARKS.md, "Training against
//! PyTorch"). [`keep_freed_memory`] has malloc keep such blocks in its heaps for reuse instead:
//! the process's resident memory stays at its peak, which a training run reaches in its first
//! step anyway.
//!
//! `SPMKD_MALLOC=default` in the environment leaves malloc as it is, to compare the two.

/// The environment variable that leaves malloc's settings alone (`default`).
pub const ENV: &str = "SPMKD_MALLOC";

/// Largest block still served from malloc's heaps rather than by its own `mmap`: glibc's
/// ceiling for the threshold on 64-bit systems. Larger blocks are rare here.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory at a heap's top kept rather than returned to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = libc::c_int::MAX;

/// Has malloc keep freed blocks up to 32 MiB for reuse and never trim its heaps, unless
/// `SPMKD_MALLOC=default` is set. Returns whether the settings were applied: only with glibc
/// (elsewhere the system's allocator is left as it is). Call it once, at the start of a
/// process that trains or evaluates; it changes how memory is kept, not what is computed.
pub fn keep_freed_memory() -> bool {
    if std::env::var(ENV).is_ok_and(|v| v == "default") {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning parameters; both values are in the
        // ranges glibc documents (it returns 0 and changes nothing otherwise).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_settings() {
        // The test binary is never run with SPMKD_MALLOC=default by the test command.
        if std::env::var(ENV).is_err() {
            assert!(keep_freed_memory());
        }
    }
}
