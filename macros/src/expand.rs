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
//!             use __private::{ViaEstimate as _, ViaNothing as _};   // autoref specialization
//!             let __rl_len = 0usize.saturating_add((&Arg(&client)).__rl_text_len())..;
//!             __rl_call.estimate(__rl_len, |__rl_encoding| 0u64.saturating_add(..)..);
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
//!             match __rl_call.finish(__rl_attempt, &__rl_result).await {   // spanned at the return type
//!                 Ok(Next::Return) => return __rl_result,
//!                 Ok(Next::Retry) => {}
//!                 Err(__rl_err) => break '__rl_limited __rl_err,
//!             }
//!         }
//!     };
//!     Result::<<Result<Resp, ApiError> as Outcome>::Ok, <.. as Outcome>::Err>::Err(
//!         __private::into_error(__rl_error),
//!     )
//! }
//! ```
//!
//! `self` by value and `&mut self` cannot be rebound with `let`, so when there are retries the
//! body spells them `__rl_self` (renamed by [`RenameSelf`]), bound per attempt to a clone or a
//! reborrow. With `retries = 0` there is no loop and nothing is cloned or renamed: the body's
//! `async move` block takes the arguments themselves.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    AttrStyle, Expr, ExprLit, ExprPath, FnArg, ItemFn, Lifetime, Lit, Pat, PatIdent, PatType,
    Receiver, ReturnType, Signature, Type, TypeImplTrait,
};

use crate::attr::Args;

/// The whole attribute: parse, check, generate. On any error the item comes back unchanged,
/// followed by the errors, so the rest of the user's crate still type-checks.
pub(crate) fn rate_limited(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = Args::parse(args);
    let func = parse_fn(item.clone()).and_then(|func| check(&func).map(|()| func));
    let expanded = match (args, func) {
        (Ok(args), Ok(func)) => Ok(expand(&args, func)),
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => Err(error),
        (Err(mut error), Err(item_error)) => {
            error.combine(item_error);
            Err(error)
        }
    };
    expanded.unwrap_or_else(|error| {
        let mut tokens = item;
        tokens.extend(error.to_compile_error());
        tokens
    })
}

fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2::<ItemFn>(item.clone()).map_err(|error| {
        if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item) {
            if declaration.default.is_none() {
                return syn::Error::new_spanned(
                    &declaration.sig,
                    "`#[rate_limited]` needs the function's body: put it on the method in the \
                     `impl` block, or give this trait method a default body",
                );
            }
        }
        syn::Error::new(
            error.span(),
            "`#[rate_limited]` can only be applied to an `async fn`",
        )
    })
}

/// What the signature must look like, each problem at its own tokens.
fn check(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Option<syn::Error> = None;
    let mut push = |error: syn::Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };
    if sig.asyncness.is_none() && returns_boxed_future(sig) {
        push(syn::Error::new_spanned(
            sig.fn_token,
            "`#[rate_limited]` needs an `async fn`, and this one already returns a boxed future \
             (`#[async_trait]` expands before the attributes inside its impl): use a native \
             `async fn` in the trait, or put `#[rate_limited]` on an inherent `async fn` that \
             this method calls",
        ));
    } else if sig.asyncness.is_none() {
        push(syn::Error::new_spanned(
            sig.fn_token,
            "`#[rate_limited]` requires an `async fn`: add `async` before `fn`",
        ));
    }
    match &sig.output {
        ReturnType::Default => push(syn::Error::new_spanned(
            &sig.ident,
            "`#[rate_limited]` functions must return a `Result`: add `-> Result<T, E>` where \
             `E: From<ratelimited::Error>`",
        )),
        ReturnType::Type(_, ty) => {
            let mut finder = FindImplTrait(None);
            finder.visit_type_mut(&mut (**ty).clone());
            if let Some(impl_trait) = finder.0 {
                push(syn::Error::new_spanned(
                    impl_trait,
                    "`impl Trait` is not supported in the return type of a `#[rate_limited]` \
                     function: name the type, or box it as `Box<dyn Trait>`",
                ));
            }
        }
    }
    errors.map_or(Ok(()), Err)
}

