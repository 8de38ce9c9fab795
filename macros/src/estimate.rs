//! The reservation: the input-token estimate from the arguments (or `tokens = ..`) and the
//! output budget from the arguments (or `max_tokens = ..`, `n = ..`).

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::Expr;

use crate::args::Param;
use crate::attr::Args;
use crate::expand::Names;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

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
}
