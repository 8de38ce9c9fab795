//! `pool = .., deployment = ..`: what a pool call opens and binds, and every misuse of the two
//! keys, each reported once.

use quote::quote;

use crate::test_support::*;

fn item() -> proc_macro2::TokenStream {
    quote!(
        async fn f(prompt: &str) -> Result<(), E> {
            send(d.endpoint(), prompt).await
        }
    )
}

#[test]
fn a_pool_call_opens_a_pool_call_and_binds_the_deployment_per_attempt() {
    let out = expand_to_string(
        quote!(pool = "gpt-4o", deployment = d, retries = 2, priority = p),
        item(),
    );
    assert!(
        out.contains(
            ":: ratelimited :: __private :: PoolCall :: new (\"gpt-4o\" , :: core :: option \
             :: Option :: Some (2u32))"
        ),
        "{out}"
    );
    assert!(!out.contains("__private :: Call ::"), "{out}");
    assert!(
        out.contains(":: ratelimited :: __private :: PoolCall :: set_priority"),
        "{out}"
    );
    assert!(
        out.contains(
            "let __rl_deployment = :: ratelimited :: __private :: PoolAttempt :: deployment \
             (& __rl_attempt) ;"
        ),
        "{out}"
    );
    assert!(
        out.contains("let d : & :: ratelimited :: __private :: Deployment = __rl_deployment ;"),
        "{out}"
    );
    // The binding comes after the `acquire` of each attempt, inside the loop.
    let acquire = out.find("__rl_call . acquire ()").unwrap();
    assert!(out.find("__rl_deployment =").unwrap() > acquire, "{out}");
    assert!(out.contains("loop { let __rl_attempt"), "{out}");
}

#[test]
fn a_pool_expression_goes_through_pool_name_and_is_not_prompt() {
    let out = expand_to_string(
        quote!(pool = name, deployment = d),
        quote!(
            async fn f(name: &str, prompt: &str) -> Result<(), E> {
                let _ = (d, prompt);
                Ok(())
            }
        ),
    );
    assert!(out.contains("pool_name (& name)"), "{out}");
    assert!(out.contains("name : \"prompt\""), "{out}");
    assert!(!out.contains("name : \"name\""), "{out}");
}

