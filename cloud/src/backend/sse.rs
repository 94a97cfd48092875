//! Minimal Server-Sent Events parser (enough for OpenAI-style streaming).
//!
//! Bytes arrive in arbitrary chunks; complete events (terminated by a blank
//! line) come out. Only `data:` fields matter here; multi-line data is joined
//! with `\n`; comments (`:`) and other fields are ignored.

/// Largest line or event (`data` joined) the parser holds, bytes: an upstream
/// that never ends its line cannot grow the buffer without bound.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Vec<String>,
    data_bytes: usize,
}

impl SseParser {
    /// Feed bytes; returns the `data` payloads of the events completed by them.
    /// Errors: a line or event longer than [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        // Lines are cut from the front with one drain at the end (not one per line).
        let mut from = 0;
        while let Some(rel) = self.buf[from..].iter().position(|&b| b == b'\n') {
            let pos = from + rel;
            let mut line: Vec<u8> = self.buf[from..pos].to_vec();
            from = pos + 1;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                    self.data_bytes = 0;
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data_bytes += rest.len() + 1;
                if self.data_bytes > MAX_EVENT_BYTES {
                    return Err(format!("SSE event over {MAX_EVENT_BYTES} bytes"));
                }
                self.data.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
        }
        self.buf.drain(..from);
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(format!("SSE line over {MAX_EVENT_BYTES} bytes"));
        }
        Ok(out)
    }

    /// End of body: an event not terminated by a blank line is still delivered.
    pub fn finish(&mut self) -> Option<String> {
        let tail = std::mem::take(&mut self.buf);
        self.data_bytes = 0;
        if !tail.is_empty() {
            let line = String::from_utf8_lossy(&tail);
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix("data:") {
                self.data.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
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
    use super::{SseParser, MAX_EVENT_BYTES};

    #[test]
    fn an_endless_line_is_an_error_not_a_growing_buffer() {
        let mut p = SseParser::default();
        let chunk = vec![b'x'; 64 * 1024];
        let failed = (0..(MAX_EVENT_BYTES / chunk.len() + 2)).any(|_| p.push(&chunk).is_err());
        assert!(failed);
    }

    #[test]
    fn events_split_anywhere() {
        let body = b": comment\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        let want = vec!["{\"a\":1}".to_string(), "x\ny".into(), "[DONE]".into()];
        for i in 0..=body.len() {
            let mut p = SseParser::default();
            let mut got = p.push(&body[..i]).unwrap();
            got.extend(p.push(&body[i..]).unwrap());
            assert_eq!(got, want, "split at {i}");
            assert_eq!(p.finish(), None);
        }
    }

    #[test]
    fn unterminated_last_event() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: tail").unwrap().is_empty());
        assert_eq!(p.finish().as_deref(), Some("tail"));
    }
}
