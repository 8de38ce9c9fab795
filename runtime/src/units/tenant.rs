//! Who a call is made for: the tenant (a customer, a workspace, an API key of the service's
//! own) that fair share, caps and stats count by.

use std::fmt;
use std::sync::Arc;

/// The user a call is made for, when many users share one provider key: within a limit
/// family's lane, tenants with waiters take turns by weighted fair queuing on tokens, and each
/// may have caps of its own (see [`Limiter::acquire_for`](crate::Limiter::acquire_for)).
///
/// Built from a string or an integer id; integers are kept as their decimal text, so
/// `Tenant::from(42_u64)` and `Tenant::from("42")` are the same tenant. Cloning is one atomic
/// increment (the id is shared, never copied).
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::Tenant;
/// let workspace = Tenant::from("acme");
/// assert_eq!(workspace.as_str(), "acme");
/// assert_eq!(Tenant::from(42_u64), Tenant::from("42"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// A tenant with the id `id`.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Tenant(id.into())
    }

    /// The tenant's id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Tenant {
    fn from(id: &str) -> Self {
        Tenant(Arc::from(id))
    }
}

impl From<String> for Tenant {
    fn from(id: String) -> Self {
        Tenant(Arc::from(id))
    }
}

impl From<&String> for Tenant {
    fn from(id: &String) -> Self {
        Tenant(Arc::from(id.as_str()))
    }
}

impl From<Arc<str>> for Tenant {
    fn from(id: Arc<str>) -> Self {
        Tenant(id)
    }
}

impl From<&Tenant> for Tenant {
    fn from(tenant: &Tenant) -> Self {
        tenant.clone()
    }
}

macro_rules! from_integer {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Tenant {
            fn from(id: $ty) -> Self {
                Tenant(Arc::from(id.to_string()))
            }
        }
    )*};
}

from_integer!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_text_ids_name_the_same_tenant() {
        assert_eq!(Tenant::from(7_i64), Tenant::from("7"));
        assert_eq!(Tenant::from(String::from("a")), Tenant::new("a"));
        assert_ne!(Tenant::from("a"), Tenant::from("b"));
        assert_eq!(format!("{:?}", Tenant::from("a")), "Tenant(\"a\")");
        assert_eq!(Tenant::from(-3_i32).to_string(), "-3");
    }
}
