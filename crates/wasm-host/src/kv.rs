//! Spin's key-value store (`wasi:keyvalue@0.2.0-draft2`: store, atomics, batch) and application
//! variables (`fermyon:spin/variables@2.0.0`), as Spin provides them to a component.
//!
//! One [`KeyValue`] holds every store of an application; it outlives instances (each request is a
//! fresh instance) and can be shared by several [`crate::Host`]s, like pods sharing one Redis.
//! A component may open only the stores listed in its `key_value_stores`; only `default` exists.
//! Every operation is atomic: one lock guards the data, so `increment` never loses an update.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "phishing:host/spin-extras",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use bindings::fermyon::spin::variables;
use bindings::wasi::keyvalue::{atomics, batch, store};

/// The stores of one application.
#[derive(Default)]
pub struct KeyValue {
    data: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    failing: AtomicBool,
    operations: AtomicU64,
}

impl std::fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValue")
            .field("keys", &self.lock().len())
            .field("failing", &self.failing.load(Ordering::Relaxed))
            .finish()
    }
}

/// The stores that exist (Spin: `default`, plus those in a runtime config).
pub const STORES: &[&str] = &["default"];

impl KeyValue {
    /// An empty set of stores.
    pub fn new() -> KeyValue {
        KeyValue::default()
    }

    /// Fault injection: while `true`, every operation fails with `other("store unavailable")`.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// The value of `key` in `store`.
    pub fn get(&self, store: &str, key: &str) -> Option<Vec<u8>> {
        self.lock()
            .get(&(store.to_string(), key.to_string()))
            .cloned()
    }

    /// Sets `key` in `store` (as `spin kv set` would; for test fixtures).
    pub fn set(&self, store: &str, key: &str, value: impl Into<Vec<u8>>) {
        self.lock()
            .insert((store.to_string(), key.to_string()), value.into());
    }

    /// Keys of `store`, sorted.
    pub fn keys(&self, store: &str) -> Vec<String> {
        self.lock()
            .keys()
            .filter(|(s, _)| s == store)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Operations served so far (all stores).
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-applied write: every write is one insert.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<(), store::Error> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::SeqCst) {
            Err(store::Error::Other("store unavailable".into()))
        } else {
            Ok(())
        }
    }
}

/// An open store (`bucket` resource).
pub struct Bucket {
    label: String,
}

/// A compare-and-swap handle: the value of `key` when it was taken.
pub struct Cas {
    label: String,
    key: String,
    seen: Option<Vec<u8>>,
}

/// What a component instance may use: its stores and its variables.
pub struct SpinCtx {
    /// The application's stores.
    pub kv: std::sync::Arc<KeyValue>,
    /// Store labels the component lists in `key_value_stores`.
    pub allowed_stores: Vec<String>,
    /// The component's resolved variables.
    pub variables: BTreeMap<String, String>,
}

/// Something that carries a [`SpinCtx`] and a resource table.
pub trait SpinView: Send {
    /// The context and the instance's resource table.
    fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable);
}

/// The view the interfaces are implemented on.
pub struct SpinHost<'a> {
    ctx: &'a mut SpinCtx,
    table: &'a mut ResourceTable,
}

impl SpinHost<'_> {
    fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable) {
        (self.ctx, self.table)
    }
}

struct HasSpin;

impl HasData for HasSpin {
    type Data<'a> = SpinHost<'a>;
}

fn view<T: SpinView>(t: &mut T) -> SpinHost<'_> {
    let (ctx, table) = t.spin();
    SpinHost { ctx, table }
}

/// Adds the key-value and variables interfaces to `linker`.
pub fn add_to_linker<T: SpinView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasSpin>(linker, view)?;
    atomics::add_to_linker::<T, HasSpin>(linker, view)?;
    batch::add_to_linker::<T, HasSpin>(linker, view)?;
    variables::add_to_linker::<T, HasSpin>(linker, view)?;
    Ok(())
}

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

fn label_of(t: &mut SpinHost<'_>, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
    let (_, table) = t.spin();
    Ok(table.get(bucket)?.label.clone())
}

/// Runs `f` on the data of the bucket's store after the failure check.
fn with_data<R>(
    t: &mut SpinHost<'_>,
    bucket: &Resource<Bucket>,
    f: impl FnOnce(&mut BTreeMap<(String, String), Vec<u8>>, &str) -> Result<R, store::Error>,
) -> Outcome<R> {
    let label = label_of(t, bucket)?;
    let (ctx, _) = t.spin();
    if let Err(e) = ctx.kv.check() {
        return Ok(Err(e));
    }
    let mut data = ctx.kv.lock();
    Ok(f(&mut data, &label))
}

fn k(label: &str, key: &str) -> (String, String) {
    (label.to_string(), key.to_string())
}

impl store::Host for SpinHost<'_> {
    fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        let (ctx, table) = self.spin();
        if !ctx.allowed_stores.contains(&identifier) {
            return Ok(Err(store::Error::AccessDenied));
        }
        if !STORES.contains(&identifier.as_str()) {
            return Ok(Err(store::Error::NoSuchStore));
        }
        if let Err(e) = ctx.kv.check() {
            return Ok(Err(e));
        }
        Ok(Ok(table.push(Bucket { label: identifier })?))
    }
}

