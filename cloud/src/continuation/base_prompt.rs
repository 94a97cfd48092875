//! Prompt for *base* (not instruction-tuned) models such as Gemma 3 270M.
//!
//! A base model cannot follow the continuation rules, so the request becomes a
//! plain-text transcript that ends with `Assistant: <opener>` and the model simply
//! keeps writing. Few-shot examples show short spoken answers and, for the
//! selected recovery mode, what a recovery looks like (including the repair
//! marker that the streaming filter turns into a `repair` event).

use super::instructions::{CORRECTION_PREFIX, REPAIR_MARKER};
use crate::protocol::{ContinueRequest, RecoveryMode, Role};

/// Speaker label of user turns in the transcript; generation stops when the model
/// starts a new one.
pub const USER_LABEL: &str = "User:";
/// Speaker label of assistant turns in the transcript.
pub const ASSISTANT_LABEL: &str = "Assistant:";

/// Text sequences that end a base-model continuation: a blank line or the start of
/// the next transcript turn.
pub const STOP_SEQUENCES: [&str; 3] = ["\n\n", "\nUser:", "\nAssistant:"];

const HEADER: &str = "Transcript of a voice assistant that answers in two to four short spoken sentences of plain prose.";

/// The few-shot example of a good continuation (no recovery).
const PLAIN_EXAMPLE: (&str, &str) = (
    "What is the capital of Australia?",
    "The capital of Australia is Canberra, a planned city chosen as a compromise between Sydney and Melbourne. It is home to Parliament House and the High Court.",
);

/// A second plain example, with an opener that is a fragment.
const FRAGMENT_EXAMPLE: (&str, &str) = (
    "Why is the sky blue?",
    "The sky looks blue because air molecules scatter short blue wavelengths of sunlight much more than red ones. That scattered light reaches your eyes from every direction.",
);

/// The recovery example for one mode (the paper's TFLite Micro example).
fn recovery_example(mode: RecoveryMode) -> (&'static str, String) {
    let q = "What is TFLite Micro?";
    let answer = match mode {
        RecoveryMode::Explicit => format!(
            "TFLite Micro is a company that specializes in small devices.\n{CORRECTION_PREFIX} TFLite Micro is software, not a company. It is a framework from Google for running machine learning models on microcontrollers with only kilobytes of memory."
        ),
        RecoveryMode::Natural => format!(
            "TFLite Micro is a company that specializes in tiny devices.{REPAIR_MARKER} Or rather, it powers them: TFLite Micro is a framework for running machine learning models on microcontrollers with only kilobytes of memory."
        ),
        RecoveryMode::Humor => format!(
            "TFLite Micro is a company that specializes in tiny sensors for interplanetary spacecraft.\n{REPAIR_MARKER} Just kidding, my imagination took a joyride. TFLite Micro is actually a framework for running machine learning models on microcontrollers."
        ),
    };
    (q, answer)
}

/// The request-independent start of the prompt for one recovery mode: header and
/// few-shot examples, ending with a blank line. Backends may cache the model state
/// after it (prefix caching); [`base_model_prompt`] = this + [`base_model_prompt_tail`].
pub fn base_model_prompt_prefix(mode: RecoveryMode) -> String {
    let mut p = String::with_capacity(1024);
    p.push_str(HEADER);
    p.push_str("\n\n");
    let (rq, ra) = recovery_example(mode);
    // The recovery example comes first so that the plain examples, closest to the
    // request, set the default behaviour (small models copy the nearest pattern).
    for (q, a) in [(rq, ra), (PLAIN_EXAMPLE.0, PLAIN_EXAMPLE.1.to_string()), (FRAGMENT_EXAMPLE.0, FRAGMENT_EXAMPLE.1.to_string())] {
        p.push_str(&format!("{USER_LABEL} {q}\n{ASSISTANT_LABEL} {a}\n\n"));
    }
    p
}

/// The request-specific end of the prompt: the conversation, then
/// `Assistant: <opener>` (no trailing space) so the model continues the opener.
pub fn base_model_prompt_tail(req: &ContinueRequest) -> String {
    let mut p = String::with_capacity(256);
    for m in &req.messages {
        // Collapse newlines inside turns: a blank line would read as end of turn.
        let text = m.content.split_whitespace().collect::<Vec<_>>().join(" ");
        match m.role {
            Role::User => p.push_str(&format!("{USER_LABEL} {text}\n")),
            Role::Assistant => p.push_str(&format!("{ASSISTANT_LABEL} {text}\n\n")),
            // The base model has no notion of system turns; keep them as context.
            Role::System => p.push_str(&format!("({text})\n")),
        }
    }
    p.push_str(ASSISTANT_LABEL);
    let opener = req.opener.trim_end();
    if !opener.is_empty() {
        p.push(' ');
        p.push_str(opener);
    }
    p
}

/// Build the whole transcript prompt for a base model.
pub fn base_model_prompt(req: &ContinueRequest) -> String {
    base_model_prompt_prefix(req.mode) + &base_model_prompt_tail(req)
}
