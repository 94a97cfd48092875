//! Clause and sentence boundaries in English text, shared by the streaming
//! [`crate::chunk::Chunker`] and the synthesizer's clause splitter.
//!
//! A boundary is a run of punctuation that is followed by whitespace (or by the
//! end of the text once the text is known to be complete). Requiring the
//! following whitespace is what keeps "3.5", "1,000", "10:30", "e.g." and URLs
//! intact without a special case for each.

/// What kind of pause a boundary asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Break {
    /// Inside a sentence: `,` `;` `:` dashes, ellipses before lowercase words.
    Clause,
    /// End of a sentence: `.` `?` `!`, or a line break (list items, headers).
    Sentence,
}

/// One boundary found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Boundary {
    /// Byte offset just past the punctuation run (and any closing quotes or
    /// brackets); the clause is `text[start..end]`.
    pub end: usize,
    /// Clause or sentence.
    pub kind: Break,
    /// The punctuation the voice should hear for this boundary, one of
    /// `, . ? ! ; :` (the characters Piper voices have phoneme ids for).
    pub punct: char,
}

/// Abbreviations after which a period never ends a sentence.
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "vs", "mt", "approx", "ca", "cf", "gen", "gov", "sen", "lt", "col", "capt", "sgt", "rev",
    "hon", "dept", "al",
];

/// Abbreviations that are ordinary words too ("I said no."): not a sentence
/// end only when a number follows ("No. 5", "Fig. 2", "vol. 3").
const BEFORE_NUMBER: &[&str] = &["no", "nos", "fig", "vol", "ch", "sec", "eq", "p", "pp", "art", "st"];

/// Abbreviations that end a sentence only when an uppercase word follows.
const SOMETIMES_FINAL: &[&str] = &["etc", "inc", "ltd", "co", "corp", "jan", "feb", "aug", "sept", "oct", "nov", "dec"];

/// Characters that may close a quotation or bracket right after punctuation;
/// they stay with the clause that ends there. Markdown emphasis markers are
/// included so that `**Note.**` ends where the reader would expect.
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '’' | '”' | '»' | '*' | '_' | '`')
}

fn is_break_punct(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | ',' | ';' | ':' | '…' | '—' | '–')
}

/// Finds every boundary in `text`.
///
/// When `complete` is false, more text may still arrive: a punctuation run at
/// the very end is undecided ("3." may become "3.5") and is not reported.
/// Line breaks are sentence boundaries (list items, headers, paragraphs).
pub(crate) fn find(text: &str, complete: bool) -> Vec<Boundary> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out: Vec<Boundary> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c == '\n' {
            // The newline itself is whitespace and belongs to neither clause.
            let prev = text[..pos].trim_end();
            match out.last_mut() {
                // "Options:\n" — the line break makes the clause a sentence end.
                Some(b) if b.end >= prev.len() => b.kind = Break::Sentence,
                _ if !prev.is_empty() => out.push(Boundary { end: prev.len(), kind: Break::Sentence, punct: '.' }),
                _ => {}
            }
            i += 1;
            continue;
        }
        if !is_break_punct(c) {
            i += 1;
            continue;
        }
        // Collect the whole punctuation run, e.g. "?!", "...", ".)\"".
        let run_start = i;
        let mut j = i;
        while j < chars.len() && is_break_punct(chars[j].1) {
            j += 1;
        }
        let mut k = j;
        while k < chars.len() && is_closer(chars[k].1) {
            k += 1;
        }
        let end = chars.get(k).map_or(text.len(), |&(p, _)| p);
        let followed_by_space = match chars.get(k) {
            Some(&(_, n)) => n.is_whitespace(),
            None => complete,
        };
        // Dashes between words ("this — that", "this - that") have spaces on
        // both sides; a dash glued to a word ("well-known", "2020–2024") is not a break.
        let run: String = chars[run_start..j].iter().map(|&(_, ch)| ch).collect();
        let dash_only = run.chars().all(|ch| matches!(ch, '—' | '–'));
        if dash_only {
            let spaced_before = run_start > 0 && chars[run_start - 1].1.is_whitespace();
            if followed_by_space || spaced_before {
                let end_before = text[..pos].trim_end().len();
                if end_before > 0 {
                    out.push(Boundary { end: end_before, kind: Break::Clause, punct: ',' });
                }
            }
            i = k.max(i + 1);
            continue;
        }
        if !followed_by_space {
            i = k.max(i + 1);
            continue;
        }
        if let Some((kind, punct)) = classify(text, &chars, run_start, &run, k) {
            out.push(Boundary { end, kind, punct });
        }
        i = k.max(i + 1);
    }
    // Also a spaced ASCII hyphen " - " is a clause dash.
    out.extend(spaced_hyphens(text));
    out.sort_by_key(|b| b.end);
    out.dedup_by_key(|b| b.end);
    out
}

