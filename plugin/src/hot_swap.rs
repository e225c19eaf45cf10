//! A model swapped while playing: loaded on a thread of its own, taken by the streaming thread
//! at a frame boundary, so no frame waits for a model to load and none is lost. A later request
//! supersedes an earlier one still loading (setting `decoder` then `model` loads the pair once).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Element message posted when a swapped model is in use: `model-version` (and the one before,
/// `previous-version`), `origin` (the file, or the built-in model).
pub const MODEL_MESSAGE: &str = "spmkd-model";

pub struct HotSwap<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    /// Bumped by every request and by [`HotSwap::cancel`]: a load finishing for an older one
    /// is dropped.
    generation: u64,
    ready: Option<T>,
}

impl<T> Default for HotSwap<T> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                generation: 0,
                ready: None,
            }),
        }
    }
}

impl<T> HotSwap<T> {
    fn inner(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new request: returns its generation, to hand to [`HotSwap::finish`].
    pub fn begin(&self) -> u64 {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.ready = None;
        inner.generation
    }

    /// Whether `generation` is still the latest request.
    pub fn is_current(&self, generation: u64) -> bool {
        self.inner().generation == generation
    }

    /// Offers what request `generation` loaded; `false` (and it is dropped) when a later
    /// request or a stop came since.
    pub fn finish(&self, generation: u64, loaded: T) -> bool {
        let mut inner = self.inner();
        if inner.generation != generation {
            return false;
        }
        inner.ready = Some(loaded);
        true
    }

    /// What is ready to be used, if anything (the streaming thread, between frames).
    pub fn take(&self) -> Option<T> {
        self.inner().ready.take()
    }

    /// Forgets what is ready and what is loading (the element stops).
    pub fn cancel(&self) {
        self.begin();
    }
}

#[cfg(test)]
mod tests {
    use super::HotSwap;

    #[test]
    fn a_later_request_supersedes_an_earlier_one() {
        let swap = HotSwap::default();
        let first = swap.begin();
        let second = swap.begin();
        assert!(!swap.finish(first, "old"));
        assert!(swap.finish(second, "new"));
        assert_eq!(swap.take(), Some("new"));
        assert_eq!(swap.take(), None);
    }

    #[test]
    fn a_stop_drops_what_was_loading_and_what_was_ready() {
        let swap = HotSwap::default();
        let loading = swap.begin();
        swap.cancel();
        assert!(!swap.finish(loading, 1));
        let ready = swap.begin();
        assert!(swap.finish(ready, 2));
        swap.cancel();
        assert_eq!(swap.take(), None);
    }
}