/// `-> Pin<Box<dyn Future<..> ..>>`: what `#[async_trait]` makes of an `async fn`.
fn returns_boxed_future(sig: &Signature) -> bool {
    fn idents(tokens: TokenStream, out: &mut Vec<String>) {
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => out.push(ident.to_string()),
                TokenTree::Group(group) => idents(group.stream(), out),
                _ => {}
            }
        }
    }
    let mut names = Vec::new();
    idents(sig.output.to_token_stream(), &mut names);
    ["Pin", "Box", "Future"]
        .iter()
        .all(|name| names.iter().any(|n| n == name))
}

/// Finds an `impl Trait` in a type: the body's result is bound with that type in a `let`,
/// where `impl Trait` is not allowed.
struct FindImplTrait(Option<TypeImplTrait>);

impl VisitMut for FindImplTrait {
    fn visit_type_impl_trait_mut(&mut self, ty: &mut TypeImplTrait) {
        self.0.get_or_insert_with(|| ty.clone());
    }
}

/// How an argument is passed, which decides what each attempt gets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Passing {
    /// `&T`: every attempt uses it as is.
    Shared,
    /// `&mut T`: every attempt gets a reborrow.
    Unique,
    /// `T`: every attempt gets a clone.
    Owned,
}

impl Passing {
    fn of(ty: &Type) -> Passing {
        match ty {
            Type::Reference(reference) if reference.mutability.is_some() => Passing::Unique,
            Type::Reference(_) => Passing::Shared,
            Type::Paren(inner) => Passing::of(&inner.elem),
            Type::Group(inner) => Passing::of(&inner.elem),
            _ => Passing::Owned,
        }
    }

    fn of_receiver(receiver: &Receiver) -> Passing {
        match &receiver.reference {
            Some(_) if receiver.mutability.is_some() => Passing::Unique,
            Some(_) => Passing::Shared,
            None => Passing::of(&receiver.ty),
        }
    }
}

/// One typed argument after the signature has been rewritten.
struct Param {
    /// The name the function binds the argument to (the user's, or `__rl_argN`).
    binding: Ident,
    /// The first span of the argument's type, where a missing `Clone` is reported.
    ty_span: Span,
    passing: Passing,
    /// The user's pattern when each attempt has to bind it again, `None` when the attempt can
    /// use `binding` directly.
    rebind: Option<TokenStream>,
}

/// `tokens` with every span moved to `span`'s location, keeping its hygiene.
fn located_at(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut moved = Group::new(group.delimiter(), located_at(group.stream(), span));
                moved.set_span(group.span().located_at(span));
                TokenTree::Group(moved)
            }
            mut other => {
                other.set_span(other.span().located_at(span));
                other
            }
        })
        .collect()
}

/// The first and last token spans of `tokens`: on stable Rust a span cannot be joined, but an
/// expression whose tokens run from one to the other is reported across the whole range.
fn span_range(tokens: &impl ToTokens) -> (Span, Span) {
    let mut spans = tokens
        .to_token_stream()
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => (group.span_open(), group.span_close()),
            other => (other.span(), other.span()),
        });
    let (first, mut last) = spans
        .next()
        .map_or((Span::call_site(), Span::call_site()), |(open, close)| {
            (open, close)
        });
    for (_, close) in spans {
        last = close;
    }
    (first, last)
}

