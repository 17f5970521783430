//! Where a node keeps its key and caches: `$ASSAY_HOME`, else `~/.assay`.

use std::path::PathBuf;

/// The node's home directory.
pub fn dir() -> PathBuf {
    if let Some(home) = std::env::var_os("ASSAY_HOME") {
        return PathBuf::from(home);
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".assay"),
        None => PathBuf::from(".assay"),
    }
}

/// The node key file.
pub fn key_file() -> PathBuf {
    dir().join("node.key")
}

/// The compiled-component cache.
pub fn component_cache() -> PathBuf {
    dir().join("cache").join("components")
}
