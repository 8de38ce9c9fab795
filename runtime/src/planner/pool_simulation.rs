//! A pool's run: the library's own [`Pool`] (its routing, queue and deployments' limiters)
//! driven by the workload's workers on a paused tokio clock, as the single-quota simulation
//! drives one limiter.
//!
//! The pool's queue is FIFO, so requests are admitted in index order: when request `k` is
//! admitted, request `k + 1` (if a worker holds it) is the head, and its wait until admission
//! is put on the deployment it is then admitted on, for the limit of that deployment that kept
//! it out longest when it became the head.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use super::binding::Binding;
use super::pool_plan::{pooled_admission, DeploymentPlan, PoolPlan};
use super::simulation::{duration_ns, too_large};
use super::workload::Workload;
use crate::config::pool::PoolConfig;
use crate::limiter::Limiter;
use crate::pool::Pool;
use crate::registry::Registry;
use crate::units::cost::{Cost, Dimension};
use crate::units::error::Error;
use crate::units::quota::Quota;

/// One request's way through the pool, in nanoseconds since the start.
#[derive(Clone, Debug, Default)]
struct Record {
    head_at: u64,
    admitted_at: u64,
    /// Per deployment, what would keep it out longest when it became the head.
    bindings: Vec<Binding>,
    deployment: usize,
}

struct Run {
    pool: Pool,
    prompts: Vec<u64>,
    output_reserved: u64,
    workload: Workload,
    origin: Instant,
    progress: RefCell<Progress>,
}

struct Progress {
    taken: usize,
    records: Vec<Record>,
}

/// Plans `workload` on the pool `config`, its deployments resolved against `lookup`.
pub(crate) fn plan_pool(
    config: &PoolConfig,
    workload: &Workload,
    lookup: Vec<(String, String)>,
) -> Result<PoolPlan, Error> {
    workload.validate()?;
    let config = config.clone();
    let workload = workload.clone();
    std::thread::scope(|scope| {
        scope
            .spawn(move || run_paused(config, workload, lookup))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn run_paused(
    config: PoolConfig,
    workload: Workload,
    lookup: Vec<(String, String)>,
) -> Result<PoolPlan, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime with only the timer enabled needs no OS resource");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let name = config.name().to_owned();
        let registry = Registry::with_env(lookup).with_pool(config);
        let pool = registry.pool(&name)?;
        let prompts = workload.prompts();
        reject_requests_too_large(&pool, &workload, &prompts)?;
        let workers = usize::try_from(workload.concurrency)
            .unwrap_or(usize::MAX)
            .min(prompts.len());
        let run = Rc::new(Run {
            pool: pool.clone(),
            output_reserved: workload.output_reserved(),
            progress: RefCell::new(Progress {
                taken: 0,
                records: Vec::with_capacity(prompts.len()),
            }),
            prompts,
            workload,
            origin: Instant::now(),
        });
        let handles: Vec<_> = (0..workers)
            .map(|_| tokio::task::spawn_local(work(run.clone())))
            .collect();
        for handle in handles {
            handle
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        }
        let makespan = Duration::from_nanos(run.now());
        Ok(run.report(&name, makespan))
    })
}

/// A request no deployment could ever take would fail inside the run; say so before.
fn reject_requests_too_large(
    pool: &Pool,
    workload: &Workload,
    prompts: &[u64],
) -> Result<(), Error> {
    let Some(largest) = prompts.iter().max() else {
        return Ok(());
    };
    let cost = workload.cost(*largest);
    let mut refusal = None;
    for deployment in pool.deployments() {
        let quota = deployment.limiter().quota();
        match too_large(&quota, &cost) {
            None => return Ok(()),
            Some(error) => refusal = Some(error),
        }
    }
    refusal.map_or(Ok(()), Err)
}

