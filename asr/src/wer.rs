//! Word error rate: Levenshtein distance over normalized words, divided by the reference
//! length — the standard ASR measure (substitutions + deletions + insertions) / N.

use serde::Serialize;

/// Lower-cases, maps hyphens and slashes to spaces, drops other punctuation (keeping
/// apostrophes inside words, so "don't" stays one word) and splits on whitespace.
pub fn normalize_words(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '-' | '–' | '—' | '/' => cleaned.push(' '),
            '\'' | '’' => cleaned.push('\''),
            c if c.is_alphanumeric() || c.is_whitespace() => cleaned.extend(c.to_lowercase()),
            _ => {}
        }
    }
    cleaned.split_whitespace().map(|w| w.trim_matches('\'').to_string()).filter(|w| !w.is_empty()).collect()
}

/// Edit counts between a reference and a hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WerStats {
    /// Minimum substitutions + deletions + insertions.
    pub errors: usize,
    /// Words in the normalized reference.
    pub ref_words: usize,
    /// `errors / ref_words` (0 when both are empty, 1 per word when the reference is empty).
    pub wer: f64,
}

/// Word error rate of `hypothesis` against `reference`, after [`normalize_words`].
pub fn wer(reference: &str, hypothesis: &str) -> WerStats {
    let r = normalize_words(reference);
    let h = normalize_words(hypothesis);
    let errors = edit_distance(&r, &h);
    let wer = if r.is_empty() { errors as f64 } else { errors as f64 / r.len() as f64 };
    WerStats { errors, ref_words: r.len(), wer }
}

fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        assert_eq!(normalize_words("And so, my fellow Americans: ask NOT!"), ["and", "so", "my", "fellow", "americans", "ask", "not"]);
        assert_eq!(normalize_words("Don't re-use 'quotes'"), ["don't", "re", "use", "quotes"]);
        assert!(normalize_words(" ... ").is_empty());
    }

    #[test]
    fn counts_each_edit_kind() {
        assert_eq!(wer("the cat sat", "the cat sat").errors, 0);
        assert_eq!(wer("the cat sat", "the bat sat").errors, 1); // substitution
        assert_eq!(wer("the cat sat", "the sat").errors, 1); // deletion
        assert_eq!(wer("the cat sat", "the cat sat down").errors, 1); // insertion
        assert_eq!(wer("a b c d", "b c d e").errors, 2);
        let s = wer("one two three four", "one too three");
        assert_eq!((s.errors, s.ref_words), (2, 4));
        assert!((s.wer - 0.5).abs() < 1e-12);
    }

    #[test]
    fn empty_cases() {
        assert_eq!(wer("", "").wer, 0.0);
        assert_eq!(wer("", "hello there").wer, 2.0);
        assert_eq!(wer("hello", "").wer, 1.0);
    }
}
