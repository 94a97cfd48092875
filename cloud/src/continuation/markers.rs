//! Stage 1 of the streaming filter: find recovery markers in raw model output.
//!
//! * `<repair>` (natural / humor modes) is removed from the text and becomes a
//!   repair item; a stray `</repair>` is removed silently.
//! * A line that starts with `Correction:` (exact case) (explicit mode) becomes a repair item
//!   and its text is kept (the correction is meant to be heard).
//!
//! Text that might be the beginning of a marker is held back until it is known,
//! so the result does not depend on where the stream was split.

use super::instructions::{CORRECTION_PREFIX, REPAIR_MARKER};

const CLOSE_MARKER: &str = "</repair>";

/// Output of the marker scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// Plain text.
    Text(String),
    /// A marker was removed here; `repair` is true for `<repair>`, false for `</repair>`.
    StrippedMarker { repair: bool },
    /// An explicit `Correction:` line starts here (its text follows as `Text`).
    CorrectionStart,
}

/// How far `input` matches `pattern` (ASCII case-insensitive).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PrefixMatch {
    /// `input` starts with `pattern`.
    Full,
    /// `input` is a proper prefix of `pattern`: more input is needed.
    Partial,
    /// Neither.
    No,
}

pub(crate) fn prefix_match_ci(input: &str, pattern: &str) -> PrefixMatch {
    prefix_match(input, pattern, true)
}

/// Like [`prefix_match_ci`], case-sensitive when `ignore_case` is false.
pub(crate) fn prefix_match(input: &str, pattern: &str, ignore_case: bool) -> PrefixMatch {
    let (i, p) = (input.as_bytes(), pattern.as_bytes());
    let n = i.len().min(p.len());
    let same = if ignore_case { i[..n].eq_ignore_ascii_case(&p[..n]) } else { i[..n] == p[..n] };
    if !same {
        PrefixMatch::No
    } else if i.len() >= p.len() {
        PrefixMatch::Full
    } else {
        PrefixMatch::Partial
    }
}

/// Incremental marker scanner; feed it raw deltas in order.
#[derive(Debug)]
pub(crate) struct MarkerScanner {
    /// Raw text not yet classified (a possible marker prefix).
    pending: String,
    /// At the beginning of a line (stream start or after `\n`).
    line_start: bool,
    /// `pending` is only blanks at the start of a line: more blanks cannot change
    /// anything, so they are appended without rescanning (a stream of blanks
    /// would otherwise be rescanned on every delta: quadratic).
    blank_hold: bool,
    /// Always rescan (the reference behaviour, for tests).
    reference: bool,
}

impl Default for MarkerScanner {
    fn default() -> Self {
        Self { pending: String::new(), line_start: true, blank_hold: true, reference: false }
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl MarkerScanner {
    /// A scanner that rescans everything held on every push (reference).
    #[cfg(test)]
    pub fn reference() -> Self {
        Self { reference: true, ..Self::default() }
    }

    /// Feed raw text; classified items are appended to `out`.
    pub fn push(&mut self, text: &str, out: &mut Vec<Item>) {
        self.pending.push_str(text);
        if !self.reference && self.blank_hold && text.bytes().all(is_blank) {
            // Scanning would hold all of it again and emit nothing.
            return;
        }
        self.scan(false, out);
        self.blank_hold = self.line_start && self.pending.bytes().all(is_blank);
    }

    /// End of stream: release everything held back.
    pub fn finish(&mut self, out: &mut Vec<Item>) {
        self.scan(true, out);
    }

    fn scan(&mut self, fin: bool, out: &mut Vec<Item>) {
        let p = std::mem::take(&mut self.pending);
        let mut i = 0usize; // scan position (byte index into p)
        let mut text_start = 0usize; // first byte not yet emitted
        let emit = |out: &mut Vec<Item>, s: &str| {
            if !s.is_empty() {
                out.push(Item::Text(s.to_string()));
            }
        };
        while i < p.len() {
            if self.line_start {
                let rest = &p[i..];
                let trimmed = rest.trim_start_matches([' ', '\t']);
                let ws = rest.len() - trimmed.len();
                if trimmed.is_empty() && !fin {
                    // Only blanks so far on this line: cannot tell yet.
                    emit(out, &p[text_start..i]);
                    self.pending = p[i..].to_string();
                    return;
                }
                // Case-sensitive: a lower-case "correction:" is ordinary text.
                match prefix_match(trimmed, CORRECTION_PREFIX, false) {
                    PrefixMatch::Full => {
                        emit(out, &p[text_start..i]);
                        out.push(Item::CorrectionStart);
                        text_start = i;
                        i += ws + CORRECTION_PREFIX.len();
                        self.line_start = false;
                        continue;
                    }
                    PrefixMatch::Partial if !fin && !trimmed.is_empty() => {
                        emit(out, &p[text_start..i]);
                        self.pending = p[i..].to_string();
                        return;
                    }
                    _ => {
                        self.line_start = false;
                        i += ws;
                        continue;
                    }
                }
            }
            let rest = &p[i..];
            let Some(c) = rest.chars().next() else { break };
            if c == '\n' {
                self.line_start = true;
                i += 1;
                continue;
            }
            if c == '<' {
                let open = prefix_match_ci(rest, REPAIR_MARKER);
                let close = prefix_match_ci(rest, CLOSE_MARKER);
                if open == PrefixMatch::Full || close == PrefixMatch::Full {
                    let repair = open == PrefixMatch::Full;
                    emit(out, &p[text_start..i]);
                    out.push(Item::StrippedMarker { repair });
                    i += if repair { REPAIR_MARKER.len() } else { CLOSE_MARKER.len() };
                    text_start = i;
                    continue;
                }
                if !fin && (open == PrefixMatch::Partial || close == PrefixMatch::Partial) {
                    emit(out, &p[text_start..i]);
                    self.pending = p[i..].to_string();
                    return;
                }
            }
            i += c.len_utf8();
        }
        emit(out, &p[text_start..]);
    }
}
