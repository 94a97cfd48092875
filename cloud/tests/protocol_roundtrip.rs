//! Every protocol frame survives encode → decode, with the documented JSON shape.

use cloud::protocol::*;
use serde_json::json;

fn sample_request() -> ContinueRequest {
    ContinueRequest {
        id: 7,
        messages: vec![Message::system("be brief"), Message::user("What is TFLite Micro?"), Message::assistant("Earlier answer.")],
        opener: "TFLite Micro is a company that specializes in".into(),
        opener_complete: false,
        mode: RecoveryMode::Humor,
        max_tokens: 120,
    }
}

fn client_frames() -> Vec<ClientFrame> {
    vec![
        ClientFrame::Hello { version: PROTOCOL_VERSION, token: "t0k€n".into() },
        ClientFrame::Continue(sample_request()),
        ClientFrame::Continue(ContinueRequest { mode: RecoveryMode::Explicit, opener: String::new(), ..sample_request() }),
        ClientFrame::Continue(ContinueRequest { mode: RecoveryMode::Natural, ..sample_request() }),
        ClientFrame::Cancel { id: u64::MAX },
        ClientFrame::Ping { nonce: 42 },
    ]
}

fn server_frames() -> Vec<ServerFrame> {
    vec![
        ServerFrame::Ready { version: 1, backend: "local".into(), max_frame_bytes: 65536 },
        ServerFrame::Delta { id: 7, text: " tiny \"devices\"\n".into() },
        ServerFrame::Repair { id: 7, mode: RecoveryMode::Natural },
        ServerFrame::Done {
            id: 7,
            finish_reason: FinishReason::Stop,
            usage: Usage { prompt_tokens: 10, completion_tokens: 20 },
            timings_ms: Timings { first_delta_ms: Some(812.5), total_ms: 2000.25, injected_ms: 790.0 },
        },
        ServerFrame::Done {
            id: 8,
            finish_reason: FinishReason::Cancelled,
            usage: Usage::default(),
            timings_ms: Timings { first_delta_ms: None, total_ms: 1.5, injected_ms: 0.0 },
        },
        ServerFrame::Done { id: 9, finish_reason: FinishReason::Length, usage: Usage::default(), timings_ms: Timings::default() },
        ServerFrame::Done { id: 9, finish_reason: FinishReason::Error, usage: Usage::default(), timings_ms: Timings::default() },
        ServerFrame::Error { id: Some(7), code: ErrorCode::DuplicateId, message: "dup".into() },
        ServerFrame::Error { id: None, code: ErrorCode::BadFrame, message: "bad".into() },
        ServerFrame::Pong { nonce: 42 },
    ]
}

#[test]
fn client_frames_round_trip() {
    for f in client_frames() {
        let text = f.encode();
        assert_eq!(ClientFrame::decode(&text).unwrap(), f, "{text}");
    }
}

#[test]
fn server_frames_round_trip() {
    for f in server_frames() {
        let text = f.encode();
        assert_eq!(ServerFrame::decode(&text).unwrap(), f, "{text}");
    }
}

#[test]
fn every_error_code_round_trips() {
    use ErrorCode::*;
    for code in [
        BadFrame,
        UnknownType,
        FrameTooLarge,
        Unauthorized,
        VersionMismatch,
        NotReady,
        DuplicateId,
        UnknownId,
        TooManyRequests,
        TooManySessions,
        Backend,
        Internal,
    ] {
        let f = ServerFrame::Error { id: None, code, message: String::new() };
        assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
    }
}

#[test]
fn wire_shape_matches_the_docs() {
    let v: serde_json::Value = serde_json::from_str(&ClientFrame::Continue(sample_request()).encode()).unwrap();
    assert_eq!(v["type"], "continue");
    assert_eq!(v["mode"], "humor");
    assert_eq!(v["opener_complete"], false);
    assert_eq!(v["messages"][1], json!({"role": "user", "content": "What is TFLite Micro?"}));
    let v: serde_json::Value = serde_json::from_str(&ServerFrame::Repair { id: 1, mode: RecoveryMode::Explicit }.encode()).unwrap();
    assert_eq!(v, json!({"type": "repair", "id": 1, "mode": "explicit"}));
    let v: serde_json::Value =
        serde_json::from_str(&ServerFrame::Error { id: None, code: ErrorCode::FrameTooLarge, message: "m".into() }.encode()).unwrap();
    assert_eq!(v, json!({"type": "error", "code": "frame_too_large", "message": "m"}));
    // The documented example frames decode.
    let doc = r#"{"type":"continue","id":1,"messages":[{"role":"user","content":"What is TFLite Micro?"}],"opener":"TFLite Micro is a company that specializes in","opener_complete":false,"mode":"humor","max_tokens":120}"#;
    assert!(matches!(ClientFrame::decode(doc), Ok(ClientFrame::Continue(_))));
    let done = r#"{"type":"done","id":2,"finish_reason":"stop","usage":{"prompt_tokens":180,"completion_tokens":6},"timings_ms":{"first_delta_ms":310.2,"total_ms":402.7,"injected_ms":0.0}}"#;
    assert!(matches!(ServerFrame::decode(done), Ok(ServerFrame::Done { id: 2, .. })));
}

#[test]
fn mode_defaults_to_natural() {
    let f = ClientFrame::decode(r#"{"type":"continue","id":1,"messages":[],"opener":"","opener_complete":true,"max_tokens":5}"#).unwrap();
    match f {
        ClientFrame::Continue(r) => assert_eq!(r.mode, RecoveryMode::Natural),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decode_errors_are_classified() {
    assert_eq!(ClientFrame::decode("not json").unwrap_err().code(), ErrorCode::BadFrame);
    assert_eq!(ClientFrame::decode("[1,2]").unwrap_err().code(), ErrorCode::BadFrame);
    assert_eq!(ClientFrame::decode(r#"{"id":1}"#).unwrap_err().code(), ErrorCode::BadFrame);
    assert_eq!(ClientFrame::decode(r#"{"type":"frobnicate"}"#).unwrap_err().code(), ErrorCode::UnknownType);
    assert_eq!(ClientFrame::decode(r#"{"type":"cancel"}"#).unwrap_err().code(), ErrorCode::BadFrame);
    assert_eq!(ClientFrame::decode(r#"{"type":"continue","id":"x"}"#).unwrap_err().code(), ErrorCode::BadFrame);
    assert_eq!(ServerFrame::decode(r#"{"type":"surprise"}"#).unwrap_err().code(), ErrorCode::UnknownType);
}
