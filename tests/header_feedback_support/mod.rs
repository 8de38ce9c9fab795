//! A scripted server for the header-feedback tests: it counts exactly what it is sent, on
//! tokio's clock, and reports its count in the rate-limit headers, OpenAI-style (with or
//! without `openai-processing-ms`) or Anthropic-style. Every request spends `outbound` on the
//! wire, is counted when it arrives, is processed for `processing` and comes back in `inbound`.
//!
//! Knobs for the odd servers and gateways of issue 24: a server that counts more than the
//! client ([`ExactServer::overcharging`]), another application on the key
//! ([`ExactServer::other_app`]), a gateway that repeats one stale count
//! ([`ExactServer::replay_last`]) or rewrites the headers ([`ExactServer::rewrite`]).

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ratelimited::http::{HttpError, RateLimitHeaders, WithHeaders};
use serde_json::{json, Value};
use tokio::time::Instant;

const WINDOW_NS: u128 = 60_000_000_000;

/// A continuous-refill bucket of `limit` units a minute, exact to the nanosecond; what is in
/// use is kept in units × [`WINDOW_NS`], and may exceed the limit (another application
/// overran the key).
struct Bucket {
    limit: u64,
    debt: u128,
    at: Instant,
}

impl Bucket {
    fn new(limit: u64, now: Instant) -> Self {
        Bucket {
            limit,
            debt: 0,
            at: now,
        }
    }

    fn full(&self) -> u128 {
        u128::from(self.limit) * WINDOW_NS
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let refill = (now - self.at).as_nanos() * u128::from(self.limit);
            self.debt = self.debt.saturating_sub(refill);
            self.at = now;
        }
    }

    fn wait_for(&self, units: u64) -> Duration {
        let excess = (self.debt + u128::from(units) * WINDOW_NS).saturating_sub(self.full());
        Duration::from_nanos(excess.div_ceil(u128::from(self.limit)) as u64)
    }

    fn take(&mut self, units: u64) {
        self.debt += u128::from(units) * WINDOW_NS;
    }

    fn give_back(&mut self, units: u64) {
        self.debt = self.debt.saturating_sub(u128::from(units) * WINDOW_NS);
    }

    /// Whole units left (rounded down), negative when overrun.
    fn remaining(&self) -> i64 {
        let full = self.full() as i128;
        let left = full - self.debt as i128;
        left.div_euclid(WINDOW_NS as i128) as i64
    }

    fn reset(&self) -> Duration {
        Duration::from_nanos(self.debt.div_ceil(u128::from(self.limit)) as u64)
    }
}

/// How the server writes its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `x-ratelimit-*` for requests and tokens (prompt + `max_tokens`, charged on arrival and
    /// kept), and `openai-processing-ms`.
    OpenAi,
    /// The same without `openai-processing-ms`.
    OpenAiWithoutProcessing,
    /// `anthropic-ratelimit-{requests,input-tokens,output-tokens}-*`, resets as RFC 3339
    /// instants: input tokens charged on arrival, output tokens estimated at `max_tokens` on
    /// arrival and settled to the completion when the answer leaves.
    Anthropic,
}

type Rewrite = Box<dyn FnMut(&mut Vec<(String, String)>) + Send>;

struct State {
    style: Style,
    requests: Bucket,
    /// Tokens (OpenAI) or input tokens (Anthropic).
    tokens: Bucket,
    /// Output tokens (Anthropic only).
    output: Option<Bucket>,
    outbound: Duration,
    processing: Duration,
    inbound: Duration,
    /// What the server charges for a prompt, in percent of it.
    overcharge_percent: u64,
    /// Completion tokens in percent of `max_tokens`.
    completion_percent: u64,
    epoch: Instant,
    admitted: u64,
    /// When each 429 was answered, from the server's start.
    rejected: Vec<Duration>,
    last_headers: Vec<(String, String)>,
    replay: bool,
    rewrite: Option<Rewrite>,
    /// The prompt prefixes the server's cache holds.
    cached_prefixes: HashSet<String>,
}

/// The scripted server; cloning shares it.
#[derive(Clone)]
pub struct ExactServer(Arc<Mutex<State>>);

impl ExactServer {
    fn new(style: Style, rpm: u64, tokens: u64, output: Option<u64>) -> Self {
        let now = Instant::now();
        ExactServer(Arc::new(Mutex::new(State {
            style,
            requests: Bucket::new(rpm, now),
            tokens: Bucket::new(tokens, now),
            output: output.map(|limit| Bucket::new(limit, now)),
            outbound: Duration::from_millis(30),
            processing: Duration::from_millis(200),
            inbound: Duration::from_millis(30),
            overcharge_percent: 100,
            completion_percent: 100,
            epoch: now,
            admitted: 0,
            rejected: Vec::new(),
            last_headers: Vec::new(),
            replay: false,
            rewrite: None,
            cached_prefixes: HashSet::new(),
        })))
    }

