//! Unit tests for [`super::Chunker`], driven by delta sequences shaped like
//! streamed LLM output (deltas split words, numbers and markup).

use super::{Chunker, ChunkerConfig};

/// Feeds `deltas`, recording after which delta each chunk came out.
fn run(c: &mut Chunker, deltas: &[&str]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, d) in deltas.iter().enumerate() {
        out.extend(c.push(d).into_iter().map(|s| (i, s)));
    }
    out.extend(c.finish().into_iter().map(|s| (deltas.len(), s)));
    out
}

fn texts(v: &[(usize, String)]) -> Vec<&str> {
    v.iter().map(|(_, s)| s.as_str()).collect()
}

/// Splits `text` into deltas of `n` bytes (at char boundaries), like a token stream.
fn deltas(text: &str, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        cur.push(ch);
        if cur.len() >= n {
            v.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        v.push(cur);
    }
    v
}

#[test]
fn first_chunk_at_first_clause_after_three_words() {
    let mut c = Chunker::new();
    let out = run(&mut c, &["Well", ", the", " short answer", " is yes,", " but", " it depends", " on the", " weather. Ok", "ay?"]);
    assert_eq!(texts(&out), ["Well, the short answer is yes,", "but it depends on the weather.", "Okay?"]);
    // The first chunk is available as soon as the delta holding its comma
    // and the following space arrive, long before the sentence ends.
    assert_eq!(out[0].0, 4);
}

#[test]
fn a_short_whole_sentence_is_spoken_at_once() {
    let mut c = Chunker::new();
    let out = run(&mut c, &["Sure", "! ", "Here", " is", " how."]);
    assert_eq!(out[0], (1, "Sure!".to_string()));
    assert_eq!(texts(&out)[1], "Here is how.");
}

#[test]
fn later_chunks_prefer_sentence_ends_over_commas() {
    let mut c = Chunker::new();
    let out = run(&mut c, &["Yes, I think so, really. ", "After that, we wait, then we go. ", "Done."]);
    assert_eq!(texts(&out), ["Yes, I think so,", "really.", "After that, we wait, then we go.", "Done."]);
}

#[test]
fn decimals_abbreviations_and_initials_do_not_end_chunks() {
    let text = "The Dr. said it costs 3.5 dollars, e.g. for J. K. Rowling. That is all.";
    for n in [1, 2, 3, 5, 8] {
        let mut c = Chunker::new();
        let ds = deltas(text, n);
        let refs: Vec<&str> = ds.iter().map(String::as_str).collect();
        let out = run(&mut c, &refs);
        assert_eq!(texts(&out), ["The Dr. said it costs 3.5 dollars,", "e.g. for J. K. Rowling.", "That is all."], "delta size {n}");
    }
}

#[test]
fn a_trailing_period_waits_for_the_next_delta() {
    let mut c = Chunker::new();
    assert!(c.push("It costs 3.").is_empty(), "3. might become 3.5");
    assert_eq!(c.push("5 euros. Next"), ["It costs 3.5 euros."]);
    assert_eq!(c.finish(), ["Next"]);
}

#[test]
fn words_split_across_deltas_are_never_cut() {
    let text = "Photosynthesis converts light energy into chemical energy stored in glucose molecules, \
                which plants use to grow, and it releases oxygen as a byproduct that animals breathe.";
    let mut c = Chunker::new();
    let ds = deltas(text, 3);
    let refs: Vec<&str> = ds.iter().map(String::as_str).collect();
    let out = run(&mut c, &refs);
    assert!(out.len() >= 2);
    assert_eq!(texts(&out).join(" "), text);
}

#[test]
fn max_length_fallback_cuts_at_a_word_boundary() {
    let cfg = ChunkerConfig { first_min_words: 3, first_max_words: 0, soft_max_bytes: 40, max_bytes: 60 };
    let mut c = Chunker::with_config(cfg);
    let text = "word ".repeat(40);
    let mut chunks = Vec::new();
    for d in deltas(&text, 4) {
        chunks.extend(c.push(&d));
    }
    assert!(!chunks.is_empty(), "no boundary at all must still produce chunks");
    for ch in &chunks {
        assert!(ch.len() <= 60, "{ch:?}");
        assert!(ch.split(' ').all(|w| w == "word"), "cut inside a word: {ch:?}");
    }
    chunks.extend(c.finish());
    assert_eq!(chunks.join(" ").split(' ').count(), 40);
}

#[test]
fn long_sentences_are_cut_at_clauses() {
    let mut c = Chunker::new();
    let first = c.push("Hi. ");
    assert_eq!(first, ["Hi."]);
    let long = "When you consider the history of the region, its trade routes, its languages, and the empires that rose and fell there over the centuries, it becomes clear";
    let mut out = Vec::new();
    for d in deltas(long, 6) {
        out.extend(c.push(&d));
    }
    assert!(!out.is_empty(), "a 150-byte clause-rich sentence must not wait for its end");
    assert!(out.iter().all(|s| s.ends_with(',')), "{out:?}");
}

