//! Running one strategy over the workload on a fresh runtime, provider (or server) and
//! registry, and what it yields: one [`Row`] of the report.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ratelimited::limiter::Window;
use ratelimited::testing::{fresh_registry_with_env, MockProvider, MockWindow, RejectionKind};
use tokio::task::{JoinSet, LocalSet};
use tokio::time::Instant;

use crate::common::ChatClient;
use crate::cookbook_client::Cookbook;
use crate::gateway::{check_windows, window_minimum, window_name};
use crate::governor_client::Governor;
use crate::peer::ServerThread;
use crate::ratelimited_client::{correction, family_window, via_ratelimited};
use crate::retry_client::{send_until_success, send_with_retries};
use crate::transport::Target;
use crate::workload::{minimum, Job, Rng, SEED};
use crate::Mode;

tokio::task_local! {
    /// The completion of the request this task sends: the in-process mock runs inside the
    /// caller's task, so its `completion_with` reads it there.
    static COMPLETION: u64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    Ratelimited,
    Retry,
    Governor,
    RetryForever,
    Cookbook,
    RatelimitedWithoutProcessing,
    /// (a) told how the server counts: `RATE_LIMITED_<FAMILY>_WINDOW` set to the gateway
    /// mode's window (gateway modes only).
    RatelimitedWindowSet,
    /// (a)'s requests through `reqwest_middleware` with the `RateLimit` middleware (real HTTP
    /// only, feature `reqwest-middleware`).
    Middleware,
}

impl Strategy {
    #[cfg(not(feature = "reqwest-middleware"))]
    pub(crate) const ALL: [Strategy; 6] = [
        Strategy::Ratelimited,
        Strategy::Retry,
        Strategy::Governor,
        Strategy::RetryForever,
        Strategy::Cookbook,
        Strategy::RatelimitedWithoutProcessing,
    ];

    #[cfg(feature = "reqwest-middleware")]
    pub(crate) const ALL: [Strategy; 7] = [
        Strategy::Ratelimited,
        Strategy::Retry,
        Strategy::Governor,
        Strategy::RetryForever,
        Strategy::Cookbook,
        Strategy::RatelimitedWithoutProcessing,
        Strategy::Middleware,
    ];

    /// Whether it runs in a mode: the middleware needs HTTP.
    pub(crate) fn runs_in(self, paused: bool) -> bool {
        !(paused && self == Strategy::Middleware)
    }

    /// The strategies of the gateway modes: ratelimited learning the window, ratelimited told
    /// it, and governor beside them.
    pub(crate) const GATEWAY: [Strategy; 3] = [
        Strategy::Ratelimited,
        Strategy::RatelimitedWindowSet,
        Strategy::Governor,
    ];

    /// Whether it is `#[rate_limited]` (held to the acceptance bounds).
    pub(crate) fn is_ratelimited(self) -> bool {
        matches!(
            self,
            Strategy::Ratelimited
                | Strategy::RatelimitedWithoutProcessing
                | Strategy::RatelimitedWindowSet
                | Strategy::Middleware
        )
    }

    pub(crate) fn tag(self) -> &'static str {
        &self.label()[..3]
    }

    /// The letter that names it on the command line (`a` for "(a) ...").
    pub(crate) fn letter(self) -> &'static str {
        &self.label()[1..2]
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Strategy::Ratelimited => "(a) ratelimited, headroom 1.0",
            Strategy::Retry => "(b) retry on 429 (Retry-After)",
            Strategy::Governor => "(c) governor RPM + TPM",
            Strategy::RetryForever => "(d) backoff until success",
            Strategy::Cookbook => "(e) OpenAI cookbook processor",
            Strategy::RatelimitedWithoutProcessing => "(f) (a) without processing-ms",
            Strategy::RatelimitedWindowSet => "(w) ratelimited, WINDOW set",
            Strategy::Middleware => "(g) (a) via reqwest-middleware",
        }
    }

    /// Its label in the gateway table, where (a) is not told how the server counts.
    pub(crate) fn gateway_label(self) -> &'static str {
        match self {
            Strategy::Ratelimited => "(a) ratelimited, window learned",
            other => other.label(),
        }
    }
}

