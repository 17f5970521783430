//! A team of threads for one op at a time, handed work in well under a
//! microsecond.
//!
//! The ops of a small model are small: at batch size 1 a MiniLM layer's
//! matmuls take tens of microseconds, and a bias add a few. Handing such an
//! op to a rayon pool and back costs ≈ 20 µs (the caller sleeps on a latch,
//! a sleeping worker is woken through the kernel), so with rayon a second
//! thread only paid for ops ten times that size. A team instead keeps its
//! workers spinning for a while after each op ([`SPIN`]), so the next op
//! reaches them through one atomic store, and the calling thread works too
//! (a team of `n` threads has `n - 1` workers). Idle longer than that, a
//! worker parks on a condition variable and costs nothing.
//!
//! Which thread runs which task never changes a result: every op splits its
//! work into tasks whose outputs do not overlap, and each output is computed
//! the same way whoever computes it.
//!
//! One op uses the team at a time. A second caller meanwhile (another job on
//! the same device, or a task of the running op that itself asks for
//! threads) runs its tasks on its own thread rather than wait.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins for the next op before it parks. Between
/// two ops of one job the guest runs for microseconds; between jobs, or
/// while the guest tokenizes, for milliseconds, when spinning would only
/// take a core from someone else.
const SPIN: Duration = Duration::from_micros(300);

/// The tasks of the op in progress: `f(i)` for each `i < count`.
type Tasks<'a> = dyn Fn(usize) + Sync + 'a;

/// `threads` threads (the caller and `threads - 1` workers) that run the
/// tasks of one op at a time.
#[derive(Debug)]
pub(crate) struct Team {
    shared: Arc<Shared>,
    /// Held by the caller whose op the team runs.
    running: Mutex<()>,
    workers: Vec<JoinHandle<()>>,
}

/// What the caller and the workers share.
struct Shared {
    /// `generation << 1 | open`: a new generation for each op; open while
    /// tasks may still be claimed.
    state: AtomicU64,
    /// The op's tasks, set before its generation opens. Points at a
    /// `&Tasks` on the caller's stack, valid while [`Shared::active`] > 0 or
    /// the op is open (the caller waits for both to end).
    tasks: AtomicPtr<&'static Tasks<'static>>,
    /// How many tasks the op has, and the next one to claim.
    count: AtomicUsize,
    next: AtomicUsize,
    /// Workers inside the op (possibly still running a task).
    active: AtomicUsize,
    /// A worker's task panicked (the caller re-raises it).
    panicked: AtomicBool,
    /// Parked workers, and where they wait.
    parked: AtomicUsize,
    park: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.state.load(SeqCst))
            .field("parked", &self.parked.load(SeqCst))
            .finish_non_exhaustive()
    }
}

impl Team {
    /// A team of `threads` threads (at least one: the caller's).
    ///
    /// # Errors
    /// The operating system refused a thread; the message says so.
    pub(crate) fn new(threads: usize) -> Result<Team, String> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            tasks: AtomicPtr::new(std::ptr::null_mut()),
            count: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            parked: AtomicUsize::new(0),
            park: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let mut team = Team {
            shared: Arc::clone(&shared),
            running: Mutex::new(()),
            workers: Vec::new(),
        };
        for i in 1..threads.max(1) {
            let shared = Arc::clone(&shared);
            let worker = std::thread::Builder::new()
                .name(format!("assay-cpu-{i}"))
                .spawn(move || shared.work())
                .map_err(|e| format!("cannot start CPU worker thread {i}: {e}"))?;
            team.workers.push(worker);
        }
        Ok(team)
    }

    /// How many threads run an op (the caller's included).
    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for every `i < count`, on the calling thread and the
    /// workers, and returns when all have run. A panic in `f` is re-raised
    /// here once no thread runs `f` any more.
    pub(crate) fn run(&self, count: usize, f: &(dyn Fn(usize) + Sync)) {
        if count <= 1 || self.workers.is_empty() {
            (0..count).for_each(f);
            return;
        }
        let _running = match self.running.try_lock() {
            Ok(guard) => guard,
            // A poisoned lock guards nothing (the state is reset per op).
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                (0..count).for_each(f);
                return;
            }
        };
        let s = &*self.shared;
        // SAFETY: the pointer is published below and withdrawn (the op
        // closed, `active` back to 0) before this function returns, so no
        // worker uses `f` after its borrow ends; the 'static is never relied on.
        let erased: &'static Tasks<'static> =
            unsafe { std::mem::transmute::<&Tasks<'_>, &'static Tasks<'static>>(f) };
        let slot: *const &'static Tasks<'static> = &erased;
        s.tasks.store(slot.cast_mut(), SeqCst);
        s.count.store(count, SeqCst);
        s.next.store(0, SeqCst);
        s.panicked.store(false, SeqCst);
        let generation = (s.state.load(SeqCst) >> 1) + 1;
        s.state.store(generation << 1 | 1, SeqCst);
        if s.parked.load(SeqCst) > 0 {
            let _lock = s.park.lock().unwrap_or_else(|p| p.into_inner());
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| s.claim_and_run(f)));
        // Close the op; then wait for workers that entered it.
        s.state.store(generation << 1, SeqCst);
        let mut spins = 0u32;
        while s.active.load(SeqCst) > 0 {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        s.tasks.store(std::ptr::null_mut(), SeqCst);
        if let Err(panic) = mine {
            resume_unwind(panic);
        }
        if s.panicked.load(SeqCst) {
            panic!("a CPU worker thread panicked in an op (its message is above)");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        {
            let _lock = self.shared.park.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            // A worker that panicked has already said so.
            let _ = worker.join();
        }
    }
}

