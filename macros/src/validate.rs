//! Checks of the annotated item: that it is an `async fn` with a body, returning a `Result`
//! whose type can be named in a `let`. Each problem is reported at its own tokens.

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{
    FnArg, ItemFn, Pat, PatIdent, PatType, ReturnType, Signature, Type, TypeImplTrait, TypePath,
};

pub(crate) fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
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
pub(crate) fn check(func: &ItemFn) -> syn::Result<()> {
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
        ReturnType::Type(_, ty) if clearly_not_result(ty) => push(syn::Error::new_spanned(
            ty,
            format!(
                "`#[rate_limited]` functions must return a `Result`, not `{}`: return \
                 `Result<{0}, E>` where `E: From<ratelimited::Error>`",
                shown(ty),
            ),
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

/// A return type that cannot be a `Result` whatever is in scope: `()`, a tuple, a reference,
/// an array, `!`, a primitive, or a standard type (`String`, `Vec<..>`, `Option<..>`, ..).
/// Any other name may be an alias of a `Result` (`io::Result<T>`, `MyResult<T>`): the type
/// system judges it.
fn clearly_not_result(ty: &Type) -> bool {
    const NOT_RESULT: &[&str] = &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "String", "Vec", "VecDeque", "Option", "Box", "Rc",
        "Arc", "Cow", "HashMap", "HashSet", "BTreeMap", "BTreeSet",
    ];
    match ty {
        Type::Paren(inner) => clearly_not_result(&inner.elem),
        Type::Group(inner) => clearly_not_result(&inner.elem),
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Ptr(_)
        | Type::Never(_)
        | Type::BareFn(_) => true,
        Type::Path(TypePath { qself: None, path }) => {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let standard =
                segments.len() == 1 || ["std", "core", "alloc"].contains(&segments[0].as_str());
            standard && NOT_RESULT.contains(&segments[segments.len() - 1].as_str())
        }
        _ => false,
    }
}

/// A type as a message shows it: `Vec<&str>`, not the tokens' `Vec < & str >`.
fn shown(ty: &Type) -> String {
    const SPACING: [(&str, &str); 10] = [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ::", "::"),
        (":: ", "::"),
        (" ,", ","),
        (" ;", ";"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
    ];
    let tokens = ty.to_token_stream().to_string();
    SPACING
        .iter()
        .fold(tokens, |text, (from, to)| text.replace(from, to))
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

/// Every name in `skip(..)` is an argument of the function, bound by name (an argument bound to
/// a pattern has no single name to give).
pub(crate) fn check_skip(skip: &[Ident], sig: &Signature) -> syn::Result<()> {
    let arguments: Vec<&Ident> = sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(PatType { pat, .. }) => match &**pat {
                Pat::Ident(PatIdent { ident, .. }) => Some(ident),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    let function = &sig.ident;
    let mut errors: Option<syn::Error> = None;
    for name in skip.iter().filter(|name| !arguments.contains(name)) {
        let takes = if arguments.is_empty() {
            format!("`{function}` has no named arguments")
        } else {
            let list: Vec<String> = arguments.iter().map(|a| format!("`{a}`")).collect();
            format!("the arguments of `{function}` are {}", list.join(", "))
        };
        let error = syn::Error::new_spanned(
            name,
            format!("`skip` names `{name}`, which is not an argument: {takes}"),
        );
        match &mut errors {
            Some(all) => all.combine(error),
            None => errors = Some(error),
        }
    }
    errors.map_or(Ok(()), Err)
}

/// The deployment binding of a pool (`deployment = name`) does not hide an argument in the
/// body: `name` is none of the names the signature binds, destructured ones included.
pub(crate) fn check_deployment(deployment: Option<&Ident>, sig: &Signature) -> syn::Result<()> {
    let Some(deployment) = deployment else {
        return Ok(());
    };
    let mut bound = BoundNames(Vec::new());
    for input in &sig.inputs {
        if let FnArg::Typed(PatType { pat, .. }) = input {
            // `syn::visit` is not enabled: walk a copy.
            bound.visit_pat_mut(&mut (**pat).clone());
        }
    }
    if !bound.0.contains(deployment) {
        return Ok(());
    }
    let free = ["deployment", "chosen", "target"]
        .into_iter()
        .find(|name| !bound.0.iter().any(|b| b == name))
        .unwrap_or("deployment_");
    Err(syn::Error::new_spanned(
        deployment,
        format!(
            "`deployment = {deployment}` would hide the argument `{deployment}` of `{}` in the \
             body: give the deployment a name of its own, like `deployment = {free}`",
            sig.ident
        ),
    ))
}

/// The names a pattern binds.
struct BoundNames(Vec<Ident>);

impl VisitMut for BoundNames {
    fn visit_pat_ident_mut(&mut self, pat: &mut PatIdent) {
        self.0.push(pat.ident.clone());
        syn::visit_mut::visit_pat_ident_mut(self, pat);
    }
}
