//! The names the generated code introduces, shared by `estimate.rs` and `expand.rs`.

use proc_macro2::{Ident, Span};
use syn::Lifetime;

/// The names the expansion introduces. Hygienic (`Span::mixed_site()`): the body can neither
/// see nor shadow them, and parameters may use the same spellings.
pub(crate) struct Names {
    pub(crate) call: Ident,
    pub(crate) attempt: Ident,
    pub(crate) result: Ident,
    pub(crate) error: Ident,
    pub(crate) never: Ident,
    pub(crate) ok: Ident,
    pub(crate) err: Ident,
    /// The `static` that remembers, per function, whether the estimate has warned.
    pub(crate) site: Ident,
    pub(crate) label: Lifetime,
}

impl Names {
    pub(crate) fn new() -> Names {
        let name = |name: &str| Ident::new(name, Span::mixed_site());
        Names {
            call: name("__rl_call"),
            attempt: name("__rl_attempt"),
            result: name("__rl_result"),
            error: name("__rl_error"),
            never: name("__rl_never"),
            ok: name("__rl_ok"),
            err: name("__rl_err"),
            site: name("__RL_SITE"),
            label: Lifetime::new("'__rl_limited", Span::mixed_site()),
        }
    }
}
