//! Unit tests of the attribute's parsing: every key, every misuse, the messages.
use super::*;
use quote::quote;

fn parse(tokens: TokenStream) -> Args {
    match Args::parse(tokens) {
        Ok(args) => args,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Every message of the (possibly combined) error, in order.
fn errors(tokens: TokenStream) -> Vec<String> {
    match Args::parse(tokens) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

fn text(expr: &Expr) -> String {
    expr.to_token_stream().to_string()
}

#[test]
fn model_alone() {
    let args = parse(quote!(model = "gpt-4o-mini"));
    assert_eq!(text(args.target.expr()), "\"gpt-4o-mini\"");
    assert!(args.tier.is_none() && args.provider.is_none() && args.tokens.is_none());
    assert!(args.max_tokens.is_none() && args.n.is_none());
    assert!(args.retries.is_none() && args.krate.is_none());
}

#[test]
fn every_key_with_trailing_comma() {
    let args = parse(quote!(
        model = req.model.as_str(),
        tier = "tier-3",
        provider = "OpenAI",
        tokens = prompt.len() / 4,
        max_tokens = 256,
        n = req.n,
        retries = 2,
        crate = "::my::ratelimited",
    ));
    assert_eq!(text(args.target.expr()), "req . model . as_str ()");
    assert_eq!(text(args.tier.as_ref().unwrap()), "\"tier-3\"");
    assert_eq!(text(args.provider.as_ref().unwrap()), "\"OpenAI\"");
    assert_eq!(text(args.tokens.as_ref().unwrap()), "prompt . len () / 4");
    assert_eq!(text(args.max_tokens.as_ref().unwrap()), "256");
    assert_eq!(text(args.n.as_ref().unwrap()), "req . n");
    assert_eq!(args.retries.as_ref().unwrap().value, 2);
    assert_eq!(
        args.krate.to_token_stream().to_string(),
        ":: my :: ratelimited"
    );
}

#[test]
fn retries_accepts_integer_suffixes() {
    assert_eq!(
        parse(quote!(model = "m", retries = 0))
            .retries
            .unwrap()
            .value,
        0
    );
    assert_eq!(
        parse(quote!(model = "m", retries = 7u8))
            .retries
            .unwrap()
            .value,
        7
    );
}

#[test]
fn missing_model() {
    assert_eq!(
        errors(quote!()),
        [
            "missing `model` argument: write `#[rate_limited(model = \"gpt-4o-mini\")]`, or \
          `model = <expression>` to take it from an argument"
        ]
    );
    assert_eq!(errors(quote!(tier = "tier-1")).len(), 1);
}

#[test]
fn unknown_key_lists_the_valid_ones() {
    assert_eq!(
        errors(quote!(model = "m", temperature = 0.2)),
        [
            "unknown argument `temperature`, expected one of `model`, `pool`, `deployment`, `tier`, `provider`, \
          `tokens`, `max_tokens`, `n`, `skip`, `retries`, `stream`, `priority`, `tenant`, `crate`"
        ]
    );
}

#[test]
fn unknown_key_suggests_a_close_one() {
    let messages = errors(quote!(model = "m", retry = 3, maxtokens = 5));
    assert!(messages[0].starts_with("unknown argument `retry`, did you mean `retries`?"));
    assert!(messages[1].starts_with("unknown argument `maxtokens`, did you mean `max_tokens`?"));
}

#[test]
fn a_misspelled_model_is_one_error_not_also_a_missing_one() {
    assert_eq!(
        errors(quote!(modle = "gpt-4o-mini")),
        [format!(
            "unknown argument `modle`, did you mean `model`? expected one of {}",
            "`model`, `pool`, `deployment`, `tier`, `provider`, `tokens`, `max_tokens`, `n`, `skip`, `retries`, \
             `stream`, `priority`, `tenant`, `crate`"
        )]
    );
    // With `model` given as well, the misspelling is still reported, and nothing else.
    assert_eq!(errors(quote!(modle = "a", model = "b")).len(), 1);
    // A misspelling of another key does not stand in for the missing `model`.
    assert_eq!(errors(quote!(tiers = "tier-1")).len(), 2);
}

#[test]
fn duplicate_key() {
    assert_eq!(
        errors(quote!(model = "a", tier = "tier-1", tier = "tier-2")),
        ["duplicate `tier` argument: give each argument once"]
    );
}

#[test]
fn all_errors_are_reported_together() {
    let messages = errors(quote!(model = "a", colour = 1, model = "b", retries = "3"));
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].starts_with("unknown argument `colour`"));
    assert!(messages[1].starts_with("duplicate `model`"));
    assert!(messages[2].starts_with("`retries` takes an integer literal"));
}

#[test]
fn wrong_value_kinds() {
    assert_eq!(
        errors(quote!(model = "m", retries = "3")),
        [
            "`retries` takes an integer literal: write `retries = 3`, or `retries = 0` to never \
          retry"
        ]
    );
    assert_eq!(errors(quote!(model = "m", retries = count)).len(), 1);
    assert_eq!(errors(quote!(model = "m", retries = -1)).len(), 1);
    assert_eq!(
        errors(quote!(model = "m", retries = 5000000000)),
        ["`retries` is out of range: write an integer from 0 to 4294967295"]
    );
    assert_eq!(
        errors(quote!(model = "m", crate = 5)),
        ["`crate` takes a string literal: write `crate = \"my_ratelimited\"`"]
    );
    assert_eq!(
        errors(quote!(model = 4)),
        [
            "`model` takes a string: write `model = \"gpt-4o-mini\"`, or an expression that \
          gives a `&str` or `String`"
        ]
    );
    assert_eq!(
        errors(quote!(model = "")),
        ["`model` cannot be empty: write `model = \"gpt-4o-mini\"`"]
    );
    assert_eq!(
        errors(quote!(model = "m", tokens = "500")),
        [
            "`tokens` takes an integer: write `tokens = 500`, or an expression that gives an \
          integer"
        ]
    );
    assert_eq!(
        errors(quote!(model = "m", n = -2)),
        ["`n` cannot be negative: write `n = 1`"]
    );
}

#[test]
fn bad_model_is_not_also_missing() {
    assert_eq!(errors(quote!(model = true)).len(), 1);
}

#[test]
fn provider_literal_must_be_known() {
    assert_eq!(
        errors(quote!(model = "m", provider = "openia")),
        [
            "unknown provider \"openia\", expected one of \"openai\", \"azure\", \
          \"anthropic\", \"gemini\""
        ]
    );
    // Expressions are checked by the runtime instead.
    assert!(Args::parse(quote!(model = "m", provider = cfg.provider)).is_ok());
}

#[test]
fn crate_must_be_a_path() {
    assert_eq!(
        errors(quote!(model = "m", crate = "not a path")),
        [
            "`crate = \"not a path\"` is not a path: write the path the facade is reachable \
          at, like `crate = \"my_ratelimited\"`"
        ]
    );
    assert!(Args::parse(quote!(model = "m", crate = "a::<T>")).is_err());
}

#[test]
fn grammar_errors() {
    assert_eq!(
        errors(quote!(model)),
        ["expected `=` after `model`: write `model = <value>`"]
    );
    assert_eq!(errors(quote!(model = "a" tier = "b")), ["expected `,`"]);
    assert_eq!(
        errors(quote!("gpt-4o")),
        [
            "expected an argument, one of `model`, `pool`, `deployment`, `tier`, `provider`, `tokens`, \
          `max_tokens`, `n`, `skip`, `retries`, `stream`, `priority`, `tenant`, `crate`"
        ]
    );
}

#[test]
fn skip_takes_a_list_of_names() {
    let args = parse(quote!(model = model, skip(note, trace_id,)));
    let names: Vec<String> = args.skip.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["note", "trace_id"]);
    assert!(parse(quote!(model = "m")).skip.is_empty());
}

#[test]
fn skip_and_values_are_not_interchangeable() {
    assert_eq!(
        errors(quote!(model = "m", skip = note)),
        ["`skip` takes a list of arguments: write `skip(<argument>, ..)`"]
    );
    assert_eq!(
        errors(quote!(model = "m", skip)),
        ["expected `(` after `skip`: write `skip(<argument>, ..)`"]
    );
    assert_eq!(
        errors(quote!(model("m"))),
        ["expected `=` after `model`: write `model = <value>`"]
    );
    assert_eq!(
        errors(quote!(model = "m", skip(a), skip(b))),
        ["duplicate `skip` argument: give each argument once"]
    );
}

#[test]
fn stream_is_a_flag() {
    assert!(parse(quote!(model = "m", stream)).stream.is_some());
    assert!(parse(quote!(stream, model = "m",)).stream.is_some());
    assert!(parse(quote!(model = "m")).stream.is_none());
    assert_eq!(
        errors(quote!(model = "m", stream = true)),
        ["`stream` takes no value: write `stream` for a function that returns a stream"]
    );
    assert_eq!(
        errors(quote!(model = "m", stream, stream)),
        ["duplicate `stream` argument: give each argument once"]
    );
}
