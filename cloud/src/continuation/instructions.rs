//! Continuation instructions for instruction-following (chat) models.
//!
//! The wording implements the paper's continuation requirements
//! (§"Collaborative generation"): the output is concatenated directly after the
//! already-spoken opener; write only the continuation; no new opener and no meta
//! commentary; never quote, restate, evaluate or negate the opener; finish a
//! fragment first so the join is grammatical, then give the substance. The
//! selected recovery mode and voice constraints are appended.

use crate::protocol::{ContinueRequest, Message, RecoveryMode, Role};

/// Marker the model writes where a natural or humor recovery begins; the
/// streaming filter strips it and emits a `repair` event instead.
pub const REPAIR_MARKER: &str = "<repair>";

/// Line prefix that starts an explicit correction (paper's default recovery mode).
pub const CORRECTION_PREFIX: &str = "Correction:";

/// Longest bridging sentence allowed in natural recovery, in words (paper: ≤ 12).
pub const NATURAL_BRIDGE_MAX_WORDS: usize = 12;

/// How the opener reaches a chat model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenerPlacement {
    /// The opener is quoted inside the final user instruction; the model writes
    /// only the continuation (works with every chat server).
    Instruction,
    /// The opener is the content of a final, unfinished `assistant` message that
    /// the server continues (vLLM `continue_final_message`, DeepSeek/Mistral `prefix`).
    AssistantPrefix,
}

/// The fixed continuation rules (paper requirements + voice constraints).
pub fn base_rules() -> String {
    [
        "You are the cloud half of a voice assistant. A small on-device model has already spoken the first words of the answer (the opener) aloud. Your output is concatenated directly after the opener and spoken by text-to-speech, so opener and continuation must read as one answer.",
        "Rules:",
        "- Write only the continuation. Do not start a new answer, do not repeat the opener, and add no meta commentary (no \"Sure\", no \"Continuing:\").",
        "- Never quote, restate, evaluate or negate the opener.",
        "- If the opener stops mid-sentence, first finish that sentence so the join is grammatical, then give the substance.",
        "- Speakable prose only: no markdown, no lists, no headings, no code, no emoji, no URLs.",
        "- Be short: 2 to 4 sentences in total unless the user asked for more. Keep the register and tone of the opener.",
    ]
    .join("\n")
}

/// The recovery rules for one mode (paper: explicit / natural / humor-aware recovery).
pub fn recovery_rules(mode: RecoveryMode) -> String {
    let body = match mode {
        RecoveryMode::Explicit => format!(
            "If the opener is wrong or misleading: finish its sentence minimally, then start a new line beginning with \"{CORRECTION_PREFIX}\" followed by one corrective sentence that does not quote the opener, then the full correct answer."
        ),
        RecoveryMode::Natural => format!(
            "If the opener is wrong or misleading: finish the fragment minimally, then write the marker {REPAIR_MARKER} followed by one short bridging sentence of at most {NATURAL_BRIDGE_MAX_WORDS} words that pivots like a fluent human self-repair (it may be lightly playful). Avoid blunt negation words such as wrong, incorrect, misunderstanding or not possible, and do not explain the mistake. Then give the correct answer with concrete content."
        ),
        RecoveryMode::Humor => format!(
            "If the opener is absurd or made up: finish it quickly, then start a new line with the marker {REPAIR_MARKER} and treat the detour as deliberate, in one playful, self-deprecating sentence, then snap back to the factual answer."
        ),
    };
    format!("Recovery:\n{body}\nIf the opener is fine, simply continue it and do not use the recovery format.")
}

/// Full system instruction for a request's recovery mode.
pub fn system_instruction(mode: RecoveryMode) -> String {
    format!("{}\n{}", base_rules(), recovery_rules(mode))
}

/// The final user instruction of the [`OpenerPlacement::Instruction`] path, which
/// carries the opener text (the model must not quote it back).
pub fn opener_instruction(opener: &str, opener_complete: bool) -> String {
    if opener.trim().is_empty() {
        return "Nothing has been spoken yet: answer the last question directly, following the rules.".to_string();
    }
    let shape = if opener_complete {
        "The opener is a complete sentence: continue with the next sentence."
    } else {
        "The opener stops mid-sentence: your first words must finish that sentence."
    };
    format!(
        "Already spoken aloud (the opener): {opener:?}\n{shape}\nWrite only the words that come next, starting exactly where the opener stops."
    )
}

/// Chat messages for a continuation request, ready for an OpenAI-style API.
///
/// With [`OpenerPlacement::AssistantPrefix`] the last message is the unfinished
/// assistant turn holding the opener; otherwise the last message is a user
/// instruction that quotes the opener.
pub fn chat_messages(req: &ContinueRequest, placement: OpenerPlacement) -> Vec<Message> {
    let mut out = Vec::with_capacity(req.messages.len() + 2);
    let mut system = system_instruction(req.mode);
    // Device-supplied system turns are folded into ours so that there is exactly
    // one system message (several servers reject more than one).
    for m in req.messages.iter().filter(|m| m.role == Role::System) {
        system.push_str("\n\n");
        system.push_str(&m.content);
    }
    out.push(Message::system(system));
    out.extend(req.messages.iter().filter(|m| m.role != Role::System).cloned());
    match placement {
        OpenerPlacement::Instruction => {
            out.push(Message::user(opener_instruction(&req.opener, req.opener_complete)));
        }
        OpenerPlacement::AssistantPrefix => {
            if !req.opener.is_empty() {
                out.push(Message::assistant(req.opener.clone()));
            }
        }
    }
    out
}
