//! Pure continuation logic (no I/O): prompts and the streaming output filter.
//!
//! * [`instructions`] — continuation rules for chat models (paper §"Collaborative
//!   generation": continue, never restate; three recovery modes) and voice constraints.
//! * [`base_prompt`] — few-shot transcript prompt for base models (local Gemma).
//! * [`ContinuationFilter`] — streaming filter over raw deltas: strips repair
//!   markers into [`FilterEvent::Repair`], removes meta phrases and repeated
//!   opener words at the seam, fixes the join spacing.

pub mod base_prompt;
mod filter;
pub mod instructions;
mod markers;
mod seam;
mod start;

pub use base_prompt::{base_model_prompt, base_model_prompt_prefix, base_model_prompt_tail, STOP_SEQUENCES};
pub use filter::{filter_complete, ContinuationFilter, FilterEvent};
pub use instructions::{chat_messages, opener_instruction, system_instruction, OpenerPlacement, CORRECTION_PREFIX, REPAIR_MARKER};
pub use seam::MIN_OVERLAP_WORDS;