async fn work(run: Rc<Run>) -> Result<(), Error> {
    loop {
        let index = {
            let mut progress = run.progress.borrow_mut();
            let index = progress.taken;
            if index == run.prompts.len() {
                return Ok(());
            }
            progress.taken += 1;
            progress.records.push(Record::default());
            if run.pool.waiting() == 0 {
                run.reach_head(&mut progress, index);
            }
            index
        };
        let cost = run.cost(index);
        let reservation = run.pool.acquire(cost).await?;
        let deployment = reservation.index();
        {
            let mut progress = run.progress.borrow_mut();
            let now = run.now();
            let record = &mut progress.records[index];
            record.admitted_at = now;
            record.deployment = deployment;
            if index + 1 < progress.taken {
                run.reach_head(&mut progress, index + 1);
            }
        }
        tokio::time::sleep(run.workload.latency).await;
        let refunds = reservation.deployment().profile().refunds_unused_output;
        reservation.settle(run.workload.usage(run.prompts[index], refunds));
    }
}

impl Run {
    fn now(&self) -> u64 {
        duration_ns(Instant::now().saturating_duration_since(self.origin))
    }

    fn cost(&self, index: usize) -> Cost {
        Cost::request(self.prompts[index], self.output_reserved)
    }

    fn reach_head(&self, progress: &mut Progress, index: usize) {
        let cost = self.cost(index);
        let now = self.now();
        let record = &mut progress.records[index];
        record.head_at = now;
        record.bindings = self
            .pool
            .deployments()
            .iter()
            .map(|d| longest_wait(d.limiter(), &cost).unwrap_or(Binding::Workers))
            .collect();
    }

    fn report(&self, name: &str, makespan: Duration) -> PoolPlan {
        let progress = self.progress.borrow();
        let deployments = self.pool.deployments();
        let count = deployments.len();
        let mut requests = vec![0u64; count];
        let mut tokens = vec![0u64; count];
        let mut limited = vec![[0u64; Binding::COUNT]; count];
        for (index, record) in progress.records.iter().enumerate() {
            let d = record.deployment;
            requests[d] += 1;
            tokens[d] += self.cost(index).tokens();
            let binding = record.bindings.get(d).copied().unwrap_or(Binding::Workers);
            limited[d][binding.index()] += record.admitted_at.saturating_sub(record.head_at);
        }
        let total: u64 = tokens.iter().sum();
        let quotas: Vec<Quota> = deployments.iter().map(|d| d.limiter().quota()).collect();
        let last_admission =
            pooled_admission(&quotas, Dimension::TokensPerMinute, total).max(pooled_admission(
                &quotas,
                Dimension::RequestsPerMinute,
                self.prompts.len() as u64,
            ));
        let plans = deployments
            .iter()
            .enumerate()
            .map(|(i, deployment)| {
                let waited: u64 = limited[i].iter().sum();
                let (most, at) = limited[i]
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, ns)| **ns)
                    .map_or((0, 0), |(at, ns)| (*ns, at));
                DeploymentPlan {
                    name: deployment.name().to_owned(),
                    quota: quotas[i].clone(),
                    requests: requests[i],
                    tokens: tokens[i],
                    share: if total == 0 {
                        0.0
                    } else {
                        tokens[i] as f64 / total as f64
                    },
                    limited: Duration::from_nanos(waited),
                    binding: if most == 0 {
                        Binding::Workers
                    } else {
                        Binding::from_index(at)
                    },
                }
            })
            .collect();
        PoolPlan {
            pool: name.to_owned(),
            deployments: plans,
            requests: self.prompts.len() as u64,
            makespan,
            tokens: total,
            pooled_minimum: last_admission + self.workload.latency,
        }
    }
}

/// The limit of `limiter` that keeps `cost` out longest now, if any does: for a bucket, the
/// refill of what is missing; a full in-flight cap counts as the shortest wait.
fn longest_wait(limiter: &Limiter, cost: &Cost) -> Option<Binding> {
    let quota = limiter.quota();
    let mut longest: Option<(u64, Dimension)> = None;
    for dimension in Dimension::ALL {
        let (Some(capacity), Some(in_use)) = (quota.capacity(dimension), limiter.in_use(dimension))
        else {
            continue;
        };
        let charge = dimension.charge(cost);
        if charge == 0 || in_use + charge <= capacity {
            continue;
        }
        let wait = match dimension.window() {
            Some(window) => {
                let excess = u128::from(in_use + charge - capacity);
                (excess * u128::from(duration_ns(window)) / u128::from(capacity)) as u64
            }
            None => 1,
        };
        if longest.is_none_or(|(most, _)| wait > most) {
            longest = Some((wait, dimension));
        }
    }
    longest.map(|(_, dimension)| Binding::Limit(dimension))
}