impl Shared {
    /// Claims tasks of the open op until none is left.
    fn claim_and_run(&self, f: &Tasks<'_>) {
        let count = self.count.load(SeqCst);
        loop {
            let i = self.next.fetch_add(1, SeqCst);
            if i >= count {
                return;
            }
            f(i);
        }
    }

    /// A worker's life: wait for an op, help with it, again.
    fn work(&self) {
        let mut seen = 0u64;
        loop {
            let Some(state) = self.wait_for_new_op(seen) else {
                return;
            };
            seen = state >> 1;
            // Enter, then look again: if the op is still open, the caller
            // has not yet looked at `active` and will wait for us.
            self.active.fetch_add(1, SeqCst);
            let now = self.state.load(SeqCst);
            if now & 1 == 1 {
                seen = now >> 1;
                let tasks = self.tasks.load(SeqCst);
                if !tasks.is_null() {
                    // SAFETY: the op is open and we are counted in `active`,
                    // so the caller has not returned and `tasks` is alive.
                    let f: &Tasks<'_> = unsafe { *tasks };
                    if catch_unwind(AssertUnwindSafe(|| self.claim_and_run(f))).is_err() {
                        self.panicked.store(true, SeqCst);
                    }
                }
            }
            self.active.fetch_sub(1, SeqCst);
        }
    }

    /// Spins, then parks, until an op newer than generation `seen` opens;
    /// returns its state, or `None` when the team is dropped.
    fn wait_for_new_op(&self, seen: u64) -> Option<u64> {
        let is_new = |state: u64| state & 1 == 1 && state >> 1 != seen;
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let state = self.state.load(SeqCst);
            if is_new(state) {
                return Some(state);
            }
            if self.shutdown.load(SeqCst) {
                return None;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut lock = self.park.lock().unwrap_or_else(|p| p.into_inner());
            self.parked.fetch_add(1, SeqCst);
            loop {
                let state = self.state.load(SeqCst);
                if is_new(state) || self.shutdown.load(SeqCst) {
                    break;
                }
                lock = self.wake.wait(lock).unwrap_or_else(|p| p.into_inner());
            }
            self.parked.fetch_sub(1, SeqCst);
            drop(lock);
            spins = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_whatever_the_timing() {
        let team = Team::new(3).expect("team");
        for round in 0..2_000usize {
            let count = round % 37;
            let hits: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
            team.run(count, &|i| {
                hits[i].fetch_add(1, SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "round {round}");
            if round % 500 == 0 {
                // Let the workers park, so the next op wakes them.
                std::thread::sleep(SPIN * 3);
            }
        }
    }

    #[test]
    fn a_second_caller_runs_its_tasks_itself() {
        let team = Team::new(2).expect("team");
        let inner_total = AtomicUsize::new(0);
        team.run(4, &|_| {
            // A task asking for the team while it runs an op.
            team.run(5, &|_| {
                inner_total.fetch_add(1, SeqCst);
            });
        });
        assert_eq!(inner_total.load(SeqCst), 20);
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_team_goes_on() {
        let team = Team::new(2).expect("team");
        let caught = catch_unwind(AssertUnwindSafe(|| {
            team.run(64, &|i| {
                if i == 40 {
                    panic!("task 40 fails");
                }
            })
        }));
        assert!(caught.is_err());
        let ran = AtomicUsize::new(0);
        team.run(16, &|_| {
            ran.fetch_add(1, SeqCst);
        });
        assert_eq!(ran.load(SeqCst), 16);
    }
}
