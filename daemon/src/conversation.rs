//! The conversation so far (issue 18): the user's transcripts and the replies as the user
//! heard them, oldest first, kept in memory only. Pure: no audio, clock, model or network.
//!
//! - Every cloud `continue` carries the newest turns that fit the cloud budget
//!   (`turn.cloud_history_turns`, `turn.cloud_history_tokens`), and the μLM's prompt the
//!   newest that fit its context ([`Conversation::fit_newest`] with the μLM's token counts).
//!   Whole turns (question + reply) are dropped, oldest first; a turn is never cut in half.
//! - A stored reply is what was played ([`tts::heard::heard_text`]): cut at the last word
//!   played on barge-in; a filler, fallback or opener counts as spoken.
//! - The conversation ends after `turn.conversation_idle_s` without speech
//!   ([`Conversation::end_if_idle`]) or on one of `turn.conversation_end_phrases`
//!   ([`is_end_phrase`]).

use std::collections::VecDeque;

use cloud::protocol::Message;
use serde::Serialize;

/// Most turns kept in memory whatever the budgets allow (each turn is one question and one
/// spoken reply, a few hundred bytes).
pub const MAX_STORED_TURNS: usize = 256;

/// One earlier turn: what the user said and what they heard back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The user's transcript.
    pub user: String,
    /// The reply as heard (opener, continuation, filler, fallback; cut on barge-in).
    pub assistant: String,
}

/// The turns of the current conversation, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    turns: VecDeque<Exchange>,
    /// Last speech of either side (end of a reply or of the user's utterance), in ms on the
    /// driver's clock.
    last_activity_ms: Option<f64>,
}

/// How much of the conversation one turn sent, for `timeline.json` (counts only, no text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ContextUse {
    /// Earlier turns in the cloud request.
    pub context_turns: usize,
    /// Messages in the cloud request (2 per earlier turn + the question).
    pub cloud_messages: usize,
    /// The cloud request's messages and opener in approximate tokens ([`approx_tokens`]).
    pub cloud_request_tokens: usize,
    /// Earlier turns in the μLM's prompt.
    pub mulm_context_turns: usize,
    /// The μLM's prompt in its own tokens (0 when no opener was written).
    pub mulm_prompt_tokens: usize,
    /// Earlier turns forgotten after this turn: older than every budget used in it.
    pub dropped_turns: usize,
}

/// Stores a finished turn (question and reply as heard, at `at_ms`) after forgetting the turns
/// that neither this turn's cloud request nor its μLM prompt could hold (`used`; only when the
/// cloud request was made, so a dismissed turn forgets nothing). Returns the turns dropped.
pub fn remember(conv: &mut Conversation, user: &str, heard: &str, used: &ContextUse, at_ms: f64) -> usize {
    let mut dropped = 0;
    if used.cloud_messages > 0 {
        dropped += conv.forget_beyond(used.context_turns.max(used.mulm_context_turns));
    }
    dropped + conv.push(user, heard, at_ms)
}

/// Approximate tokens of `text` for the cloud budget: whitespace-separated words, as the
/// gateway counts for backends that cannot.
pub fn approx_tokens(text: &str) -> usize {
    text.split_whitespace().count()
}

