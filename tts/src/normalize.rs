//! Markdown-flavoured LLM output → text a voice can read aloud.
//!
//! Language models answer in Markdown: bullets, headers, `**bold**`, code,
//! links and emoji. Read literally, espeak-ng says "asterisk asterisk" and
//! spells out URLs. [`for_speech`] removes the markup and keeps the words.
//! Numbers, units, dates and symbols such as `%` or `°C` are left alone:
//! espeak-ng already reads them well.

/// Turns one piece of (possibly Markdown) text into plain speakable text.
///
/// - fenced code blocks (```` ``` ```` / `~~~`) are dropped, including an
///   unclosed one at the end;
/// - headers, bullets, numbered items, block quotes and table rows lose their
///   markers and become sentences (a `.` is added when they have no final
///   punctuation, so the voice pauses between items);
/// - `**bold**`, `*italics*`, `__x__`, `_x_`, `~~x~~` keep only their text;
///   `` `code` `` keeps its text with `_` read as a space;
/// - `[text](url)` and `![alt](url)` become `text` / `alt`; bare URLs and
///   `<https://…>` become their host name ("example.com");
/// - emoji are dropped; arrows (`→`, `⇒`) read as "to";
/// - HTML tags are dropped and common entities decoded.
///
/// The result is a single line. Trailing clause punctuation is preserved, so
/// chunks from [`crate::chunk::Chunker`] keep their `,` / `.` endings.
/// Pure function: no allocation beyond the returned string and its scratch.
pub fn for_speech(text: &str) -> String {
    let mut lines: Vec<(String, bool)> = Vec::new();
    let mut fence: Option<&str> = None;
    for raw in text.lines() {
        let t = raw.trim();
        if let Some(marker) = fence {
            if t.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = Some(&t[..3]);
            continue;
        }
        if t.is_empty() {
            lines.push((String::new(), false));
            continue;
        }
        if is_rule(t) || is_table_separator(t) {
            continue;
        }
        let (body, is_item) = strip_block_marker(t);
        let spoken = tidy(&inline(&body));
        if spoken.is_empty() {
            continue;
        }
        lines.push((spoken, is_item));
    }
    join_lines(lines)
}

/// Joins lines into one; a line break ends a sentence in LLM output, so a
/// line followed by more text (or a list item / header) gets a final period.
fn join_lines(lines: Vec<(String, bool)>) -> String {
    let non_empty: Vec<(String, bool)> = lines.into_iter().filter(|(l, _)| !l.is_empty()).collect();
    let n = non_empty.len();
    let mut out = String::new();
    for (i, (mut line, is_item)) in non_empty.into_iter().enumerate() {
        let more_follows = i + 1 < n;
        if (is_item || more_follows) && !ends_with_punct(&line) {
            line.push('.');
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&line);
    }
    out
}

fn ends_with_punct(s: &str) -> bool {
    s.trim_end_matches(['"', '\'', ')', '”', '’']).ends_with(['.', ',', ';', ':', '?', '!', '…'])
}

/// `---`, `***`, `___`, `===` (setext underline) and their spaced forms.
fn is_rule(t: &str) -> bool {
    let c: Vec<char> = t.chars().filter(|c| !c.is_whitespace()).collect();
    c.len() >= 3
        && (c.iter().all(|&x| x == '-') || c.iter().all(|&x| x == '*') || c.iter().all(|&x| x == '_') || c.iter().all(|&x| x == '='))
}

