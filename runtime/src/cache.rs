//! Compiled components, cached on disk and in memory.
//!
//! Compiling a 2 MB guest takes seconds; loading the compiled artifact takes
//! a fraction of a millisecond. The disk cache is keyed by
//! blake3(component) + the engine's fingerprint (wasmtime version, target,
//! settings), so an upgrade never loads a stale artifact. In memory, each
//! component keeps its `InstancePre` (imports resolved once), so a run only
//! instantiates.
//!
//! Safety: a compiled artifact is machine code. The cache directory must be
//! written only by this runtime (it is created with mode 0700), and artifacts
//! are written to a temporary file and renamed into place, so a crash never
//! leaves a half-written artifact under a real name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use assay_protocol::Hash32;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::Error;

/// Where a component came from, for benchmarks and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHit {
    /// Already instantiable in this process.
    Memory,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// The on-disk part of the cache.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    fingerprint: String,
}

impl DiskCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<DiskCache, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Cache {
            path: dir.to_owned(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(DiskCache {
            dir: dir.to_owned(),
            fingerprint: crate::engine::fingerprint(engine),
        })
    }

    fn path(&self, hash: &Hash32) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hash.to_hex(), self.fingerprint))
    }

    /// The compiled component, compiling and storing it on a miss.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        hash: &Hash32,
        bytes: &[u8],
    ) -> Result<(Component, CacheHit), Error> {
        let path = self.path(hash);
        if path.exists() {
            // SAFETY: files in the cache directory are artifacts this runtime
            // serialised itself (see the module docs); wasmtime additionally
            // checks the header's engine compatibility.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheHit::Disk)),
                Err(e) => {
                    tracing::warn!(
                        "discarding unusable cached artifact {}: {e}",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = compile(engine, bytes)?;
        match component.serialize() {
            Ok(artifact) => {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                let written =
                    std::fs::write(&tmp, &artifact).and_then(|()| std::fs::rename(&tmp, &path));
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&tmp);
                    tracing::warn!("cannot store compiled component in {}: {e}", path.display());
                }
            }
            Err(e) => tracing::warn!("cannot serialise compiled component: {e}"),
        }
        Ok((component, CacheHit::Compiled))
    }
}

/// Compiles a component, with errors that tell the user what to do.
pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, Error> {
    check_header(bytes)?;
    Component::new(engine, bytes).map_err(|e| {
        Error::BadComponent(format!(
            "the component is malformed or truncated ({e}); rebuild it with `cargo build --release --target wasm32-wasip2`"
        ))
    })
}

/// Recognises the common mistakes before handing bytes to the compiler.
fn check_header(bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Error::BadComponent(
            "not a WebAssembly file (no `\\0asm` header); pass the .wasm that `cargo build --target wasm32-wasip2` produced".into(),
        ));
    }
    match bytes[4..8] {
        [0x01, 0x00, 0x00, 0x00] => Err(Error::BadComponent(
            "this is a core WebAssembly module, not a component; build the job for `wasm32-wasip2` (or wrap the module with `wasm-tools component new`)".into(),
        )),
        [_, _, 0x01, 0x00] => Ok(()),
        _ => Err(Error::BadComponent(
            "unknown WebAssembly binary version; this runtime reads components (wasmtime 48)".into(),
        )),
    }
}

/// In-memory map of loaded components.
#[derive(Debug)]
pub(crate) struct MemoryCache<T> {
    map: Mutex<HashMap<Hash32, Arc<T>>>,
}

impl<T> Default for MemoryCache<T> {
    fn default() -> Self {
        MemoryCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> MemoryCache<T> {
    pub(crate) fn get(&self, hash: &Hash32) -> Option<Arc<T>> {
        self.map.lock().ok()?.get(hash).cloned()
    }

    pub(crate) fn insert(&self, hash: Hash32, value: Arc<T>) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(hash, value);
        }
    }
}
