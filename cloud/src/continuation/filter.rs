//! The streaming continuation filter: raw model deltas in, device-ready text and
//! repair events out. Combines marker detection (`markers`) and seam hygiene
//! (`seam`). Output is identical however the input stream is split.

use super::markers::{Item, MarkerScanner};
use super::seam::{decide_start, norm_word};
use super::start::{OpenerWords, StartDecider};

/// What the filter produces, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterEvent {
    /// Text to append after the opener (the first one carries the join space).
    Text(String),
    /// The continuation begins a recovery here (emitted at most once per stream).
    Repair,
}

#[derive(Debug)]
enum Phase {
    /// Still deciding how the continuation joins the opener; `buf` holds its start
    /// and `dec` what is already known about it (so each delta costs its own length).
    Start { buf: String, dec: StartDecider },
    /// Seam settled; text passes through.
    Passing,
}

/// Streaming filter for one continuation.
///
/// ```
/// use cloud::continuation::{ContinuationFilter, FilterEvent};
/// let mut f = ContinuationFilter::new("The capital of France is");
/// let mut out = f.push("Sure, continuing: The capital of France is");
/// out.extend(f.push(" Paris."));
/// out.extend(f.finish());
/// assert_eq!(out, vec![FilterEvent::Text(" Paris.".into())]);
/// ```
#[derive(Debug)]
pub struct ContinuationFilter {
    opener: String,
    opener_words: OpenerWords,
    /// Decide the seam from the whole buffer on every call (the quadratic
    /// definition), to check the incremental decider against it in tests.
    reference: bool,
    markers: MarkerScanner,
    phase: Phase,
    repaired: bool,
    /// Whitespace held back in the passing phase: emitted before the next word,
    /// dropped at the end (no trailing blanks) and merged across stripped markers.
    held_ws: String,
    /// A marker was just stripped: leading whitespace of the next text is dropped if
    /// whitespace is already held, so "a <repair> b" becomes "a b".
    after_marker: bool,
    /// Whether whitespace was already held when the last marker was stripped.
    drop_ws_after_marker: bool,
}

impl ContinuationFilter {
    /// New filter for a continuation of `opener` (the text the device already spoke).
    pub fn new(opener: &str) -> Self {
        Self {
            opener: opener.to_string(),
            opener_words: OpenerWords::new(opener, opener.split_whitespace().map(norm_word).collect()),
            reference: false,
            markers: MarkerScanner::default(),
            phase: Phase::Start { buf: String::new(), dec: StartDecider::default() },
            repaired: false,
            held_ws: String::new(),
            after_marker: false,
            drop_ws_after_marker: false,
        }
    }

    /// The same filter deciding the seam from scratch on every delta (reference).
    #[cfg(test)]
    pub(crate) fn new_reference(opener: &str) -> Self {
        let mut f = Self::new(opener);
        f.reference = true;
        f.markers = MarkerScanner::reference();
        f
    }

    /// Feed one raw delta from the model; returns the events it releases.
    pub fn push(&mut self, raw: &str) -> Vec<FilterEvent> {
        let mut items = Vec::new();
        self.markers.push(raw, &mut items);
        self.process(items, false)
    }

    /// End of the model's stream; returns whatever was held back.
    pub fn finish(&mut self) -> Vec<FilterEvent> {
        let mut items = Vec::new();
        self.markers.finish(&mut items);
        self.process(items, true)
    }

    /// Whether a repair event has been emitted.
    pub fn repaired(&self) -> bool {
        self.repaired
    }

    fn process(&mut self, items: Vec<Item>, fin: bool) -> Vec<FilterEvent> {
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Text(t) => self.text(&t, false, &mut out),
                Item::StrippedMarker { repair } => {
                    self.settle_at_marker(&mut out);
                    if repair {
                        self.repair(&mut out);
                    }
                    if matches!(self.phase, Phase::Passing) {
                        self.after_marker = true;
                        self.drop_ws_after_marker = !self.held_ws.is_empty();
                    }
                }
                Item::CorrectionStart => {
                    self.settle_at_marker(&mut out);
                    self.repair(&mut out);
                }
            }
        }
        if fin {
            self.text("", true, &mut out);
            // Trailing whitespace is never emitted.
            self.held_ws.clear();
        }
        coalesce(out)
    }

    fn repair(&mut self, out: &mut Vec<FilterEvent>) {
        if !self.repaired {
            self.repaired = true;
            out.push(FilterEvent::Repair);
        }
    }

    /// A marker ends the seam region: decide on what was buffered as if the stream
    /// ended there. If nothing survives, stay in the start phase so the text after
    /// the marker still gets the join treatment.
    fn settle_at_marker(&mut self, out: &mut Vec<FilterEvent>) {
        if let Phase::Start { buf, dec } = &mut self.phase {
            let blank = if self.reference { buf.trim().is_empty() } else { dec.only_whitespace(buf) };
            if blank {
                buf.clear();
                *dec = StartDecider::default();
                return;
            }
            let decided = self.decide(true).unwrap_or_default();
            self.phase = Phase::Passing;
            self.pass(&decided, out);
        }
    }

    /// The seam decision on the buffered start (start phase only).
    fn decide(&mut self, fin: bool) -> Option<String> {
        let Phase::Start { buf, dec } = &mut self.phase else {
            return None;
        };
        if self.reference {
            decide_start(&self.opener, &self.opener_words.words, buf, fin)
        } else {
            dec.decide(&self.opener, &self.opener_words, buf, fin)
        }
    }

    fn text(&mut self, t: &str, fin: bool, out: &mut Vec<FilterEvent>) {
        match &mut self.phase {
            Phase::Start { buf, .. } => {
                buf.push_str(t);
                if let Some(decided) = self.decide(fin) {
                    self.phase = Phase::Passing;
                    self.after_marker = false;
                    self.pass(&decided, out);
                }
            }
            Phase::Passing => self.pass(t, out),
        }
    }

    /// Passing phase: hold trailing whitespace, merge whitespace around markers.
    fn pass(&mut self, t: &str, out: &mut Vec<FilterEvent>) {
        let mut t = t;
        if self.after_marker {
            // Whitespace right after a stripped marker is kept only if none came before it.
            let trimmed = t.trim_start();
            if !self.drop_ws_after_marker {
                self.held_ws.push_str(&t[..t.len() - trimmed.len()]);
            }
            t = trimmed;
            if t.is_empty() {
                return;
            }
            self.after_marker = false;
        }
        let body = t.trim_end();
        let tail = &t[body.len()..];
        if body.is_empty() {
            self.held_ws.push_str(tail);
            return;
        }
        let mut s = std::mem::take(&mut self.held_ws);
        s.push_str(body);
        self.held_ws.push_str(tail);
        out.push(FilterEvent::Text(s));
    }
}

