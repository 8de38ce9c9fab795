//! The `async-openai` integration: estimates of its chat and embedding requests, their output
//! budgets, usage from its responses, classification of `OpenAIError`, and one end-to-end
//! `#[rate_limited]` function calling the bundled mock server with async-openai's `Client`
//! (plain HTTP on loopback).
#![cfg(feature = "async-openai")]

use std::time::Duration;

use async_openai::error::{ApiError, ApiErrorResponse, OpenAIError, StreamError};
use async_openai::types::chat::{
    ChatCompletionRequestMessage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
};
use async_openai::types::embeddings::{
    CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput,
};
use ratelimited::testing::{fresh_registry_with_env, MockLimits, MockServer};
use ratelimited::tokens::{count_chat, count_tokens, encoding_for_model, ChatMessage, Encoding};
use ratelimited::{
    rate_limited, CallError, Classify, EstimateTokens, MaxOutput, OutputBudget, ReportUsage, Usage,
    Verdict,
};
// The facade does not re-export `integrations` yet; the runtime is the same crate underneath.
use serde_json::{json, Value};

const MODEL: &str = "gpt-4o-mini";

fn chat_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn conversation() -> Value {
    json!([
        {"role": "developer", "content": "Answer in one line."},
        {"role": "system", "content": "You are terse.", "name": "rules"},
        {"role": "user", "content": "Hello there, how are you?", "name": "alice"},
        {"role": "assistant", "content": "Fine, thanks."},
        {"role": "user", "content": "Summarize the French Revolution."}
    ])
}

fn conversation_as_chat_messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("developer", "Answer in one line."),
        ChatMessage::system("You are terse.").with_name("rules"),
        ChatMessage::user("Hello there, how are you?").with_name("alice"),
        ChatMessage::assistant("Fine, thanks."),
        ChatMessage::user("Summarize the French Revolution."),
    ]
}

#[test]
fn chat_estimate_equals_count_chat_of_the_same_messages() {
    let request = chat_request(json!({"model": MODEL, "messages": conversation()}));
    let expected = conversation_as_chat_messages();
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        assert_eq!(
            request.estimate_tokens(encoding),
            count_chat(encoding, &expected),
            "{encoding}"
        );
        // The messages alone, as a slice argument, are the same conversation.
        assert_eq!(
            request.messages.estimate_tokens(encoding),
            count_chat(encoding, &expected)
        );
    }
    assert_eq!(
        request.text_len(),
        expected.iter().map(|m| m.content.len()).sum::<usize>()
    );
    // One message on its own is a one-message conversation.
    let single: &ChatCompletionRequestMessage = &request.messages[4];
    assert_eq!(
        single.estimate_tokens(Encoding::O200kBase),
        count_chat(Encoding::O200kBase, &expected[4..])
    );
    // Approximations scale each text piece on its own: never below, at most one per piece above.
    let approx = Encoding::ANTHROPIC;
    let exact = count_chat(approx, &expected);
    let estimate = request.estimate_tokens(approx);
    assert!(
        (exact..=exact + 5).contains(&estimate),
        "{estimate} vs {exact}"
    );
}

#[test]
fn array_contents_count_their_text_parts_not_images() {
    let enc = Encoding::O200kBase;
    let request = chat_request(json!({"model": MODEL, "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "text", "text": "Answer in French."}
        ]}
    ]}));
    let framing_and_first_parts = count_chat(
        enc,
        &[
            ChatMessage::system("Be brief."),
            ChatMessage::user("What is in this picture?"),
        ],
    );
    assert_eq!(
        request.estimate_tokens(enc),
        framing_and_first_parts + count_tokens(enc, "Answer in French.")
    );
}

#[test]
fn tool_calls_and_tool_definitions_are_prompt_text() {
    let enc = Encoding::O200kBase;
    let messages = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
        }]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"}
    ]);
    let plain = chat_request(json!({"model": MODEL, "messages": messages}));
    let expected = count_chat(
        enc,
        &[
            ChatMessage::user("Weather in Paris?"),
            ChatMessage::assistant(""),
            ChatMessage::new("tool", "18C, cloudy"),
        ],
    ) + count_tokens(enc, "get_weather")
        + count_tokens(enc, "{\"city\":\"Paris\"}");
    assert_eq!(plain.estimate_tokens(enc), expected);

    let tool = json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }});
    let with_tools = chat_request(json!({"model": MODEL, "messages": messages, "tools": [tool]}));
    let tools_json = serde_json::to_string(&with_tools.tools).unwrap();
    assert_eq!(
        with_tools.estimate_tokens(enc),
        expected + count_tokens(enc, &tools_json)
    );
}

