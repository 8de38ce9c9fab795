//! Parsing of the `#[rate_limited(..)]` arguments.
//!
//! Two passes: the grammar (`key = value, ..`) is parsed first, with every value as a
//! `syn::Expr`; then each key is checked on its own, so one attribute with an unknown key, a
//! duplicate and a wrong value kind reports all three at once, each at its own tokens.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{token, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Path, Token, UnOp};

/// Every key the attribute accepts, in the order the docs list them.
const KEYS: [&str; 14] = [
    "model",
    "pool",
    "deployment",
    "tier",
    "provider",
    "tokens",
    "max_tokens",
    "n",
    "skip",
    "retries",
    "stream",
    "priority",
    "tenant",
    "crate",
];

/// The providers a literal `provider = ".."` may name (the runtime accepts any case).
const PROVIDERS: [&str; 4] = ["openai", "azure", "anthropic", "gemini"];

/// What a call is limited on: one model's family, or a deployment pool.
pub(crate) enum Target {
    /// `model = EXPR`: the model id, a `&str`-like expression.
    Model(Expr),
    /// `pool = EXPR, deployment = IDENT`: the pool's name, a `&str`-like expression, and the
    /// name each attempt binds its deployment to in the body.
    Pool { pool: Expr, deployment: Ident },
}

impl Target {
    /// The `model` or `pool` expression.
    pub(crate) fn expr(&self) -> &Expr {
        match self {
            Target::Model(model) => model,
            Target::Pool { pool, .. } => pool,
        }
    }

    /// The name the deployment is bound to in the body, for a pool.
    pub(crate) fn deployment(&self) -> Option<&Ident> {
        match self {
            Target::Model(_) => None,
            Target::Pool { deployment, .. } => Some(deployment),
        }
    }
}

/// The parsed arguments of one `#[rate_limited(..)]`.
pub(crate) struct Args {
    /// `model = ..`, or `pool = .., deployment = ..`.
    pub(crate) target: Target,
    /// `tier = EXPR`: overrides the env tier (never with `pool`).
    pub(crate) tier: Option<Expr>,
    /// `provider = EXPR`: overrides the provider inferred from the model name (never with
    /// `pool`).
    pub(crate) provider: Option<Expr>,
    /// `tokens = EXPR`: the input tokens, instead of estimating them from the arguments.
    pub(crate) tokens: Option<Expr>,
    /// `max_tokens = EXPR`: the output tokens to reserve per choice.
    pub(crate) max_tokens: Option<Expr>,
    /// `n = EXPR`: the number of choices.
    pub(crate) n: Option<Expr>,
    /// `skip(arg, ..)`: arguments left out of the estimate, checked against the signature
    /// once it is known.
    pub(crate) skip: Vec<Ident>,
    /// `retries = INT`: the retry budget of this function.
    pub(crate) retries: Option<Retries>,
    /// `stream`: the function returns `Result<RateLimitedStream<S>, E>` and its body the bare
    /// stream; the reservation is held until the stream ends.
    pub(crate) stream: Option<Ident>,
    /// `priority = EXPR`: the lane this function's calls wait in, a `Priority`.
    pub(crate) priority: Option<Expr>,
    /// `tenant = EXPR`: who the call is for (a string or integer id), for fair share, caps and
    /// budgets among the users of one key.
    pub(crate) tenant: Option<Expr>,
    /// `crate = "path"`: where the facade is, when it is renamed.
    pub(crate) krate: Option<Path>,
}

/// A `retries = INT` value with the span of its literal.
pub(crate) struct Retries {
    pub(crate) value: u32,
    pub(crate) span: Span,
}

impl Args {
    /// Parses the tokens inside `#[rate_limited(..)]`; every problem found is in the error.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let pairs = Punctuated::<KeyValue, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut errors = Errors::default();

