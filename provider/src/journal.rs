//! The lease journal: an append-only file of the leases this provider has
//! started and finished. A lease that was ever started is never started
//! again, even across restarts ("never run one lease twice").
//!
//! The journal is bounded: it remembers every unfinished lease and the
//! most recent [`KEEP_FINISHED`] finished ones. A coordinator never hands
//! out a finished lease again (a shard that comes back is leased under a
//! new id), so the oldest finished ones are forgotten: once twice that
//! many have finished, the file is rewritten with what is remembered (to a
//! temporary file, synced, then renamed over the journal, so a crash
//! leaves either the old file or the new one).

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use assay_protocol::Hash32;

use crate::Error;

/// Finished leases the journal remembers (about 9 MB of file and 4 MB of
/// memory at most, twice this many before a rewrite).
pub const KEEP_FINISHED: usize = 65_536;

/// The journal file and what it says.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    keep_finished: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Every lease remembered as started (finished or not).
    started: BTreeSet<Hash32>,
    /// The finished ones, oldest first.
    finished: VecDeque<Hash32>,
    finished_set: BTreeSet<Hash32>,
    file: std::fs::File,
}

impl Journal {
    /// Opens (or creates) the journal at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if it cannot be read, rewritten or opened for
    /// appending.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        Journal::open_keeping(path, KEEP_FINISHED)
    }

    /// [`Journal::open`], remembering `keep_finished` finished leases.
    ///
    /// # Errors
    ///
    /// As [`Journal::open`].
    pub fn open_keeping(path: &Path, keep_finished: usize) -> Result<Journal, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut started = BTreeSet::new();
        let mut finished = VecDeque::new();
        let mut finished_set = BTreeSet::new();
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
                        "end" if started.contains(&id) && finished_set.insert(id) => {
                            finished.push_back(id);
                        }
                        _ => {}
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let file = append_to(path)?;
        let journal = Journal {
            path: path.to_owned(),
            keep_finished: keep_finished.max(1),
            state: Mutex::new(State {
                started,
                finished,
                finished_set,
                file,
            }),
        };
        {
            let mut g = journal.lock()?;
            if g.finished.len() > journal.keep_finished {
                journal.compact(&mut g)?;
            }
        }
        Ok(journal)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, Error> {
        self.state
            .lock()
            .map_err(|_| Error::Internal("journal lock poisoned".into()))
    }

    /// Records that `lease` starts; `false` (and nothing recorded) if it
    /// was started before.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the record cannot be made durable (then the lease
    /// must not run).
    pub fn start(&self, lease: &Hash32) -> Result<bool, Error> {
        let mut g = self.lock()?;
        if g.started.contains(lease) {
            return Ok(false);
        }
        writeln!(g.file, "start {lease}").map_err(|e| Error::io(&self.path, e))?;
        g.file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        g.started.insert(*lease);
        Ok(true)
    }

    /// Records that `lease` is finished (receipt accepted, or given back).
    pub fn end(&self, lease: &Hash32) {
        let Ok(mut g) = self.lock() else { return };
        if !g.started.contains(lease) || !g.finished_set.insert(*lease) {
            return;
        }
        g.finished.push_back(*lease);
        if writeln!(g.file, "end {lease}").is_err() {
            tracing::warn!(path = %self.path.display(), "could not append to the lease journal");
        }
        // The journal keeps growing until a rewrite succeeds; it is still
        // right.
        if g.finished.len() >= 2 * self.keep_finished
            && let Err(e) = self.compact(&mut g)
        {
            tracing::warn!(error = %e, "could not rewrite the lease journal");
        }
    }

    /// Forgets all but the newest finished leases and rewrites the file
    /// with what is remembered.
    fn compact(&self, g: &mut State) -> Result<(), Error> {
        while g.finished.len() > self.keep_finished {
            if let Some(old) = g.finished.pop_front() {
                g.finished_set.remove(&old);
                g.started.remove(&old);
            }
        }
        let mut text = String::new();
        for id in g.started.iter().filter(|id| !g.finished_set.contains(id)) {
            text.push_str(&format!("start {id}\n"));
        }
        for id in &g.finished {
            text.push_str(&format!("start {id}\nend {id}\n"));
        }
        let tmp = self.path.with_extension("rewrite");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| Error::io(&self.path, e))?;
        g.file = append_to(&self.path)?;
        Ok(())
    }

    /// Leases started but never finished (a previous process died with them).
    pub fn unfinished(&self) -> Vec<Hash32> {
        self.lock()
            .map(|g| {
                g.started
                    .iter()
                    .filter(|id| !g.finished_set.contains(id))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn append_to(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
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
        assert!(!j.start(&b).expect("finished, after restart"));
        assert_eq!(j.unfinished(), vec![a]);
    }

    #[test]
    fn the_journal_forgets_the_oldest_finished_leases_and_stays_small() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let id = |i: u32| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            h[31] = 1;
            Hash32(h)
        };
        let unfinished = id(u32::MAX);
        {
            let j = Journal::open_keeping(&path, 10).expect("open");
            assert!(j.start(&unfinished).expect("start"));
            for i in 0..1_000 {
                assert!(j.start(&id(i)).expect("start"));
                j.end(&id(i));
            }
            // At most 2 × 10 finished (and the unfinished one) in the file.
            let lines = std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .count();
            assert!(lines <= 2 * (2 * 10) + 2 + 1, "{lines} lines");
            // The newest finished are still refused, the oldest forgotten.
            assert!(!j.start(&id(999)).expect("recent"));
            assert!(!j.start(&id(990)).expect("recent"));
            assert_eq!(j.unfinished(), vec![unfinished]);
        }
        // Reopened with a smaller memory: rewritten at once.
        let j = Journal::open_keeping(&path, 3).expect("reopen");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1 + 2 * 3, "{text}");
        assert!(!j.start(&id(999)).expect("kept across the rewrite"));
        assert!(!j.start(&unfinished).expect("unfinished kept"));
        assert_eq!(j.unfinished(), vec![unfinished]);
        assert!(j.start(&id(0)).expect("the oldest is forgotten"));
        assert!(!dir.path().join("journal.rewrite").exists());
    }
}
