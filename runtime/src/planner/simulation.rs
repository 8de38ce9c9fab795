//! The run itself: the library's own [`Limiter`] driven by the workload's workers on a paused
//! tokio clock, so every wait is the limiter's exact wait and passes in no real time.
//!
//! Each of `concurrency` worker tasks loops: take the next request, `acquire` its cost, sleep the
//! latency, settle the usage. Few tasks and one timer per waiting head keep a 100,000-request
//! plan well under a second. Because a worker takes a request and queues it in the same poll,
//! the limiter's FIFO admits requests in index order; the worker that admits request `k` looks
//! at what blocks request `k + 1` (now the head) before anything else runs, which is how each
//! wait is attributed to a [`Binding`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use super::binding::Binding;
use super::workload::Workload;
use crate::units::cost::{Cost, Dimension, Usage};
use crate::units::error::Error;
use crate::units::quota::Quota;
use crate::Limiter;

/// What happened to one request, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    /// When it reached the head of the queue (or arrived at an empty one).
    pub(crate) head_at: u64,
    pub(crate) admitted_at: u64,
    /// What held it back between `head_at` and `admitted_at`.
    pub(crate) binding: Binding,
}

/// A finished run.
pub(crate) struct Outcome {
    pub(crate) prompts: Vec<u64>,
    pub(crate) records: Vec<Record>,
    pub(crate) makespan: Duration,
}

/// Runs `workload` against `quota` on a paused clock of its own.
///
/// The runtime lives on a scoped thread so that a plan can be made from inside another tokio
/// runtime (which may not block on a second one).
pub(crate) fn simulate(
    quota: &Quota,
    workload: &Workload,
    refunds_output: bool,
) -> Result<Outcome, Error> {
    workload.validate()?;
    let prompts = workload.prompts();
    reject_requests_too_large(quota, workload, &prompts)?;
    let run = Run {
        quota: quota.clone(),
        output_reserved: workload.output_reserved(),
        usage_output: workload.usage(0, refunds_output).output_tokens,
        latency: workload.latency,
        origin: None,
        progress: RefCell::new(Progress {
            taken: 0,
            completed: 0,
            records: Vec::with_capacity(prompts.len()),
        }),
        prompts,
    };
    let workers = usize::try_from(workload.concurrency)
        .unwrap_or(usize::MAX)
        .min(run.prompts.len());
    std::thread::scope(|scope| {
        scope
            .spawn(move || run_paused(run, workers))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A request too large for a dimension would fail inside the run; say so before it starts.
fn reject_requests_too_large(
    quota: &Quota,
    workload: &Workload,
    prompts: &[u64],
) -> Result<(), Error> {
    let Some(largest) = prompts.iter().max() else {
        return Ok(());
    };
    too_large(quota, &workload.cost(*largest)).map_or(Ok(()), Err)
}

/// The error a limiter of `quota` refuses `cost` with because it can never fit, if it does.
pub(super) fn too_large(quota: &Quota, cost: &Cost) -> Option<Error> {
    Dimension::ALL.into_iter().find_map(|dimension| {
        let capacity = quota.capacity(dimension)?;
        let requested = dimension.charge(cost);
        (requested > capacity).then_some(Error::RequestTooLarge {
            dimension,
            requested,
            capacity,
        })
    })
}

fn run_paused(mut run: Run, workers: usize) -> Result<Outcome, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime with only the timer enabled needs no OS resource");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        run.origin = Some(Instant::now());
        let limiter = Limiter::new(run.quota.clone());
        let run = Rc::new(run);
        let handles: Vec<_> = (0..workers)
            .map(|_| tokio::task::spawn_local(work(run.clone(), limiter.clone())))
            .collect();
        for handle in handles {
            handle
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        }
        let makespan = Duration::from_nanos(run.now());
        let run = Rc::try_unwrap(run).unwrap_or_else(|_| unreachable!("every worker finished"));
        Ok(Outcome {
            prompts: run.prompts,
            records: run.progress.into_inner().records,
            makespan,
        })
    })
}

