//! The charge correction against a server that counts exactly (issue 24, item 1): reading the
//! server's count as of the answer overstates it by the round trip's refill, so only what
//! survives that uncertainty, in reports that agree, may raise later estimates. Against a
//! scripted server in paused time, OpenAI-style (with and without `openai-processing-ms`) and
//! Anthropic-style, the correction stays at 1.0 and a prompt that fits the server is never
//! refused; a server that counts 20 % more is still followed.

use std::time::Duration;

use ratelimited::testing::{fresh_registry_with_env, spawn_scoped};
use ratelimited::{http::WithHeaders, rate_limited, CallError, Error, Registry};
use serde_json::Value;
use tokio::time::Instant;

mod header_feedback_support;
use header_feedback_support::{ExactServer, Style};

const CLAUDE: &str = "claude-sonnet-4-5";
const GPT: &str = "gpt-4o-mini";

/// One call of `model` (Claude or GPT: the server speaks the style it was started with).
#[rate_limited(model = model, tokens = prompt, max_tokens = max_tokens, retries = 20)]
async fn ask(
    server: &ExactServer,
    model: &str,
    prompt: u64,
    max_tokens: u64,
) -> Result<WithHeaders<Value>, CallError> {
    server
        .chat(prompt, max_tokens)
        .await
        .map_err(CallError::from)
}

fn correction(model: &str) -> f64 {
    Registry::current()
        .limiter(model)
        .unwrap()
        .charge_correction()
}

/// The Claude Sonnet tier-1 account of the issue: 50 RPM, 30,000 ITPM, 8,000 OTPM.
fn claude_server() -> ExactServer {
    ExactServer::anthropic(50, 30_000, 8_000)
}

#[tokio::test(start_paused = true)]
async fn after_one_ordinary_call_a_long_claude_prompt_that_fits_the_server_is_sent() {
    // Tier-1 at the default headroom 0.9: 27,000 input tokens a minute for the limiter.
    let _registry = fresh_registry_with_env(Vec::<(String, String)>::new());
    let server = claude_server().timing(
        Duration::from_millis(30),
        Duration::from_secs(2),
        Duration::from_millis(30),
    );
    ask(&server, CLAUDE, 2_000, 1_000).await.unwrap();
    let factor = correction(CLAUDE);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The server has all 30,000 free again; the limiter 27,000.
    let long = ask(&server, CLAUDE, 20_000, 1_000).await;
    let shown = long.as_ref().map(|_| "sent");
    println!("after one 2,000-token call: correction {factor}; 20,000 tokens: {shown:?}");
    assert!(
        !matches!(long, Err(CallError::Limiter(Error::RequestTooLarge { .. }))),
        "{long:?}"
    );
    long.unwrap();
    assert_eq!(factor, 1.0);
    assert_eq!(server.rejected(), 0);
}

/// Three 2,000-token calls one after the other, 2 s on the server each, from `style`.
async fn three_calls(style: Style) -> f64 {
    let timing = (
        Duration::from_millis(30),
        Duration::from_secs(2),
        Duration::from_millis(30),
    );
    match style {
        Style::Anthropic => {
            let server = claude_server().timing(timing.0, timing.1, timing.2);
            for _ in 0..3 {
                ask(&server, CLAUDE, 2_000, 500).await.unwrap();
            }
            correction(CLAUDE)
        }
        _ => {
            let server =
                ExactServer::openai(style, 500, 30_000).timing(timing.0, timing.1, timing.2);
            for _ in 0..3 {
                ask(&server, GPT, 2_000, 500).await.unwrap();
            }
            correction(GPT)
        }
    }
}

const STYLES: [Style; 3] = [
    Style::OpenAi,
    Style::OpenAiWithoutProcessing,
    Style::Anthropic,
];

