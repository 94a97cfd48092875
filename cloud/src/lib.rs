//! # cloud — the cloud half of firstword
//!
//! Implements the μLM paper's collaborative generation (§"Collaborative
//! generation"): the device speaks a short opener from its micro language model at
//! once, and a larger model in the cloud *continues* that opener so the joined
//! text reads as one answer, recovering gracefully when the opener was wrong.
//!
//! * [`protocol`] — versioned JSON frames over WebSocket (see `docs/protocol.md`).
//! * [`continuation`] — pure logic: continuation prompts, recovery modes, and the
//!   streaming seam/repair filter.
//! * [`backend`] — the [`backend::Backend`] trait and its implementations:
//!   scripted (tests, benchmarks), OpenAI-compatible HTTP (real clouds), local
//!   Gemma 3 270M on CPU (offline stand-in).
//! * [`gateway`] — the WebSocket server (`ws://`, or `wss://` with `tls_cert` /
//!   `tls_key`): [`gateway::serve`] / [`gateway::spawn`].
//! * [`client`] — the device-side [`client::CloudClient`].
//! * [`link`] — the daemon's `[cloud]` table and its connected link (a remote gateway, or
//!   the in-process local one).
//! * [`bench`] — gateway overhead benchmark helper.

pub mod backend;
pub mod bench;
pub mod bench_abuse;
pub mod client;
pub mod continuation;
mod error;
pub mod gateway;
pub mod link;
pub mod protocol;
mod tls;

pub use error::CloudError;