#[test]
fn budget_reads_max_completion_tokens_max_tokens_and_n() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let budget = |extra: Value| {
        let mut body = json!({"model": MODEL, "messages": messages});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        chat_request(body).output_budget()
    };
    assert_eq!(
        budget(json!({"max_completion_tokens": 300, "n": 3})),
        MaxOutput {
            max_tokens: Some(300),
            n: Some(3)
        }
    );
    assert_eq!(
        budget(json!({"max_tokens": 200})),
        MaxOutput {
            max_tokens: Some(200),
            n: None
        }
    );
    assert_eq!(
        budget(json!({"max_completion_tokens": 300, "max_tokens": 200})).max_tokens,
        Some(300),
        "max_completion_tokens wins over the deprecated max_tokens"
    );
    assert_eq!(budget(json!({})), MaxOutput::default());
}

#[test]
fn embedding_estimate_and_budget() {
    let enc = encoding_for_model("text-embedding-3-small");
    let request = |input: EmbeddingInput| CreateEmbeddingRequest {
        model: "text-embedding-3-small".into(),
        input,
        ..Default::default()
    };
    let one = request(EmbeddingInput::String("The quick brown fox".into()));
    assert_eq!(
        one.estimate_tokens(enc),
        count_tokens(enc, "The quick brown fox")
    );
    assert_eq!(one.text_len(), "The quick brown fox".len());
    let many = request(EmbeddingInput::StringArray(vec![
        "alpha".into(),
        "beta gamma".into(),
    ]));
    assert_eq!(
        many.estimate_tokens(enc),
        count_tokens(enc, "alpha") + count_tokens(enc, "beta gamma")
    );
    let tokens = request(EmbeddingInput::ArrayOfIntegerArray(vec![
        vec![1, 2, 3],
        vec![4],
    ]));
    assert_eq!(tokens.estimate_tokens(enc), 4);
    assert_eq!(
        request(EmbeddingInput::IntegerArray(vec![9; 7])).estimate_tokens(enc),
        7
    );
    assert_eq!(one.output_budget().max_tokens, Some(0));
}

#[test]
fn usage_from_responses() {
    let response: CreateChatCompletionResponse = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": "Hi!"}}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28,
                  "completion_tokens_details": {"reasoning_tokens": 4}}
    }))
    .unwrap();
    assert_eq!(response.usage(), Some(Usage::new(21, 7)));
    // Through the wrappers a function may return.
    let result: Result<_, OpenAIError> = Ok(response.clone());
    assert_eq!(result.usage(), Some(Usage::new(21, 7)));

    let mut without = response;
    without.usage = None;
    assert_eq!(without.usage(), None, "no usage: the estimate stands");

    let embeddings: CreateEmbeddingResponse = serde_json::from_value(json!({
        "object": "list", "model": "text-embedding-3-small",
        "data": [{"index": 0, "object": "embedding", "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 5, "total_tokens": 5}
    }))
    .unwrap();
    assert_eq!(embeddings.usage(), Some(Usage::new(5, 0)));
}

#[test]
fn cached_prompt_tokens_from_responses_and_stream_chunks() {
    let response: CreateChatCompletionResponse = serde_json::from_value(json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": "Hi!"}}],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                  "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}}
    }))
    .unwrap();
    let expected = Usage::new(2006, 300).with_cache_reads(1920);
    assert_eq!(response.usage(), Some(expected));

    let chunk: CreateChatCompletionStreamResponse = serde_json::from_value(json!({
        "id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                  "prompt_tokens_details": {"cached_tokens": 1920}}
    }))
    .unwrap();
    let update = ratelimited::stream::StreamUsage::usage(&chunk).unwrap();
    assert_eq!(update.cache_read_input_tokens, Some(1920));
    assert_eq!(update.input_tokens, Some(2006));
}

fn api_error(status: u16, body: Value) -> OpenAIError {
    let api_error: ApiError = serde_json::from_value(body).unwrap();
    OpenAIError::ApiError(ApiErrorResponse {
        status_code: reqwest::StatusCode::from_u16(status).unwrap(),
        api_error,
    })
}