        let mut model = Slot::new("model");
        let mut pool = Slot::new("pool");
        let mut deployment = Slot::new("deployment");
        let mut tier = Slot::new("tier");
        let mut provider = Slot::new("provider");
        let mut tokens = Slot::new("tokens");
        let mut max_tokens = Slot::new("max_tokens");
        let mut n = Slot::new("n");
        let mut skip = Slot::new("skip");
        let mut retries = Slot::new("retries");
        let mut priority = Slot::new("priority");
        let mut tenant = Slot::new("tenant");
        let mut krate = Slot::new("crate");
        let mut stream = Slot::new("stream");
        let mut misspelled_target = false;

        for pair in pairs {
            let key = pair.key.to_string();
            let result = match key.as_str() {
                "model" => model.set(&pair, string_expr(&pair, "gpt-4o-mini")),
                "pool" => pool.set(&pair, string_expr(&pair, "gpt-4o")),
                "deployment" => deployment.set(&pair, deployment_ident(&pair)),
                "tier" => tier.set(&pair, string_expr(&pair, "tier-3")),
                "provider" => provider.set(&pair, provider_expr(&pair)),
                "tokens" => tokens.set(&pair, count_expr(&pair, "500")),
                "max_tokens" => max_tokens.set(&pair, count_expr(&pair, "1024")),
                "n" => n.set(&pair, count_expr(&pair, "1")),
                "skip" => skip.set(&pair, skip_list(&pair)),
                "retries" => retries.set(&pair, retries_lit(&pair)),
                "priority" => priority.set(&pair, priority_expr(&pair)),
                "tenant" => tenant.set(&pair, pair.expr().cloned()),
                "crate" => krate.set(&pair, crate_path(&pair)),
                "stream" => stream.set(&pair, stream_flag(&pair)),
                _ => {
                    // `modle = ..` is the misspelled `model` (`pol = ..`, `pool`): its error
                    // says so, and a "missing `model`" beside it would only repeat it.
                    let suggestion = suggest_key(&key);
                    misspelled_target |= matches!(suggestion, Some("model" | "pool"));
                    Err(unknown_key(&pair.key, suggestion))
                }
            };
            if let Err(error) = result {
                errors.push(error);
            }
        }

        for error in target_conflicts(&model, &pool, &deployment, &tier, &provider) {
            errors.push(error);
        }
        if !model.seen && !pool.seen && !deployment.seen && !misspelled_target {
            errors.push(syn::Error::new(
                Span::call_site(),
                "missing `model` argument: write `#[rate_limited(model = \"gpt-4o-mini\")]`, \
                 or `model = <expression>` to take it from an argument",
            ));
        }
        errors.finish()?;

        // `errors.finish()` returned early unless exactly one of `model` and `pool` (with its
        // `deployment`) was given, and valid.
        let target = match (model.value, pool.value, deployment.value) {
            (Some(model), None, None) => Target::Model(model),
            (None, Some(pool), Some(deployment)) => Target::Pool { pool, deployment },
            _ => unreachable!("a missing, doubled or invalid target is an error"),
        };
        Ok(Args {
            target,
            tier: tier.value,
            provider: provider.value,
            tokens: tokens.value,
            max_tokens: max_tokens.value,
            n: n.value,
            skip: skip.value.unwrap_or_default(),
            retries: retries.value,
            stream: stream.value,
            priority: priority.value,
            tenant: tenant.value,
            krate: krate.value,
        })
    }
}