/// One strategy's figures.
pub(crate) struct Row {
    pub(crate) strategy: Strategy,
    pub(crate) makespan: Duration,
    pub(crate) minimum: Duration,
    pub(crate) rate_limited: u64,
    pub(crate) requests: usize,
    pub(crate) completed: usize,
    /// Given up by the client (retries spent, or an error).
    pub(crate) failed: usize,
    /// Still running at the timeout.
    pub(crate) unfinished: usize,
    /// `failed + unfinished`.
    pub(crate) lost: usize,
    /// The server's limits checked on its admissions: the first violation, if any.
    pub(crate) check: Result<(), String>,
    /// When the server admitted its first request (its buckets' clocks start there).
    pub(crate) first_admission: Option<Duration>,
    pub(crate) first_rejection: Option<Rejected>,
    /// Why the first lost request was given up.
    pub(crate) first_loss: Option<String>,
    /// The charge correction at the end (`#[rate_limited]` only).
    pub(crate) correction: Option<f64>,
    /// How the family counted at the end, learned or set (`#[rate_limited]` only).
    pub(crate) window: Option<Window>,
}

/// The server's first 429, from t = 0.
pub(crate) struct Rejected {
    pub(crate) at: Duration,
    pub(crate) kind: RejectionKind,
    pub(crate) retry_after: Option<Duration>,
}

impl Row {
    pub(crate) fn ratio(&self) -> f64 {
        self.makespan.as_secs_f64() / self.minimum.as_secs_f64()
    }
}

