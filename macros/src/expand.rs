//! Code generation for `#[rate_limited]`.
//!
//! The function keeps its signature (less `mut` on arguments that are rebound per attempt);
//! its body becomes: open a `Call` for the model, estimate the request from the arguments, then
//! per attempt acquire, run the original body as an `async move` block, and let the runtime
//! settle the result and decide whether to retry. Limiter failures leave through a labeled
//! block and become the function's own error in exactly one place.
//!
//! ```text
//! // Input:
//! #[rate_limited(model = "gpt-4o-mini")]
//! async fn summarize(client: &Client, req: Req, mut log: &mut Log) -> Result<Resp, ApiError> {
//!     body
//! }
//!
//! // Output (`__rl_*` names are hygienic, paths are absolute):
//! async fn summarize(client: &Client, req: Req, log: &mut Log) -> Result<Resp, ApiError> {
//!     let __rl_error = '__rl_limited: {
//!         let mut __rl_call = match __private::Call::new("gpt-4o-mini", None, None, None) {
//!             Ok(__rl_ok) => __rl_ok,
//!             Err(__rl_err) => break '__rl_limited __rl_err,
//!         };
//!         {
//!             use __private::{ViaEstimate as _, ViaText as _, ..};  // autoref specialization
//!             static __RL_SITE: __private::Site = __private::Site::new("crate::summarize");
//!             __private::estimate_arguments(&mut __rl_call, &__RL_SITE, &[
//!                 PromptArg { name: "client", names_text: false,
//!                             prompt: (&&&&&Arg(&client)).__rl_prompt() },
//!                 ..
//!             ]);
//!         }
//!         { use ..; __rl_call.observe_budget((&Arg(&client)).__rl_budget()); .. }
//!         __private::require_clone(&req);                      // spanned at `Req`
//!         loop {
//!             let __rl_attempt = match __rl_call.acquire().await { .. };
//!             let __rl_result: Result<Resp, ApiError> = {
//!                 let __rl_in1 = Clone::clone(&req);            // owned: a copy per attempt
//!                 let __rl_in2 = &mut *log;                     // `&mut`: a reborrow per attempt
//!                 async move {
//!                     if false { let __rl_never: Result<Resp, ApiError> = loop {}; return __rl_never; }
//!                     let req = __rl_in1;
//!                     let mut log = __rl_in2;
//!                     body                                      // `return` and `?` end the attempt
//!                 }
//!             }
//!             .await;
//!             match __rl_call.finish(__rl_attempt, <Result<Resp, ApiError> as Outcome>::as_result(&__rl_result)).await {
//!                 Ok(Next::Return) => return __rl_result,
//!                 Ok(Next::Retry) => {}
//!                 Err(__rl_err) => break '__rl_limited __rl_err,
//!             }
//!         }
//!     };
//!     <Result<Resp, ApiError> as Outcome>::from_err(__private::into_error(__rl_error))
//! }
//! ```
//!
//! With `pool = .., deployment = d` the call is a `PoolCall::new(pool, retries)` (same methods
//! as `Call`), and each attempt binds the deployment it was admitted on for the body:
//!
//! ```text
//!             let __rl_result: Result<Resp, ApiError> = {
//!                 let __rl_deployment = __private::PoolAttempt::deployment(&__rl_attempt);
//!                 async move {
//!                     ..
//!                     let d: &__private::Deployment = __rl_deployment;
//!                     body
//!                 }
//!             }
//!             .await;
//! ```
//!
//! A destructuring pattern whose names a key uses is bound once more for the keys, before them,
//! without moving the argument (`args::bind_for_keys`); the call is then opened and estimated in
//! a block that ends before the first attempt.
//!
//! `self` by value and `&mut self` cannot be rebound with `let`, so when there are retries the
//! body spells them `__rl_self` (renamed by `args::RenameSelf`), bound per attempt to a clone or a
//! reborrow. With `retries = 0` there is no loop and nothing is cloned or renamed: the body's
//! `async move` block takes the arguments themselves.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{AttrStyle, Expr, ExprLit, ItemFn, Lit, ReturnType, Type};

use crate::args::{bind_for_keys, per_attempt, rewrite_inputs, PerAttempt, RenameSelf};
use crate::attr::{Args, Target};
use crate::estimate::estimate;
use crate::names::Names;
use crate::spans::{call_across, located_at, span_range};