/// What `pool` and `deployment` rule out, each at the key that should go: `model` beside
/// `pool`, `tier` and `provider` beside `pool` (each deployment has its own), `deployment`
/// without `pool`, and `pool` without `deployment`.
fn target_conflicts(
    model: &Slot<Expr>,
    pool: &Slot<Expr>,
    deployment: &Slot<Ident>,
    tier: &Slot<Expr>,
    provider: &Slot<Expr>,
) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    if let Some(pair) = &pool.pair {
        if let Some(model) = &model.pair {
            errors.push(syn::Error::new_spanned(
                model,
                "`model` cannot be given with `pool`: each deployment of the pool serves its own \
                 model (`RATE_LIMITED_<DEPLOYMENT>_MODEL`); remove `model = ..`",
            ));
        }
        for (slot, per_deployment) in [
            (
                tier,
                "`RATE_LIMITED_<DEPLOYMENT>_TIER` or `DeploymentConfig::tier`",
            ),
            (
                provider,
                "the provider prefix of `RATE_LIMITED_<DEPLOYMENT>_MODEL`",
            ),
        ] {
            if let Some(key) = &slot.pair {
                errors.push(syn::Error::new_spanned(
                    key,
                    format!(
                        "`{}` cannot be given with `pool`: each deployment has its own ({}); \
                         remove `{0} = ..`",
                        slot.name, per_deployment
                    ),
                ));
            }
        }
        if !deployment.seen {
            errors.push(syn::Error::new_spanned(
                pair,
                "missing `deployment` argument: each attempt of a `pool` call is admitted on one \
                 deployment and must be sent there; write `pool = .., deployment = deployment` \
                 and send the request to `deployment.endpoint()` (or pick the client by \
                 `deployment.name()`)",
            ));
        }
    } else if let Some(pair) = &deployment.pair {
        let message = if model.seen {
            "`deployment` is only for a `pool` call: a `model` call has one limiter and no \
             deployment to bind; write `pool = \"..\"` instead of `model`, or remove \
             `deployment = ..`"
        } else {
            "`deployment` needs `pool`: write `pool = \"gpt-4o\", deployment = deployment`, \
             naming a pool of `RATE_LIMITED_POOL_<NAME>` or `Registry::with_pool`"
        };
        errors.push(syn::Error::new_spanned(pair, message));
    }
    errors
}

/// One `key = value`, or `key(a, b, ..)` for a list of names. The key is any identifier
/// (`crate` included) so that an unknown key is reported by name, with the valid ones, instead
/// of as a parse error.
struct KeyValue {
    key: Ident,
    value: Value,
}

enum Value {
    Expr(Token![=], Expr),
    List(token::Paren, Punctuated<Ident, Token![,]>),
    /// A bare key (`stream`).
    Flag,
}

impl KeyValue {
    /// The value of a `key = value` pair (only `skip` takes a list).
    fn expr(&self) -> syn::Result<&Expr> {
        match &self.value {
            Value::Expr(_, expr) => Ok(expr),
            Value::List(..) | Value::Flag => {
                let key = &self.key;
                Err(syn::Error::new_spanned(
                    self,
                    format!("`{key}` takes a value, not a list: write `{key} = <value>`"),
                ))
            }
        }
    }
}

impl Parse for KeyValue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = syn::ext::IdentExt::parse_any(input).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected an argument, one of {}", key_list()),
            )
        })?;
        if key == "skip" && input.peek(token::Paren) {
            let content;
            let paren = syn::parenthesized!(content in input);
            let names = Punctuated::parse_terminated(&content)?;
            return Ok(KeyValue {
                key,
                value: Value::List(paren, names),
            });
        }
        if key == "stream" && (input.is_empty() || input.peek(Token![,])) {
            return Ok(KeyValue {
                key,
                value: Value::Flag,
            });
        }
        if !input.peek(Token![=]) {
            // At the key, not at what follows it: that may be the end of the attribute.
            let message = if key == "skip" {
                "expected `(` after `skip`: write `skip(<argument>, ..)`".to_owned()
            } else {
                format!("expected `=` after `{key}`: write `{key} = <value>`")
            };
            return Err(syn::Error::new_spanned(&key, message));
        }
        let eq = input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(KeyValue {
            key,
            value: Value::Expr(eq, value),
        })
    }
}

impl ToTokens for KeyValue {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        match &self.value {
            Value::Expr(eq, expr) => {
                eq.to_tokens(tokens);
                expr.to_tokens(tokens);
            }
            Value::List(paren, names) => paren.surround(tokens, |tokens| names.to_tokens(tokens)),
            Value::Flag => {}
        }
    }
}

