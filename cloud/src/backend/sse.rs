//! Minimal Server-Sent Events parser (enough for OpenAI-style streaming).
//!
//! Bytes arrive in arbitrary chunks; complete events (terminated by a blank
//! line) come out. Only `data:` fields matter here; multi-line data is joined
//! with `\n`; comments (`:`) and other fields are ignored.

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    /// Feed bytes; returns the `data` payloads of the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
        }
        out
    }

    /// End of body: an event not terminated by a blank line is still delivered.
    pub fn finish(&mut self) -> Option<String> {
        let tail = std::mem::take(&mut self.buf);
        if !tail.is_empty() {
            let line = String::from_utf8_lossy(&tail);
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
        }
        if self.data.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.data).join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SseParser;

    #[test]
    fn events_split_anywhere() {
        let body = b": comment\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        let want = vec!["{\"a\":1}".to_string(), "x\ny".into(), "[DONE]".into()];
        for i in 0..=body.len() {
            let mut p = SseParser::default();
            let mut got = p.push(&body[..i]);
            got.extend(p.push(&body[i..]));
            assert_eq!(got, want, "split at {i}");
            assert_eq!(p.finish(), None);
        }
    }

    #[test]
    fn unterminated_last_event() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: tail").is_empty());
        assert_eq!(p.finish().as_deref(), Some("tail"));
    }
}
