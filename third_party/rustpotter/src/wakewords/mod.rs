mod comp;
mod wakeword_detector;
mod wakeword_file;
mod wakeword_ref;
mod wakeword_v2;

pub use comp::{WakewordRefBuildFromBuffers, WakewordRefBuildFromFiles};
pub(crate) use wakeword_detector::WakewordDetector;
pub(crate) use wakeword_file::WakewordFile;
pub use wakeword_file::{WakewordLoad, WakewordSave};
pub use wakeword_ref::WakewordRef;
pub(crate) use wakeword_v2::WakewordV2;