impl Conversation {
    /// An empty conversation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns stored.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// Forgets everything; returns how many turns were dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.turns.len();
        self.turns.clear();
        self.last_activity_ms = None;
        n
    }

    /// Notes speech (either side) at `at_ms`, for the idle timeout.
    pub fn touch(&mut self, at_ms: f64) {
        if at_ms.is_finite() {
            self.last_activity_ms = Some(self.last_activity_ms.map_or(at_ms, |t| t.max(at_ms)));
        }
    }

    /// Ends the conversation if nothing was said for more than `idle_ms` before `now_ms`;
    /// true if turns were dropped. `idle_ms` ≤ 0 keeps no conversation at all.
    pub fn end_if_idle(&mut self, now_ms: f64, idle_ms: f64) -> bool {
        if self.turns.is_empty() {
            return false;
        }
        let idle = idle_ms <= 0.0 || self.last_activity_ms.is_some_and(|t| now_ms - t > idle_ms);
        idle && self.clear() > 0
    }

    /// Stores a finished turn heard up to `at_ms`. A turn without a transcript or without any
    /// reply heard is not stored (the history alternates user / assistant). Returns how many
    /// old turns were dropped to stay within [`MAX_STORED_TURNS`].
    pub fn push(&mut self, user: &str, assistant: &str, at_ms: f64) -> usize {
        self.touch(at_ms);
        let (user, assistant) = (user.trim(), assistant.trim());
        if user.is_empty() || assistant.is_empty() {
            return 0;
        }
        self.turns.push_back(Exchange { user: user.to_string(), assistant: assistant.to_string() });
        self.forget_beyond(MAX_STORED_TURNS)
    }

    /// Keeps only the newest `keep` turns; returns how many were dropped.
    pub fn forget_beyond(&mut self, keep: usize) -> usize {
        let n = self.turns.len().saturating_sub(keep);
        self.turns.drain(..n);
        n
    }

    /// How many of the newest turns fit: at most `max_turns`, with the sum of `cost` (per
    /// whole turn) at most `budget`. Stops at the first turn that does not fit, so the turns
    /// kept are always the newest, contiguous, and whole.
    pub fn fit_newest(&self, max_turns: usize, budget: usize, mut cost: impl FnMut(&Exchange) -> usize) -> usize {
        let mut used = 0usize;
        let mut k = 0;
        for ex in self.turns.iter().rev().take(max_turns) {
            let c = cost(ex);
            match used.checked_add(c) {
                Some(u) if u <= budget => used = u,
                _ => break,
            }
            k += 1;
        }
        k
    }

    /// The newest `k` turns, oldest first.
    fn newest(&self, k: usize) -> impl Iterator<Item = &Exchange> {
        self.turns.iter().skip(self.turns.len().saturating_sub(k))
    }

    /// The cloud's `messages`: the newest `k` turns, then `question`.
    pub fn cloud_messages(&self, k: usize, question: &str) -> Vec<Message> {
        let mut out = Vec::with_capacity(2 * k.min(self.turns.len()) + 1);
        for ex in self.newest(k) {
            out.push(Message::user(ex.user.clone()));
            out.push(Message::assistant(ex.assistant.clone()));
        }
        out.push(Message::user(question));
        out
    }

    /// The μLM's chat history: the newest `k` turns, then `question`.
    pub fn mulm_turns(&self, k: usize, question: &str) -> Vec<lm::ChatMessage> {
        let mut out = Vec::with_capacity(2 * k.min(self.turns.len()) + 1);
        for ex in self.newest(k) {
            out.push(lm::ChatMessage::user(ex.user.clone()));
            out.push(lm::ChatMessage::assistant(ex.assistant.clone()));
        }
        out.push(lm::ChatMessage::user(question));
        out
    }
}

/// Lower-case words of `text` without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'').map(|w| w.trim_matches('\'').to_lowercase()).filter(|w| !w.is_empty()).collect()
}