/// `|---|:---:|` rows of a Markdown table.
fn is_table_separator(t: &str) -> bool {
    t.contains('-') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Removes a header / bullet / number / quote / table marker. Returns the
/// remaining text and whether the line is an item that should end in a pause.
fn strip_block_marker(t: &str) -> (String, bool) {
    let mut t = t;
    // Block quotes, possibly nested: "> > text".
    while let Some(rest) = t.strip_prefix('>') {
        t = rest.trim_start();
    }
    let hashes = t.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
        return (t[hashes..].trim().trim_end_matches('#').trim().to_string(), true);
    }
    for bullet in ["- ", "* ", "+ ", "• ", "· ", "– "] {
        if let Some(rest) = t.strip_prefix(bullet) {
            let rest = rest.trim_start();
            // Task lists: "- [ ] todo", "- [x] done".
            let rest = ["[ ] ", "[x] ", "[X] "].iter().find_map(|m| rest.strip_prefix(m)).unwrap_or(rest);
            return (rest.to_string(), true);
        }
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if (1..=3).contains(&digits) && (t[digits..].starts_with(". ") || t[digits..].starts_with(") ")) {
        // Keep the number ("one, preheat the oven") but not the period, which
        // would read as a sentence end.
        return (format!("{}, {}", &t[..digits], t[digits + 2..].trim_start()), true);
    }
    if t.starts_with('|') && t.ends_with('|') && t.len() > 1 {
        let cells: Vec<&str> = t[1..t.len() - 1].split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        return (cells.join(", "), true);
    }
    (t.to_string(), false)
}

/// Inline Markdown, URLs, HTML and emoji.
fn inline(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '`' => {
                let run = count_run(&chars, i, '`');
                if let Some(close) = find_run(&chars, i + run, '`', run) {
                    let code: String = chars[i + run..close].iter().collect();
                    out.push_str(&speak_code(code.trim()));
                    i = close + run;
                } else {
                    i += run; // stray backticks
                }
            }
            '!' if chars.get(i + 1) == Some(&'[') => {
                if let Some((label, next)) = link(&chars, i + 1) {
                    out.push_str(&label);
                    i = next;
                } else {
                    out.push('!');
                    i += 1;
                }
            }
            '[' => {
                if chars.get(i + 1) == Some(&'^') {
                    // Footnote reference "[^1]".
                    i = chars[i..].iter().position(|&x| x == ']').map_or(i + 1, |p| i + p + 1);
                } else if let Some((label, next)) = link(&chars, i) {
                    out.push_str(&inline(&label));
                    i = next;
                } else {
                    i += 1; // a lone bracket is not spoken
                }
            }
            '<' => {
                if let Some(close) = chars[i..].iter().position(|&x| x == '>').map(|p| i + p) {
                    let inner: String = chars[i + 1..close].iter().collect();
                    if inner.starts_with("http://") || inner.starts_with("https://") || inner.starts_with("www.") {
                        out.push_str(&host_of(&inner));
                        i = close + 1;
                        continue;
                    }
                    if looks_like_tag(&inner) {
                        out.push(' ');
                        i = close + 1;
                        continue;
                    }
                }
                out.push('<');
                i += 1;
            }
            '&' => {
                let (text, len) = entity(&chars, i);
                out.push_str(text);
                i += len;
            }
            '*' | '~' => {
                let run = count_run(&chars, i, c);
                // A spaced "*" between numbers is multiplication; everything
                // else is emphasis (or a stray marker) and is not spoken.
                let spaced = i > 0 && chars[i - 1] == ' ' && chars.get(i + run) == Some(&' ');
                if c == '*' && run == 1 && spaced && prev_non_space_is_digit(&chars, i) {
                    out.push_str("times");
                } else if c == '~' && run == 1 {
                    out.push('~');
                }
                i += run;
            }
            '_' => {
                let run = count_run(&chars, i, '_');
                let inside_word = i > 0 && chars[i - 1].is_alphanumeric() && chars.get(i + run).is_some_and(|x| x.is_alphanumeric());
                if inside_word {
                    out.push(' '); // snake_case → "snake case"
                }
                i += run;
            }
            '\\' => {
                // Markdown escape: "\*" means a literal "*", which we still drop.
                i += 1;
            }
            _ if starts_url(&chars, i) => {
                let end = url_end(&chars, i);
                let url: String = chars[i..end].iter().collect();
                out.push_str(&host_of(&url));
                i = end;
            }
            '→' | '⇒' | '⟶' | '➜' | '➔' | '⟹' => {
                out.push_str(" to ");
                i += 1;
            }
            _ if is_emoji(c) => {
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn count_run(chars: &[char], i: usize, c: char) -> usize {
    chars[i..].iter().take_while(|&&x| x == c).count()
}

/// Index of the next run of exactly `len` copies of `c` at or after `from`.
fn find_run(chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
    let mut j = from;
    while j < chars.len() {
        if chars[j] == c {
            let run = count_run(chars, j, c);
            if run == len {
                return Some(j);
            }
            j += run;
        } else {
            j += 1;
        }
    }
    None
}

fn prev_non_space_is_digit(chars: &[char], i: usize) -> bool {
    chars[..i].iter().rev().find(|c| !c.is_whitespace()).is_some_and(char::is_ascii_digit)
}

/// `[label](target)`, `[label][ref]` or `[label]` starting at `open`.
/// Returns the label and the index after the construct.
fn link(chars: &[char], open: usize) -> Option<(String, usize)> {
    let mut depth = 0usize;
    let mut close = None;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let label: String = chars[open + 1..close].iter().collect();
    let after = close + 1;
    let closer = match chars.get(after) {
        Some('(') => ')',
        Some('[') => ']',
        _ => return Some((label, after)),
    };
    let end = chars[after..].iter().position(|&c| c == closer)? + after;
    Some((label, end + 1))
}

fn speak_code(code: &str) -> String {
    code.trim_end_matches("()").replace('_', " ")
}

fn looks_like_tag(inner: &str) -> bool {
    let t = inner.trim_start_matches('/');
    t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && t.chars().take_while(|c| !c.is_whitespace() && *c != '/').all(|c| c.is_ascii_alphanumeric())
}

fn entity(chars: &[char], i: usize) -> (&'static str, usize) {
    const ENTITIES: &[(&str, &str)] =
        &[("&amp;", "&"), ("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&apos;", "'")];
    for (name, text) in ENTITIES {
        let n = name.chars().count();
        if chars.len() >= i + n && chars[i..i + n].iter().copied().eq(name.chars()) {
            return (text, n);
        }
    }
    ("&", 1)
}

fn starts_url(chars: &[char], i: usize) -> bool {
    let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
    let rest = |p: &str| chars.len() >= i + p.len() && chars[i..i + p.len()].iter().copied().eq(p.chars());
    at_word_start && (rest("http://") || rest("https://") || rest("www."))
}

/// A URL runs to whitespace or a closing bracket; trailing sentence
/// punctuation belongs to the sentence, not the URL.
fn url_end(chars: &[char], i: usize) -> usize {
    let mut end = i;
    while end < chars.len() && !chars[end].is_whitespace() && !matches!(chars[end], ')' | '>' | ']' | '"') {
        end += 1;
    }
    while end > i && matches!(chars[end - 1], '.' | ',' | ';' | ':' | '!' | '?' | '\'') {
        end -= 1;
    }
    end
}

/// "https://www.example.com/a?b" → "example.com".
fn host_of(url: &str) -> String {
    let no_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let host = no_scheme.split(['/', '?', '#', ':']).next().unwrap_or("");
    host.trim_start_matches("www.").to_string()
}

/// Pictographs, dingbats, flags, keycaps, variation selectors and joiners.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF   // emoticons, pictographs, transport, flags, supplemental symbols
        | 0x2600..=0x27BF   // misc symbols and dingbats (☀ ✅ ✔ ❤)
        | 0x2B00..=0x2BFF   // arrows and stars (⭐ ⬆)
        | 0x2300..=0x23FF   // misc technical (⌚ ⏰ ⏩)
        | 0x2190..=0x21FF   // remaining arrows
        | 0x25A0..=0x25FF   // geometric shapes (▶ ◀ ■)
        | 0xFE00..=0xFE0F   // variation selectors
        | 0x200D            // zero-width joiner
        | 0x20E3            // combining keycap
        | 0xE0000..=0xE007F // tag characters (subdivision flags)
        | 0x00A9 | 0x00AE | 0x2122 // © ® ™
    )
}

/// Collapses whitespace and repairs spacing left by removed markup.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        let glue = word.starts_with(['.', ',', ';', ':', '!', '?', ')']) && !out.is_empty();
        if !out.is_empty() && !glue {
            out.push(' ');
        }
        out.push_str(word);
    }
    // Parentheses emptied by dropped content, e.g. "(🎉)" or "(<br>)".
    while let Some(p) = out.find("()") {
        out.replace_range(p..p + 2, "");
    }
    let out = out.replace(" ,", ",").replace(",,", ",").replace(" .", ".");
    let trimmed = out.trim().trim_start_matches([',', ';', ':']).trim();
    if trimmed.chars().all(|c| !c.is_alphanumeric()) {
        return String::new();
    }
    trimmed.to_string()
}

#[cfg(test)]
mod tests;
