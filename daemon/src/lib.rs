//! firstword's runtime as a library: the config file, the turn core (a pure state machine that
//! decides), its drivers (replay of a WAV, the live loop on audio devices), the conversation and
//! the metrics. What belongs to one stage lives in that stage's crate: the microphone, devices
//! and activation in `audio`, the opener gate, endpointing and checkpoint loading in `lm`, the
//! link to the cloud in `cloud`. The `firstword` binary (src/main.rs) is its command line; the lab
//! (`../lab`, `firstword-lab bench|eval`) measures it through this same API.

pub mod cmd_asr;
pub mod cmd_opener;
pub mod cmd_say;
pub mod cmd_wakeword;
pub mod config;
mod config_error;
pub mod conversation;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod replay;
pub mod turn;
pub mod turn_shared;
