//! Posture: the three classes ([`Posture`], part of the record schema), the graph a posture
//! model sees of a frame ([`nodes`]), and what `spmkdposture` does with its answers over time
//! ([`Tracker`]: a smoothing window, changes, reposition alerts), kept here as plain logic so
//! it is tested without a pipeline and the training tools build the very same graphs.

mod class;
mod graph;
mod tracker;

pub use class::Posture;
pub use graph::{BASE_FEATURES, most_probable, nodes, probabilities, softmax};
pub use tracker::{Event, Tracker};
