//! Test helpers: an injected environment, and the shape every configuration error must have.

use std::collections::HashMap;
use std::fmt;

use crate::units::error::Error;

/// A lookup over fixed pairs; the process env is never touched.
pub(crate) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

/// Asserts a Config error naming `variable`, `value`, and an `expected` containing `needle`.
pub(crate) fn assert_config(
    result: Result<impl fmt::Debug, Error>,
    variable: &str,
    value: &str,
    needle: &str,
) {
    match result {
        Err(Error::Config {
            variable: v,
            value: val,
            expected,
        }) => {
            assert_eq!(v, variable);
            assert_eq!(val, value);
            assert!(expected.contains(needle), "{expected:?} lacks {needle:?}");
            let shown = Error::config(v, val, expected).to_string();
            assert!(shown.contains(variable) && shown.contains(value), "{shown}");
        }
        other => panic!("expected a Config error for {variable}={value:?}, got {other:?}"),
    }
}
