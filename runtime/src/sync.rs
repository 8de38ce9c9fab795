//! Locks that recover from poisoning.
//!
//! Every mutex in this crate guards state that is consistent between statements (no update
//! spans an await point or a call that can panic halfway), so a panic in another thread cannot
//! leave it half-updated: recover the guard instead of spreading the panic to every caller.

use std::sync::{Mutex, MutexGuard};

/// [`Mutex::lock`], recovering from poisoning.
pub(crate) trait Locked<T> {
    /// The guard, whether or not another thread panicked while holding it.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    #[inline]
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