#[test]
fn a_pool_call_takes_a_tenant_and_it_is_not_prompt() {
    let out = expand_to_string(
        quote!(pool = "gpt-4o", deployment = d, tenant = user),
        quote!(
            async fn f(user: &str, prompt: &str) -> Result<(), E> {
                let _ = (d, user, prompt);
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(
            ":: ratelimited :: __private :: PoolCall :: set_tenant (& mut __rl_call , :: \
             ratelimited :: __private :: tenant_of (& (user)))"
        ),
        "{out}"
    );
    // Set once, before the first attempt acquires.
    let acquire = out.find("__rl_call . acquire ()").unwrap();
    assert!(out.find("set_tenant").unwrap() < acquire, "{out}");
    assert!(!out.contains("name : \"user\""), "{out}");
}

#[test]
fn without_retries_the_deployment_is_still_bound() {
    let out = expand_to_string(quote!(pool = "gpt-4o", deployment = d, retries = 0), item());
    assert!(!out.contains("loop { let __rl_attempt"), "{out}");
    assert!(out.contains("let d : &"), "{out}");
}

#[test]
fn misuse_of_pool_and_deployment() {
    let cases = [
        (
            quote!(model = "gpt-4o", pool = "gpt-4o", deployment = d),
            vec![
                "`model` cannot be given with `pool`: each deployment of the pool serves its own \
                 model (`RATE_LIMITED_<DEPLOYMENT>_MODEL`); remove `model = ..`",
            ],
        ),
        (
            quote!(model = "gpt-4o", deployment = d),
            vec![
                "`deployment` is only for a `pool` call: a `model` call has one limiter and no \
                 deployment to bind; write `pool = \"..\"` instead of `model`, or remove \
                 `deployment = ..`",
            ],
        ),
        (
            quote!(deployment = d),
            vec![
                "`deployment` needs `pool`: write `pool = \"gpt-4o\", deployment = deployment`, \
                 naming a pool of `RATE_LIMITED_POOL_<NAME>` or `Registry::with_pool`",
            ],
        ),
        (
            quote!(pool = "gpt-4o"),
            vec![
                "missing `deployment` argument: each attempt of a `pool` call is admitted on one \
                 deployment and must be sent there; write `pool = .., deployment = deployment` \
                 and send the request to `deployment.endpoint()` (or pick the client by \
                 `deployment.name()`)",
            ],
        ),
        (
            quote!(
                pool = "gpt-4o",
                deployment = tier,
                tier = "tier-2",
                provider = "azure"
            ),
            vec![
                "`tier` cannot be given with `pool`: each deployment has its own \
                 (`RATE_LIMITED_<DEPLOYMENT>_TIER` or `DeploymentConfig::tier`); remove \
                 `tier = ..`",
                "`provider` cannot be given with `pool`: each deployment has its own (the \
                 provider prefix of `RATE_LIMITED_<DEPLOYMENT>_MODEL`); remove `provider = ..`",
            ],
        ),
        (
            quote!(pool = "", deployment = d),
            vec!["`pool` cannot be empty: write `pool = \"gpt-4o\"`"],
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(errors(args.clone(), item()), expected, "{args}");
    }
}

#[test]
fn the_deployment_is_a_plain_name() {
    let message = "`deployment` takes the name to bind the chosen deployment to in the body, not \
                   an expression: write `deployment = deployment`, then send each attempt to \
                   `deployment.endpoint()` (or pick the client by `deployment.name()`)";
    for value in [
        quote!("d"),
        quote!(d.name()),
        quote!(self),
        quote!(a::b),
        quote!(_),
    ] {
        let args = quote!(pool = "gpt-4o", deployment = #value);
        assert_eq!(errors(args, item()), [message], "{value}");
    }
}

#[test]
fn the_deployment_may_not_hide_an_argument() {
    assert_eq!(
        errors(
            quote!(pool = "gpt-4o", deployment = prompt),
            quote!(
                async fn f(prompt: &str) -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        [
            "`deployment = prompt` would hide the argument `prompt` of `f` in the body: give the \
          deployment a name of its own, like `deployment = deployment`"
        ]
    );
    // A name a destructuring pattern binds, beside a `deployment` argument.
    assert_eq!(
        errors(
            quote!(pool = "gpt-4o", deployment = model),
            quote!(
                async fn f(Request { model, .. }: Request, deployment: u8) -> Result<(), E> {
                    Ok(())
                }
            )
        ),
        [
            "`deployment = model` would hide the argument `model` of `f` in the body: give the \
          deployment a name of its own, like `deployment = chosen`"
        ]
    );
}

#[test]
fn near_misses_suggest_the_new_keys() {
    assert_eq!(
        errors(quote!(pool = "gpt-4o", deploy = d), item()),
        [
            "unknown argument `deploy`, did you mean `deployment`? expected one of `model`, \
             `pool`, `deployment`, `tier`, `provider`, `tokens`, `max_tokens`, `n`, `skip`, \
             `retries`, `stream`, `priority`, `tenant`, `crate`",
            "missing `deployment` argument: each attempt of a `pool` call is admitted on one \
             deployment and must be sent there; write `pool = .., deployment = deployment` \
             and send the request to `deployment.endpoint()` (or pick the client by \
             `deployment.name()`)",
        ]
    );
    // A misspelled `pool` is not also a missing `model`.
    assert_eq!(
        errors(quote!(pools = "gpt-4o"), item()),
        [
            "unknown argument `pools`, did you mean `pool`? expected one of `model`, `pool`, \
          `deployment`, `tier`, `provider`, `tokens`, `max_tokens`, `n`, `skip`, `retries`, \
          `stream`, `priority`, `tenant`, `crate`"
        ]
    );
}