struct Run {
    quota: Quota,
    prompts: Vec<u64>,
    output_reserved: u64,
    /// Output tokens each request settles to (the same for every request).
    usage_output: u64,
    latency: Duration,
    /// Set once the paused runtime runs.
    origin: Option<Instant>,
    progress: RefCell<Progress>,
}

struct Progress {
    /// Requests handed to a worker so far (the next one's index).
    taken: usize,
    /// Requests settled so far; with one latency for all, they settle in admission order.
    completed: usize,
    records: Vec<Record>,
}

/// One client worker: sends requests one after the other until none is left.
async fn work(run: Rc<Run>, limiter: Limiter) -> Result<(), Error> {
    loop {
        let index = {
            let mut progress = run.progress.borrow_mut();
            let index = progress.taken;
            if index == run.prompts.len() {
                return Ok(());
            }
            progress.taken += 1;
            let now = run.now();
            progress.records.push(Record {
                head_at: now,
                admitted_at: now,
                binding: Binding::Workers,
            });
            if limiter.waiting() == 0 {
                run.reach_head(&mut progress, index, now, &limiter);
            }
            index
        };
        let reservation = limiter.acquire(run.cost(index)).await?;
        {
            let mut progress = run.progress.borrow_mut();
            let now = run.now();
            progress.records[index].admitted_at = now;
            let next = index + 1;
            if next < progress.taken {
                // FIFO: the next request is queued and now at the head.
                run.reach_head(&mut progress, next, now, &limiter);
            }
        }
        tokio::time::sleep(run.latency).await;
        reservation.settle(Usage::new(run.prompts[index], run.usage_output));
        run.progress.borrow_mut().completed += 1;
    }
}

impl Run {
    fn now(&self) -> u64 {
        let origin = self.origin.expect("the clock starts before any worker");
        duration_ns(Instant::now().saturating_duration_since(origin))
    }

    fn cost(&self, index: usize) -> Cost {
        Cost::request(self.prompts[index], self.output_reserved)
    }

    /// Records that request `index` is first in line at `now`, and what will hold it back.
    fn reach_head(&self, progress: &mut Progress, index: usize, now: u64, limiter: &Limiter) {
        let next_slot_free = progress
            .records
            .get(progress.completed)
            .map(|oldest| oldest.admitted_at + duration_ns(self.latency));
        let record = &mut progress.records[index];
        record.head_at = now;
        record.binding = self
            .longest_wait(limiter, &self.cost(index), now, next_slot_free)
            .unwrap_or(Binding::Workers);
    }

    /// The dimension that keeps `cost` out longest at `now`, if any keeps it out.
    ///
    /// Bucket waits come from the units in use (rounded up, so a wait can be overestimated by
    /// one unit's refill); a full in-flight cap waits for the oldest request in flight.
    fn longest_wait(
        &self,
        limiter: &Limiter,
        cost: &Cost,
        now: u64,
        next_slot_free: Option<u64>,
    ) -> Option<Binding> {
        let mut longest: Option<(u64, Dimension)> = None;
        for dimension in Dimension::ALL {
            let (Some(capacity), Some(in_use)) =
                (self.quota.capacity(dimension), limiter.in_use(dimension))
            else {
                continue;
            };
            let charge = dimension.charge(cost);
            if charge == 0 || in_use + charge <= capacity {
                continue;
            }
            let wait = match dimension {
                Dimension::Concurrency => next_slot_free.map_or(0, |at| at.saturating_sub(now)),
                Dimension::MinInterval => self.quota.min_interval.map_or(0, duration_ns),
                _ => {
                    let window = dimension.window().map_or(0, duration_ns);
                    let excess = u128::from(in_use + charge - capacity);
                    (excess * u128::from(window) / u128::from(capacity)) as u64
                }
            };
            if longest.is_none_or(|(most, _)| wait > most) {
                longest = Some((wait, dimension));
            }
        }
        longest.map(|(_, dimension)| Binding::Limit(dimension))
    }
}

/// Nanoseconds in `duration`, saturating (a plan never spans 584 years).
pub(crate) fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
