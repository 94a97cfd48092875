//! WebSocket protocol frames (cloud::protocol): any text is a frame or a decode error on
//! both sides; a decoded frame re-encodes to text that decodes to the same frame.
#![no_main]
use cloud::protocol::{ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = ClientFrame::decode(text) {
        let again = ClientFrame::decode(&f.encode()).expect("a client frame re-encodes to a valid frame");
        assert_eq!(format!("{f:?}"), format!("{again:?}"));
    }
    if let Ok(f) = ServerFrame::decode(text) {
        let _ = f.request_id();
        let _ = f.encode();
    }
});