impl store::HostBucket for SpinHost<'_> {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        with_data(self, &bucket, |d, l| Ok(d.get(&k(l, &key)).cloned()))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        with_data(self, &bucket, |d, l| {
            d.insert(k(l, &key), value);
            Ok(())
        })
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        with_data(self, &bucket, |d, l| {
            d.remove(&k(l, &key));
            Ok(())
        })
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        with_data(self, &bucket, |d, l| Ok(d.contains_key(&k(l, &key))))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        _cursor: Option<String>,
    ) -> Outcome<store::KeyResponse> {
        // Like Spin's stores: every key in one page, no cursor.
        with_data(self, &bucket, |d, l| {
            Ok(store::KeyResponse {
                keys: d
                    .keys()
                    .filter(|(s, _)| s == l)
                    .map(|(_, key)| key.clone())
                    .collect(),
                cursor: None,
            })
        })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        let (_, table) = self.spin();
        table.delete(bucket)?;
        Ok(())
    }
}

/// Counters are stored as 8 little-endian bytes of an `i64`.
fn counter(value: Option<&Vec<u8>>) -> Result<i64, store::Error> {
    match value {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(i64::from_le_bytes)
            .map_err(|_| store::Error::Other("value is not a counter (8 bytes)".into())),
    }
}

impl atomics::Host for SpinHost<'_> {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Outcome<i64> {
        with_data(self, &bucket, |d, l| {
            let key = k(l, &key);
            let next = counter(d.get(&key))?
                .checked_add(delta)
                .ok_or_else(|| store::Error::Other("counter overflow".into()))?;
            d.insert(key, next.to_le_bytes().to_vec());
            Ok(next)
        })
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let (ctx, table) = self.spin();
        let c = table.get(&cas)?;
        let (label, key, seen) = (c.label.clone(), c.key.clone(), c.seen.clone());
        if let Err(e) = ctx.kv.check() {
            return Ok(Err(atomics::CasError::StoreError(e)));
        }
        let mut data = ctx.kv.lock();
        let key = k(&label, &key);
        if data.get(&key) != seen.as_ref() {
            drop(data);
            return Ok(Err(atomics::CasError::CasFailed(cas)));
        }
        data.insert(key, value);
        drop(data);
        table.delete(cas)?;
        Ok(Ok(()))
    }
}

impl atomics::HostCas for SpinHost<'_> {
    fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Resource<Cas>> {
        let seen = match with_data(self, &bucket, |d, l| Ok(d.get(&k(l, &key)).cloned()))? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let label = label_of(self, &bucket)?;
        let (_, table) = self.spin();
        Ok(Ok(table.push(Cas { label, key, seen })?))
    }

    fn current(&mut self, cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
        let (_, table) = self.spin();
        Ok(Ok(table.get(&cas)?.seen.clone()))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        let (_, table) = self.spin();
        table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for SpinHost<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<(String, Option<Vec<u8>>)>> {
        with_data(self, &bucket, |d, l| {
            Ok(keys
                .into_iter()
                .map(|key| {
                    let v = d.get(&k(l, &key)).cloned();
                    (key, v)
                })
                .collect())
        })
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        with_data(self, &bucket, |d, l| {
            for (key, v) in key_values {
                d.insert(k(l, &key), v);
            }
            Ok(())
        })
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        with_data(self, &bucket, |d, l| {
            for key in keys {
                d.remove(&k(l, &key));
            }
            Ok(())
        })
    }
}

/// Spin's rule for variable names: lowercase ASCII letters, digits and `_`, starting with a letter.
pub fn valid_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl variables::Host for SpinHost<'_> {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        if !valid_variable_name(&name) {
            return Ok(Err(variables::Error::InvalidName(name)));
        }
        let (ctx, _) = self.spin();
        Ok(match ctx.variables.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(variables::Error::Undefined(name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_eight_le_bytes() {
        assert_eq!(counter(None).unwrap(), 0);
        assert_eq!(counter(Some(&7i64.to_le_bytes().to_vec())).unwrap(), 7);
        assert!(counter(Some(&b"7".to_vec())).is_err());
    }

    #[test]
    fn variable_names_follow_spin() {
        assert!(valid_variable_name("model_service_url"));
        assert!(valid_variable_name("a1"));
        assert!(!valid_variable_name("Model"));
        assert!(!valid_variable_name("1a"));
        assert!(!valid_variable_name("a-b"));
        assert!(!valid_variable_name(""));
    }

    #[test]
    fn failing_store_refuses_and_recovers() {
        let kv = KeyValue::new();
        assert!(kv.check().is_ok());
        kv.set_failing(true);
        assert!(kv.check().is_err());
        kv.set_failing(false);
        assert!(kv.check().is_ok());
        assert_eq!(kv.operations(), 3);
    }
}