/// True when `transcript` is one of `phrases` (case and punctuation ignored), alone or with
/// at most two more words around it ("okay, new conversation please"), so that a question
/// that merely contains the words ("can you forget that I asked about …") is not one.
pub fn is_end_phrase(transcript: &str, phrases: &[String]) -> bool {
    let said = words(transcript);
    phrases.iter().any(|p| {
        let p = words(p);
        !p.is_empty() && said.len() <= p.len() + 2 && said.windows(p.len()).any(|w| w == p.as_slice())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(n: usize, user_words: usize, reply_words: usize) -> Conversation {
        let mut c = Conversation::new();
        for i in 0..n {
            let u = vec![format!("q{i}"); user_words].join(" ");
            let a = vec![format!("a{i}"); reply_words].join(" ");
            c.push(&u, &a, i as f64);
        }
        c
    }

    fn cost(e: &Exchange) -> usize {
        approx_tokens(&e.user) + approx_tokens(&e.assistant)
    }

    #[test]
    fn messages_alternate_and_end_with_the_question() {
        let mut c = Conversation::new();
        c.push("What is the capital of France?", "The capital of France is Paris.", 10.0);
        let m = c.cloud_messages(8, "How many people live there?");
        let got: Vec<(&str, &str)> =
            m.iter().map(|m| (if m.role == cloud::protocol::Role::User { "user" } else { "assistant" }, m.content.as_str())).collect();
        assert_eq!(
            got,
            [
                ("user", "What is the capital of France?"),
                ("assistant", "The capital of France is Paris."),
                ("user", "How many people live there?")
            ]
        );
        let t = c.mulm_turns(0, "Hi");
        assert_eq!(t, [lm::ChatMessage::user("Hi")]);
    }

    #[test]
    fn unheard_or_unasked_turns_are_not_stored() {
        let mut c = Conversation::new();
        c.push("", "Sure.", 1.0);
        c.push("Hello?", "  ", 2.0);
        assert!(c.is_empty());
    }

    #[test]
    fn budgets_keep_the_newest_whole_turns_for_every_size() {
        // Plain sweep over sizes (no proptest in the workspace): n turns of u + r words, every
        // turn budget and token budget; the kept turns are the newest, whole, within both.
        for n in [0usize, 1, 2, 3, 7, 20, 100] {
            for (u, r) in [(1, 1), (3, 12), (10, 40)] {
                let c = conv(n, u, r);
                let per = u + r;
                for max_turns in [0usize, 1, 2, 5, 8, 64] {
                    for budget in [0usize, 1, per - 1, per, per + 1, 3 * per, 10 * per, 10_000] {
                        let k = c.fit_newest(max_turns, budget, cost);
                        let want = n.min(max_turns).min(budget / per);
                        assert_eq!(k, want, "n {n} u {u} r {r} max_turns {max_turns} budget {budget}");
                        let m = c.cloud_messages(k, "now?");
                        assert_eq!(m.len(), 2 * k + 1);
                        let sent: usize = m[..2 * k].iter().map(|m| approx_tokens(&m.content)).sum();
                        assert!(sent <= budget);
                        // Whole and newest: the first message sent is turn n-k's whole question.
                        if k > 0 {
                            assert_eq!(m[0].content, vec![format!("q{}", n - k); u].join(" "));
                            assert_eq!(m[2 * k - 1].content, vec![format!("a{}", n - 1); r].join(" "));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_turn_too_big_for_the_budget_stops_the_window_there() {
        let mut c = Conversation::new();
        c.push("old short", "ok", 1.0);
        c.push("middle", &"long ".repeat(50), 2.0);
        c.push("new", "fine", 3.0);
        // The middle turn does not fit: the older one is not sent either (no hole in the history).
        assert_eq!(c.fit_newest(8, 10, cost), 1);
    }

    #[test]
    fn remember_forgets_what_no_budget_could_use() {
        let mut c = conv(5, 1, 1);
        let used = ContextUse { context_turns: 2, mulm_context_turns: 3, cloud_messages: 5, ..Default::default() };
        assert_eq!(remember(&mut c, "q", "a", &used, 9.0), 2);
        assert_eq!(c.len(), 4);
        // A turn that sent nothing (no transcript) forgets nothing.
        assert_eq!(remember(&mut c, "", "", &ContextUse::default(), 10.0), 0);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn memory_is_bounded_over_a_long_conversation() {
        let c = conv(1000, 5, 20);
        assert_eq!(c.len(), MAX_STORED_TURNS);
        assert_eq!(c.turns.front().unwrap().user, vec![format!("q{}", 1000 - MAX_STORED_TURNS); 5].join(" "));
        let mut c = c;
        assert_eq!(c.forget_beyond(3), MAX_STORED_TURNS - 3);
        assert_eq!(c.forget_beyond(10), 0);
    }

    #[test]
    fn idle_timeout_ends_the_conversation() {
        let mut c = conv(2, 1, 1); // last activity at 1 ms
        assert!(!c.end_if_idle(100_000.0, 120_000.0));
        c.touch(100_000.0);
        assert!(!c.end_if_idle(219_000.0, 120_000.0));
        assert!(c.end_if_idle(220_001.0, 120_000.0));
        assert!(c.is_empty());
        assert!(!c.end_if_idle(1e9, 120_000.0), "nothing left to end");
        let mut c = conv(1, 1, 1);
        assert!(c.end_if_idle(1.0, 0.0), "idle 0 keeps no history");
    }

    #[test]
    fn end_phrases_match_short_utterances_only() {
        let p = vec!["new conversation".to_string(), "forget that".to_string()];
        assert!(is_end_phrase("New conversation.", &p));
        assert!(is_end_phrase("Forget that!", &p));
        assert!(is_end_phrase("Okay, new conversation, please.", &p));
        assert!(!is_end_phrase("Can you forget that I asked about Paris?", &p));
        assert!(!is_end_phrase("A new way of conversation", &p));
        assert!(!is_end_phrase("", &p));
        assert!(!is_end_phrase("forget that", &[String::new()]));
    }
}
