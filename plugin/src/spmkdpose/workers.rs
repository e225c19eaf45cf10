//! The threads of `parallel-frames` = n > 1: n of them, each with its own scratch ([`Lane`]),
//! given frames in turn. The streaming thread hands a frame over and goes on (reading the next
//! frame, pushing those done) instead of running a lane itself and waiting for the slowest of
//! a batch: on two cores that kept one of them idle while the other read, attached and pushed.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::frame::Stream;
use super::lane::{Inferred, Lane, LaneError, Loaded, Want};

/// A frame back from inference, and what inference made of it.
pub type Done = (gst::Buffer, Result<Inferred, LaneError>);

struct Job {
    buffer: gst::Buffer,
    stream: Arc<Stream>,
    want: Want,
    reply: mpsc::SyncSender<Done>,
}

/// A frame handed to inference: done already (one lane: the streaming thread ran it) or on a
/// worker.
pub enum Ticket {
    Done(Box<Done>),
    Waiting(mpsc::Receiver<Done>),
}

impl Ticket {
    /// The frame and its inference, once done.
    pub fn wait(self) -> Result<Done, LaneError> {
        match self {
            Ticket::Done(done) => Ok(*done),
            // The worker's end of the reply is gone without an answer: its thread stopped.
            Ticket::Waiting(reply) => reply.recv().map_err(|_| LaneError::Stopped),
        }
    }
}

pub struct Workers {
    jobs: Vec<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// The worker the next frame goes to.
    next: usize,
}

impl Workers {
    /// `n` threads inferring with `models`.
    pub fn spawn(n: usize, models: &Arc<Loaded>) -> std::io::Result<Self> {
        let mut workers = Self {
            jobs: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
            next: 0,
        };
        for i in 0..n {
            let (sender, jobs) = mpsc::channel::<Job>();
            let models = Arc::clone(models);
            let thread = std::thread::Builder::new()
                .name(format!("spmkdpose-lane{}", i + 1))
                .spawn(move || {
                    let mut lane = Lane::default();
                    for job in jobs {
                        let result = lane.infer(&models, &job.buffer, &job.stream, job.want);
                        // Nobody waits for it after a flush: dropped, as the frame is.
                        let _ = job.reply.send((job.buffer, result));
                    }
                })?;
            workers.jobs.push(sender);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Hands `buffer` to the next worker in turn. In turn is enough: the element waits for its
    /// frames in the order they were handed over, so a worker gets a frame when the one it
    /// had is done (or nearly: it queues behind it).
    pub fn submit(&mut self, buffer: gst::Buffer, stream: &Arc<Stream>, want: Want) -> Ticket {
        let (reply, done) = mpsc::sync_channel(1);
        let job = Job {
            buffer,
            stream: Arc::clone(stream),
            want,
            reply,
        };
        let worker = self.next;
        self.next = (self.next + 1) % self.jobs.len();
        match self.jobs[worker].send(job) {
            Ok(()) => Ticket::Waiting(done),
            Err(mpsc::SendError(job)) => {
                Ticket::Done(Box::new((job.buffer, Err(LaneError::Stopped))))
            }
        }
    }
}

impl Drop for Workers {
    /// Ends the threads once they have done what they were given (a frame each at most).
    fn drop(&mut self) {
        self.jobs.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