    /// An OpenAI-style server of `rpm` requests and `tpm` tokens a minute.
    pub fn openai(style: Style, rpm: u64, tpm: u64) -> Self {
        assert_ne!(style, Style::Anthropic);
        ExactServer::new(style, rpm, tpm, None)
    }

    /// An Anthropic-style server of `rpm` requests, `itpm` input and `otpm` output tokens.
    pub fn anthropic(rpm: u64, itpm: u64, otpm: u64) -> Self {
        ExactServer::new(Style::Anthropic, rpm, itpm, Some(otpm))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    /// Time on the wire out, the server's processing, and on the wire back.
    pub fn timing(self, outbound: Duration, processing: Duration, inbound: Duration) -> Self {
        {
            let mut state = self.state();
            (state.outbound, state.processing, state.inbound) = (outbound, processing, inbound);
        }
        self
    }

    /// Charges `percent` % of each prompt (100: exactly what the client counts).
    pub fn overcharging(self, percent: u64) -> Self {
        self.state().overcharge_percent = percent;
        self
    }

    /// Completes `percent` % of `max_tokens`.
    pub fn completing(self, percent: u64) -> Self {
        self.state().completion_percent = percent;
        self
    }

    /// Another application on the same key takes `tokens` now (it may overrun the limit).
    pub fn other_app(&self, tokens: u64) {
        let mut state = self.state();
        let now = Instant::now();
        state.tokens.refill(now);
        state.tokens.take(tokens);
    }

    /// A gateway in front repeats the last headers it passed, whatever the server counts.
    pub fn replay_last(&self, replay: bool) {
        self.state().replay = replay;
    }

    /// A gateway in front rewrites every answer's headers with `f`.
    pub fn rewrite(&self, f: impl FnMut(&mut Vec<(String, String)>) + Send + 'static) {
        self.state().rewrite = Some(Box::new(f));
    }

    pub fn admitted(&self) -> u64 {
        self.state().admitted
    }

    /// 429s answered.
    pub fn rejected(&self) -> u64 {
        self.state().rejected.len() as u64
    }

    /// When each 429 was answered, from the server's start.
    pub fn rejected_at(&self) -> Vec<Duration> {
        self.state().rejected.clone()
    }

    /// Tokens (input tokens) in use at the server now.
    pub fn tokens_in_use(&self) -> i64 {
        let mut state = self.state();
        state.tokens.refill(Instant::now());
        state.tokens.limit as i64 - state.tokens.remaining()
    }

    /// The wall-clock instant the client reads for `at` (resets are measured from it).
    fn system_time(state: &State, at: Instant) -> SystemTime {
        // 2026-01-01T00:00:00Z.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600) + (at - state.epoch)
    }

    /// One request of `prompt` tokens and `max_tokens`: the body and the headers, or a 429
    /// (with its headers) when it does not fit on arrival.
    pub async fn chat(
        &self,
        prompt: u64,
        max_tokens: u64,
    ) -> Result<WithHeaders<Value>, HttpError> {
        self.chat_prefixed(None, prompt, max_tokens).await
    }

    /// One request of `prompt` tokens whose first `prefix.1` tokens are the prefix named
    /// `prefix.0`: the server's prompt cache learns it on its first admission (a cache write)
    /// and serves it to later ones (a cache read). An Anthropic-style server charges a cache
    /// read nothing toward ITPM and reports `cache_read_input_tokens` and
    /// `cache_creation_input_tokens` beside the uncached `input_tokens`; an OpenAI-style one
    /// charges it and reports `prompt_tokens_details.cached_tokens`.
    pub async fn chat_prefixed(
        &self,
        prefix: Option<(&str, u64)>,
        prompt: u64,
        max_tokens: u64,
    ) -> Result<WithHeaders<Value>, HttpError> {
        let outbound = self.state().outbound;
        tokio::time::sleep(outbound).await;
        let arrived = self.arrive(prefix, prompt, max_tokens);
        let (processing, inbound) = {
            let state = self.state();
            (state.processing, state.inbound)
        };
        let (headers, completion, (read, written)) = match arrived {
            Ok(answer) => answer,
            Err(error) => {
                tokio::time::sleep(inbound).await;
                return Err(error);
            }
        };
        tokio::time::sleep(processing).await;
        let body = {
            let mut state = self.state();
            if let Some(output) = state.output.as_mut() {
                output.refill(Instant::now());
                output.give_back(max_tokens - completion);
            }
            match (state.style, prefix) {
                (Style::Anthropic, None) => {
                    json!({"usage": {"input_tokens": prompt, "output_tokens": completion}})
                }
                (Style::Anthropic, Some(_)) => json!({"usage": {
                    "input_tokens": prompt - read - written,
                    "cache_read_input_tokens": read,
                    "cache_creation_input_tokens": written,
                    "output_tokens": completion
                }}),
                (_, None) => {
                    json!({"usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
                }
                (_, Some(_)) => json!({"usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "prompt_tokens_details": {"cached_tokens": read}
                }}),
            }
        };
        tokio::time::sleep(inbound).await;
        let now = Self::system_time(&self.state(), Instant::now());
        let headers = RateLimitHeaders::from_pairs(headers.iter().map(|(k, v)| (&**k, &**v)), now);
        Ok(WithHeaders { body, headers })
    }

    /// Admits or refuses one request; on admission, the headers, the completion tokens and
    /// the prompt tokens read from and written to the cache.
    #[allow(clippy::type_complexity)]
    fn arrive(
        &self,
        prefix: Option<(&str, u64)>,
        prompt: u64,
        max_tokens: u64,
    ) -> Result<(Vec<(String, String)>, u64, (u64, u64)), HttpError> {
        let now = Instant::now();
        let mut guard = self.state();
        let state = &mut *guard;
        state.requests.refill(now);
        state.tokens.refill(now);
        if let Some(output) = state.output.as_mut() {
            output.refill(now);
        }
        let (read, written) = match prefix {
            Some((key, tokens)) if state.cached_prefixes.contains(key) => (tokens, 0),
            Some((_, tokens)) => (0, tokens),
            None => (0, 0),
        };
        let charged_prompt = (prompt * state.overcharge_percent).div_ceil(100);
        let tokens = match state.style {
            // Cache reads do not count toward ITPM (current Claude models).
            Style::Anthropic => charged_prompt - read,
            _ => charged_prompt + max_tokens,
        };
        let mut wait = state
            .requests
            .wait_for(1)
            .max(state.tokens.wait_for(tokens));
        if let Some(output) = &state.output {
            wait = wait.max(output.wait_for(max_tokens));
        }
        if !wait.is_zero() {
            let at = now - state.epoch;
            state.rejected.push(at);
            let mut headers = self::headers(state, now);
            let ms = wait.as_nanos().div_ceil(1_000_000);
            headers.push(("retry-after-ms".to_owned(), ms.to_string()));
            return Err(HttpError::new(
                429,
                headers,
                r#"{"error":{"type":"tokens","code":"rate_limit_exceeded","message":"Rate limit reached"}}"#,
            ));
        }
        state.admitted += 1;
        if let Some((key, _)) = prefix {
            state.cached_prefixes.insert(key.to_owned());
        }
        state.requests.take(1);
        state.tokens.take(tokens);
        if let Some(output) = state.output.as_mut() {
            output.take(max_tokens);
        }
        let mut headers = if state.replay && !state.last_headers.is_empty() {
            state.last_headers.clone()
        } else {
            self::headers(state, now)
        };
        if let Some(rewrite) = state.rewrite.as_mut() {
            rewrite(&mut headers);
        }
        state.last_headers = headers.clone();
        if state.style == Style::OpenAi {
            let ms = state.processing.as_secs_f64() * 1e3;
            headers.push(("openai-processing-ms".to_owned(), format!("{ms}")));
        }
        let completion = (max_tokens * state.completion_percent).div_ceil(100);
        Ok((headers, completion.min(max_tokens), (read, written)))
    }
}

/// The rate-limit headers of the server's count now.
fn headers(state: &State, now: Instant) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    let mut add = |name: String, value: String| headers.push((name, value));
    match state.style {
        Style::Anthropic => {
            let system = ExactServer::system_time(state, now);
            let buckets = [
                ("requests", &state.requests),
                ("input-tokens", &state.tokens),
            ];
            let output = state.output.as_ref().map(|b| ("output-tokens", b));
            for (name, bucket) in buckets.into_iter().chain(output) {
                let prefix = format!("anthropic-ratelimit-{name}");
                add(format!("{prefix}-limit"), bucket.limit.to_string());
                add(
                    format!("{prefix}-remaining"),
                    bucket.remaining().to_string(),
                );
                add(format!("{prefix}-reset"), rfc3339(system + bucket.reset()));
            }
        }
        _ => {
            for (name, bucket) in [("requests", &state.requests), ("tokens", &state.tokens)] {
                add(
                    format!("x-ratelimit-limit-{name}"),
                    bucket.limit.to_string(),
                );
                let remaining = bucket.remaining().to_string();
                add(format!("x-ratelimit-remaining-{name}"), remaining);
                let reset = format!("{}ns", bucket.reset().as_nanos());
                add(format!("x-ratelimit-reset-{name}"), reset);
            }
        }
    }
    headers
}

/// `at` as RFC 3339, for instants in January 2026.
fn rfc3339(at: SystemTime) -> String {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .unwrap();
    let secs = since.as_secs();
    assert!(
        secs < 31 * 86_400,
        "the scripted server's calendar ends with January 2026"
    );
    format!(
        "2026-01-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        1 + secs / 86_400,
        secs / 3_600 % 24,
        secs / 60 % 60,
        secs % 60,
        since.subsec_nanos()
    )
}

/// The value of header `name` in `headers`.
pub fn header(headers: &[(String, String)], name: &str) -> Option<i64> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
}

/// Sets header `name` in `headers` to `value`.
pub fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: impl ToString) {
    headers.retain(|(k, _)| k != name);
    headers.push((name.to_owned(), value.to_string()));
}
