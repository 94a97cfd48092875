//! The streaming continuation filter: raw model deltas in, device-ready text and
//! repair events out. Combines marker detection (`markers`) and seam hygiene
//! (`seam`). Output is identical however the input stream is split.

use super::markers::{Item, MarkerScanner};
use super::seam::{decide_start, norm_word};

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
    /// Still deciding how the continuation joins the opener; `buf` holds its start.
    Start { buf: String },
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
    opener_words: Vec<String>,
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
            opener_words: opener.split_whitespace().map(norm_word).collect(),
            markers: MarkerScanner::default(),
            phase: Phase::Start { buf: String::new() },
            repaired: false,
            held_ws: String::new(),
            after_marker: false,
            drop_ws_after_marker: false,
        }
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
        if let Phase::Start { buf } = &mut self.phase {
            if buf.trim().is_empty() {
                buf.clear();
                return;
            }
            let decided =
                decide_start(&self.opener, &self.opener_words, buf, true).unwrap_or_default();
            self.phase = Phase::Passing;
            self.pass(&decided, out);
        }
    }

    fn text(&mut self, t: &str, fin: bool, out: &mut Vec<FilterEvent>) {
        match &mut self.phase {
            Phase::Start { buf } => {
                buf.push_str(t);
                if let Some(decided) = decide_start(&self.opener, &self.opener_words, buf, fin) {
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