/// " - " between words reads like an em dash.
fn spaced_hyphens(text: &str) -> Vec<Boundary> {
    let mut v = Vec::new();
    let mut from = 0;
    while let Some(off) = text[from..].find(" - ") {
        let at = from + off;
        let end = text[..at].trim_end().len();
        let before_is_line_start = text[..at].rsplit('\n').next().is_none_or(|l| l.trim().is_empty());
        if end > 0 && !before_is_line_start {
            v.push(Boundary { end, kind: Break::Clause, punct: ',' });
        }
        from = at + 3;
    }
    v
}

/// Decides what a punctuation run followed by whitespace means.
fn classify(text: &str, chars: &[(usize, char)], run_start: usize, run: &str, after: usize) -> Option<(Break, char)> {
    let word = word_before(text, chars[run_start].0);
    let next = next_word_initial(chars, after);
    let sentence_punct = run.chars().rev().find(|c| matches!(c, '.' | '?' | '!'));
    let is_ellipsis = run.contains('…') || run.contains("..");
    if run.contains('?') {
        return Some((Break::Sentence, '?'));
    }
    if run.contains('!') {
        return Some((Break::Sentence, '!'));
    }
    if is_ellipsis {
        // "Well... I think" ends a thought; "so... maybe" trails inside one.
        return Some(match next {
            Some(n) if n.is_uppercase() => (Break::Sentence, '.'),
            None => (Break::Sentence, '.'),
            _ => (Break::Clause, ','),
        });
    }
    if sentence_punct == Some('.') {
        if is_abbreviation(word, next) || is_list_number(text, chars[run_start].0, word) {
            return None;
        }
        return Some((Break::Sentence, '.'));
    }
    let p = run.chars().next().unwrap_or(',');
    Some((Break::Clause, if matches!(p, ';' | ':') { p } else { ',' }))
}

/// The token (letters, digits, dots) right before byte offset `pos`.
fn word_before(text: &str, pos: usize) -> &str {
    let head = &text[..pos];
    let start =
        head.char_indices().rev().find(|&(_, c)| !(c.is_alphanumeric() || c == '.' || c == '\'')).map_or(0, |(p, c)| p + c.len_utf8());
    &head[start..]
}

/// First character of the next word after index `from`, skipping spaces and
/// opening quotes/brackets.
fn next_word_initial(chars: &[(usize, char)], from: usize) -> Option<char> {
    chars[from.min(chars.len())..]
        .iter()
        .map(|&(_, c)| c)
        .find(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '(' | '[' | '“' | '‘' | '*' | '_'))
}

fn is_abbreviation(word: &str, next: Option<char>) -> bool {
    let lower = word.to_lowercase();
    let bare = lower.trim_start_matches('.');
    if bare.is_empty() {
        return false;
    }
    // Dotted abbreviations: "e.g", "i.e", "a.m", "U.S".
    if bare.contains('.') && bare.split('.').all(|p| p.chars().count() <= 2) {
        // "p.m." / "U.S." can end a sentence; only an uppercase word after tells.
        let ends_sentence_maybe = matches!(bare, "a.m" | "p.m" | "u.s" | "u.k" | "u.s.a");
        return !(ends_sentence_maybe && next.is_some_and(char::is_uppercase));
    }
    // A single capital initial: "J. K. Rowling".
    if word.chars().count() == 1 && word.chars().all(char::is_uppercase) {
        return true;
    }
    if TITLES.contains(&bare) {
        return true;
    }
    if BEFORE_NUMBER.contains(&bare) {
        return next.is_some_and(|c| c.is_ascii_digit());
    }
    if SOMETIMES_FINAL.contains(&bare) {
        return !next.is_some_and(char::is_uppercase);
    }
    false
}