/// `function(args)` written over the user's tokens from `first` to `last`, so that an unmet
/// bound of `function` underlines exactly those tokens. The function's path takes the spans of
/// the user's tokens (resolution is the same: it is absolute); the arguments keep their own.
/// rustc joins the span of an expression only when its ends share a syntax context, and falls
/// back to the whole attribute otherwise.
fn call_across(
    function: TokenStream,
    args: TokenStream,
    (first, last): (Span, Span),
) -> TokenStream {
    let function: TokenStream = function
        .into_iter()
        .map(|mut token| {
            token.set_span(first);
            token
        })
        .collect();
    let mut args = Group::new(Delimiter::Parenthesis, args);
    args.set_span(last);
    quote!(#function #args)
}

/// The names the expansion introduces. Hygienic (`Span::mixed_site()`): the body can neither
/// see nor shadow them, and parameters may use the same spellings.
struct Names {
    call: Ident,
    attempt: Ident,
    result: Ident,
    error: Ident,
    never: Ident,
    ok: Ident,
    err: Ident,
    len: Ident,
    encoding: Ident,
    label: Lifetime,
}

impl Names {
    fn new() -> Names {
        let name = |name: &str| Ident::new(name, Span::mixed_site());
        Names {
            call: name("__rl_call"),
            attempt: name("__rl_attempt"),
            result: name("__rl_result"),
            error: name("__rl_error"),
            never: name("__rl_never"),
            ok: name("__rl_ok"),
            err: name("__rl_err"),
            len: name("__rl_len"),
            encoding: name("__rl_encoding"),
            label: Lifetime::new("'__rl_limited", Span::mixed_site()),
        }
    }
}

/// The values each attempt starts from.
#[derive(Default)]
struct PerAttempt {
    /// Computed outside the attempt's `async move` block (a clone, a reborrow, a copy) and moved
    /// into it.
    fresh: Vec<TokenStream>,
    /// The user's patterns bound to those values inside the block, where the body sees them as
    /// its parameters: a `mut` binding can then be reassigned to a borrow of a body local.
    bind: Vec<TokenStream>,
    /// `require_clone` for every argument that is cloned, before the first attempt.
    clone_checks: Vec<TokenStream>,
}

fn expand(args: &Args, mut func: ItemFn) -> TokenStream {
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
    let per_attempt = per_attempt(&params, receiver.as_ref(), retrying, &private_mod);
    let mut body = (*func.block).clone();
    if receiver.as_ref().is_some_and(|r| r.renamed) {
        RenameSelf.visit_block_mut(&mut body);
    }

    let open = open_call(args, &private_mod, &names);
    let estimate = estimate(args, &params, &private_mod, &names);
    let attempts = attempts(&body, &ret, &per_attempt, retrying, &private_mod, &names);
    let Names { error, label, .. } = &names;
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
    let into_error = call_across(
        quote!(#private_mod::into_error),
        quote!(#error),
        (first, last),
    );
    let limiter_error = quote! {
        ::core::result::Result::<#ok_type, #err_type>::Err(#into_error)
    };

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
                #open
                #estimate
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

/// What each attempt binds before the body runs; see [`PerAttempt`].
fn per_attempt(
    params: &[Param],
    receiver: Option<&SelfParam>,
    retrying: bool,
    private_mod: &TokenStream,
) -> PerAttempt {
    let mut out = PerAttempt::default();
    if let Some(receiver) = receiver {
        out.fresh
            .extend(receiver.rebind(private_mod, &mut out.clone_checks));
    }
    for (index, param) in params.iter().enumerate() {
        let binding = &param.binding;
        let Some(pattern) = &param.rebind else {
            continue;
        };
        let value = match (retrying, param.passing) {
            (false, _) | (true, Passing::Shared) => quote!(#binding),
            (true, Passing::Unique) => quote!(&mut *#binding),
            (true, Passing::Owned) => {
                // Both at the argument's type: rustc reports the unmet `Clone` once, with
                // `RetryClone`'s message.
                // Both spanned at the argument's type: rustc reports the unmet `Clone` once,
                // across the whole argument, with `RetryClone`'s message and notes.
                let ty = param.ty_span;
                out.clone_checks.push(quote_spanned! {ty=>
                    #private_mod::require_clone(&#binding);
                });
                quote_spanned!(ty=> ::core::clone::Clone::clone(&#binding))
            }
        };
        let moved_in = format_ident!("__rl_in{}", index, span = Span::mixed_site());
        out.fresh.push(quote!(let #moved_in = #value;));
        // A parameter used only in the attribute's expressions is not unused.
        out.bind.push(quote! {
            #[allow(unused_variables)]
            let #pattern = #moved_in;
        });
    }
    out
}

/// Acquire, run the body, settle; in a loop unless `retries = 0`. Leaves with `return` when
/// the body's result is final, and through the label with a limiter error.
fn attempts(
    body: &syn::Block,
    ret: &Type,
    per_attempt: &PerAttempt,
    retrying: bool,
    private_mod: &TokenStream,
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
    // Unmet bounds of `finish` (`ReportUsage` on the success type, `Classify` on the error
    // type) are reported once, at the return type.
    // Every token at the return type's first one: rustc then reports an unmet bound of
    // `finish` once, for the call and its `.await` alike.
    let finish = located_at(
        quote!(#call.finish(#attempt, &#result).await),
        span_range(ret).0,
    );
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
                match #finish {
                    ::core::result::Result::Ok(#private_mod::Next::Return) => return #result,
                    ::core::result::Result::Ok(#private_mod::Next::Retry) => {}
                    ::core::result::Result::Err(#err) => break #label #err,
                }
            }
        }
    } else {
        quote! {
            #acquire_and_run
            match #finish {
                ::core::result::Result::Ok(_) => return #result,
                ::core::result::Result::Err(#err) => break #label #err,
            }
        }
    }
}

/// `let mut __rl_call = Call::new(model, provider, tier, retries)`, leaving through the label on
/// an error.
fn open_call(args: &Args, private_mod: &TokenStream, names: &Names) -> TokenStream {
    let Names {
        call,
        ok,
        err,
        label,
        ..
    } = names;
    let model = as_str(&args.model);
    let provider = optional(args.provider.as_ref().map(as_str));
    let tier = optional(args.tier.as_ref().map(as_str));
    let retries = optional(args.retries.as_ref().map(|retries| {
        let value = retries.value;
        quote_spanned!(retries.span=> #value)
    }));
    quote! {
        let mut #call = match #private_mod::Call::new(#model, #provider, #tier, #retries) {
            ::core::result::Result::Ok(#ok) => #ok,
            ::core::result::Result::Err(#err) => break #label #err,
        };
    }
}

/// A `&str` from a `model`/`tier`/`provider` expression: `&str`, `String`, `&String`, `Cow<str>`
/// all work, and a type that is none of them is reported at the expression.
fn as_str(expr: &Expr) -> TokenStream {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(_), ..
    }) = expr
    {
        return expr.to_token_stream();
    }
    let operand = operand(expr);
    let (first, last) = span_range(expr);
    call_across(
        quote!(::core::convert::AsRef::<::core::primitive::str>::as_ref),
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

/// The input-token estimate and the output reservation, from the arguments unless the
/// attribute gives them.
fn estimate(
    args: &Args,
    params: &[Param],
    private_mod: &TokenStream,
    names: &Names,
) -> TokenStream {
    let Names {
        call,
        len,
        encoding,
        ..
    } = names;
    let mut tokens = TokenStream::new();

    let arg = |param: &Param| {
        let binding = &param.binding;
        quote!((&#private_mod::Arg(&#binding)))
    };

    let count = |function: &str, expr: &Expr| {
        let function = Ident::new(function, Span::call_site());
        call_across(
            quote!(#private_mod::#function),
            quote!(#expr),
            span_range(expr),
        )
    };
    if let Some(expr) = &args.tokens {
        let tokens_count = count("token_count", expr);
        tokens.extend(quote!(#call.set_input_tokens(#tokens_count);));
    } else if !params.is_empty() {
        let lens = params.iter().map(|p| {
            let arg = arg(p);
            quote!(#arg.__rl_text_len())
        });
        let estimates = params.iter().map(|p| {
            let arg = arg(p);
            quote!(#arg.__rl_estimate(#encoding))
        });
        tokens.extend(quote! {
            {
                #[allow(unused_imports)]
                use #private_mod::{ViaEstimate as _, ViaNothing as _};
                let #len = 0usize #(.saturating_add(#lens))*;
                #call.estimate(#len, |#encoding| 0u64 #(.saturating_add(#estimates))*);
            }
        });
    }

    if (args.max_tokens.is_none() || args.n.is_none()) && !params.is_empty() {
        let budgets = params.iter().map(|p| {
            let arg = arg(p);
            quote!(#call.observe_budget(#arg.__rl_budget());)
        });
        tokens.extend(quote! {
            {
                #[allow(unused_imports)]
                use #private_mod::{ViaBudget as _, ViaNoBudget as _};
                #(#budgets)*
            }
        });
    }
    // After `observe_budget`, so the attribute wins over what the arguments say.
    if let Some(expr) = &args.max_tokens {
        let max_tokens = count("token_count", expr);
        tokens.extend(quote!(#call.set_max_tokens(#max_tokens);));
    }
    if let Some(expr) = &args.n {
        let n = count("choice_count", expr);
        tokens.extend(quote!(#call.set_n(#n);));
    }
    tokens
}

/// The method receiver, when it has one.
struct SelfParam {
    passing: Passing,
    /// `self` is spelled `__rl_self` in the body, which rebinds it per attempt (`self` itself
    /// cannot be rebound with `let`).
    renamed: bool,
    /// `mut self`, moved onto the per-attempt binding.
    mutable: bool,
    span: Span,
}

impl SelfParam {
    /// The per-attempt binding of `__rl_self`, if the receiver needs one.
    fn rebind(
        &self,
        private_mod: &TokenStream,
        clone_checks: &mut Vec<TokenStream>,
    ) -> Option<TokenStream> {
        if !self.renamed {
            return None;
        }
        let renamed = Ident::new("__rl_self", Span::mixed_site());
        let self_token = Ident::new("self", self.span);
        let mutability = self.mutable.then(|| quote!(mut));
        let value = match self.passing {
            Passing::Shared => quote!(#self_token),
            Passing::Unique => quote!(&mut *#self_token),
            Passing::Owned => {
                let span = (self.span, self.span);
                let borrow = quote_spanned!(self.span=> &#self_token);
                let check = call_across(quote!(#private_mod::require_clone), borrow.clone(), span);
                clone_checks.push(quote!(#check;));
                call_across(quote!(::core::clone::Clone::clone), borrow, span)
            }
        };
        Some(quote!(let #mutability #renamed = #value;))
    }
}

/// Gives every argument a name the expansion can use, and moves `mut` from the signature onto
/// the per-attempt bindings when there are any.
fn rewrite_inputs(sig: &mut Signature, retrying: bool) -> (Vec<Param>, Option<SelfParam>) {
    let mut params = Vec::new();
    let mut receiver = None;
    for (index, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(recv) => {
                let passing = Passing::of_receiver(recv);
                // `&self` is `Copy`; `&mut self` and `self` would be moved into the first
                // attempt, so later attempts use a reborrow or a clone under another name.
                let renamed = retrying && passing != Passing::Shared;
                let mutable = renamed && recv.mutability.is_some() && recv.reference.is_none();
                if mutable {
                    recv.mutability = None;
                }
                receiver = Some(SelfParam {
                    passing,
                    renamed,
                    mutable,
                    span: recv.self_token.span,
                });
            }
            FnArg::Typed(PatType { pat, ty, .. }) => {
                let passing = Passing::of(ty);
                let ty_span = span_range(ty).0;
                let param = match &mut **pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        mutability,
                        ident,
                        subpat: None,
                        ..
                    }) => {
                        let needs_rebind =
                            retrying && (passing != Passing::Shared || mutability.is_some());
                        let rebind = needs_rebind.then(|| quote!(#mutability #ident));
                        if needs_rebind {
                            *mutability = None;
                        }
                        Param {
                            binding: ident.clone(),
                            ty_span,
                            passing,
                            rebind,
                        }
                    }
                    other => {
                        let binding = format_ident!("__rl_arg{}", index, span = Span::mixed_site());
                        let rebind = match other {
                            Pat::Wild(_) => None,
                            _ => Some(other.to_token_stream()),
                        };
                        *other = Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: binding.clone(),
                            subpat: None,
                        });
                        Param {
                            binding,
                            ty_span,
                            passing,
                            rebind,
                        }
                    }
                };
                params.push(param);
            }
        }
    }
    (params, receiver)
}

/// Spells `self` as `__rl_self` in a body, except inside nested items (which have their own
/// `self`) and in `self::` paths.
struct RenameSelf;

impl RenameSelf {
    fn ident(span: Span) -> Ident {
        Ident::new("__rl_self", span.resolved_at(Span::mixed_site()))
    }

    /// Macro arguments are plain tokens: rename every `self` that does not start a path.
    fn tokens(tokens: TokenStream) -> TokenStream {
        let mut out = Vec::new();
        let mut iter = tokens.into_iter().peekable();
        while let Some(token) = iter.next() {
            out.push(match token {
                TokenTree::Ident(ident) if ident == "self" => {
                    let starts_path = matches!(
                        iter.peek(),
                        Some(TokenTree::Punct(p)) if p.as_char() == ':'
                    );
                    if starts_path {
                        TokenTree::Ident(ident)
                    } else {
                        TokenTree::Ident(RenameSelf::ident(ident.span()))
                    }
                }
                TokenTree::Group(group) => {
                    let mut renamed = Group::new(group.delimiter(), Self::tokens(group.stream()));
                    renamed.set_span(group.span());
                    TokenTree::Group(renamed)
                }
                other => other,
            });
        }
        out.into_iter().collect()
    }
}

impl VisitMut for RenameSelf {
    fn visit_expr_path_mut(&mut self, expr: &mut ExprPath) {
        let path = &mut expr.path;
        if expr.qself.is_none()
            && path.leading_colon.is_none()
            && path.segments.len() == 1
            && path.segments[0].ident == "self"
        {
            let span = path.segments[0].ident.span();
            path.segments[0].ident = RenameSelf::ident(span);
        } else {
            visit_mut::visit_expr_path_mut(self, expr);
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        mac.tokens = RenameSelf::tokens(std::mem::take(&mut mac.tokens));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion of `item` under `#[rate_limited(args)]`, as a string.
    fn expand_to_string(args: TokenStream, item: TokenStream) -> String {
        rate_limited(args, item).to_string()
    }

    /// The expansion, which must be a well-formed function.
    fn expand_fn(args: TokenStream, item: TokenStream) -> ItemFn {
        let tokens = rate_limited(args, item);
        match syn::parse2::<ItemFn>(tokens.clone()) {
            Ok(func) => func,
            Err(error) => panic!("not a function ({error}):\n{tokens}"),
        }
    }

    /// The `compile_error!` messages in an expansion, in order.
    fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        let file: syn::File = syn::parse2(rate_limited(args, item)).expect("items");
        file.items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Macro(m)
                    if m.mac.path.segments.last().unwrap().ident == "compile_error" =>
                {
                    let message: syn::LitStr = m.mac.parse_body().expect("a message");
                    Some(message.value())
                }
                _ => None,
            })
            .collect()
    }

    fn signature(func: &ItemFn) -> String {
        func.sig.to_token_stream().to_string()
    }

    #[test]
    fn keeps_the_signature_and_attributes() {
        let func = expand_fn(
            quote!(model = "gpt-4o-mini"),
            quote! {
                /// Docs.
                #[inline]
                pub(crate) async fn f<'a, T: Clone>(x: &'a str, t: T) -> Result<&'a str, E>
                where
                    T: Send,
                {
                    #![allow(unused)]
                    Ok(x)
                }
            },
        );
        assert_eq!(
            signature(&func),
            quote!(async fn f<'a, T: Clone>(x: &'a str, t: T) -> Result<&'a str, E> where T: Send,)
                .to_string()
        );
        assert_eq!(func.vis.to_token_stream().to_string(), "pub (crate)");
        let attrs: Vec<_> = func
            .attrs
            .iter()
            .map(|a| a.to_token_stream().to_string())
            .collect();
        assert_eq!(
            attrs,
            ["# [doc = r\" Docs.\"]", "# [inline]", "# [allow (unused)]"]
        );
    }

    #[test]
    fn passes_the_arguments_to_call_new() {
        let out = expand_to_string(
            quote!(
                model = req.model,
                tier = "tier-2",
                provider = "openai",
                retries = 4
            ),
            quote!(
                async fn f(req: &Req) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(
            out.contains(
                ":: ratelimited :: __private :: Call :: new (:: core :: convert :: AsRef :: < \
                 :: core :: primitive :: str > :: as_ref (& req . model) , :: core :: option \
                 :: Option :: Some (\"openai\") , :: core :: option :: Option :: Some (\"tier-2\") \
                 , :: core :: option :: Option :: Some (4u32))"
            ),
            "{out}"
        );
    }

    #[test]
    fn complex_model_expressions_are_parenthesized() {
        let out = expand_to_string(
            quote!(model = if big { "gpt-4o" } else { "gpt-4o-mini" }),
            quote!(
                async fn f(big: bool) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("as_ref (& (if big"), "{out}");
    }

    #[test]
    fn owned_arguments_are_cloned_per_attempt() {
        let out = expand_to_string(
            quote!(model = "m"),
            quote!(
                async fn f(req: Req, text: &str, log: &mut Log) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("require_clone (& req)"), "{out}");
        assert!(
            out.contains("= :: core :: clone :: Clone :: clone (& req) ;"),
            "{out}"
        );
        assert!(out.contains("= & mut * log ;"), "{out}");
        assert!(!out.contains("require_clone (& text)"), "{out}");
        assert!(!out.contains("require_clone (& log)"), "{out}");
        assert!(out.contains("loop { let __rl_attempt"), "{out}");
    }

    #[test]
    fn retries_zero_neither_loops_nor_clones() {
        let out = expand_to_string(
            quote!(model = "m", retries = 0),
            quote!(
                async fn f(mut req: Req, log: &mut Log) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(!out.contains("loop { let __rl_attempt"), "{out}");
        assert!(!out.contains("clone"), "{out}");
        assert!(!out.contains("& mut * log"), "{out}");
        // The single attempt takes the argument itself, `mut` and all.
        assert!(out.contains("async fn f (mut req : Req"), "{out}");
    }

    #[test]
    fn mut_moves_onto_the_per_attempt_binding() {
        let func = expand_fn(
            quote!(model = "m"),
            quote!(
                async fn f(mut text: String, mut n: &mut u32, mut s: &str) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(
            signature(&func),
            "async fn f (text : String , n : & mut u32 , s : & str) -> Result < () , E >"
        );
        let out = func.to_token_stream().to_string();
        assert!(out.contains("let mut text = __rl_in0 ;"), "{out}");
        assert!(out.contains("let mut n = __rl_in1 ;"), "{out}");
        assert!(out.contains("let mut s = __rl_in2 ;"), "{out}");
    }

    #[test]
    fn patterns_are_bound_to_hygienic_names() {
        let func = expand_fn(
            quote!(model = "m"),
            quote!(
                async fn f((a, b): (A, B), _: C) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(
            signature(&func),
            "async fn f (__rl_arg0 : (A , B) , __rl_arg1 : C) -> Result < () , E >"
        );
        let out = func.to_token_stream().to_string();
        assert!(out.contains("let (a , b) = __rl_in0 ;"), "{out}");
        // Both are estimated, the ignored one included.
        assert!(out.contains("Arg (& __rl_arg0)"), "{out}");
        assert!(out.contains("Arg (& __rl_arg1)"), "{out}");
        // `_` is not bound per attempt, so it needs no clone.
        assert!(!out.contains("require_clone (& __rl_arg1)"), "{out}");
    }

    #[test]
    fn self_is_renamed_when_it_is_rebound() {
        let out = expand_to_string(
            quote!(model = "m"),
            quote! {
                async fn f(mut self) -> Result<(), E> {
                    self.touch();
                    let _ = self::helper();
                    println!("{}", self.name);
                    struct Inner;
                    impl Inner { fn get(self) -> Self { self } }
                    Ok(())
                }
            },
        );
        assert!(out.contains("async fn f (self)"), "{out}");
        assert!(out.contains("require_clone (& self)"), "{out}");
        assert!(
            out.contains("let mut __rl_self = :: core :: clone :: Clone :: clone (& self) ;"),
            "{out}"
        );
        assert!(out.contains("__rl_self . touch ()"), "{out}");
        assert!(out.contains("self :: helper ()"), "{out}");
        assert!(
            out.contains("println ! (\"{}\" , __rl_self . name)"),
            "{out}"
        );
        assert!(out.contains("fn get (self) -> Self { self }"), "{out}");
    }

    #[test]
    fn mut_self_is_reborrowed_and_shared_self_is_left_alone() {
        let out = expand_to_string(
            quote!(model = "m"),
            quote!(
                async fn f(&mut self) -> Result<(), E> {
                    self.n += 1;
                    Ok(())
                }
            ),
        );
        assert!(out.contains("let __rl_self = & mut * self ;"), "{out}");
        assert!(out.contains("__rl_self . n += 1"), "{out}");

        let out = expand_to_string(
            quote!(model = "m"),
            quote!(
                async fn f(&self) -> Result<(), E> {
                    self.get()
                }
            ),
        );
        assert!(!out.contains("__rl_self"), "{out}");

        let out = expand_to_string(
            quote!(model = "m", retries = 0),
            quote!(
                async fn f(mut self) -> Result<(), E> {
                    self.n += 1;
                    Ok(())
                }
            ),
        );
        assert!(!out.contains("__rl_self"), "{out}");
        assert!(out.contains("async fn f (mut self)"), "{out}");
    }

    #[test]
    fn self_is_not_estimated() {
        let out = expand_to_string(
            quote!(model = "m"),
            quote!(
                async fn f(&self, prompt: &str) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("Arg (& prompt)"), "{out}");
        assert!(!out.contains("Arg (& self)"), "{out}");
    }

    #[test]
    fn explicit_tokens_replace_the_estimate() {
        let out = expand_to_string(
            quote!(model = "m", tokens = prompt.len() / 4),
            quote!(
                async fn f(prompt: &str) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(
            out.contains("set_input_tokens (:: ratelimited :: __private :: token_count (prompt . len () / 4))"),
            "{out}"
        );
        assert!(!out.contains("__rl_estimate"), "{out}");
        assert!(out.contains("__rl_budget"), "{out}");
    }

    #[test]
    fn output_budget_from_arguments_then_the_attribute() {
        let out = expand_to_string(
            quote!(model = "m", max_tokens = 100),
            quote!(
                async fn f(req: &Req) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        let observe = out.find("observe_budget").expect("observe_budget");
        let set = out.find("set_max_tokens").expect("set_max_tokens");
        assert!(observe < set, "the attribute must win: {out}");

        let out = expand_to_string(
            quote!(model = "m", max_tokens = 100, n = 2),
            quote!(
                async fn f(req: &Req) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(!out.contains("observe_budget"), "{out}");
        assert!(
            out.contains("set_n (:: ratelimited :: __private :: choice_count (2))"),
            "{out}"
        );
    }

    #[test]
    fn no_arguments_no_estimate() {
        let out = expand_to_string(
            quote!(model = "m"),
            quote!(
                async fn f() -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(!out.contains("estimate"), "{out}");
        assert!(!out.contains("observe_budget"), "{out}");
    }

    #[test]
    fn crate_path_replaces_the_default() {
        let out = expand_to_string(
            quote!(model = "m", crate = "my::facade"),
            quote!(
                async fn f(p: &str) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(
            out.contains("my :: facade :: __private :: Call :: new"),
            "{out}"
        );
        assert!(!out.contains(":: ratelimited"), "{out}");
    }

    #[test]
    fn errors_keep_the_item() {
        let item = quote!(
            fn f(p: &str) -> Result<(), E> {
                Ok(())
            }
        );
        let out = rate_limited(quote!(model = "m"), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert_eq!(
            errors(quote!(model = "m"), item),
            ["`#[rate_limited]` requires an `async fn`: add `async` before `fn`"]
        );
    }

    #[test]
    fn argument_and_item_errors_are_reported_together() {
        assert_eq!(
            errors(
                quote!(colour = 1),
                quote!(
                    fn f() {}
                )
            ),
            [
                "unknown argument `colour`, expected one of `model`, `tier`, `provider`, \
                 `tokens`, `max_tokens`, `n`, `retries`, `crate`",
                "missing `model` argument: write `#[rate_limited(model = \"gpt-4o-mini\")]`, \
                 or `model = <expression>` to take it from an argument",
                "`#[rate_limited]` requires an `async fn`: add `async` before `fn`",
                "`#[rate_limited]` functions must return a `Result`: add `-> Result<T, E>` \
                 where `E: From<ratelimited::Error>`",
            ]
        );
    }

    #[test]
    fn impl_trait_in_the_return_type() {
        assert_eq!(
            errors(
                quote!(model = "m"),
                quote!(
                    async fn f() -> Result<impl Display, E> {
                        Ok(1)
                    }
                )
            ),
            [
                "`impl Trait` is not supported in the return type of a `#[rate_limited]` \
              function: name the type, or box it as `Box<dyn Trait>`"
            ]
        );
    }

    #[test]
    fn items_that_are_not_functions() {
        assert_eq!(
            errors(
                quote!(model = "m"),
                quote!(
                    struct S;
                )
            ),
            ["`#[rate_limited]` can only be applied to an `async fn`"]
        );
        assert_eq!(
            errors(
                quote!(model = "m"),
                quote!(
                    async fn f(&self) -> Result<(), E>;
                )
            ),
            [
                "`#[rate_limited]` needs the function's body: put it on the method in the `impl` \
              block, or give this trait method a default body"
            ]
        );
    }

    #[test]
    fn passing_modes() {
        let ty = |tokens: TokenStream| Passing::of(&syn::parse2(tokens).unwrap());
        assert_eq!(ty(quote!(&str)), Passing::Shared);
        assert_eq!(ty(quote!(&'a mut Vec<u8>)), Passing::Unique);
        assert_eq!(ty(quote!(String)), Passing::Owned);
        assert_eq!(ty(quote!(Option<&str>)), Passing::Owned);
        assert_eq!(ty(quote!(impl AsRef<str>)), Passing::Owned);
        assert_eq!(ty(quote!((&mut T))), Passing::Unique);
    }
}