/// One key's value, set at most once (serde's `Attr::set`): the single place that reports a
/// duplicate.
struct Slot<T> {
    name: &'static str,
    value: Option<T>,
    /// Set even when the value was invalid, so a bad `model = 5` is not also "missing".
    seen: bool,
    /// The first `key = value` given, for errors about the key as a whole.
    pair: Option<TokenStream>,
}

impl<T> Slot<T> {
    fn new(name: &'static str) -> Self {
        Slot {
            name,
            value: None,
            seen: false,
            pair: None,
        }
    }

    /// Stores `value`, or reports why it is invalid or that the key came twice.
    fn set(&mut self, pair: &KeyValue, value: syn::Result<T>) -> syn::Result<()> {
        if self.seen {
            return Err(syn::Error::new_spanned(
                pair,
                format!(
                    "duplicate `{}` argument: give each argument once",
                    self.name
                ),
            ));
        }
        self.seen = true;
        self.pair = Some(pair.to_token_stream());
        self.value = Some(value?);
        Ok(())
    }
}

/// Errors collected across keys, folded into one with `syn::Error::combine`.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn key_list() -> String {
    KEYS.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known key `name` is probably a misspelling of, if any.
fn suggest_key(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .copied()
        .filter(|k| is_close(k, name))
        .min_by_key(|k| strsim::levenshtein(k, name))
}

fn unknown_key(key: &Ident, suggestion: Option<&str>) -> syn::Error {
    let name = key.to_string();
    let message = match suggestion {
        Some(known) => format!(
            "unknown argument `{name}`, did you mean `{known}`? expected one of {}",
            key_list()
        ),
        None => format!("unknown argument `{name}`, expected one of {}", key_list()),
    };
    syn::Error::new_spanned(key, message)
}

/// Whether `name` is probably a misspelling of `key`: a typo or two, a shared stem
/// (`retry`/`retries`), or a missing underscore.
fn is_close(key: &str, name: &str) -> bool {
    let shared_prefix = key
        .chars()
        .zip(name.chars())
        .take_while(|(a, b)| a == b)
        .count();
    strsim::levenshtein(key, name) <= 2
        || shared_prefix >= 4
        || key.replace('_', "") == name.replace('_', "").to_ascii_lowercase()
}

/// `stream`: a bare flag.
fn stream_flag(pair: &KeyValue) -> syn::Result<Ident> {
    match pair.value {
        Value::Flag => Ok(pair.key.clone()),
        _ => Err(syn::Error::new_spanned(
            pair,
            "`stream` takes no value: write `stream` for a function that returns a stream",
        )),
    }
}

/// `deployment`: a name, which each attempt binds its deployment to in the body.
fn deployment_ident(pair: &KeyValue) -> syn::Result<Ident> {
    let value = pair.expr()?;
    let name = match value {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => path.path.get_ident(),
        _ => None,
    };
    match name {
        Some(name) if !["self", "Self", "super", "crate"].contains(&name.to_string().as_str()) => {
            Ok(name.clone())
        }
        _ => Err(syn::Error::new_spanned(
            value,
            "`deployment` takes the name to bind the chosen deployment to in the body, not an \
             expression: write `deployment = deployment`, then send each attempt to \
             `deployment.endpoint()` (or pick the client by `deployment.name()`)",
        )),
    }
}

/// `model`, `pool` and `tier`: any expression, but a literal must be a non-empty string.
fn string_expr(pair: &KeyValue, example: &str) -> syn::Result<Expr> {
    let key = &pair.key;
    let value = pair.expr()?;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if s.value().trim().is_empty() => Err(syn::Error::new_spanned(
            s,
            format!("`{key}` cannot be empty: write `{key} = \"{example}\"`"),
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Str(_), ..
        }) => Ok(value.clone()),
        Expr::Lit(ExprLit { lit, .. }) => Err(syn::Error::new_spanned(
            lit,
            format!(
                "`{key}` takes a string: write `{key} = \"{example}\"`, or an expression that \
                 gives a `&str` or `String`"
            ),
        )),
        _ => Ok(value.clone()),
    }
}

