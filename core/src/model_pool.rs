//! Models shared by every element of a process (feature `onnx`): a ward runs hundreds of
//! pipelines in one process, and a bed should cost its per-stream state, not a model.
//!
//! [`lease`] finds the pool of a model (same file, same contents on disk, same
//! [`EngineOptions`]) or loads it; the pool keeps as many sessions as its users run frames at
//! once, at most one per core (or the most one user asked for, when that is more), because an
//! ONNX Runtime session runs one frame at a time and more sessions than cores only wait.
//! [`Pool::with`] runs on a free session, or waits for one. A pool lives as long as a
//! [`Lease`] of it: the last element to stop frees it.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock, TryLockError, Weak};
use std::time::{Instant, SystemTime};

use crate::engine::{
    Decoder, Encoder, EngineError, EngineOptions, ModelSource, PostureModel, SessionInfo,
};
use crate::model_meta::{ModelKind, ModelMetadata};

/// A model type the pool can make and warm up.
pub trait Pooled: Send + Sized + 'static {
    const KIND: ModelKind;
    fn load(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError>;
    fn warm_up(&mut self) -> Result<(), EngineError>;
    fn info(&self) -> &SessionInfo;
    fn meta(&self) -> &ModelMetadata;
}

impl Pooled for Encoder {
    const KIND: ModelKind = ModelKind::Encoder;
    fn load(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError> {
        Encoder::new(source, options)
    }
    fn warm_up(&mut self) -> Result<(), EngineError> {
        Encoder::warm_up(self)
    }
    fn info(&self) -> &SessionInfo {
        &self.info
    }
    fn meta(&self) -> &ModelMetadata {
        &self.meta
    }
}

impl Pooled for Decoder {
    const KIND: ModelKind = ModelKind::Decoder;
    fn load(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError> {
        Decoder::load(source, options)
    }
    fn warm_up(&mut self) -> Result<(), EngineError> {
        Decoder::warm_up(self)
    }
    fn info(&self) -> &SessionInfo {
        &self.info
    }
    fn meta(&self) -> &ModelMetadata {
        &self.meta
    }
}

impl Pooled for PostureModel {
    const KIND: ModelKind = ModelKind::Posture;
    fn load(source: &ModelSource, options: &EngineOptions) -> Result<Self, EngineError> {
        PostureModel::new(source, options)
    }
    fn warm_up(&mut self) -> Result<(), EngineError> {
        PostureModel::warm_up(self)
    }
    fn info(&self) -> &SessionInfo {
        &self.info
    }
    fn meta(&self) -> &ModelMetadata {
        &self.meta
    }
}

/// Which bytes a model is: the built-in one, or a file as it is on disk now (a file written
/// again under the same name is another model).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Origin {
    Embedded,
    File {
        path: PathBuf,
        len: u64,
        modified: Option<SystemTime>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: ModelKind,
    origin: Origin,
    options: EngineOptions,
}

impl Key {
    fn new(
        kind: ModelKind,
        path: Option<&Path>,
        options: &EngineOptions,
    ) -> Result<Self, EngineError> {
        let origin = match path {
            None => Origin::Embedded,
            Some(path) => {
                let read = |source| EngineError::Read {
                    path: path.to_owned(),
                    source,
                };
                let canonical = path.canonicalize().map_err(read)?;
                let stat = std::fs::metadata(&canonical).map_err(read)?;
                Origin::File {
                    path: canonical,
                    len: stat.len(),
                    modified: stat.modified().ok(),
                }
            }
        };
        Ok(Self {
            kind,
            origin,
            options: options.clone(),
        })
    }
}

/// The sessions of one model.
pub struct Pool<T> {
    key: Key,
    /// The bytes sessions are made from when the pool grows.
    source: ModelSource,
    /// Never empty.
    members: RwLock<Vec<Mutex<T>>>,
    /// Where the next [`Pool::with`] starts looking for a free session.
    next: AtomicUsize,
    /// Frames its users run at once (the sum of their leases' lanes).
    demand: Mutex<Demand>,
    pub info: SessionInfo,
    pub meta: ModelMetadata,
    /// The first session's warm-up time (ns): a latency estimate before any frame is seen.
    pub warm_up_ns: u64,
}

#[derive(Default)]
struct Demand {
    /// Lanes of every lease.
    lanes: usize,
    /// The most lanes one lease asked for.
    widest: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl<T: Pooled> Pool<T> {
    fn open(key: Key, source: ModelSource) -> Result<Self, EngineError> {
        let t = Instant::now();
        let mut first = T::load(&source, &key.options)?;
        first.warm_up()?;
        let warm_up_ns = t.elapsed().as_nanos() as u64;
        Ok(Self {
            info: first.info().clone(),
            meta: first.meta().clone(),
            key,
            source,
            members: RwLock::new(vec![Mutex::new(first)]),
            next: AtomicUsize::new(0),
            demand: Mutex::new(Demand::default()),
            warm_up_ns,
        })
    }

    /// Sessions in the pool now.
    pub fn sessions(&self) -> usize {
        self.members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Runs `f` on a free session, or waits for the next one to be free.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let n = members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match members[(start + i) % n].try_lock() {
                Ok(mut m) => return f(&mut m),
                // A session is as good after a panic elsewhere as before it.
                Err(TryLockError::Poisoned(p)) => return f(&mut p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        f(&mut lock(&members[start]))
    }

    /// Takes `lanes` more frames at once: adds sessions (made here, on the caller's thread, never
    /// on a streaming thread that runs frames) up to what the users need.
    fn reserve(&self, lanes: usize) -> Result<(), EngineError> {
        let target = {
            let mut d = lock(&self.demand);
            d.lanes += lanes;
            d.widest = d.widest.max(lanes);
            d.lanes.min(cores().max(d.widest))
        };
        // Sessions are made one at a time outside the members' lock: frames keep running.
        while self.sessions() < target {
            let mut member = T::load(&self.source, &self.key.options)?;
            member.warm_up()?;
            let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
            if members.len() < target {
                members.push(Mutex::new(member));
            }
        }
        Ok(())
    }

    fn release(&self, lanes: usize) {
        let mut d = lock(&self.demand);
        d.lanes = d.lanes.saturating_sub(lanes);
    }
}

/// A user's share of a pool: `lanes` frames at once. Dropping it gives them back; the last
/// lease of a pool frees its sessions.
pub struct Lease<T: Pooled> {
    pool: Arc<Pool<T>>,
    lanes: usize,
}

impl<T: Pooled> std::ops::Deref for Lease<T> {
    type Target = Pool<T>;
    fn deref(&self) -> &Pool<T> {
        &self.pool
    }
}

impl<T: Pooled> Drop for Lease<T> {
    fn drop(&mut self) {
        self.pool.release(self.lanes);
    }
}

impl<T: Pooled> Lease<T> {
    /// Whether `self` and `other` use the same sessions.
    pub fn shares_with(&self, other: &Lease<T>) -> bool {
        Arc::ptr_eq(&self.pool, &other.pool)
    }
}

type Registry = HashMap<Key, Weak<dyn Any + Send + Sync>>;

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// A lease of `lanes` frames at once on the model at `path` (`None`: the built-in one of
/// `T`'s kind) with `options`: the pool already loaded in this process, or a new one.
pub fn lease<T: Pooled>(
    path: Option<&Path>,
    options: &EngineOptions,
    lanes: usize,
) -> Result<Lease<T>, EngineError>
where
    Pool<T>: Send + Sync,
{
    let key = Key::new(T::KIND, path, options)?;
    let pool = {
        // Held while a model loads: two pipelines starting together load it once.
        let mut registry = lock(&REGISTRY);
        registry.retain(|_, pool| pool.strong_count() > 0);
        match registry
            .get(&key)
            .and_then(Weak::upgrade)
            .and_then(|p| p.downcast::<Pool<T>>().ok())
        {
            Some(pool) => pool,
            None => {
                let source = match path {
                    Some(p) => ModelSource::file(p)?,
                    None => ModelSource::embedded(T::KIND),
                };
                let pool = Arc::new(Pool::<T>::open(key.clone(), source)?);
                let weak: Weak<dyn Any + Send + Sync> = {
                    let any: Arc<dyn Any + Send + Sync> = pool.clone();
                    Arc::downgrade(&any)
                };
                registry.insert(key, weak);
                pool
            }
        }
    };
    let lanes = lanes.max(1);
    // From here the lease gives the lanes back whatever happens, a failed reserve included.
    let lease = Lease { pool, lanes };
    lease.pool.reserve(lanes)?;
    Ok(lease)
}

/// Models loaded in this process now, for logs and the ward benchmark.
pub fn loaded() -> usize {
    let mut registry = lock(&REGISTRY);
    registry.retain(|_, pool| pool.strong_count() > 0);
    registry.len()
}
