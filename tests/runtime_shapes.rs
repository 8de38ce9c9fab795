//! Runtime shapes tokio allows must never make an annotated call panic. Its own test binary:
//! the call below has to be the first tokenizer use of the process.

use ratelimited::tokens::Encoding;
use ratelimited::{rate_limited, Registry};

#[rate_limited(model = "gpt-4o-mini")]
async fn ask(prompt: &str) -> Result<(), ratelimited::Error> {
    let _ = prompt;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_call_inside_a_local_set_on_a_multi_thread_runtime_does_not_panic() {
    assert!(
        !Encoding::O200kBase.is_warm(),
        "the tokenizer must not be built yet: this is the process's first use"
    );
    let registry = Registry::with_env([("RATE_LIMITED_TIER", "tier-1")]);
    let local = tokio::task::LocalSet::new();
    let result = local
        .run_until(registry.bind(async {
            // A 25-byte prompt: small, but the tokenizer is cold.
            let inline = ask("How are you doing today?!").await;
            let spawned = tokio::task::spawn_local(ask("and from a local task")).await;
            (inline, spawned)
        }))
        .await;
    assert!(matches!(result, (Ok(()), Ok(Ok(())))), "{result:?}");
    assert!(Encoding::O200kBase.is_warm());
}
