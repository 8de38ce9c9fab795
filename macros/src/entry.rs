//! The attribute's pipeline: parse the arguments (`attr.rs`) and the item, check the item
//! (`validate.rs`), then generate the code (`expand.rs`).

use proc_macro2::TokenStream;

use crate::attr::Args;
use crate::expand::expand;
use crate::validate::{check, check_deployment, check_skip, parse_fn};

/// The whole attribute: parse, check, generate. On any error the item comes back unchanged,
/// followed by the errors, so the rest of the user's crate still type-checks.
pub(crate) fn rate_limited(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = Args::parse(args);
    let func = parse_fn(item.clone()).and_then(|func| check(&func).map(|()| func));
    let expanded = match (args, func) {
        (Ok(args), Ok(func)) => {
            let skip = check_skip(&args.skip, &func.sig);
            let deployment = check_deployment(args.target.deployment(), &func.sig);
            match (skip, deployment) {
                (Ok(()), Ok(())) => Ok(expand(&args, func)),
                (Err(error), Ok(())) | (Ok(()), Err(error)) => Err(error),
                (Err(mut error), Err(other)) => {
                    error.combine(other);
                    Err(error)
                }
            }
        }
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
