//! Unit tests for [`super::for_speech`], driven by realistic chat-model output.

use super::for_speech;

#[test]
fn plain_text_is_unchanged() {
    let t = "It is 21°C in Paris today, with 40% humidity.";
    assert_eq!(for_speech(t), t);
}

#[test]
fn bullets_and_headers_become_sentences() {
    let md =
        "## Quick tips\n\nHere are a few ideas:\n\n- Drink **plenty** of water\n- Get *at least* 7 hours of sleep\n* Take short walks\n";
    assert_eq!(for_speech(md), "Quick tips. Here are a few ideas: Drink plenty of water. Get at least 7 hours of sleep. Take short walks.");
}

#[test]
fn numbered_lists_keep_their_numbers_without_sentence_periods() {
    let md = "To make tea:\n1. Boil the water.\n2) Add the tea bag\n3. Wait 3.5 minutes";
    assert_eq!(for_speech(md), "To make tea: 1, Boil the water. 2, Add the tea bag. 3, Wait 3.5 minutes.");
}

#[test]
fn fenced_code_blocks_are_dropped() {
    let md = "Use this function:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nThen call `add(1, 2)`.";
    assert_eq!(for_speech(md), "Use this function: Then call add(1, 2).");
}

#[test]
fn unclosed_fence_drops_the_rest() {
    let md = "Here you go:\n```rust\nfn main() {}\n";
    assert_eq!(for_speech(md), "Here you go:");
}

#[test]
fn code_spans_keep_text_and_read_underscores_as_spaces() {
    assert_eq!(for_speech("Call `parse_config()` first."), "Call parse config first.");
    assert_eq!(for_speech("Set ``max_tokens`` to 256."), "Set max tokens to 256.");
}

#[test]
fn links_images_and_urls() {
    assert_eq!(for_speech("See the [Rust book](https://doc.rust-lang.org/book/) for details."), "See the Rust book for details.");
    assert_eq!(for_speech("![A cat](cat.png) Cute, right?"), "A cat Cute, right?");
    assert_eq!(
        for_speech("More at https://www.example.com/docs?page=2. Or <https://news.ycombinator.com>."),
        "More at example.com. Or news.ycombinator.com."
    );
    assert_eq!(for_speech("A footnote[^1] here."), "A footnote here.");
}

#[test]
fn emphasis_variants() {
    assert_eq!(for_speech("This is ***very*** important, __really__ _truly_ ~~not~~ so."), "This is very important, really truly not so.");
    assert_eq!(for_speech("snake_case stays a word"), "snake case stays a word");
    assert_eq!(for_speech("2 * 3 = 6"), "2 times 3 = 6");
}

#[test]
fn emoji_are_dropped_without_leaving_gaps() {
    assert_eq!(for_speech("Great job! 🎉🎉 You did it 👍🏽."), "Great job! You did it.");
    assert_eq!(for_speech("👨‍👩‍👧 ❤️ ✅"), "");
    assert_eq!(for_speech("Step one → step two"), "Step one to step two");
    assert_eq!(for_speech("✅ **Done:** all tests pass 🚀"), "Done: all tests pass");
}

#[test]
fn quotes_rules_tables_and_html() {
    let md = "> Note: this is quoted.\n\n---\n\n| Name | Age |\n|------|----:|\n| Ann | 31 |\n\nLine<br>break &amp; more";
    assert_eq!(for_speech(md), "Note: this is quoted. Name, Age. Ann, 31. Line break & more");
}

#[test]
fn task_lists() {
    assert_eq!(for_speech("- [x] Buy milk\n- [ ] Call mom"), "Buy milk. Call mom.");
}

#[test]
fn chunk_endings_are_preserved() {
    assert_eq!(for_speech("Well, **honestly**,"), "Well, honestly,");
    assert_eq!(for_speech("and then"), "and then");
}

#[test]
fn a_full_llm_answer() {
    let md = "Sure! Here's a quick overview of **Rust** 🦀:\n\n### Why Rust?\n\n1. **Memory safety** without a garbage collector.\n2. **Speed** comparable to C/C++.\n\nYou can learn more at [rust-lang.org](https://www.rust-lang.org).\n\n```bash\ncurl https://sh.rustup.rs | sh\n```\n\nLet me know if you have questions! 😊";
    assert_eq!(
        for_speech(md),
        "Sure! Here's a quick overview of Rust: Why Rust? 1, Memory safety without a garbage collector. \
         2, Speed comparable to C/C++. You can learn more at rust-lang.org. Let me know if you have questions!"
    );
}

#[test]
fn degenerate_inputs_do_not_panic() {
    for t in ["", " ", "\n\n", "***", "```", "[", "](", "[a](", "<", "&", "**", "_", "`", "...", "!?", "\u{0}", "🤖", "# ", "- ", "1. "] {
        let _ = for_speech(t);
    }
    assert_eq!(for_speech("..."), "");
    let long = "word ".repeat(10_000);
    assert_eq!(for_speech(&long).split(' ').count(), 10_000);
}
