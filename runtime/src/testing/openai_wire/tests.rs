//! The wire format against what OpenAI sends: headers, error envelopes, bodies.

use super::*;
use crate::model::tokens::Encoding;

#[test]
fn go_durations() {
    let ms = Duration::from_millis;
    assert_eq!(go_duration(Duration::ZERO), "0s");
    assert_eq!(go_duration(Duration::from_nanos(1)), "1ms");
    assert_eq!(go_duration(ms(20)), "20ms");
    assert_eq!(go_duration(ms(1000)), "1s");
    assert_eq!(go_duration(ms(1500)), "1.5s");
    assert_eq!(go_duration(ms(46_001)), "46.001s");
    assert_eq!(go_duration(ms(60_000)), "1m0s");
    assert_eq!(go_duration(ms(360_000)), "6m0s");
    assert_eq!(go_duration(ms(5_400_000)), "1h30m0s");
    assert_eq!(go_duration(ms(3_661_010)), "1h1m1.01s");
    for d in [20, 999, 1000, 46_001, 360_000, 5_400_000, 3_661_010] {
        assert_eq!(
            crate::answers::http::parse_go_duration(&go_duration(ms(d))),
            Some(ms(d))
        );
    }
}

#[test]
fn chat_json_parsing() {
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello!"}], "name": "ann"}
        ],
        "max_completion_tokens": 50,
        "max_tokens": 999,
        "n": 2
    });
    let (model, work) = parse_chat(&body).unwrap();
    assert_eq!(model, "gpt-4o-mini");
    let expected = count_chat(
        Encoding::O200kBase,
        &[
            ChatMessage::system("Be brief."),
            ChatMessage::user("Hello!").with_name("ann"),
        ],
    );
    match work {
        RequestedWork::Chat {
            prompt_tokens,
            max_tokens,
            n,
            ..
        } => {
            assert_eq!(prompt_tokens, expected);
            assert_eq!(max_tokens, Some(50));
            assert_eq!(n, 2);
        }
        other => panic!("{other:?}"),
    }
    for bad in [
        json!([]),
        json!({"messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "m"}),
        json!({"model": "m", "messages": []}),
        json!({"model": "m", "messages": [{"content": "x"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
    ] {
        let err = parse_chat(&bad).unwrap_err();
        assert_eq!(err.status, 400, "{bad}");
        assert!(err.body.contains("invalid_request_error"));
    }
}

#[test]
fn embeddings_json_parsing() {
    let enc = Encoding::Cl100kBase;
    let (_, work) =
        parse_embeddings(&json!({"model": "text-embedding-3-small", "input": "hello world"}))
            .unwrap();
    assert!(
        matches!(work, RequestedWork::Embeddings { ref inputs, dimensions: 8 } if inputs == &[count_tokens(enc, "hello world")])
    );
    let (_, work) = parse_embeddings(&json!({
        "model": "text-embedding-3-small", "input": ["a b", [1, 2, 3]], "dimensions": 4
    }))
    .unwrap();
    assert!(
        matches!(work, RequestedWork::Embeddings { ref inputs, dimensions: 4 } if inputs == &[count_tokens(enc, "a b"), 3])
    );
    let (_, work) =
        parse_embeddings(&json!({"model": "text-embedding-3-small", "input": [5, 6]})).unwrap();
    assert!(matches!(work, RequestedWork::Embeddings { ref inputs, .. } if inputs == &[2]));
    for bad in [
        json!({"model": "m"}),
        json!({"model": "m", "input": ""}),
        json!({"model": "m", "input": []}),
        json!({"model": "m", "input": [1, "x"]}),
        json!({"model": "m", "input": "x", "dimensions": 0}),
        json!({"input": "x"}),
    ] {
        assert_eq!(parse_embeddings(&bad).unwrap_err().status, 400, "{bad}");
    }
}
