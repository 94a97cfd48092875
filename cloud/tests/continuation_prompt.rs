//! Continuation prompts: the paper's requirements, recovery modes and voice
//! constraints end up in what the models see.

use cloud::continuation::*;
use cloud::protocol::{ContinueRequest, Message, RecoveryMode, Role};

fn req(mode: RecoveryMode) -> ContinueRequest {
    ContinueRequest {
        id: 1,
        messages: vec![Message::system("User is in a car."), Message::user("What is TFLite Micro?")],
        opener: "TFLite Micro is a company that specializes in".into(),
        opener_complete: false,
        mode,
        max_tokens: 100,
    }
}

#[test]
fn system_instruction_states_the_rules() {
    let s = system_instruction(RecoveryMode::Natural).to_lowercase();
    for must in [
        "concatenated directly after the opener",
        "write only the continuation",
        "never quote, restate, evaluate or negate the opener",
        "first finish that sentence",
        "no markdown, no lists",
        "2 to 4 sentences",
        "register",
    ] {
        assert!(s.contains(must), "missing {must:?} in {s}");
    }
}

#[test]
fn each_mode_has_its_recovery() {
    let e = system_instruction(RecoveryMode::Explicit);
    assert!(e.contains("Correction:") && !e.contains(REPAIR_MARKER));
    let n = system_instruction(RecoveryMode::Natural);
    assert!(
        n.contains(REPAIR_MARKER) && n.contains("at most 12 words") && n.contains("wrong, incorrect, misunderstanding or not possible")
    );
    let h = system_instruction(RecoveryMode::Humor);
    assert!(h.contains(REPAIR_MARKER) && h.contains("self-deprecating") && h.contains("snap back"));
}

#[test]
fn instruction_placement_quotes_the_opener_last() {
    let m = chat_messages(&req(RecoveryMode::Natural), OpenerPlacement::Instruction);
    assert_eq!(m.iter().filter(|x| x.role == Role::System).count(), 1, "one merged system message");
    assert!(m[0].content.contains("User is in a car."));
    let last = m.last().unwrap();
    assert_eq!(last.role, Role::User);
    assert!(last.content.contains("\"TFLite Micro is a company that specializes in\""));
    assert!(last.content.contains("mid-sentence"));
    let complete = ContinueRequest { opener_complete: true, ..req(RecoveryMode::Natural) };
    let m = chat_messages(&complete, OpenerPlacement::Instruction);
    assert!(m.last().unwrap().content.contains("complete sentence"));
}

#[test]
fn prefix_placement_ends_with_the_opener_as_assistant() {
    let m = chat_messages(&req(RecoveryMode::Explicit), OpenerPlacement::AssistantPrefix);
    let last = m.last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert_eq!(last.content, "TFLite Micro is a company that specializes in");
    assert_eq!(m[m.len() - 2].content, "What is TFLite Micro?");
}

#[test]
fn base_prompt_ends_with_the_opener_and_shows_the_mode() {
    for mode in [RecoveryMode::Natural, RecoveryMode::Humor, RecoveryMode::Explicit] {
        let p = base_model_prompt(&req(mode));
        assert!(p.ends_with("User: What is TFLite Micro?\nAssistant: TFLite Micro is a company that specializes in"), "{p}");
        assert_eq!(p, base_model_prompt_prefix(mode) + &base_model_prompt_tail(&req(mode)));
        assert!(base_model_prompt_prefix(mode).ends_with("\n\n"));
        // No blank line inside the request part: a blank line is a stop sequence.
        assert!(!base_model_prompt_tail(&req(mode)).contains("\n\n"));
        match mode {
            RecoveryMode::Explicit => assert!(p.contains("\nCorrection:")),
            _ => assert!(p.contains(REPAIR_MARKER)),
        }
    }
}
