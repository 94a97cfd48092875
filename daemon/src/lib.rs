//! firstword's runtime as a library: the config, the turn core (a pure state machine that
//! decides) and its drivers (replay of a WAV, the live loop on audio devices), the opener gate,
//! endpointing, activation, the conversation, the link to the cloud and the μLM checkpoint
//! loader. The `firstword` binary (src/main.rs) is its command line; the lab
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
