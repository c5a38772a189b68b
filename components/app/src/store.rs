//! The key-value operations the app needs, as a trait: the component implements it with
//! `wasi:keyvalue` (Spin's store), tests with [`MemStore`].

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A key-value store error, as text (the store's own message).
pub type StoreError = String;

/// What the app asks of the key-value store. Every call is one atomic store operation.
pub trait Store {
    /// Adds `delta` to the counter at `key` (0 when absent) and returns the new value.
    /// `increment(key, 0)` reads a counter without depending on how the store encodes it.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Sets `key` to `value`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Every key in the store.
    fn keys(&self) -> Result<Vec<String>, StoreError>;
    /// The values of `keys`, in order (`None` when absent).
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
}

/// An in-memory [`Store`] (tests and examples).
#[derive(Debug, Default)]
pub struct MemStore {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
    /// When set, every operation fails with this message.
    pub failing: Mutex<Option<String>>,
}

impl MemStore {
    fn data(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>, StoreError> {
        if let Some(msg) = self
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(msg);
        }
        Ok(self.data.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Store for MemStore {
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut data = self.data()?;
        let current = match data.get(key) {
            None => 0,
            Some(v) => i64::from_le_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| format!("`{key}` is not a counter"))?,
            ),
        };
        let next = current + delta;
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.data()?.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.data()?.keys().cloned().collect())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let data = self.data()?;
        Ok(keys.iter().map(|k| data.get(k).cloned()).collect())
    }
}
