//! The reservation: the input-token estimate from the arguments (or `tokens = ..`) and the
//! output budget from the arguments (or `max_tokens = ..`, `n = ..`).
//!
//! Not every argument is prompt text: the ones named in `skip(..)` are left out, and so is an
//! argument that *is* the `model`, `tier` or `provider` (`model = model`, `model = name.as_str()`),
//! since its text picks the limiter and is never sent as the prompt. An argument those keys only
//! read a part of (`model = request.model`, `model = request.model()`) usually carries the
//! prompt too, so it still counts.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::{Expr, UnOp};

use crate::args::Param;
use crate::attr::Args;
use crate::names::Names;
use crate::spans::{call_across, span_range};

/// The input-token estimate and the output reservation, from the arguments unless the
/// attribute gives them.
pub(crate) fn estimate(
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
        let lens = prompt_params.iter().map(|p| {
            let arg = arg(p);
            quote!(#arg.__rl_text_len())
        });
        let estimates = prompt_params.iter().map(|p| {
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

/// Whether the argument bound to `binding` stays out of the prompt estimate.
fn is_excluded(args: &Args, binding: &Ident) -> bool {
    let selectors = [
        Some(&args.model),
        args.tier.as_ref(),
        args.provider.as_ref(),
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
