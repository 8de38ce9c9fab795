//! The reservation: the input-token estimate from the arguments (or `tokens = ..`) and the
//! output budget from the arguments (or `max_tokens = ..`, `n = ..`).
//!
//! Not every argument is prompt text: the ones named in `skip(..)` are left out, and so is an
//! argument that *is* the `model`, `pool`, `tier`, `provider` or `tenant` (`model = model`,
//! `model = name.as_str()`), since its text picks the limiter (or the user) and is never sent
//! as the prompt.
//! An argument those keys only read a part of (`model = request.model`,
//! `model = request.model()`) usually carries the prompt too, so it still counts.
//!
//! On a pool the estimate is made with every distinct tokenizer of the pool's deployments and
//! the largest count is reserved (the runtime's `PoolCall::estimate`): the deployments usually
//! serve one model, and then it is that model's count.
//!
//! Each argument offers the estimate what its type has, picked by autoref specialization in the
//! runtime (`EstimateTokens`, `AsRef<str>`, not text, `Display`, nothing); the runtime sums it
//! and names, once per function, an argument that counted zero where that looks like a missed
//! prompt. For that it gets each argument's name and whether its declared type speaks of text.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{Expr, GenericParam, Generics, Signature, Type, UnOp, WherePredicate};

use crate::args::{idents, Param};
use crate::attr::Args;
use crate::names::Names;
use crate::spans::{call_across, span_range};

/// The input-token estimate and the output reservation, from the arguments unless the
/// attribute gives them.
pub(crate) fn estimate(
    args: &Args,
    sig: &Signature,
    params: &[Param],
    private_mod: &TokenStream,
    names: &Names,
) -> TokenStream {
    let Names { call, site, .. } = names;
    let (function, generics) = (&sig.ident, &sig.generics);
    let mut tokens = TokenStream::new();
    let prompt_params: Vec<&Param> = params
        .iter()
        .filter(|param| !is_excluded(args, &param.binding))
        .collect();

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
    } else if !prompt_params.is_empty() {
        let prompt_args = prompt_params.iter().map(|param| {
            let binding = &param.binding;
            let name = param.name();
            let names_text = names_text(&param.ty, generics);
            quote! {
                #private_mod::PromptArg {
                    name: #name,
                    names_text: #names_text,
                    prompt: (&&&&&#private_mod::Arg(&#binding)).__rl_prompt(),
                }
            }
        });
        let function = function.to_string();
        tokens.extend(quote! {
            {
                #[allow(unused_imports)]
                use #private_mod::{
                    ViaDisplay as _, ViaEstimate as _, ViaNotText as _, ViaNothing as _,
                    ViaText as _,
                };
                static #site: #private_mod::Site = #private_mod::Site::new(
                    ::core::concat!(::core::module_path!(), "::", #function),
                );
                #private_mod::estimate_arguments(&mut #call, &#site, &[#(#prompt_args),*]);
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

/// Whether the argument bound to `binding` stays out of the prompt estimate.
fn is_excluded(args: &Args, binding: &Ident) -> bool {
    let selectors = [
        Some(args.target.expr()),
        args.tier.as_ref(),
        args.provider.as_ref(),
        args.tenant.as_ref(),
    ];
    args.skip.iter().any(|name| name == binding)
        || selectors
            .into_iter()
            .flatten()
            .any(|expr| argument_itself(expr).is_some_and(|name| name == binding))
}

/// Methods that only convert or borrow their receiver: `name.as_str()` is still `name`.
const CONVERSIONS: [&str; 9] = [
    "as_str",
    "as_ref",
    "as_deref",
    "borrow",
    "deref",
    "clone",
    "to_owned",
    "to_string",
    "into",
];

/// The argument an attribute expression evaluates to, if it is one, seen through borrows,
/// dereferences, parentheses and conversions.
fn argument_itself(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident(),
        Expr::Reference(reference) => argument_itself(&reference.expr),
        Expr::Unary(unary) if matches!(unary.op, UnOp::Deref(_)) => argument_itself(&unary.expr),
        Expr::Paren(paren) => argument_itself(&paren.expr),
        Expr::Group(group) => argument_itself(&group.expr),
        Expr::MethodCall(call)
            if call.args.is_empty() && CONVERSIONS.iter().any(|name| call.method == name) =>
        {
            argument_itself(&call.receiver)
        }
        _ => None,
    }
}

/// Words that, in an argument's declared type or in the bounds of a generic parameter it
/// names, say that it carries text: `impl Into<String>`, `S: Into<Cow<'a, str>>`, `&[T]` with
/// `T: Display`. Such an argument counted zero is surely a prompt the limiter could not read,
/// so the runtime names it even beside an argument that did count.
const TEXT_WORDS: [&str; 5] = ["str", "String", "Cow", "Display", "ToString"];

/// Whether `ty`, or a bound of a generic parameter it names, speaks of text.
fn names_text(ty: &Type, generics: &Generics) -> bool {
    let speaks_of_text = |tokens: TokenStream| {
        let mut words = Vec::new();
        idents(tokens, &mut words);
        words
            .iter()
            .any(|word| TEXT_WORDS.iter().any(|text| word == text))
    };
    let mut named = Vec::new();
    idents(ty.to_token_stream(), &mut named);
    speaks_of_text(ty.to_token_stream())
        || named
            .iter()
            .any(|name| bounds_of(name, generics).into_iter().any(speaks_of_text))
}

/// The bounds the function puts on its generic parameter `name`, in its generics and its
/// `where` clause (none if `name` is not one).
fn bounds_of(name: &Ident, generics: &Generics) -> Vec<TokenStream> {
    let declared = generics.params.iter().filter_map(|param| match param {
        GenericParam::Type(param) if param.ident == *name => Some(param.bounds.to_token_stream()),
        _ => None,
    });
    let required = generics
        .where_clause
        .iter()
        .flat_map(|clause| &clause.predicates)
        .filter_map(|predicate| match predicate {
            WherePredicate::Type(predicate)
                if *name == predicate.bounded_ty.to_token_stream().to_string() =>
            {
                Some(predicate.bounds.to_token_stream())
            }
            _ => None,
        });
    declared.chain(required).collect()
}