#[test]
fn markdown_is_normalized_and_code_blocks_are_skipped_whole() {
    let text = "Here's **how** to do it:\n\n```python\nprint(\"hi, there. ok\")\nx = 1\n```\n\nThen run it. See [the docs](https://docs.python.org/3/). Good luck! 🎉";
    for n in [1, 4, 7, 16] {
        let mut c = Chunker::new();
        let ds = deltas(text, n);
        let refs: Vec<&str> = ds.iter().map(String::as_str).collect();
        let out = run(&mut c, &refs);
        assert_eq!(texts(&out), ["Here's how to do it:", "Then run it.", "See the docs.", "Good luck!"], "delta size {n}");
    }
}

#[test]
fn list_items_are_chunks() {
    let mut c = Chunker::new();
    let out = run(&mut c, &["Options:\n- Take", " the bus\n- Walk\n", "- Bike"]);
    assert_eq!(texts(&out), ["Options:", "Take the bus.", "Walk.", "Bike."]);
}

#[test]
fn finish_resets_for_the_next_answer() {
    let mut c = Chunker::new();
    c.push("Hello there");
    assert_eq!(c.finish(), ["Hello there"]);
    assert_eq!(c.pending(), "");
    // First-chunk rule applies again.
    assert_eq!(c.push("One more thing, please wait"), ["One more thing,"]);
}

#[test]
fn degenerate_streams() {
    let mut c = Chunker::new();
    assert!(run(&mut c, &[]).is_empty());
    assert!(run(&mut c, &["", " ", "\n"]).is_empty());
    assert!(run(&mut c, &["...", "!!!", "🎉"]).is_empty());
    let out = run(&mut c, &["a".repeat(1000).as_str()]);
    assert_eq!(out.len(), 1, "an unbreakable token is kept whole");
}

/// However the stream is split, the chunks are the same, and together they
/// say exactly what `for_speech` says for the whole text.
#[test]
fn chunks_do_not_depend_on_delta_boundaries() {
    let answers = [
        "Great question! The Eiffel Tower is about 330 m tall, roughly the height of an 81-storey building. \
         It was completed in 1889 for the World's Fair, e.g. as a showcase of iron engineering.",
        "## Steps\n\n1. **Open** the app.\n2. Tap *Settings* → *Privacy*.\n3. Turn off `location_sharing`.\n\n\
         That's it — you're done! 🎉 If it still fails, see [the FAQ](https://help.example.com/faq?id=3).",
        "Here's a tiny example:\n\n```js\nconsole.log(\"Hi, there. Bye!\");\n```\n\nRun it with Node. Mr. Smith uses v3.5, i.e. the latest.",
    ];
    for text in answers {
        let reference = {
            let mut c = Chunker::new();
            run(&mut c, &[text])
        };
        let ref_texts: Vec<String> = reference.iter().map(|(_, s)| s.clone()).collect();
        assert!(ref_texts.len() >= 2, "{ref_texts:?}");
        assert_eq!(ref_texts.join(" "), crate::normalize::for_speech(text), "chunks vs whole-text normalization");
        for n in 1..=13 {
            let ds = deltas(text, n);
            let refs: Vec<&str> = ds.iter().map(String::as_str).collect();
            let mut c = Chunker::new();
            let got: Vec<String> = run(&mut c, &refs).into_iter().map(|(_, s)| s).collect();
            assert_eq!(got, ref_texts, "delta size {n}");
        }
    }
}

#[test]
fn first_chunk_cut_after_five_complete_words_without_a_boundary() {
    let five = ChunkerConfig { first_max_words: 5, ..ChunkerConfig::default() };
    let mut c = Chunker::with_config(five.clone());
    // "dim" is only complete once the space after it arrives (delta 1).
    let out = run(&mut c, &["simple trick is to", " di", "m the lig", "hts", " an hour before bed."]);
    assert_eq!(out[0], (2, "simple trick is to dim".to_string()));
    assert_eq!(texts(&out), ["simple trick is to dim", "the lights an hour before bed."]);
    // A qualifying clause boundary within the first words still wins.
    let mut c = Chunker::with_config(five);
    let out = run(&mut c, &["Sure, that works,", " and more words follow here."]);
    assert_eq!(texts(&out), ["Sure, that works,", "and more words follow here."]);
    // 0 (the default) turns the word cut off: the first chunk waits for the sentence end.
    let mut c = Chunker::new();
    let out = run(&mut c, &["simple trick is to", " dim the lights", " an hour before bed."]);
    assert_eq!(out, [(3, "simple trick is to dim the lights an hour before bed.".to_string())]);
}
