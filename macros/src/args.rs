//! Argument rewriting: what each attempt of the body gets in place of the function's
//! arguments.
//!
//! An attempt runs the body afresh, as if the function had been called again: `&T` arguments
//! are used as they are, `&mut T` ones are reborrowed, owned ones are cloned. The signature
//! keeps the user's types; `mut` and patterns move onto per-attempt bindings, and `self`, which
//! cannot be rebound, is spelled `__rl_self` in the body.
//!
//! The attribute's keys are evaluated once per call, before any attempt binds the patterns, so
//! a destructuring pattern whose names a key uses is also bound for the keys, without moving
//! the argument ([`bind_for_keys`]).

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::visit_mut::{self, VisitMut};
use syn::{ExprPath, FnArg, Pat, PatIdent, PatType, Receiver, Signature, Token, Type};

use crate::attr::Args;
use crate::spans::{call_across, span_range};

/// How an argument is passed, which decides what each attempt gets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Passing {
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
pub(crate) struct Param {
    /// The name the function binds the argument to (the user's, or `__rl_argN`).
    pub(crate) binding: Ident,
    /// The argument's declared type.
    pub(crate) ty: Type,
    /// The first span of the argument's type, where a missing `Clone` is reported.
    ty_span: Span,
    passing: Passing,
    /// The user's pattern when each attempt has to bind it again, `None` when the attempt can
    /// use `binding` directly.
    rebind: Option<TokenStream>,
    /// The user's destructuring pattern (`Request { prompt, .. }`), if it is one.
    pattern: Option<Pat>,
}

impl Param {
    /// The argument as messages name it: its name, or its pattern.
    pub(crate) fn name(&self) -> String {
        self.pattern.as_ref().map_or_else(
            || self.binding.to_string(),
            |pattern| pattern.to_token_stream().to_string(),
        )
    }

    /// The names the argument's destructuring pattern binds, if it has one.
    fn pattern_names(&self) -> Vec<Ident> {
        let mut names = PatternNames(Vec::new());
        if let Some(pattern) = &self.pattern {
            // `syn::visit` is not enabled: walk a copy.
            names.visit_pat_mut(&mut pattern.clone());
        }
        names.0
    }

    /// `let PATTERN = ..;`, binding the pattern's names for the attribute's keys without moving
    /// or mutably borrowing the argument: for an argument passed by shared reference, the
    /// user's pattern against it (a copy), so the keys see what the body sees; for one passed
    /// by value or by `&mut`, every name bound `ref` against the argument's place, so the keys
    /// see shared references to its parts (the estimate reads the argument meanwhile).
    fn bind_for_keys(&self) -> Option<TokenStream> {
        let pattern = self.pattern.as_ref()?;
        let binding = &self.binding;
        let (pattern, value) = match self.passing {
            Passing::Shared => (pattern.clone(), quote!(#binding)),
            Passing::Unique => {
                // `&mut Request { .. }` spelled out: the place behind it is `Request { .. }`.
                let inner = match pattern {
                    Pat::Reference(reference) => (*reference.pat).clone(),
                    other => other.clone(),
                };
                (by_ref(inner), quote!(*#binding))
            }
            Passing::Owned => (by_ref(pattern.clone()), quote!(#binding)),
        };
        Some(quote! {
            #[allow(unused_variables, unused_mut, non_snake_case)]
            let #pattern = #value;
        })
    }
}

/// `pattern` with every binding `ref` (see [`BindByRef`]).
fn by_ref(mut pattern: Pat) -> Pat {
    BindByRef.visit_pat_mut(&mut pattern);
    pattern
}

/// The bindings of the destructuring patterns whose names the attribute's keys use, to go
/// before the keys are evaluated (once per call, before the first attempt binds the patterns
/// again for the body). A pattern no key names is not bound there.
pub(crate) fn bind_for_keys(params: &[Param], args: &Args) -> Vec<TokenStream> {
    let mut used = Vec::new();
    let keys = [
        Some(args.target.expr()),
        args.tier.as_ref(),
        args.provider.as_ref(),
        args.tokens.as_ref(),
        args.max_tokens.as_ref(),
        args.n.as_ref(),
        args.priority.as_ref(),
        args.tenant.as_ref(),
    ];
    for key in keys.into_iter().flatten() {
        idents(key.to_token_stream(), &mut used);
    }
    params
        .iter()
        .filter(|param| param.pattern_names().iter().any(|name| used.contains(name)))
        .filter_map(Param::bind_for_keys)
        .collect()
}

/// Every identifier in `tokens`, macro arguments included.
pub(crate) fn idents(tokens: TokenStream, out: &mut Vec<Ident>) {
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => out.push(ident),
            TokenTree::Group(group) => idents(group.stream(), out),
            _ => {}
        }
    }
}

/// The names a pattern binds.
struct PatternNames(Vec<Ident>);

impl VisitMut for PatternNames {
    fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
        self.0.push(pat.ident.clone());
        visit_mut::visit_pat_ident_mut(self, pat);
    }
}

/// Makes every binding of a pattern `ref` (no `mut`), so matching it moves nothing out. An
/// identifier that starts with a capital is left alone: it is a unit struct or a constant.
struct BindByRef;

impl VisitMut for BindByRef {
    fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
        if !pat.ident.to_string().starts_with(char::is_uppercase) {
            pat.by_ref = Some(Token![ref](pat.ident.span()));
            pat.mutability = None;
        }
        visit_mut::visit_pat_ident_mut(self, pat);
    }
}

/// The values each attempt starts from.
#[derive(Default)]
pub(crate) struct PerAttempt {
    /// Computed outside the attempt's `async move` block (a clone, a reborrow, a copy) and moved
    /// into it.
    pub(crate) fresh: Vec<TokenStream>,
    /// The user's patterns bound to those values inside the block, where the body sees them as
    /// its parameters: a `mut` binding can then be reassigned to a borrow of a body local.
    pub(crate) bind: Vec<TokenStream>,
    /// `require_clone` for every argument that is cloned, before the first attempt.
    pub(crate) clone_checks: Vec<TokenStream>,
}

/// What each attempt binds before the body runs; see [`PerAttempt`].
pub(crate) fn per_attempt(
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

/// The method receiver, when it has one.
pub(crate) struct SelfParam {
    passing: Passing,
    /// `self` is spelled `__rl_self` in the body, which rebinds it per attempt (`self` itself
    /// cannot be rebound with `let`).
    pub(crate) renamed: bool,
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
pub(crate) fn rewrite_inputs(
    sig: &mut Signature,
    retrying: bool,
) -> (Vec<Param>, Option<SelfParam>) {
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
                            ty: (**ty).clone(),
                            ty_span,
                            passing,
                            rebind,
                            pattern: None,
                        }
                    }
                    other => {
                        let binding = format_ident!("__rl_arg{}", index, span = Span::mixed_site());
                        let rebind = match other {
                            Pat::Wild(_) => None,
                            _ => Some(other.to_token_stream()),
                        };
                        let pattern = std::mem::replace(
                            other,
                            Pat::Ident(PatIdent {
                                attrs: Vec::new(),
                                by_ref: None,
                                mutability: None,
                                ident: binding.clone(),
                                subpat: None,
                            }),
                        );
                        Param {
                            binding,
                            ty: (**ty).clone(),
                            ty_span,
                            passing,
                            rebind,
                            pattern: Some(pattern),
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
pub(crate) struct RenameSelf;

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
