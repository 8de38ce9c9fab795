//! Cached prompts (issue 19, item 5): a batch of Anthropic-style calls whose prompts are 90 %
//! cache reads finishes in about the time the uncached input allows, because the settle leaves
//! cache reads out of ITPM as Anthropic does on current models; the same batch, settled as if
//! every input token counted, takes ten times longer. Both against a scripted server that
//! counts like Anthropic (cache reads free, cache writes and uncached input charged), in
//! paused time, with zero 429s.

use std::time::Duration;

use ratelimited::testing::{fresh_registry_with_env, spawn_scoped};
use ratelimited::{http::WithHeaders, rate_limited, CallError, ReportUsage, Usage};
use serde_json::{json, Value};
use tokio::time::Instant;

mod header_feedback_support;
use header_feedback_support::ExactServer;

/// Claude Sonnet 4.x at tier 1: 50 RPM, 30,000 ITPM, 8,000 OTPM; cache reads not counted.
const CLAUDE: &str = "claude-sonnet-4-5";
const CALLS: u64 = 40;
const PROMPT: u64 = 10_000;
/// 90 % of each prompt: a shared system prompt, read from the cache after the first call.
const PREFIX: u64 = 9_000;
const MAX_TOKENS: u64 = 100;

/// One call whose prompt opens with the shared prefix.
#[rate_limited(model = CLAUDE, tokens = prompt, max_tokens = max_tokens, retries = 20)]
async fn ask(
    server: &ExactServer,
    prompt: u64,
    max_tokens: u64,
) -> Result<WithHeaders<Value>, CallError> {
    server
        .chat_prefixed(Some(("system prompt", PREFIX)), prompt, max_tokens)
        .await
        .map_err(CallError::from)
}

/// The same call, reporting its usage without the cache counts: a client that settles every
/// input token, as the library did before it read them.
#[rate_limited(model = CLAUDE, tokens = prompt, max_tokens = max_tokens, retries = 20)]
async fn ask_counting_every_token(
    server: &ExactServer,
    prompt: u64,
    max_tokens: u64,
) -> Result<WithHeaders<Value>, CallError> {
    let mut reply = server
        .chat_prefixed(Some(("system prompt", PREFIX)), prompt, max_tokens)
        .await
        .map_err(CallError::from)?;
    let usage = reply.body.usage().expect("the server reports usage");
    reply.body = json!({"usage": {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens
    }});
    Ok(reply)
}

/// Runs the batch, all calls at once, and returns its makespan.
async fn batch(server: &ExactServer, cache_aware: bool) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLS)
        .map(|_| {
            let server = server.clone();
            spawn_scoped(async move {
                let reply = if cache_aware {
                    ask(&server, PROMPT, MAX_TOKENS).await
                } else {
                    ask_counting_every_token(&server, PROMPT, MAX_TOKENS).await
                };
                reply.expect("every call succeeds");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_cached_prompt_batch_runs_at_the_rate_its_uncached_input_allows() {
    let _registry = fresh_registry_with_env(Vec::<(String, String)>::new());
    let server = ExactServer::anthropic(50, 30_000, 8_000);
    let cached = batch(&server, true).await;
    let cached_rejected = server.rejected();

    let _registry = fresh_registry_with_env(Vec::<(String, String)>::new());
    let fresh = ExactServer::anthropic(50, 30_000, 8_000);
    let counted = batch(&fresh, false).await;

    // What ITPM allows at the default headroom 0.9 (27,000 a minute, 450 a second, the
    // bucket full at the start): the first call writes the prefix (all 10,000 count), the
    // other 39 count their 1,000 uncached tokens. A client cannot know before a call what the
    // cache will serve, so it reserves the whole prompt and gives the cache reads back when
    // the answer says: its last call still needs 10,000 free to start, 9,000 more than it
    // will be charged, which is 20 s of refill at the end of the batch.
    let rate = 27_000.0 / 60.0;
    let seconds = |tokens: u64| Duration::from_secs_f64((tokens as f64 - 27_000.0) / rate);
    let uncached = PROMPT + (CALLS - 1) * (PROMPT - PREFIX);
    let bound = seconds(uncached);
    let reserving_whole_prompts = seconds(uncached + PREFIX);
    let every_token = seconds(CALLS * PROMPT);
    println!(
        "{CALLS} calls of {PROMPT} input tokens, {PREFIX} of them cache reads (ITPM 30,000, \
         headroom 0.9):\n  \
         cache reads left out of ITPM: {:>6.1} s, 429s: {} (the uncached input allows {:.1} s; \
         reserving each whole prompt until it settles, {:.1} s)\n  \
         every input token counted:    {:>6.1} s, 429s: {} (counting every token allows {:.1} s)",
        cached.as_secs_f64(),
        cached_rejected,
        bound.as_secs_f64(),
        reserving_whole_prompts.as_secs_f64(),
        counted.as_secs_f64(),
        fresh.rejected(),
        every_token.as_secs_f64(),
    );
    assert_eq!(cached_rejected, 0);
    assert_eq!(fresh.rejected(), 0);
    assert!(
        cached * 10 < counted,
        "cached {cached:?} vs counted {counted:?}"
    );
    assert!(cached >= bound, "{cached:?} beat the bound {bound:?}");
    // The last call's round trip (0.26 s) after its admission.
    assert!(
        cached <= reserving_whole_prompts + Duration::from_secs(1),
        "{cached:?} vs {reserving_whole_prompts:?}"
    );
    assert!(
        counted <= every_token + Duration::from_secs(1),
        "{counted:?}"
    );
}

#[test]
fn the_scripted_server_reports_anthropic_cache_counts() {
    let usage = json!({"usage": {
        "input_tokens": 1_000,
        "cache_read_input_tokens": 9_000,
        "cache_creation_input_tokens": 0,
        "output_tokens": 100
    }})
    .usage();
    assert_eq!(usage, Some(Usage::new(10_000, 100).with_cache_reads(9_000)));
}
