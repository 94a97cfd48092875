//! End to end with a random tiny model and a trained dev tokenizer: chat serialization,
//! openers (word budget, streaming callback, fallback), sampling reproducibility.
mod common;
use common::*;
use lm::decode::StopReason;
use lm::{generate, ChatMessage, Model, OpenerEngine, OpenerInput, SamplingParams};

#[test]
fn chat_template_serializes_turns_with_boundary_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let id = |n: &str| mulm.special_id(n).unwrap();
    let hist = [ChatMessage::user("Hi there"), ChatMessage::assistant("Hello!"), ChatMessage::user(" Why is the sky blue? ")];
    let p = tok.encode_chat(&hist, 256).unwrap();
    let ids = &p.ids;
    assert_eq!(ids[0], id("bos"));
    assert_eq!(ids[1], id("user"));
    assert_eq!(*ids.last().unwrap(), id("assistant"));
    assert_eq!(ids.iter().filter(|&&i| i == id("end")).count(), 3);
    let q = tok.encode_text("Why is the sky blue?").unwrap();
    assert_eq!(p.query_tokens, q.len());
    // the last user turn's content appears right before <|end|><|assistant|> (content trimmed)
    assert_eq!(&ids[ids.len() - 2 - q.len()..ids.len() - 2], q.as_slice());
    // budget too small for the whole history: oldest turns are dropped
    let short = tok.encode_chat(&hist, q.len() + 5).unwrap();
    assert_eq!(short.dropped_turns, 2);
    assert_eq!(short.ids.len(), q.len() + 4); // bos, user, content, end, assistant
}

#[test]
fn opener_stops_at_word_budget_and_streams_words() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let m = Model::from_weights(&w, None).unwrap();
    let mut eng = OpenerEngine::new(&m, &tok).unwrap();
    // random weights rarely emit <|end|>; cap tokens generously so the budget is what stops it
    eng.settings.max_new_tokens = 200;
    for budget in [1usize, 4, 6] {
        let mut streamed = Vec::new();
        let o = eng
            .opener(OpenerInput::Query("What is the capital of France?"), Some(budget), |w, i| {
                assert_eq!(i, streamed.len());
                streamed.push(w.to_string());
            })
            .unwrap();
        println!("budget {budget}: {:?} ({:?}, {} tokens, {:?})", o.text, o.stop, o.tokens.len(), o.timings);
        assert_eq!(streamed, o.words);
        assert_eq!(o.timings.word_ms.len(), o.words.len());
        match o.stop {
            StopReason::WordBudget => assert_eq!(o.words.len(), budget),
            StopReason::EndOfTurn | StopReason::MaxTokens => assert!(o.words.len() <= budget),
            s => panic!("unexpected stop {s:?}"),
        }
        // the opener's text has exactly its words, whitespace-separated, nothing cut
        assert_eq!(o.text.split_whitespace().collect::<Vec<_>>(), o.words);
        // the generated text really continues with a new word (or ended) after the opener:
        // decoding all tokens starts with the opener text
        let full = tok.decode(&o.tokens).unwrap();
        assert!(full.trim_start().starts_with(&o.text), "{full:?} vs {:?}", o.text);
        if o.stop == StopReason::WordBudget {
            let rest = &full.trim_start()[o.text.len()..];
            assert!(rest.starts_with(char::is_whitespace), "word cut: rest {rest:?}");
        }
    }
    // greedy openers are deterministic
    let a = eng.opener(OpenerInput::Query("Tell me a joke."), Some(5), |_, _| {}).unwrap();
    let b = eng.opener(OpenerInput::Query("Tell me a joke."), Some(5), |_, _| {}).unwrap();
    assert_eq!(a.tokens, b.tokens);
}

#[test]
fn long_query_gets_generic_opener() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let m = Model::from_weights(&w, None).unwrap();
    let mut eng = OpenerEngine::new(&m, &tok).unwrap();
    eng.settings.max_query_tokens = 10;
    let long = "Please explain in detail how the moon affects the tides of the oceans on Earth";
    let mut got = Vec::new();
    let o = eng.opener(OpenerInput::Query(long), None, |w, _| got.push(w.to_string())).unwrap();
    assert_eq!(o.stop, StopReason::Fallback);
    assert_eq!(o.text, eng.settings.fallback_opener);
    assert_eq!(got, o.words);
    assert!(o.tokens.is_empty());
    // a short query is generated normally
    let o = eng.opener(OpenerInput::Query("Hi"), Some(2), |_, _| {}).unwrap();
    assert_ne!(o.stop, StopReason::Fallback);
}

