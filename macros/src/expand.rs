//! Code generation for `#[rate_limited]`.
//!
//! The function keeps its signature; its body becomes: open a `Call` for the model, estimate the
//! request from the arguments, then per attempt acquire, run the original body as an
//! `async move` block, and let the runtime settle the result and decide whether to retry.
//! Limiter failures leave through a labeled block and are converted into the function's own
//! error type in exactly one place.
//!
//! ```text
//! // Input:
//! #[rate_limited(model = "gpt-4o-mini")]
//! async fn summarize(client: &Client, req: Req, mut log: &mut Log) -> Result<Resp, ApiError> {
//!     body
//! }
//!
//! // Output:
//! async fn summarize(client: &Client, req: Req, log: &mut Log) -> Result<Resp, ApiError> {
//!     let __rl_error = '__rl_limited: {
//!         let mut __rl_call = match ::ratelimited::__private::Call::new("gpt-4o-mini", None, None, None) {
//!             Ok(call) => call,
//!             Err(error) => break '__rl_limited error,
//!         };
//!         { /* estimate: (&Arg(&client)).__rl_estimate(enc) + .. ; observe_budget(..) per argument */ }
//!         ::ratelimited::__private::require_clone(&req);          // spanned at `Req`
//!         loop {
//!             let __rl_attempt = match __rl_call.acquire().await { .. break '__rl_limited error };
//!             let __rl_result: Result<Resp, ApiError> = {
//!                 let req = ::core::clone::Clone::clone(&req);    // owned: a fresh copy per attempt
//!                 let mut log = &mut *log;                       // `&mut`: a reborrow per attempt
//!                 async move {
//!                     if false { let __rl_never: Result<Resp, ApiError> = loop {}; return __rl_never; }
//!                     body                                        // `return` and `?` end the attempt
//!                 }
//!             }
//!             .await;
//!             match __rl_call.finish(__rl_attempt, &__rl_result).await {
//!                 Ok(Next::Return) => return __rl_result,
//!                 Ok(Next::Retry) => {}
//!                 Err(error) => break '__rl_limited error,
//!             }
//!         }
//!     };
//!     Result::<<R as Outcome>::Ok, <R as Outcome>::Err>::Err(into_error(__rl_error))
//! }
//! ```
//!
//! With `retries = 0` there is no loop and nothing is cloned: the body's `async move` block takes
//! the arguments themselves.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    AttrStyle, Expr, ExprLit, ExprPath, FnArg, ItemFn, Lifetime, Lit, Pat, PatIdent,
    PatType, Receiver, ReturnType, Signature, Type, TypeImplTrait,
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
    if sig.asyncness.is_none() {
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
    /// The span of the argument's type, where a missing `Clone` is reported.
    ty_span: Span,
    passing: Passing,
    /// The user's pattern when each attempt has to bind it again, `None` when the attempt can
    /// use `binding` directly.
    rebind: Option<TokenStream>,
}

/// The path of the facade's `__private` module, `::ratelimited::__private` unless `crate = ".."`
/// says otherwise.
struct Private(TokenStream);

impl Private {
    /// The path, located at `span` (hygiene unchanged): an unmet bound of a `__private` function
    /// is then reported at the user's tokens the check is about, not at the attribute.
    fn at(&self, span: Span) -> TokenStream {
        self.0
            .clone()
            .into_iter()
            .map(|mut token| {
                token.set_span(token.span().located_at(span));
                token
            })
            .collect()
    }
}

impl ToTokens for Private {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.0.to_tokens(tokens);
    }
}