/// "1. First item" at the start of a line is a list number, not a sentence.
fn is_list_number(text: &str, pos: usize, word: &str) -> bool {
    if word.is_empty() || !word.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let line_start = text[..pos].rfind('\n').map_or(0, |p| p + 1);
    text[line_start..pos].trim() == word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(text: &str, complete: bool) -> Vec<(String, Break, char)> {
        find(text, complete).into_iter().map(|b| (text[..b.end].to_string(), b.kind, b.punct)).collect()
    }

    #[test]
    fn commas_and_sentences() {
        let b = ends("Hello there, world. How are you? Fine!", true);
        assert_eq!(b.len(), 4, "{b:?}");
        assert_eq!(b[0], ("Hello there,".into(), Break::Clause, ','));
        assert_eq!(b[1].1, Break::Sentence);
        assert_eq!(b[2].2, '?');
        assert_eq!(b[3].2, '!');
    }

    #[test]
    fn numbers_abbreviations_and_urls_are_not_boundaries() {
        for t in [
            "It costs 3.5 dollars",
            "About 1,000 people",
            "Meet at 10:30 today",
            "Fruit, e.g. apples",
            "Ask Dr. Smith now",
            "See example.com/a.b today",
            "J. K. Rowling wrote it",
            "Use i.e. this one",
            "See No. 5 and Fig. 2 here",
        ] {
            let b: Vec<_> = ends(t, false).into_iter().filter(|(_, k, _)| *k == Break::Sentence).collect();
            assert!(b.is_empty(), "{t:?} -> {b:?}");
        }
    }

    #[test]
    fn ordinary_words_that_look_like_abbreviations_end_sentences() {
        assert_eq!(ends("I said no. Then left.", true).len(), 2);
        assert_eq!(ends("Meet on Main St. Then turn.", true).len(), 2);
    }

    #[test]
    fn trailing_period_undecided_until_complete() {
        assert!(ends("It costs 3.", false).is_empty());
        assert_eq!(ends("It costs 3.", true).len(), 1);
    }

    #[test]
    fn etc_ends_sentence_only_before_capital() {
        assert!(ends("apples, pears, etc. and more", true).iter().all(|(s, _, _)| !s.ends_with("etc.")));
        assert!(ends("apples, pears, etc. Then more", true).iter().any(|(s, _, _)| s.ends_with("etc.")));
    }

    #[test]
    fn closers_stay_with_the_clause() {
        let b = ends("He said \"stop.\" Then left.", true);
        assert_eq!(b[0].0, "He said \"stop.\"");
    }

    #[test]
    fn dashes_and_newlines() {
        let b = ends("One thing — and another - too\nNext line", true);
        assert_eq!(b[0].0, "One thing");
        assert_eq!(b[1].0, "One thing — and another");
        assert_eq!(b[2], ("One thing — and another - too".into(), Break::Sentence, '.'));
        assert!(ends("a well-known 2020–2024 range", true).is_empty());
    }

    #[test]
    fn list_numbers_are_not_sentences() {
        let b = ends("Steps:\n1. Preheat the oven.\n2. Mix.", true);
        assert!(b.iter().all(|(s, _, _)| !s.ends_with("1.")), "{b:?}");
    }

    #[test]
    fn ellipsis() {
        let b = ends("Well... I think so... maybe not.", true);
        assert_eq!(b[0].1, Break::Sentence);
        assert_eq!(b[1].1, Break::Clause);
    }
}
