//! The element's lanes: `parallel-frames` [`Lane`]s on the shared model sessions, and the
//! worker threads ([`Workers`]) that run them when there is more than one. Apart from the lane
//! itself, so a lane knows nothing of the pool that runs it.

use std::sync::Arc;

use spmkd_core::engine::{Encoder, EngineError, EngineOptions};
use spmkd_core::model_pool::Pool;
use spmkd_core::preprocess::Letterbox;

use super::frame::Stream;
use super::lane::{Lane, LaneError, Loaded, ModelFiles, Want};
use super::workers::{Ticket, Workers};

/// `parallel-frames` lanes and the threads they run on: with one lane the streaming thread
/// runs it, with n > 1 n workers do.
pub struct Lanes {
    pub models: Arc<Loaded>,
    /// The streaming thread's lane: every frame with one lane; with more, the reconstructions
    /// of carried frames.
    own: Lane,
    /// `None` with one lane.
    workers: Option<Workers>,
    count: usize,
    /// The first sessions' warm-up time (ns): the latency reported before any frame is seen.
    pub warm_up_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot start the inference threads: {0}")]
    Threads(#[from] std::io::Error),
    #[error("quality=true needs a decoder: set the decoder property next to model")]
    NoDecoder,
}

impl OpenError {
    /// The element error for it (a swap while playing reports it as a warning instead).
    pub fn into_message(self) -> gst::ErrorMessage {
        match self {
            OpenError::Engine(e) => crate::errors::start_error(e),
            OpenError::Threads(_) => gst::error_msg!(gst::CoreError::Thread, ("{}", self)),
            OpenError::NoDecoder => gst::error_msg!(gst::LibraryError::Settings, ("{}", self)),
        }
    }
}

/// The lanes `parallel-frames=0` gives: one per `threads` cores this process may run on (its
/// CPU affinity and cgroup quota counted), at most `max`; one when `threads` is 0 (ONNX
/// Runtime's default, a thread per core, already uses every core).
pub fn auto_lanes(threads: usize, max: usize) -> usize {
    if threads == 0 {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / threads).clamp(1, max.max(1))
}

impl Lanes {
    /// `n` lanes (at least one) on the shared sessions of `files`.
    pub fn open(n: usize, files: &ModelFiles, options: &EngineOptions) -> Result<Self, OpenError> {
        let n = n.max(1);
        let models = Arc::new(files.load(n, options)?);
        let warm_up_ns =
            models.encoder.warm_up_ns + models.decoder.as_ref().map_or(0, |d| d.warm_up_ns);
        let workers = if n > 1 {
            Some(Workers::spawn(n, &models)?)
        } else {
            None
        };
        Ok(Self {
            models,
            own: Lane::default(),
            workers,
            count: n,
            warm_up_ns,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Inferred frames in flight at most: one per lane, and with workers one more, so that a
    /// worker finishing a frame finds its next one waiting instead of idling while the
    /// streaming thread pushes and reads (1.13x offline with two lanes on two cores).
    pub fn depth(&self) -> usize {
        if self.workers.is_some() {
            self.count + 1
        } else {
            1
        }
    }

    /// The encoder's pool (its metadata holds for every lane).
    pub fn encoder(&self) -> &Pool<Encoder> {
        &self.models.encoder
    }

    /// Hands `buffer` to inference: run now with one lane, on the next worker with more.
    pub fn submit(&mut self, buffer: gst::Buffer, stream: &Arc<Stream>, want: Want) -> Ticket {
        match &mut self.workers {
            Some(workers) => workers.submit(buffer, stream, want),
            None => {
                let result = self.own.infer(&self.models, &buffer, stream, want);
                Ticket::Done(Box::new((buffer, result)))
            }
        }
    }

    /// The reconstruction of an earlier frame from its `fused` features (on the streaming
    /// thread's lane).
    pub fn reconstruct(
        &mut self,
        fused: &[f32],
        stream: &Stream,
        letterbox: &Letterbox,
        range: (f32, f32),
    ) -> Result<Option<gst::Buffer>, LaneError> {
        self.own
            .reconstruct(&self.models, fused, stream, letterbox, range)
    }
}

#[cfg(test)]
mod tests {
    use super::auto_lanes;

    #[test]
    fn auto_lanes_share_out_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(auto_lanes(1, 64), cores.min(64));
        assert_eq!(auto_lanes(1, 1), 1);
        // ONNX Runtime's default threads already take every core; more threads than cores.
        assert_eq!(auto_lanes(0, 64), 1);
        assert_eq!(auto_lanes(cores + 1, 64), 1);
    }
}