/// Merge adjacent text events.
fn coalesce(events: Vec<FilterEvent>) -> Vec<FilterEvent> {
    let mut out: Vec<FilterEvent> = Vec::with_capacity(events.len());
    for e in events {
        match (out.last_mut(), e) {
            (Some(FilterEvent::Text(a)), FilterEvent::Text(b)) => a.push_str(&b),
            (_, e) => out.push(e),
        }
    }
    out
}

/// Run a whole raw continuation through a fresh filter (convenience for tests
/// and non-streaming callers). Returns the text and whether a repair occurred.
pub fn filter_complete(opener: &str, raw: &str) -> (String, bool) {
    let mut f = ContinuationFilter::new(opener);
    let mut events = f.push(raw);
    events.extend(f.finish());
    let mut text = String::new();
    for e in events {
        if let FilterEvent::Text(t) = e {
            text.push_str(&t);
        }
    }
    (text, f.repaired())
}

#[cfg(test)]
mod tests {
    use super::{ContinuationFilter, FilterEvent};
    use rand::{Rng, SeedableRng};

    /// Pieces that hit every path of the seam and marker logic.
    const PIECES: [&str; 40] = [
        "Sure, ",
        "continuing:",
        " ",
        "   ",
        "\n",
        "\t",
        "The",
        " capital",
        " of",
        " France",
        " is",
        " Paris",
        ".",
        ",",
        "<repair>",
        "</repair>",
        "<rep",
        "air>",
        "Correction:",
        "Correc",
        "tion: ",
        "…",
        "...",
        "sure",
        "ok",
        "! ",
        "’",
        "'s",
        "France,",
        "é",
        "Here's the rest:",
        " capital of",
        "capital",
        "is is",
        " the",
        "(continuing)",
        "Of course, ",
        "got it. ",
        "—",
        "a",
    ];
    const OPENERS: [&str; 8] = [
        "The capital of France is",
        "The capital of France is Paris.",
        "",
        "Well,",
        "is is is is",
        "the the the",
        "Of course the",
        "a a a a a a a a a a",
    ];

    fn run(mut f: ContinuationFilter, deltas: &[String]) -> Vec<Vec<FilterEvent>> {
        let mut out: Vec<Vec<FilterEvent>> = deltas.iter().map(|d| f.push(d)).collect();
        out.push(f.finish());
        out
    }

    #[test]
    fn incremental_filter_equals_the_reference_on_random_streams() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..20_000 {
            let opener = OPENERS[rng.random_range(0..OPENERS.len())];
            let n = rng.random_range(0..14);
            let raw: String = (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect();
            // Split at random char boundaries into deltas (some empty).
            let chars: Vec<char> = raw.chars().collect();
            let mut deltas = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                let k = rng.random_range(0..=4.min(chars.len() - i));
                deltas.push(chars[i..i + k].iter().collect::<String>());
                i += k;
            }
            let fast = run(ContinuationFilter::new(opener), &deltas);
            let reference = run(ContinuationFilter::new_reference(opener), &deltas);
            assert_eq!(fast, reference, "case {case}: opener {opener:?}, deltas {deltas:?}");
        }
    }

    #[test]
    fn long_blank_and_meta_floods_cost_linear_work() {
        // Work is counted, not timed: with the reference decider every delta
        // rescans the buffer; here each delta must be examined once. A flood of
        // 200k single blanks then periods ("..." is a meta phrase) must still
        // finish and produce the right seam.
        let mut f = ContinuationFilter::new("The capital of France is");
        for _ in 0..200_000 {
            assert!(f.push(" ").is_empty());
        }
        for _ in 0..30_000 {
            assert!(f.push(".").is_empty());
        }
        let mut out = f.push(" Paris.");
        out.extend(f.finish());
        assert_eq!(out, vec![FilterEvent::Text(" Paris.".into())]);
    }
}