#[test]
fn api_errors_classify_like_the_http_responses() {
    let quota = api_error(
        429,
        json!({"message": "You exceeded your current quota, please check your plan and billing details.",
               "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}),
    );
    assert!(
        matches!(quota.classify(), Verdict::QuotaExhausted { ref message } if message.starts_with("You exceeded")),
        "{:?}",
        quota.classify()
    );

    let too_large = api_error(
        429,
        json!({"message": "Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 34307.",
               "type": "tokens", "param": null, "code": "rate_limit_exceeded"}),
    );
    assert!(matches!(
        too_large.classify(),
        Verdict::RequestTooLarge { .. }
    ));

    let limited = json!({"message": "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1.146s.",
                         "type": "requests", "param": null, "code": "rate_limit_exceeded"});
    let expected = Verdict::RateLimited {
        retry_after: Some(Duration::from_millis(1146)),
    };
    assert_eq!(api_error(429, limited.clone()).classify(), expected);
    // The code says rate-limited even when a proxy rewrote the status.
    assert_eq!(api_error(400, limited).classify(), expected);

    // async-openai keeps a 5xx body verbatim as the message.
    let server = api_error(
        503,
        json!({"message": "upstream connect error or disconnect/reset before headers"}),
    );
    assert_eq!(server.classify(), Verdict::Transient { retry_after: None });

    let bad_request = api_error(
        400,
        json!({"message": "Invalid 'messages': empty array.", "type": "invalid_request_error",
               "param": "messages", "code": "empty_array"}),
    );
    assert_eq!(bad_request.classify(), Verdict::Fatal);
    assert_eq!(api_error(401, json!({"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"})).classify(), Verdict::Fatal);

    // And through the ready-made error type.
    assert!(matches!(
        CallError::from(quota).classify(),
        Verdict::QuotaExhausted { .. }
    ));
}

#[tokio::test]
async fn client_side_errors_classify() {
    // A transport error: loopback port 9 (discard), nothing listens; one attempt.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let connect = http.get("http://127.0.0.1:9/").send().await.unwrap_err();
    assert!(connect.is_connect());
    assert_eq!(
        OpenAIError::Reqwest(connect).classify(),
        Verdict::Transient { retry_after: None }
    );

    let not_json = serde_json::from_str::<Value>("<html>").unwrap_err();
    assert_eq!(
        OpenAIError::JSONDeserialize(not_json, "<html>".into()).classify(),
        Verdict::Fatal
    );
    assert_eq!(
        OpenAIError::InvalidArgument("messages is empty".into()).classify(),
        Verdict::Fatal
    );
    let dropped = StreamError::EventStream("Transport error: connection reset".into());
    assert!(OpenAIError::StreamError(Box::new(dropped))
        .classify()
        .is_retryable());
    let garbled = StreamError::EventStream("Parse error: bad line".into());
    assert_eq!(
        OpenAIError::StreamError(Box::new(garbled)).classify(),
        Verdict::Fatal
    );
    let limiter = ratelimited::Error::QuotaExhausted {
        message: "out".into(),
    };
    assert!(matches!(
        CallError::from(limiter).classify(),
        Verdict::QuotaExhausted { .. }
    ));
}

/// The request argument gives the estimate and the output reservation; the response settles.
#[rate_limited(model = request.model.as_str())]
async fn complete(
    client: &async_openai::Client<async_openai::config::OpenAIConfig>,
    request: &CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, CallError> {
    Ok(client.chat().create(request.clone()).await?)
}

#[tokio::test]
async fn rate_limited_function_with_the_async_openai_client() {
    let _registry = fresh_registry_with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let server = MockServer::start(MockLimits::new(500, 200_000))
        .await
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let config = async_openai::config::OpenAIConfig::new()
        .with_api_base(server.base_url())
        .with_api_key("test");
    let client = async_openai::Client::build(http, config);

    let request = chat_request(json!({
        "model": MODEL,
        "messages": conversation(),
        "max_completion_tokens": 64,
        "n": 2
    }));
    let response = complete(&client, &request).await.unwrap();
    let usage = response.usage.as_ref().expect("the mock reports usage");
    // The mock counts prompts with `count_chat`: the estimate is exact.
    assert_eq!(
        u64::from(usage.prompt_tokens),
        request.estimate_tokens(encoding_for_model(MODEL))
    );
    assert_eq!(response.choices.len(), 2);
    assert!(u64::from(usage.completion_tokens) <= 2 * 64);
    server.provider().assert_within_limits();
    server.shutdown().await;
}