/// Generated names: hygienic, so the body can neither see nor shadow them.
fn private(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

fn expand(args: &Args, mut func: ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::ratelimited), ToTokens::to_token_stream);
    let private_mod = Private(quote!(#krate::__private));
    let retrying = args.retries.as_ref().is_none_or(|r| r.value > 0);

    let ReturnType::Type(_, ret) = &func.sig.output else {
        unreachable!("`check` rejects functions without a return type")
    };
    let ret: Type = (**ret).clone();
    let ret_span = ret.span();

    let (params, receiver) = rewrite_inputs(&mut func.sig, retrying);

    let call = private("__rl_call");
    let attempt = private("__rl_attempt");
    let result = private("__rl_result");
    let error = private("__rl_error");
    let never = private("__rl_never");
    let label = Lifetime::new("'__rl_limited", Span::mixed_site());

    let open = open_call(args, &private_mod, &call, &label);
    let ok = private("__rl_ok");
    let err = private("__rl_err");
    let estimate = estimate(args, &params, &private_mod, &call);

    // Each attempt computes fresh values outside its `async move` block (a clone, a reborrow),
    // moves them in, and binds the user's patterns to them inside, where the body sees them as
    // its parameters: so a `mut` binding can be reassigned to a borrow of a body local.
    let mut fresh = Vec::new();
    let mut bind = Vec::new();
    let mut clone_checks = Vec::new();
    if let Some(receiver) = &receiver {
        fresh.extend(receiver.rebind(&private_mod, &mut clone_checks));
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
                let private_mod = private_mod.at(param.ty_span);
                clone_checks.push(quote_spanned! {param.ty_span=>
                    #private_mod::require_clone(&#binding);
                });
                quote_spanned!(param.ty_span=> ::core::clone::Clone::clone(&#binding))
            }
        };
        let moved_in = format_ident!("__rl_in{}", index, span = Span::mixed_site());
        fresh.push(quote!(let #moved_in = #value;));
        bind.push(quote! {
            // A parameter used only in the attribute's expressions is not unused.
            #[allow(unused_variables)]
            let #pattern = #moved_in;
        });
    }

    let mut body = (*func.block).clone();
    if receiver.as_ref().is_some_and(|r| r.renamed) {
        RenameSelf.visit_block_mut(&mut body);
    }
    let stmts = &body.stmts;
    // Sets the async block's return type before the body is checked, so `?` and every
    // `return` in the body convert and coerce into the function's return type (tracing's
    // "fake return edge").
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

    let finish = quote_spanned! {ret_span=>
        #call.finish(#attempt, &#result).await
    };
    let acquire_and_run = quote! {
        let #attempt = match #call.acquire().await {
            ::core::result::Result::Ok(#ok) => #ok,
            ::core::result::Result::Err(#err) => break #label #err,
        };
        let #result: #ret = #run_body.await;
    };
    let attempts = if retrying {
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
    };
    let private_at_ret = private_mod.at(ret_span);
    let limiter_error = quote_spanned! {ret_span=>
        ::core::result::Result::<
            <#ret as #private_at_ret::Outcome>::Ok,
            <#ret as #private_at_ret::Outcome>::Err,
        >::Err(#private_at_ret::into_error(#error))
    };

    for attr in &mut func.attrs {
        // Inner attributes of the body (`#![allow(..)]`) apply to the whole function.
        attr.style = AttrStyle::Outer;
    }
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let brace = func.block.brace_token;
    let mut block = TokenStream::new();
    brace.surround(&mut block, |tokens| {
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

/// `let mut __rl_call = Call::new(model, provider, tier, retries)`, leaving through the label on
/// an error.
fn open_call(
    args: &Args,
    private_mod: &Private,
    call: &Ident,
    label: &Lifetime,
) -> TokenStream {
    let model = as_str(&args.model);
    let provider = optional(args.provider.as_ref().map(as_str));
    let tier = optional(args.tier.as_ref().map(as_str));
    let retries = optional(args.retries.as_ref().map(|retries| {
        let value = retries.value;
        quote_spanned!(retries.span=> #value)
    }));
    let ok = private("__rl_ok");
    let err = private("__rl_err");
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
    quote_spanned!(expr.span()=> ::core::convert::AsRef::<str>::as_ref(&#operand))
}

fn optional(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
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
    private_mod: &Private,
    call: &Ident,
) -> TokenStream {
    let len = private("__rl_len");
    let encoding = private("__rl_encoding");
    let mut tokens = TokenStream::new();

    let arg = |param: &Param| {
        let binding = &param.binding;
        quote!((&#private_mod::Arg(&#binding)))
    };

    if let Some(expr) = &args.tokens {
        let private_mod = private_mod.at(expr.span());
        tokens.extend(quote_spanned! {expr.span()=>
            #call.set_input_tokens(#private_mod::token_count(#expr));
        });
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
        let private_mod = private_mod.at(expr.span());
        tokens.extend(quote_spanned! {expr.span()=>
            #call.set_max_tokens(#private_mod::token_count(#expr));
        });
    }
    if let Some(expr) = &args.n {
        let private_mod = private_mod.at(expr.span());
        tokens.extend(quote_spanned! {expr.span()=>
            #call.set_n(#private_mod::choice_count(#expr));
        });
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
        private_mod: &Private,
        clone_checks: &mut Vec<TokenStream>,
    ) -> Option<TokenStream> {
        if !self.renamed {
            return None;
        }
        let renamed = private("__rl_self");
        let self_token = Ident::new("self", self.span);
        let mutability = self.mutable.then(|| quote!(mut));
        let value = match self.passing {
            Passing::Shared => quote!(#self_token),
            Passing::Unique => quote!(&mut *#self_token),
            Passing::Owned => {
                let private_mod = private_mod.at(self.span);
                clone_checks.push(quote_spanned! {self.span=>
                    #private_mod::require_clone(&#self_token);
                });
                quote!(::core::clone::Clone::clone(&#self_token))
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
                let ty_span = ty.span();
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

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        rate_limited(args, item).to_string()
    }

    #[test]
    fn placeholder() {
        let out = expand_str(
            quote!(model = "gpt-4o-mini"),
            quote!(
                async fn f(prompt: &str) -> Result<String, E> {
                    Ok(prompt.to_owned())
                }
            ),
        );
        assert!(out.contains("Call :: new"), "{out}");
    }
}
