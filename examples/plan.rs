//! How long will a batch take at my tier, and what binds it? A capacity plan on the library's
//! own limiter, in virtual time.
//!
//! ```text
//! cargo run --example plan --features planner -- --model gpt-4o --tier tier-2 \
//!     --requests 10000 --prompt-tokens 1200 --max-tokens 300 [--plot tokens.svg]
//! ```
//!
//! Options (all optional; `--help` lists them): `--model` (gpt-4o), `--tier` (tier-1),
//! `--requests` (1000),
//! `--prompt-tokens` N, or MIN..MAX for a uniform spread (1000), `--prompt-spread` SIGMA for a
//! log-normal spread around `--prompt-tokens` (off), `--max-tokens` (256), `--n` (1),
//! `--completion-share` (0.5), `--concurrency` (16), `--latency` seconds (2), `--deadline`
//! minutes (also print the lowest tier that meets it), `--plot FILE.svg`.
//! Limits come from the built-in tables plus `RATE_LIMITED_*` env overrides and headroom,
//! exactly as an annotated call would get them.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use plotters::prelude::*;
use ratelimited::config::{LimitFamily, Provider};
use ratelimited::planner::{lowest_tier_meeting, Minute, Plan, Planner, PromptTokens, Workload};
use ratelimited::{limiter::Dimension, tiers};

/// The options, with the value each takes (and its unit), for parsing and for the usage.
const OPTIONS: [(&str, &str); 12] = [
    ("model", "NAME"),
    ("tier", "TIER"),
    ("requests", "COUNT"),
    ("prompt-tokens", "TOKENS|MIN..MAX"),
    ("prompt-spread", "SIGMA"),
    ("max-tokens", "TOKENS"),
    ("n", "COUNT"),
    ("completion-share", "FRACTION"),
    ("concurrency", "WORKERS"),
    ("latency", "SECONDS"),
    ("deadline", "MINUTES"),
    ("plot", "FILE.svg"),
];

const DEFAULTS: &str = "defaults: --model gpt-4o --tier tier-1 --requests 1000 --prompt-tokens \
    1000 --max-tokens 256 --n 1 --completion-share 0.5 --concurrency 16 --latency 2; \
    --prompt-spread (a log-normal spread around --prompt-tokens), --deadline (also print the \
    lowest tier that meets it) and --plot are off";

fn usage() -> String {
    format!(
        "usage: cargo run --example plan --features planner -- {}\n{DEFAULTS}",
        OPTIONS
            .map(|(name, value)| format!("[--{name} {value}]"))
            .join(" ")
    )
}

struct Args {
    model: String,
    tier: String,
    workload: Workload,
    deadline: Option<Duration>,
    plot: Option<String>,
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!("{}", usage());
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse(std::env::args().skip(1))?;
    let planner = Planner::for_model(&args.model, &args.tier).map_err(|e| e.to_string())?;
    let plan = planner.plan(&args.workload).map_err(|e| e.to_string())?;
    print_plan(&args, &plan);
    if let Some(deadline) = args.deadline {
        print_lowest_tier(&args, deadline)?;
    }
    if let Some(path) = &args.plot {
        plot(&plan, path).map_err(|e| format!("--plot {path}: {e}"))?;
        println!("\nchart of admitted tokens per minute written to {path}");
    }
    Ok(())
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut values = HashMap::new();
    while let Some(flag) = raw.next() {
        let name = flag
            .strip_prefix("--")
            .filter(|name| OPTIONS.iter().any(|(option, _)| option == name))
            .ok_or_else(|| {
                format!(
                    "unknown argument `{flag}`: expected one of --{} (or --help)",
                    OPTIONS.map(|(name, _)| name).join(", --")
                )
            })?
            .to_owned();
        let value = raw
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        values.insert(name, value);
    }
    let get = |name: &str| values.get(name).map(String::as_str);
    let number = |name: &str, default: u64| -> Result<u64, String> {
        get(name).map_or(Ok(default), |v| {
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("--{name} {v:?}: expected a whole number"))
        })
    };
    let real = |name: &str, default: f64| -> Result<f64, String> {
        get(name).map_or(Ok(default), |v| {
            v.parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("--{name} {v:?}: expected a non-negative number"))
        })
    };
    let prompt_tokens = match (get("prompt-tokens"), get("prompt-spread")) {
        (Some(range), None) if range.contains("..") => {
            let (min, max) = range.split_once("..").expect("checked above");
            let bound = |v: &str| {
                v.parse()
                    .map_err(|_| format!("--prompt-tokens {range:?}: expected N or MIN..MAX"))
            };
            PromptTokens::Uniform {
                min: bound(min)?,
                max: bound(max)?,
            }
        }
        (_, Some(_)) => PromptTokens::LogNormal {
            mean: number("prompt-tokens", 1_000)?,
            sigma: real("prompt-spread", 0.0)?,
        },
        (_, None) => PromptTokens::Fixed(number("prompt-tokens", 1_000)?),
    };
    let count = |name: &str, default: u64| -> Result<u32, String> {
        u32::try_from(number(name, default)?).map_err(|_| format!("--{name}: too large"))
    };
    let workload = Workload::new(number("requests", 1_000)?)
        .prompt_tokens(prompt_tokens)
        .max_tokens(number("max-tokens", 256)?)
        .n(count("n", 1)?)
        .completion_share(real("completion-share", 0.5)?)
        .concurrency(count("concurrency", 16)?)
        .latency(Duration::from_secs_f64(real("latency", 2.0)?));
    let deadline = match get("deadline") {
        Some(_) => Some(Duration::from_secs_f64(real("deadline", 0.0)? * 60.0)),
        None => None,
    };
    Ok(Args {
        model: get("model").unwrap_or("gpt-4o").to_owned(),
        tier: get("tier").unwrap_or("tier-1").to_owned(),
        workload,
        deadline,
        plot: get("plot").map(str::to_owned),
    })
}

