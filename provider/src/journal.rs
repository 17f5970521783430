//! The lease journal: an append-only file of the leases this provider has
//! started and finished. A lease that was ever started is never started
//! again, even across restarts ("never run one lease twice").

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use assay_protocol::Hash32;

use crate::Error;

/// The journal file and what it says.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    state: Mutex<(BTreeSet<Hash32>, BTreeSet<Hash32>, std::fs::File)>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if it cannot be read or opened for appending.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut started = BTreeSet::new();
        let mut ended = BTreeSet::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines() {
                    let mut parts = line.split_whitespace();
                    let (Some(kind), Some(id)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let Ok(id) = id.parse::<Hash32>() else {
                        continue;
                    };
                    match kind {
                        "start" => {
                            started.insert(id);
                        }
                        "end" => {
                            ended.insert(id);
                        }
                        _ => {}
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Journal {
            path: path.to_owned(),
            state: Mutex::new((started, ended, file)),
        })
    }

    /// Records that `lease` starts; `false` (and nothing recorded) if it
    /// was started before.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the record cannot be made durable (then the lease
    /// must not run).
    pub fn start(&self, lease: &Hash32) -> Result<bool, Error> {
        let mut g = self
            .state
            .lock()
            .map_err(|_| Error::Internal("journal lock poisoned".into()))?;
        if g.0.contains(lease) {
            return Ok(false);
        }
        writeln!(g.2, "start {lease}").map_err(|e| Error::io(&self.path, e))?;
        g.2.sync_data().map_err(|e| Error::io(&self.path, e))?;
        g.0.insert(*lease);
        Ok(true)
    }

    /// Records that `lease` is finished (receipt accepted, or given back).
    pub fn end(&self, lease: &Hash32) {
        if let Ok(mut g) = self.state.lock() {
            if writeln!(g.2, "end {lease}").is_err() {
                tracing::warn!(path = %self.path.display(), "could not append to the lease journal");
            }
            g.1.insert(*lease);
        }
    }

    /// Leases started but never finished (a previous process died with them).
    pub fn unfinished(&self) -> Vec<Hash32> {
        self.state
            .lock()
            .map(|g| g.0.difference(&g.1).copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_lease_never_starts_again_even_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (a, b) = (Hash32([1; 32]), Hash32([2; 32]));
        {
            let j = Journal::open(&path).expect("open");
            assert!(j.start(&a).expect("start"));
            assert!(!j.start(&a).expect("again"));
            assert!(j.start(&b).expect("start"));
            j.end(&b);
        }
        let j = Journal::open(&path).expect("reopen");
        assert!(!j.start(&a).expect("after restart"));
        assert_eq!(j.unfinished(), vec![a]);
    }
}
