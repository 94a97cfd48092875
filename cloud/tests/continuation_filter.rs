//! The streaming continuation filter: seam hygiene and repair detection, checked
//! on whole texts and on the same texts split at every position.

use cloud::continuation::{filter_complete, ContinuationFilter, FilterEvent};

/// Feed `chunks` through a fresh filter; return the text and the byte offsets
/// (in the output text) where repair events occurred.
fn run(opener: &str, chunks: &[&str]) -> (String, Vec<usize>) {
    let mut f = ContinuationFilter::new(opener);
    let mut events = Vec::new();
    for c in chunks {
        events.extend(f.push(c));
    }
    events.extend(f.finish());
    let mut text = String::new();
    let mut repairs = Vec::new();
    for e in events {
        match e {
            FilterEvent::Text(t) => text.push_str(&t),
            FilterEvent::Repair => repairs.push(text.len()),
        }
    }
    (text, repairs)
}

/// Char boundaries of `s`, including 0 and len.
fn boundaries(s: &str) -> Vec<usize> {
    let mut b: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    b.push(s.len());
    b
}

/// The result must not depend on how the raw text is split: every single split
/// point, every pair of split points (for short texts) and one-char-per-delta.
fn assert_split_invariant(opener: &str, raw: &str) -> (String, Vec<usize>) {
    let whole = run(opener, &[raw]);
    let bs = boundaries(raw);
    for &i in &bs {
        let got = run(opener, &[&raw[..i], &raw[i..]]);
        assert_eq!(got, whole, "opener {opener:?} raw {raw:?} split at {i}");
    }
    if bs.len() <= 90 {
        for (x, &i) in bs.iter().enumerate() {
            for &j in &bs[x..] {
                let got = run(opener, &[&raw[..i], &raw[i..j], &raw[j..]]);
                assert_eq!(got, whole, "opener {opener:?} raw {raw:?} split at {i},{j}");
            }
        }
    }
    let chars: Vec<String> = raw.chars().map(|c| c.to_string()).collect();
    let refs: Vec<&str> = chars.iter().map(|s| s.as_str()).collect();
    assert_eq!(run(opener, &refs), whole, "opener {opener:?} raw {raw:?} char by char");
    whole
}