/// Runs `strategy` over `jobs` on a fresh runtime, provider (or server) and registry.
pub(crate) fn run(mode: &Mode, jobs: &Rc<Vec<Job>>, strategy: Strategy, timeout: Duration) -> Row {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if mode.paused {
        builder.enable_time().start_paused(true);
    } else {
        builder.enable_all();
    }
    let runtime = builder.build().expect("a tokio runtime");
    // Current-thread runtime: every task runs on this thread, so they all see this registry.
    let mut vars = vec![
        ("RATE_LIMITED_BENCH_MODEL_RPM", mode.limits.rpm.to_string()),
        ("RATE_LIMITED_BENCH_MODEL_TPM", mode.limits.tpm.to_string()),
        ("RATE_LIMITED_HEADROOM", "1".to_owned()),
    ];
    if strategy == Strategy::RatelimitedWindowSet {
        vars.push((
            "RATE_LIMITED_BENCH_MODEL_WINDOW",
            window_name(mode.window).to_owned(),
        ));
    }
    let _registry = fresh_registry_with_env(vars);
    // The provider reads tokio's clock when it is created: the paused one, inside the runtime.
    // A fixed window counts its minutes from there.
    let provider = {
        let _clock = runtime.enter();
        MockProvider::new(mode.limits)
            .window(mode.window)
            .headers(mode.headers)
            .latency(mode.latency)
    };
    let provider = if mode.paused {
        provider.completion_with(|max| COMPLETION.try_with(|c| *c).unwrap_or(max).min(max))
    } else {
        // The server answers in its own task, out of the caller's reach: hand out the
        // workload's completions in arrival order instead (the same multiset; with OpenAI's
        // no-refund charging they change no strategy's timing either way).
        let completions: Vec<u64> = jobs.iter().map(|j| j.completion_tokens).collect();
        let next = AtomicUsize::new(0);
        provider.completion_with(move |max| {
            let i = next.fetch_add(1, Ordering::Relaxed) % completions.len();
            completions[i].min(max)
        })
    };
    let server = (!mode.paused).then(|| ServerThread::start(provider.clone()));
    LocalSet::new().block_on(&runtime, async {
        let target = match &server {
            None => Target::Mock(provider.clone()),
            Some(server) => Target::Http(ChatClient::new(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("an HTTP client"),
                &server.server.base_url(),
                None,
            )),
        };
        let target = Rc::new(target);
        #[cfg(feature = "reqwest-middleware")]
        let middleware = server.as_ref().map(|server| {
            Rc::new(crate::middleware_client::MiddlewareClient::new(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("an HTTP client"),
                &server.server.base_url(),
            ))
        });
        let governor = Rc::new(Governor::new(mode.limits, mode.paused));
        let cookbook = Rc::new(Cookbook::new(mode.limits));
        let start = Instant::now();
        let minimum = match window_minimum(mode, jobs) {
            // Counted from the provider's creation (a fixed window's origin; a sliding one's
            // cannot come before it either), a moment before the start.
            Some(windowed) => {
                (provider.created() + windowed.makespan).saturating_duration_since(start)
            }
            None => minimum(mode.limits, jobs, mode.latency).0,
        };
        let deadline = start + timeout;
        let mut tasks = JoinSet::new();
        for i in 0..jobs.len() {
            let completion = jobs[i].completion_tokens;
            let (jobs, target, governor) = (jobs.clone(), target.clone(), governor.clone());
            let cookbook = cookbook.clone();
            #[cfg(feature = "reqwest-middleware")]
            let middleware = middleware.clone();
            let call = async move {
                let job = &jobs[i];
                let mut rng = Rng::new(SEED ^ (i as u64 + 1));
                match strategy {
                    Strategy::Ratelimited | Strategy::RatelimitedWindowSet => {
                        via_ratelimited(&target, job, true).await
                    }
                    Strategy::RatelimitedWithoutProcessing => {
                        via_ratelimited(&target, job, false).await
                    }
                    Strategy::Retry => send_with_retries(&target, job, &mut rng).await,
                    Strategy::Governor => match governor.admit(job.charge()).await {
                        Ok(()) => send_with_retries(&target, job, &mut rng).await,
                        Err(e) => Err(format!("governor: {e}")),
                    },
                    Strategy::RetryForever => send_until_success(&target, job, &mut rng).await,
                    Strategy::Cookbook => cookbook.send(&target, job).await,
                    #[cfg(feature = "reqwest-middleware")]
                    Strategy::Middleware => match &middleware {
                        Some(client) => client.send(job).await,
                        None => Err("the middleware needs HTTP (real time)".to_owned()),
                    },
                    #[cfg(not(feature = "reqwest-middleware"))]
                    Strategy::Middleware => Err("built without reqwest-middleware".to_owned()),
                }
            };
            tasks.spawn_local(COMPLETION.scope(completion, async move {
                let outcome = call.await;
                (outcome, Instant::now())
            }));
        }
        let (completed, failed) = (Cell::new(0), Cell::new(0));
        let finished = Cell::new(start);
        let first_loss = RefCell::new(None);
        let all_done = async {
            while let Some(joined) = tasks.join_next().await {
                let (outcome, at) = joined.expect("a request task panicked");
                match outcome {
                    Ok(()) => completed.set(completed.get() + 1),
                    Err(reason) => {
                        failed.set(failed.get() + 1);
                        first_loss.borrow_mut().get_or_insert(reason);
                    }
                }
                finished.set(finished.get().max(at));
            }
        };
        // Whatever is still running at the deadline is lost; the makespan is then the deadline.
        if tokio::time::timeout_at(deadline, all_done).await.is_err() {
            finished.set(deadline);
        }
        let stats = provider.stats();
        let since_start = |at: Instant| at.saturating_duration_since(start);
        Row {
            strategy,
            makespan: finished.get() - start,
            minimum,
            rate_limited: stats.rate_limited,
            requests: jobs.len(),
            completed: completed.get(),
            failed: failed.get(),
            unfinished: tasks.len(),
            lost: failed.get() + tasks.len(),
            check: if mode.window == MockWindow::Continuous {
                provider.check_within_limits().map_err(|v| v.to_string())
            } else {
                check_windows(mode, provider.created(), &provider.admissions())
            },
            first_admission: provider.admissions().first().map(|a| since_start(a.at)),
            first_rejection: provider.rejections().first().map(|r| Rejected {
                at: since_start(r.at),
                kind: r.kind,
                retry_after: r.retry_after,
            }),
            first_loss: first_loss.into_inner(),
            correction: strategy.is_ratelimited().then(correction),
            window: strategy.is_ratelimited().then(family_window).flatten(),
        }
    })
}