#[tokio::test(start_paused = true)]
async fn an_exact_server_leaves_the_correction_at_one_after_calls_in_turn() {
    let mut factors = Vec::new();
    for style in STYLES {
        let _registry = fresh_registry_with_env([
            ("RATE_LIMITED_GPT_4O_MINI_RPM", "500"),
            ("RATE_LIMITED_GPT_4O_MINI_TPM", "30000"),
        ]);
        let factor = three_calls(style).await;
        println!("{style:?}: three 2,000-token calls, 2 s each: correction {factor}");
        factors.push((style, factor));
    }
    for (style, factor) in factors {
        assert_eq!(factor, 1.0, "{style:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn one_small_call_from_a_full_bucket_leaves_the_correction_at_one() {
    // 30 ms on the wire each way, 100 ms on the server, 300 tokens.
    let mut factors = Vec::new();
    for style in STYLES {
        let _registry = fresh_registry_with_env([
            ("RATE_LIMITED_GPT_4O_MINI_RPM", "500"),
            ("RATE_LIMITED_GPT_4O_MINI_TPM", "30000"),
        ]);
        let ms = Duration::from_millis;
        let factor = match style {
            Style::Anthropic => {
                let server = claude_server().timing(ms(30), ms(100), ms(30));
                ask(&server, CLAUDE, 300, 0).await.unwrap();
                correction(CLAUDE)
            }
            _ => {
                let server =
                    ExactServer::openai(style, 500, 30_000).timing(ms(30), ms(100), ms(30));
                ask(&server, GPT, 300, 0).await.unwrap();
                correction(GPT)
            }
        };
        println!("{style:?}: one 300-token call: correction {factor}");
        factors.push((style, factor));
    }
    for (style, factor) in factors {
        assert_eq!(factor, 1.0, "{style:?}");
    }
}

/// `workers` tasks at once, each sending `calls` calls of `prompt` tokens and `max_tokens`
/// one after the other, against `server`; returns the makespan and the correction at the end.
async fn run(
    server: &ExactServer,
    model: &'static str,
    (workers, calls): (usize, usize),
    (prompt, max_tokens): (u64, u64),
) -> (Duration, f64) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let server = server.clone();
            spawn_scoped(async move {
                for _ in 0..calls {
                    ask(&server, model, prompt, max_tokens)
                        .await
                        .expect("every call succeeds");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (start.elapsed(), correction(model))
}

/// Calls of 1,000 prompt tokens (OpenAI: plus 200 `max_tokens`) by `workers` × `calls`
/// against a server of 60,000 tokens a minute that charges `percent` % of each prompt, the
/// limiter told the server's limits at `headroom`. Returns when the server answered 429s, the
/// makespan and the correction at the end.
async fn against(
    style: Style,
    percent: u64,
    headroom: &str,
    workers: (usize, usize),
) -> (Vec<Duration>, Duration, f64) {
    let _registry = fresh_registry_with_env([
        ("RATE_LIMITED_GPT_4O_MINI_RPM", "1000".to_owned()),
        ("RATE_LIMITED_GPT_4O_MINI_TPM", "60000".to_owned()),
        ("RATE_LIMITED_CLAUDE_SONNET_4_RPM", "1000".to_owned()),
        ("RATE_LIMITED_CLAUDE_SONNET_4_ITPM", "60000".to_owned()),
        ("RATE_LIMITED_CLAUDE_SONNET_4_OTPM", "60000".to_owned()),
        ("RATE_LIMITED_HEADROOM", headroom.to_owned()),
    ]);
    let (server, model) = match style {
        Style::Anthropic => (ExactServer::anthropic(1_000, 60_000, 60_000), CLAUDE),
        _ => (ExactServer::openai(style, 1_000, 60_000), GPT),
    };
    let server = server.overcharging(percent);
    let (makespan, factor) = run(&server, model, workers, (1_000, 200)).await;
    (server.rejected_at(), makespan, factor)
}

#[tokio::test(start_paused = true)]
async fn an_exact_server_leaves_the_correction_at_one_through_a_batch() {
    let mut results = Vec::new();
    for style in STYLES {
        // 120 calls at once, at headroom 1.0.
        let (rejected, makespan, factor) = against(style, 100, "1", (120, 1)).await;
        let rejected = rejected.len();
        println!(
            "{style:?}: exact server, batch: {rejected} 429s, {makespan:?}, correction {factor}"
        );
        results.push((style, rejected, factor));
    }
    for (style, rejected, factor) in results {
        assert_eq!((rejected, factor), (0, 1.0), "{style:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_counts_a_fifth_more_is_still_followed() {
    // Eight callers in a loop, at the default headroom.
    let mut results = Vec::new();
    for style in STYLES {
        let (rejected, makespan, factor) = against(style, 120, "0.9", (8, 30)).await;
        println!(
            "{style:?}: server at 120 %, 8 × 30 calls: {} 429s, {makespan:?}, correction {factor}",
            rejected.len()
        );
        results.push((style, rejected.len(), factor));
    }
    for (style, rejected, factor) in results {
        assert_eq!(rejected, 0, "{style:?}");
        assert!(factor > 1.15 && factor < 1.25, "{style:?}: {factor}");
    }
}

/// A batch that starts all at once outruns the correction by the opening flood: the first
/// answer opens the opening gate (at 260 ms), before any three reports can agree, so the calls
/// it releases are estimated at 1.0. Against a server that charges 20 % more, the headroom
/// covers that where the output reservation dilutes the excess (OpenAI: prompt plus
/// `max_tokens`), not on input tokens alone (Anthropic): two calls of that flood are refused,
/// as before the correction was fixed. The correction is about 1.2 by the end either way.
#[tokio::test(start_paused = true)]
async fn a_batch_against_a_server_that_counts_a_fifth_more_is_refused_only_in_the_opening_flood() {
    let mut results = Vec::new();
    for style in STYLES {
        let (rejected, makespan, factor) = against(style, 120, "0.9", (120, 1)).await;
        println!(
            "{style:?}: server at 120 %, a batch of 120: 429s at {rejected:?}, {makespan:?}, \
             correction {factor}"
        );
        results.push((style, rejected, factor));
    }
    for (style, rejected, factor) in results {
        let flood = match style {
            Style::Anthropic => vec![Duration::from_millis(290); 2],
            _ => Vec::new(),
        };
        assert_eq!(rejected, flood, "{style:?}");
        assert!(factor > 1.15 && factor < 1.25, "{style:?}: {factor}");
    }
}