/// (opener, raw model output, expected text, expected repair count)
const CASES: &[(&str, &str, &str, usize)] = &[
    // Plain continuation of a fragment: a join space is added.
    ("The capital of France is", "Paris, on the Seine.", " Paris, on the Seine.", 0),
    // Model already supplied the space: exactly one.
    ("The capital of France is", "  Paris.", " Paris.", 0),
    // Starts with punctuation: no space.
    ("Paris is the capital of France", ", and its largest city.", ", and its largest city.", 0),
    ("Paris is the capital of France", "... and its largest city.", " and its largest city.", 0),
    // Restart failure: the continuation repeats the whole opener.
    ("The capital of France is", "The capital of France is Paris.", " Paris.", 0),
    // Repeats the opener's last words only.
    ("The Eiffel Tower is located in", "located in Paris, France.", " Paris, France.", 0),
    // Repeated last word carries extra punctuation: it is kept.
    ("Paris is the capital of France", "capital of France, and its largest city.", ", and its largest city.", 0),
    // Restart with the opener's own final period.
    ("Water boils at 100 degrees.", "Water boils at 100 degrees. At altitude it boils lower.", " At altitude it boils lower.", 0),
    // Meta phrases.
    ("The capital of France is", "Sure, continuing: Paris.", " Paris.", 0),
    ("The capital of France is", "Continuing:\nParis.", " Paris.", 0),
    ("The capital of France is", "Here is the continuation: The capital of France is Paris.", " Paris.", 0),
    ("The capital of France is", "Sure! Here’s the continuation:  Paris.", " Paris.", 0),
    // Not meta: "sure" that belongs to the sentence.
    ("I'm not", "sure, but I think so.", " sure, but I think so.", 0),
    // One shared word is not an overlap.
    ("Tell me about the", "the history of Rome.", " the history of Rome.", 0),
    // Natural recovery with the marker: stripped, repair reported.
    (
        "TFLite Micro is a company that specializes in",
        " tiny devices.<repair> Or rather, it powers them: it is a framework for microcontrollers.",
        " tiny devices. Or rather, it powers them: it is a framework for microcontrollers.",
        1,
    ),
    // Marker with blanks on both sides: one blank survives.
    ("Bats are", "blind. <repair> Well, mostly: they see fine.", " blind. Well, mostly: they see fine.", 1),
    // Humor recovery on a new line.
    (
        "TFLite Micro is a company that specializes in",
        " tiny sensors for spacecraft.\n<repair> Just kidding, my imagination took a joyride. It is a framework.</repair>",
        " tiny sensors for spacecraft.\nJust kidding, my imagination took a joyride. It is a framework.",
        1,
    ),
    // Explicit correction: text kept, repair reported.
    (
        "TFLite Micro is a company that specializes in",
        " small devices.\nCorrection: TFLite Micro is software, not a company. It runs models on microcontrollers.",
        " small devices.\nCorrection: TFLite Micro is software, not a company. It runs models on microcontrollers.",
        1,
    ),
    // Correction straight away: placed on a new line.
    ("The Moon is made of", "Correction: the Moon is rock.", "\nCorrection: the Moon is rock.", 1),
    // Repair marker right at the start, then a restart of the opener.
    ("The capital of Australia is", "<repair> The capital of Australia is Canberra.", " Canberra.", 1),
    // Only one repair event even with two markers.
    ("Cats are", "dogs.<repair> Kidding.<repair> Cats are cats.", " dogs. Kidding. Cats are cats.", 1),
    // A '<' that is not a marker passes through.
    ("Three is", "< 5 and <b>big</b>.", " < 5 and <b>big</b>.", 0),
    // "correction" mid-line is not a correction.
    ("This needs a", "correction: small.", " correction: small.", 0),
    // Trailing whitespace is dropped.
    ("It is", "sunny today.  \n\n", " sunny today.", 0),
    // Empty opener: no join space.
    ("", "  Hello there.", "Hello there.", 0),
    // Non-ASCII text survives splitting anywhere.
    ("Le café est", "très bon — vraiment ☕.", " très bon — vraiment ☕.", 0),
    // Partial repetition that diverges is kept (it is not a restart).
    ("The capital of France is", "The capital city is Paris.", " The capital city is Paris.", 0),
    // Continuation that is only repetition produces nothing.
    ("The capital of France is", "The capital of France is", "", 0),
];

#[test]
fn cases_whole_and_split_at_every_position() {
    for &(opener, raw, want, repairs) in CASES {
        let (text, rep) = assert_split_invariant(opener, raw);
        assert_eq!(text, want, "opener {opener:?} raw {raw:?}");
        assert_eq!(rep.len(), repairs, "repairs for opener {opener:?} raw {raw:?}");
    }
}

#[test]
fn repair_event_position_is_where_the_recovery_starts() {
    let (text, rep) = run("Bats are", &["blind.<rep", "air> Well, they see."]);
    assert_eq!(text, " blind. Well, they see.");
    assert_eq!(rep, vec![" blind.".len()]);
}

#[test]
fn filter_complete_reports_repair() {
    let (t, r) = filter_complete("The sun is", " cold.\nCorrection: it is hot.");
    assert!(r);
    assert_eq!(t, " cold.\nCorrection: it is hot.");
    let (_, r) = filter_complete("The sun is", " hot.");
    assert!(!r);
}

#[test]
fn first_text_waits_only_while_a_restart_is_possible() {
    let mut f = ContinuationFilter::new("The capital of France is");
    // "Paris" cannot be a repetition of the opener: released once the word is complete.
    assert_eq!(f.push(" Paris "), vec![FilterEvent::Text(" Paris".into())]);
    let mut g = ContinuationFilter::new("The capital of France is");
    // "The capital of" might be a restart: held.
    assert!(g.push("The capital of ").is_empty());
    assert_eq!(g.push("Spain is Madrid. "), vec![FilterEvent::Text(" The capital of Spain is Madrid.".into())]);
}