/// The function `func` becomes under `args`. `entry.rs` calls it only once `validate.rs` has
/// passed the item: an `async fn` with a return type that can be named, whose arguments include
/// every `skip` name.
pub(crate) fn expand(args: &Args, mut func: ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::ratelimited), ToTokens::to_token_stream);
    // `::ratelimited::__private`, or under the `crate = ".."` path.
    let private_mod = quote!(#krate::__private);
    let retrying = args.retries.as_ref().is_none_or(|r| r.value > 0);
    let ReturnType::Type(_, ret) = &func.sig.output else {
        unreachable!("`check` rejects functions without a return type")
    };
    let ret: Type = (**ret).clone();
    let names = Names::new();

    let (params, receiver) = rewrite_inputs(&mut func.sig, retrying);
    let mut per_attempt = per_attempt(&params, receiver.as_ref(), retrying, &private_mod);
    if let Some(deployment) = args.target.deployment() {
        bind_deployment(&mut per_attempt, deployment, &private_mod, &names);
    }
    let mut body = (*func.block).clone();
    if receiver.as_ref().is_some_and(|r| r.renamed) {
        RenameSelf.visit_block_mut(&mut body);
    }

    let open = open_call(args, &private_mod, &names);
    let estimate = estimate(args, &func.sig, &params, &private_mod, &names);
    let keys_bind = bind_for_keys(&params, args);
    let Names {
        error, label, call, ..
    } = &names;
    // The keys are evaluated before any attempt binds the arguments' patterns: the names they
    // use are bound for them alone, in a block that ends before the first attempt.
    let prepare = if keys_bind.is_empty() {
        quote!(#open #estimate)
    } else {
        quote! {
            let mut #call = {
                #(#keys_bind)*
                #open
                #estimate
                #call
            };
        }
    };
    let (first, last) = span_range(&ret);
    // The one place a limiter error becomes the function's error. `Outcome` names the return
    // type's `Ok` and `Err`, so a return type that is not a `Result` is reported at itself.
    let outcome = |assoc: &str| {
        let open = located_at(quote!(<), first);
        let close = located_at(quote!(as #private_mod::Outcome>::), first);
        let assoc = Ident::new(assoc, Span::call_site().located_at(last));
        quote!(#open #ret #close #assoc)
    };
    let (ok_type, err_type) = (outcome("Ok"), outcome("Err"));
    let attempts = if args.stream.is_some() {
        // The body returns the bare stream; the function, the stream wrapped.
        let stream_return = located_at(quote!(#private_mod::StreamReturn), first);
        let body_ret = quote! {
            ::core::result::Result<<#ok_type as #stream_return>::Stream, #err_type>
        };
        let attempt = Attempt {
            body_ret,
            settle: settle_stream(&ret, retrying, &private_mod, &names),
        };
        attempts(&body, &attempt, &per_attempt, retrying, &names)
    } else {
        let attempt = Attempt {
            body_ret: ret.to_token_stream(),
            settle: settle_whole(&ret, retrying, &private_mod, &names),
        };
        attempts(&body, &attempt, &per_attempt, retrying, &names)
    };
    let into_error = call_across(
        quote!(#private_mod::into_error),
        quote!(#error),
        (first, last),
    );
    // The one place a limiter error becomes the function's error, through `Outcome` rather
    // than `Result::Err`: a return type that is not a `Result` is reported as such at the
    // return type, not also as a type mismatch at the attribute.
    let from_err = located_at(quote!(<#ret as #private_mod::Outcome>::from_err), first);
    let limiter_error = quote!(#from_err(#into_error));

    for attr in &mut func.attrs {
        // Inner attributes of the body (`#![allow(..)]`) apply to the whole function.
        attr.style = AttrStyle::Outer;
    }
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let mut block = TokenStream::new();
    func.block.brace_token.surround(&mut block, |tokens| {
        tokens.extend(quote! {
            let #error = #label: {
                #prepare
                #attempts
            };
            #limiter_error
        });
    });
    quote! {
        #(#attrs)*
        #vis #sig #block
    }
}

/// What differs between a whole response and a stream in one attempt.
struct Attempt {
    /// The type the body returns (the function's, or the bare stream's for `stream`).
    body_ret: TokenStream,
    /// Settles `__rl_result` and returns, retries (falls through) or breaks to the label.
    settle: TokenStream,
}

/// Acquire, run the body, settle; in a loop unless `retries = 0`. Leaves with `return` when
/// the body's result is final, and through the label with a limiter error.
fn attempts(
    body: &syn::Block,
    attempt_shape: &Attempt,
    per_attempt: &PerAttempt,
    retrying: bool,
    names: &Names,
) -> TokenStream {
    let Names {
        call,
        attempt,
        result,
        never,
        ok,
        err,
        label,
        ..
    } = names;
    let Attempt {
        body_ret: ret,
        settle,
    } = attempt_shape;
    let PerAttempt {
        fresh,
        bind,
        clone_checks,
    } = per_attempt;
    let stmts = &body.stmts;
    // The `if false` return sets the async block's return type before the body is checked, so
    // `?` and every `return` in the body convert and coerce into the function's return type
    // (tracing's "fake return edge").
    let run_body = quote! {
        {
            #(#fresh)*
            async move {
                #[allow(
                    unknown_lints,
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::empty_loop,
                    clippy::needless_return,
                )]
                if false {
                    let #never: #ret = loop {};
                    return #never;
                }
                #(#bind)*
                #(#stmts)*
            }
        }
    };
    let acquire_and_run = quote! {
        let #attempt = match #call.acquire().await {
            ::core::result::Result::Ok(#ok) => #ok,
            ::core::result::Result::Err(#err) => break #label #err,
        };
        let #result: #ret = #run_body.await;
    };
    if retrying {
        quote! {
            #(#clone_checks)*
            loop {
                #acquire_and_run
                #settle
            }
        }
    } else {
        quote! {
            #acquire_and_run
            #settle
        }
    }
}

/// A whole response: `finish` settles it from its usage and decides.
fn settle_whole(
    ret: &Type,
    retrying: bool,
    private_mod: &TokenStream,
    names: &Names,
) -> TokenStream {
    let Names {
        call,
        attempt,
        result,
        err,
        label,
        ..
    } = names;
    // Unmet bounds of `finish` (`ReportUsage` on the success type, `Classify` on the error
    // type) are reported once, at the return type: with every token at the return type's
    // first one, rustc reports them once for the call and its `.await` alike.
    // The result goes through `Outcome` as at the function's tail, with the same spans: a
    // return type that is not a `Result` fails both the same way, and rustc reports it once.
    let finish = located_at(
        quote!(#call.finish(#attempt, <#ret as #private_mod::Outcome>::as_result(&#result)).await),
        span_range(ret).0,
    );
    let retry = if retrying {
        quote!(::core::result::Result::Ok(#private_mod::Next::Retry) => {})
    } else {
        TokenStream::new()
    };
    quote! {
        match #finish {
            #retry
            ::core::result::Result::Ok(_) => return #result,
            ::core::result::Result::Err(#err) => break #label #err,
        }
    }
}

/// A stream: an `Ok` stream takes the attempt's reservation and goes to the caller (errors
/// inside it are the caller's, never retried); an `Err` before it (429, 5xx) is decided as
/// for a whole response.
fn settle_stream(
    ret: &Type,
    retrying: bool,
    private_mod: &TokenStream,
    names: &Names,
) -> TokenStream {
    let Names {
        call,
        attempt,
        result,
        ok,
        err,
        label,
        ..
    } = names;
    let limiter_err = Ident::new("__rl_limiter_err", Span::mixed_site());
    let first = span_range(ret).0;
    // The headers of a `WithHeaders` stream, read before the stream moves (see
    // `StreamHeadersOf`).
    let headers = Ident::new("__rl_stream_headers", Span::mixed_site());
    let start = located_at(
        quote!({
            let #headers = {
                #[allow(unused_imports)]
                use #private_mod::{NoStreamHeaders as _, StreamHeadersOf as _};
                (&&#ok).rate_limit_headers_of_stream()
            };
            #call.start_stream(#attempt, #ok, #headers)
        }),
        first,
    );
    let finish = located_at(
        quote!(#call.finish_stream_error(#attempt, &#err).await),
        first,
    );
    let retry = if retrying {
        quote!(::core::result::Result::Ok(#private_mod::Next::Retry) => {})
    } else {
        TokenStream::new()
    };
    quote! {
        match #result {
            ::core::result::Result::Ok(#ok) => {
                return ::core::result::Result::Ok(#start);
            }
            ::core::result::Result::Err(#err) => match #finish {
                #retry
                ::core::result::Result::Ok(_) => return ::core::result::Result::Err(#err),
                ::core::result::Result::Err(#limiter_err) => break #label #limiter_err,
            },
        }
    }
}

/// A pool's attempt binds the deployment it was admitted on to the name `deployment = ..`
/// gives, for the body: a `&Deployment` borrowed from the attempt, which the body's future
/// holds until it is awaited, before the attempt is settled.
fn bind_deployment(
    per_attempt: &mut PerAttempt,
    deployment: &Ident,
    private_mod: &TokenStream,
    names: &Names,
) {
    let attempt = &names.attempt;
    let chosen = Ident::new("__rl_deployment", Span::mixed_site());
    per_attempt
        .fresh
        .push(quote!(let #chosen = #private_mod::PoolAttempt::deployment(&#attempt);));
    // The user's name, at the user's span: the body sees it, and an unused one is reported
    // there.
    per_attempt
        .bind
        .push(quote!(let #deployment: &#private_mod::Deployment = #chosen;));
}

/// `let mut __rl_call = Call::new(model, provider, tier, retries)` (`PoolCall::new(pool,
/// retries)` for a pool), leaving through the label on an error.
fn open_call(args: &Args, private_mod: &TokenStream, names: &Names) -> TokenStream {
    let Names {
        call,
        ok,
        err,
        label,
        ..
    } = names;
    let name = |function: &str, expr: &Expr| {
        let function = Ident::new(function, Span::call_site());
        as_str(&quote!(#private_mod::#function), expr)
    };
    let retries = optional(args.retries.as_ref().map(|retries| {
        let value = retries.value;
        quote_spanned!(retries.span=> #value)
    }));
    let (driver, new) = match &args.target {
        Target::Model(model) => {
            let model = name("model_name", model);
            let provider = optional(
                args.provider
                    .as_ref()
                    .map(|expr| name("provider_name", expr)),
            );
            let tier = optional(args.tier.as_ref().map(|expr| name("tier_name", expr)));
            let driver = quote!(#private_mod::Call);
            let new = quote!(#driver::new(#model, #provider, #tier, #retries));
            (driver, new)
        }
        Target::Pool { pool, .. } => {
            let pool = name("pool_name", pool);
            let driver = quote!(#private_mod::PoolCall);
            let new = quote!(#driver::new(#pool, #retries));
            (driver, new)
        }
    };
    // Spanned at the expression: a value that is not a `Priority` is reported there.
    let priority = args.priority.as_ref().map(|priority| {
        let (first, last) = span_range(priority);
        let set = call_across(
            quote!(#driver::set_priority),
            quote!(&mut #call, #priority),
            (first, last),
        );
        quote!(#set;)
    });
    // Spanned at the expression: a value that is no tenant id is reported there.
    // Borrowed, so an argument that is the tenant is not moved before the body; the borrow is
    // written over the user's tokens so that a type which is no tenant id is underlined there.
    let tenant = args.tenant.as_ref().map(|tenant| {
        let (first, last) = span_range(tenant);
        let mut amp = proc_macro2::Punct::new('&', proc_macro2::Spacing::Alone);
        amp.set_span(first);
        let mut borrowed = proc_macro2::Group::new(
            proc_macro2::Delimiter::Parenthesis,
            tenant.to_token_stream(),
        );
        borrowed.set_span(last);
        let id = call_across(
            quote!(#private_mod::tenant_of),
            quote!(#amp #borrowed),
            (first, last),
        );
        quote!(#driver::set_tenant(&mut #call, #id);)
    });
    quote! {
        let mut #call = match #new {
            ::core::result::Result::Ok(#ok) => #ok,
            ::core::result::Result::Err(#err) => break #label #err,
        };
        #priority
        #tenant
    }
}

/// A `&str` from a `model`/`pool`/`tier`/`provider` expression through `function`
/// (`model_name`, ..): `&str`, `String`, `&String`, `Cow<str>` all work, and a type that is
/// none of them is reported at the expression, with the key's own message (an `Option` gets
/// the `unwrap_or` it needs).
fn as_str(function: &TokenStream, expr: &Expr) -> TokenStream {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(_), ..
    }) = expr
    {
        return expr.to_token_stream();
    }
    let operand = operand(expr);
    let (first, last) = span_range(expr);
    call_across(
        function.clone(),
        quote_spanned!(first=> &#operand),
        (first, last),
    )
}

fn optional(value: Option<TokenStream>) -> TokenStream {
    value.map_or_else(
        || quote!(::core::option::Option::None),
        |value| quote!(::core::option::Option::Some(#value)),
    )
}

/// The expression, parenthesized unless it binds tighter than a prefix operator already.
fn operand(expr: &Expr) -> TokenStream {
    match expr {
        Expr::Path(_)
        | Expr::Lit(_)
        | Expr::Field(_)
        | Expr::MethodCall(_)
        | Expr::Call(_)
        | Expr::Index(_)
        | Expr::Macro(_)
        | Expr::Paren(_)
        | Expr::Tuple(_)
        | Expr::Reference(_) => expr.to_token_stream(),
        _ => {
            let mut tokens = TokenStream::new();
            syn::token::Paren(expr.span()).surround(&mut tokens, |tokens| {
                expr.to_tokens(tokens);
            });
            tokens
        }
    }
}