/// `provider`: like `model`, and a literal must name a provider the runtime knows.
fn provider_expr(pair: &KeyValue) -> syn::Result<Expr> {
    let expr = string_expr(pair, "openai")?;
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = &expr
    {
        let value = s.value();
        if !PROVIDERS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(value.trim()))
        {
            let expected = PROVIDERS
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(syn::Error::new_spanned(
                s,
                format!("unknown provider \"{value}\", expected one of {expected}"),
            ));
        }
    }
    Ok(expr)
}

/// `tokens`, `max_tokens` and `n`: any expression, but a literal must be a non-negative integer.
fn count_expr(pair: &KeyValue, example: &str) -> syn::Result<Expr> {
    let key = &pair.key;
    let value = pair.expr()?;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(_), ..
        }) => Ok(value.clone()),
        Expr::Lit(ExprLit { lit, .. }) => Err(syn::Error::new_spanned(
            lit,
            format!(
                "`{key}` takes an integer: write `{key} = {example}`, or an expression that \
                 gives an integer"
            ),
        )),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) if matches!(**expr, Expr::Lit(_)) => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` cannot be negative: write `{key} = {example}`"),
        )),
        _ => Ok(value.clone()),
    }
}

/// `priority`: any expression of type `Priority`; a literal (`"high"`, `1`) is not one, and
/// saying so here names the lanes instead of a type mismatch.
fn priority_expr(pair: &KeyValue) -> syn::Result<Expr> {
    let value = pair.expr()?;
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Err(syn::Error::new_spanned(
            lit,
            "`priority` takes a `ratelimited::Priority`: write `priority = Priority::Interactive`, \
             `Priority::Normal` or `Priority::Batch`, or an expression that gives one",
        )),
        _ => Ok(value.clone()),
    }
}

/// `skip`: a list of argument names; whether the function has them is checked by the
/// expansion, which sees the signature.
fn skip_list(pair: &KeyValue) -> syn::Result<Vec<Ident>> {
    match &pair.value {
        Value::List(_, names) => Ok(names.iter().cloned().collect()),
        Value::Expr(..) | Value::Flag => Err(syn::Error::new_spanned(
            pair,
            "`skip` takes a list of arguments: write `skip(<argument>, ..)`",
        )),
    }
}

/// `retries`: an integer literal that fits in a `u32`.
fn retries_lit(pair: &KeyValue) -> syn::Result<Retries> {
    let value = pair.expr()?;
    let Expr::Lit(ExprLit {
        lit: Lit::Int(lit), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            "`retries` takes an integer literal: write `retries = 3`, or `retries = 0` to never \
             retry",
        ));
    };
    let value = parse_u32(lit).ok_or_else(|| {
        syn::Error::new_spanned(
            lit,
            "`retries` is out of range: write an integer from 0 to 4294967295",
        )
    })?;
    Ok(Retries {
        value,
        span: lit.span(),
    })
}

fn parse_u32(lit: &LitInt) -> Option<u32> {
    match lit.suffix() {
        "" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
        | "i128" | "isize" => lit.base10_parse::<u32>().ok(),
        _ => None,
    }
}

/// `crate`: a string literal holding a path, as in `#[tokio::main(crate = "..")]`.
fn crate_path(pair: &KeyValue) -> syn::Result<Path> {
    let value = pair.expr()?;
    let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            "`crate` takes a string literal: write `crate = \"my_ratelimited\"`",
        ));
    };
    parse_path(lit)
}

fn parse_path(lit: &LitStr) -> syn::Result<Path> {
    lit.parse_with(Path::parse_mod_style).map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!(
                "`crate = \"{}\"` is not a path: write the path the facade is reachable at, \
                 like `crate = \"my_ratelimited\"`",
                lit.value()
            ),
        )
    })
}

#[cfg(test)]
mod tests;