#[test]
fn bad_budget_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let m = Model::from_weights(&w, None).unwrap();
    assert!(lm::opener(&m, &tok, OpenerInput::Query("Hi"), Some(0), |_, _| {}).is_err());
    assert!(lm::opener(&m, &tok, OpenerInput::Query("Hi"), Some(17), |_, _| {}).is_err());
}

/// Index of the first token that completes a token n-gram seen earlier in `t`.
fn first_repeat(t: &[u32], n: usize) -> Option<usize> {
    (n..=t.len()).find(|&end| t[..end - 1].windows(n).any(|w| w == &t[end - n..end])).map(|end| end - 1)
}

#[test]
fn no_repeat_ngram_changes_the_opener_only_where_it_would_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let m = Model::from_weights(&w, None).unwrap();
    let mut plain = OpenerEngine::new(&m, &tok).unwrap();
    plain.settings.max_new_tokens = 64;
    plain.settings.no_repeat_ngram = 0;
    let mut banned = OpenerEngine::new(&m, &tok).unwrap();
    banned.settings.max_new_tokens = 64;
    banned.settings.no_repeat_ngram = 2;
    let mut diverged = 0;
    for q in ["What is the capital of France?", "Why is the sky blue?", "How do I boil an egg?", "Tell me a joke"] {
        let a = plain.opener(OpenerInput::Query(q), Some(16), |_, _| {}).unwrap();
        let b = banned.opener(OpenerInput::Query(q), Some(16), |_, _| {}).unwrap();
        assert_eq!(first_repeat(&b.tokens, 2), None, "{q}: {:?}", b.tokens);
        match first_repeat(&a.tokens, 2) {
            // Identical up to the first token that repeated a pair; a different token there.
            Some(i) => {
                diverged += 1;
                assert_eq!(a.tokens[..i], b.tokens[..i], "{q}");
                assert_eq!(a.token_logprobs[..i], b.token_logprobs[..i], "{q}");
                assert_ne!(a.tokens.get(i), b.tokens.get(i), "{q}");
            }
            None => assert_eq!(a.tokens, b.tokens, "{q}"),
        }
        // The gate still sees the model's own probabilities, never the −∞ of the ban.
        assert!(b.token_logprobs.iter().all(|l| l.is_finite() && *l <= 0.0), "{q}: {:?}", b.token_logprobs);
    }
    // Random weights repeat themselves within 16 words, so the ban was exercised.
    assert!(diverged > 0, "no opener repeated a token pair: the test did not exercise the ban");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let m = Model::from_weights(&w, None).unwrap();
    let prompt = tok.encode_chat(&[ChatMessage::user("Why is the sky blue?")], 200).unwrap().ids;
    let run = |seed| {
        let p = SamplingParams { temperature: 1.0, top_k: 40, top_p: 0.9, seed };
        generate(&m, &tok, &prompt, 24, p, |_| true).unwrap().tokens
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
    // greedy ignores the seed
    let g = |seed| generate(&m, &tok, &prompt, 12, SamplingParams { seed, ..Default::default() }, |_| true).unwrap().tokens;
    assert_eq!(g(1), g(2));
}

#[test]
fn bench_reports_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let (_, tok) = tokenizer(dir.path(), &mulm);
    let m = Model::from_weights(&w, None).unwrap();
    let o = lm::bench::BenchOptions { window_s: 0.2, warmup_runs: 1, forced_tokens_per_word: Some(2), ..Default::default() };
    let r = lm::bench::run_with(&m, &tok, "What is the capital of France?", &o).unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(r.runs >= 1);
    // forced 2 tokens/word: 8 words finish at token 17
    assert_eq!(r.generated_tokens_per_run, 17.0);
    let (t4, t8) = (r.time_to_4_words_ms.unwrap(), r.time_to_8_words_ms.unwrap());
    assert!(r.ttft_ms >= r.prefill_ms && t4 >= r.ttft_ms && t8 >= t4);
}