fn print_plan(args: &Args, plan: &Plan) {
    let w = &args.workload;
    println!(
        "plan: {} requests on {} at {}, {} workers, {:?} latency",
        w.requests, args.model, args.tier, w.concurrency, w.latency
    );
    println!("limits (after headroom {}):", plan.quota.headroom);
    for dimension in Dimension::ALL {
        if let Some(capacity) = plan.quota.capacity(dimension) {
            println!("  {:<16} {capacity}", dimension.env_suffix());
        }
    }
    println!();
    println!("{:<22} {}", "makespan", clock(plan.makespan));
    println!("{:<22} {:.1}", "achieved RPM", plan.achieved_rpm());
    println!("{:<22} {:.0}", "achieved TPM", plan.achieved_tpm());
    if let Some((dimension, capacity)) = plan.tokens_per_minute_limit() {
        if dimension == Dimension::TokensPerMinute && plan.achieved_tpm() > capacity as f64 {
            println!(
                "  above the {capacity} limit: the bucket starts full, so a run admits a whole \
                 minute's tokens at once on top of the refill"
            );
        }
    }
    println!("{:<22} {}", "binding", plan.binding());
    for (binding, time) in &plan.time_bound_by {
        let share = time.as_secs_f64() / plan.makespan.as_secs_f64().max(f64::MIN_POSITIVE);
        println!(
            "  {:<20} {} ({:.0}%)",
            binding.to_string(),
            clock(*time),
            share * 100.0
        );
    }
    println!();
    println!(
        "{:<17} {:>10} {:>14} {:>14}  binding",
        "minutes", "req/min", "tokens/min", "input/min"
    );
    for stretch in stretches(&plan.minutes) {
        let minutes = stretch.len() as u64;
        let requests: u64 = stretch.iter().map(|m| m.admitted_requests).sum();
        let tokens: u64 = stretch.iter().map(|m| m.admitted_tokens).sum();
        let input: u64 = stretch.iter().map(|m| m.admitted_input_tokens).sum();
        let first = stretch[0].start.as_secs() / 60;
        println!(
            "{:<17} {:>10.1} {:>14.0} {:>14.0}  {}",
            format!("{first}..{}", first + minutes),
            requests as f64 / minutes as f64,
            tokens as f64 / minutes as f64,
            input as f64 / minutes as f64,
            stretch[0].binding
        );
    }
}

/// Consecutive minutes with the same binding.
fn stretches(minutes: &[Minute]) -> Vec<&[Minute]> {
    minutes.chunk_by(|a, b| a.binding == b.binding).collect()
}

fn print_lowest_tier(args: &Args, deadline: Duration) -> Result<(), String> {
    let provider = Provider::infer(&args.model)
        .ok_or_else(|| format!("--model {:?}: cannot tell its provider", args.model))?;
    let family = LimitFamily::of(provider, &args.model);
    let candidates = tiers::tiers_of(provider, &family.id);
    let found = lowest_tier_meeting(&args.model, &candidates, &args.workload, deadline)
        .map_err(|e| e.to_string())?;
    println!();
    match found {
        Some((tier, plan)) => println!(
            "lowest tier finishing within {}: {tier} ({}, binds {})",
            clock(deadline),
            clock(plan.makespan),
            plan.binding()
        ),
        None => println!(
            "no tier of {} ({}) finishes within {}",
            family,
            candidates.join(", "),
            clock(deadline)
        ),
    }
    Ok(())
}

fn clock(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    format!(
        "{}h{:02}m{:06.3}s",
        (secs / 3_600.0).floor(),
        ((secs % 3_600.0) / 60.0).floor(),
        secs % 60.0
    )
}

/// Admitted tokens per minute against the per-minute token limit (TPM, else ITPM: then the
/// admitted input tokens, which is what ITPM counts).
fn plot(plan: &Plan, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let limit = plan.tokens_per_minute_limit();
    let input_only = matches!(limit, Some((Dimension::InputTokensPerMinute, _)));
    let admitted: Vec<u64> = plan
        .minutes
        .iter()
        .map(|m| {
            if input_only {
                m.admitted_input_tokens
            } else {
                m.admitted_tokens
            }
        })
        .collect();
    let capacity = limit.map(|(_, capacity)| capacity);
    let peak = admitted.iter().copied().max().unwrap_or(0);
    // Room above the limit for the legend: at the limit the admitted line lies on it.
    let top = peak.max(capacity.unwrap_or(0)).max(1) as f64 * 1.35;
    let minutes = (admitted.len() as f64).max(1.0);
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = if input_only {
        "admitted input tokens per minute"
    } else {
        "admitted tokens per minute"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..minutes, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("minute")
        .y_desc("tokens")
        .x_label_formatter(&|minute| format!("{minute:.0}"))
        .y_label_formatter(&|tokens| format!("{tokens:.0}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            admitted
                .iter()
                .enumerate()
                .map(|(i, tokens)| (i as f64 + 0.5, *tokens as f64)),
            &BLUE,
        ))?
        .label("admitted")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    if let Some((dimension, capacity)) = limit {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, capacity as f64), (minutes, capacity as f64)],
                8,
                6,
                RED.stroke_width(2),
            ))?
            .label(format!("{} limit", dimension.env_suffix()))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
