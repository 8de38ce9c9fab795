//! Which registry is current: the one a task is bound to, else the innermost one a thread
//! scoped, else the process-wide one; and the helpers tests use to get a registry of their own.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;

use super::Registry;
use crate::config;
use crate::family::stats::Stats;

static GLOBAL: Lazy<Registry> = Lazy::new(|| Registry::with_lookup(config::process_env));

thread_local! {
    static SCOPED: RefCell<Vec<Registry>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    static BOUND: Registry;
}

/// Thread scopes alive anywhere in the process: when one exists and a call on another thread
/// falls back to the global registry, that is most likely a test whose scope did not reach a
/// spawned task or a worker thread, and it is said out loud.
static LIVE_THREAD_SCOPES: AtomicUsize = AtomicUsize::new(0);
static WARNED_UNSCOPED: AtomicBool = AtomicBool::new(false);

impl Registry {
    /// The process-wide registry (reads the process environment once per family).
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    /// The registry `#[rate_limited]` calls use here: the one the current task is
    /// [bound](Registry::bind) to, else the innermost [`scope`](Registry::scope)d one of this
    /// thread, else the global one.
    ///
    /// Falling back to the global registry while a scoped one exists on another thread logs a
    /// warning (once per process, through `tracing`): a scope that silently does not apply
    /// would make a test measure the wrong limits.
    pub fn current() -> Registry {
        if let Ok(bound) = BOUND.try_with(Registry::clone) {
            return bound;
        }
        if let Some(scoped) = SCOPED.with(|scoped| scoped.borrow().last().cloned()) {
            return scoped;
        }
        if LIVE_THREAD_SCOPES.load(Ordering::Relaxed) > 0
            && !WARNED_UNSCOPED.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "a #[rate_limited] call uses the global registry while a scoped registry exists \
                 on another thread; a scope set with `Registry::scope` or `fresh_registry*` \
                 covers only its own thread: bind spawned tasks and multi-thread tests with \
                 `Registry::bind`, `Registry::spawn` or `testing::spawn_scoped`"
            );
        }
        GLOBAL.clone()
    }

    /// Makes this registry the [`current`](Registry::current) one on this thread until the
    /// guard is dropped.
    ///
    /// Meant for tests: `#[tokio::test]` runs each test on its own thread with a
    /// current-thread runtime, so every task the test spawns sees the scoped registry, and tests
    /// running in parallel never share a limiter. A multi-thread runtime's workers are other
    /// threads: there, bind the futures instead ([`Registry::bind`], [`Registry::spawn`]).
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::Registry;
    /// let _scope = Registry::with_env([("RATE_LIMITED_MY_MODEL_TPM", "1000")]).scope();
    /// let limiter = Registry::current().limiter("openai/my-model").unwrap();
    /// assert_eq!(limiter.limiter.quota().tpm, Some(1000));
    /// ```
    pub fn scope(&self) -> ScopeGuard {
        SCOPED.with(|scoped| scoped.borrow_mut().push(self.clone()));
        LIVE_THREAD_SCOPES.fetch_add(1, Ordering::Relaxed);
        ScopeGuard {
            registry: self.clone(),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Runs `future` with this registry [`current`](Registry::current), on whatever thread it
    /// is polled: the way to scope a task on a multi-thread runtime. It takes precedence over
    /// thread scopes.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::Registry;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// let registry = Registry::with_env([("RATE_LIMITED_MY_MODEL_TPM", "1000")]);
    /// let tpm = registry
    ///     .spawn(async { Registry::current().limiter("openai/my-model").unwrap().limiter.quota().tpm })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(tpm, Some(1000));
    /// # }
    /// ```
    pub fn bind<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        BOUND.scope(self.clone(), future)
    }

    /// Spawns `future` on the current tokio runtime, [bound](Registry::bind) to this registry.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(self.bind(future))
    }
}

/// The [current](Registry::current) registry's [`stats`](Registry::stats): what every family
/// of this task's registry has done so far.
pub fn stats_snapshot() -> Stats {
    Registry::current().stats()
}

/// Keeps a registry [`current`](Registry::current) on this thread; see [`Registry::scope`].
#[must_use = "the registry is current only while the guard lives"]
pub struct ScopeGuard {
    registry: Registry,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ScopeGuard {
    /// The scoped registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        SCOPED.with(|scoped| {
            let mut scoped = scoped.borrow_mut();
            if let Some(i) = scoped
                .iter()
                .rposition(|r| Arc::ptr_eq(&r.inner, &self.registry.inner))
            {
                scoped.remove(i);
            }
        });
        LIVE_THREAD_SCOPES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeGuard").finish_non_exhaustive()
    }
}

/// Gives the current thread a fresh registry that reads the process environment, until the
/// guard is dropped: limiters created by earlier tests are not seen, and none created now leak
/// into later ones. See [`Registry::scope`]; tasks spawned onto other threads need
/// [`spawn_scoped`] (or [`Registry::bind`]) to see it.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// // first line of a test: this test's #[rate_limited] calls see only their own limiters
/// let _registry = ratelimited::testing::fresh_registry();
/// ```
pub fn fresh_registry() -> ScopeGuard {
    Registry::from_process_env().scope()
}

/// Like [`fresh_registry`], reading `RATE_LIMITED_*` variables from `vars` only (never from
/// the process environment, which tests running in parallel share).
pub fn fresh_registry_with_env<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> ScopeGuard
where
    K: Into<String>,
    V: Into<String>,
{
    Registry::with_env(vars).scope()
}

/// Spawns `future` bound to the [current](Registry::current) registry, so a task spawned by a
/// test that scoped a registry uses that registry on any worker thread.
///
/// # Panics
/// Outside a tokio runtime, as `tokio::spawn` does.
pub fn spawn_scoped<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Registry::current().spawn(future)
}
