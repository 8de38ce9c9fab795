//! What `#[rate_limited]` adds to a call when the limits do not bind: an annotated function
//! against the same function unannotated, with an empty and a 1 KB prompt.
//!
//! Run with `cargo bench -p ratelimited-benches`; the last lines print both costs and the
//! ratio. The 1 KB case is dominated by tokenizing the prompt (tiktoken, o200k).

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use ratelimited::rate_limited;

static MEANS: Mutex<BTreeMap<String, (u128, u64)>> = Mutex::new(BTreeMap::new());

fn record(name: &str, elapsed: Duration, iters: u64) -> Duration {
    let mut means = MEANS.lock().unwrap();
    let entry = means.entry(name.to_owned()).or_default();
    entry.0 += elapsed.as_nanos();
    entry.1 += iters;
    elapsed
}

fn mean_ns(name: &str) -> f64 {
    let (ns, iters) = MEANS.lock().unwrap()[name];
    ns as f64 / iters as f64
}

#[rate_limited(model = "gpt-4o-mini", max_tokens = 256, retries = 0)]
async fn annotated(prompt: &str) -> Result<(), ratelimited::Error> {
    black_box(prompt);
    Ok(())
}

async fn plain(prompt: &str) -> Result<(), ratelimited::Error> {
    black_box(prompt);
    Ok(())
}

/// Polls a future that completes without waiting (the limits never bind).
fn run_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the limits were meant not to bind"),
    }
}

fn prompt_1kb() -> String {
    let sentence = "The quick brown fox jumps over the lazy dog while the limiter keeps count. ";
    sentence.repeat(1024 / sentence.len() + 1)[..1024].to_owned()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("call");
    for (label, prompt) in [("empty", String::new()), ("1kb", prompt_1kb())] {
        for (kind, annotate) in [("plain", false), ("annotated", true)] {
            let name = format!("{kind}_{label}");
            let prompt = prompt.as_str();
            group.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let result = if annotate {
                            run_once(annotated(prompt))
                        } else {
                            run_once(plain(prompt))
                        };
                        result.unwrap();
                    }
                    record(&name, start.elapsed(), iters)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    // Limits that never bind, read by the process-wide registry on first use.
    for dim in ["RPM", "TPM", "RPD"] {
        std::env::set_var(format!("RATE_LIMITED_GPT_4O_MINI_{dim}"), "unlimited");
    }
    // Build the tokenizer before measuring (as the registry does in the background).
    ratelimited::tokens::Encoding::O200kBase.warm();
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!();
    println!("summary (mean per call over all criterion samples)");
    for label in ["empty", "1kb"] {
        let plain = mean_ns(&format!("plain_{label}"));
        let annotated = mean_ns(&format!("annotated_{label}"));
        println!(
            "  {label:>5} prompt: plain {plain:>9.1} ns, annotated {annotated:>10.1} ns, \
             overhead {:>10.1} ns ({:.0}x)",
            annotated - plain,
            annotated / plain
        );
    }
}
