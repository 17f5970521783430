//! The worker loop against a fake coordinator: an in-process [`Work`] whose
//! calls answer from a script, and a blob source that can fail.
//!
//! The drifted cases each have a test that the old daemons failed: the old
//! provider broke out of its loop silently on a signing failure, gave a
//! lease back at the first transient download error, and did not count a
//! failed give-back as an RPC error.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assay_daemon::cache::{BlobSource, BoxFuture};
use assay_daemon::metrics::Names;
use assay_daemon::worker::{Context, Fetched};
use assay_daemon::{Conclusion, Error, GiveBack, Prepared, Registered, Settings, Work, Worker};
use assay_protocol::{BlobRef, Hash32};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tonic::Status;

const COMPONENT: &[u8] = b"the component";
const INPUT: &[u8] = b"the input";
const THROUGH_JOB: &[u8] = b"the market job";

/// One scripted answer to `take`.
enum Take {
    Items(Vec<u8>),
    Fail(Status),
    SignFails,
}

/// How a fake run ends.
#[derive(Clone, Copy)]
enum Ends {
    Reports,
    GivesBack,
    Sleeps(Duration),
}

#[derive(Default)]
struct Script {
    takes: VecDeque<Take>,
    give_back_fails: Option<Status>,
    /// Every report is answered with this error.
    report_fails: Option<Status>,
    /// Heartbeat this often (`None`: never).
    heartbeat_every: Option<Duration>,
}

/// The coordinator, as the loop sees it.
struct Fake {
    script: Mutex<Script>,
    ends: Ends,
    registrations: AtomicU32,
    reported: Mutex<Vec<(Hash32, usize)>>,
    given_back: Mutex<Vec<(Hash32, GiveBack)>>,
    finished: Mutex<Vec<Hash32>>,
    /// The items each heartbeat said this node holds.
    heartbeats: Mutex<Vec<Vec<Hash32>>>,
    accepted: Counter,
}

impl Fake {
    fn new(takes: Vec<Take>, ends: Ends) -> Fake {
        Fake {
            script: Mutex::new(Script {
                takes: takes.into(),
                ..Script::default()
            }),
            ends,
            registrations: AtomicU32::new(0),
            reported: Mutex::new(Vec::new()),
            given_back: Mutex::new(Vec::new()),
            finished: Mutex::new(Vec::new()),
            heartbeats: Mutex::new(Vec::new()),
            accepted: Counter::default(),
        }
    }
}

fn item_id(n: u8) -> Hash32 {
    Hash32([n; 32])
}

impl Work for Fake {
    type Item = u8;
    type Job = Hash32;
    type Registration = ();
    type Report = (Hash32, usize);

    const NAMES: Names = Names {
        prefix: "assay_fake",
        taken: "items_taken",
        returned: "items_returned",
        running: "running_items",
        run_ms: "run_ms",
        faults: "faults",
    };
    const ROLE: &'static str = "fake";
    const ITEM: &'static str = "item";
    const REPORT_ATTEMPTS: u32 = 3;

    fn device(&self) -> (String, String) {
        ("cpu".into(), "test device".into())
    }

    fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "reports_accepted",
            "Reports accepted.",
            self.accepted.clone(),
        );
    }

    async fn faucet(&self, amount: u64) -> Result<u64, Error> {
        Ok(amount)
    }

    async fn register(&self) -> Result<Registered<()>, Error> {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        Ok(Registered {
            answer: (),
            stale: Vec::new(),
        })
    }

    fn started(self: Arc<Self>, _: &(), _: &Context) -> Option<Duration> {
        self.script.lock().expect("script").heartbeat_every
    }

    async fn heartbeat(&self, _free: u32) -> Result<bool, Error> {
        Ok(true)
    }

    async fn heartbeat_holding(&self, _free: u32, mut held: Vec<Hash32>) -> Result<bool, Error> {
        held.sort();
        self.heartbeats.lock().expect("heartbeats").push(held);
        Ok(true)
    }

    async fn take(&self, _max: u32) -> Result<Vec<u8>, Error> {
        let next = self.script.lock().expect("script").takes.pop_front();
        match next {
            None => Ok(Vec::new()),
            Some(Take::Items(items)) => Ok(items),
            Some(Take::Fail(s)) => Err(s.into()),
            Some(Take::SignFails) => {
                Err(Error::Sign(assay_proto::Error::Random("no entropy".into())))
            }
        }
    }

    fn id(&self, item: &u8) -> Option<Hash32> {
        Some(item_id(*item))
    }

    fn prepare(&self, id: Hash32, _item: u8) -> Result<Prepared<Hash32>, GiveBack> {
        Ok(Prepared {
            job: id,
            component: Some(Hash32::of(COMPONENT)),
            inputs: vec![BlobRef {
                name: "x".into(),
                hash: Hash32::of(INPUT),
                size: INPUT.len() as u64,
            }],
            carried: Vec::new(),
            through: Some(Hash32::of(THROUGH_JOB)),
        })
    }

    fn run(&self, id: Hash32, blobs: Fetched) -> Conclusion<(Hash32, usize)> {
        let size = blobs.component.len() + blobs.inputs.values().map(|b| b.len()).sum::<usize>();
        match self.ends {
            Ends::Reports => Conclusion::Report {
                report: (id, size),
                outcome: "success".into(),
            },
            Ends::GivesBack => Conclusion::GiveBack(GiveBack::fault("the device fell over")),
            Ends::Sleeps(d) => {
                std::thread::sleep(d);
                Conclusion::Report {
                    report: (id, size),
                    outcome: "success".into(),
                }
            }
        }
    }

    async fn report(&self, report: &(Hash32, usize)) -> Result<(), Error> {
        let fails = self.script.lock().expect("script").report_fails.clone();
        if let Some(status) = fails {
            return Err(status.into());
        }
        self.accepted.inc();
        self.reported.lock().expect("reported").push(*report);
        Ok(())
    }

    fn report_failed(&self, _report: &(Hash32, usize), _error: &Error) {}

    fn give_back_refused(&self, _report: &(Hash32, usize), error: &Error) -> Option<GiveBack> {
        Some(GiveBack::new(format!("receipt refused: {error}")))
    }

    async fn give_back(&self, id: &Hash32, why: &GiveBack) -> Result<(), Error> {
        self.given_back
            .lock()
            .expect("given back")
            .push((*id, why.clone()));
        let fails = self.script.lock().expect("script").give_back_fails.clone();
        match fails {
            Some(s) => Err(s.into()),
            None => Ok(()),
        }
    }

    fn finished(&self, id: &Hash32) {
        self.finished.lock().expect("finished").push(*id);
    }
}

/// A blob source that fails `failures` times with `Unavailable` first.
struct Flaky {
    failures: AtomicU32,
    calls: AtomicU32,
}

impl Flaky {
    fn new(failures: u32) -> Arc<Flaky> {
        Arc::new(Flaky {
            failures: AtomicU32::new(failures),
            calls: AtomicU32::new(0),
        })
    }
}

impl BlobSource for Flaky {
    fn download<'a>(
        &'a self,
        hash: &'a Hash32,
        job: Option<&'a Hash32>,
        _max_bytes: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, assay_proto::Error>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            // As the coordinator: the item's blobs only through its job.
            if job != Some(&Hash32::of(THROUGH_JOB)) {
                return Err(Status::permission_denied("not through the item's job").into());
            }
            if self
                .failures
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(Status::unavailable("connection refused").into());
            }
            [COMPONENT, INPUT]
                .into_iter()
                .find(|b| Hash32::of(b) == *hash)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Status::not_found("no such blob").into())
        })
    }
}

fn settings(dir: &tempfile::TempDir) -> Settings {
    let mut s = Settings::new("http://fake", dir.path().join("blobs"));
    s.slots = 2;
    s.poll_interval = Duration::from_millis(10);
    s.suspended_poll = Duration::from_millis(20);
    s.drain_timeout = Duration::from_secs(5);
    s
}

/// Runs `worker` until `done` holds (at most 10 s), then shuts it down.
async fn run_until(worker: &Arc<Worker<Fake>>, done: impl Fn(&Fake) -> bool) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.clone().run(async {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(worker.work()) && !task.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = tx.send(());
    task.await.expect("the worker task")
}

#[tokio::test]
async fn a_taken_item_is_fetched_run_and_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::Items(vec![1, 2])], Ends::Reports);
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        f.reported.lock().map(|r| r.len() == 2).unwrap_or(false)
    })
    .await
    .expect("ran");
    let mut reported = w.work().reported.lock().expect("reported").clone();
    reported.sort();
    let size = COMPONENT.len() + INPUT.len();
    assert_eq!(reported, vec![(item_id(1), size), (item_id(2), size)]);
    assert!(w.work().given_back.lock().expect("given back").is_empty());
    let m = w.metrics();
    assert_eq!(m.taken.get(), 2);
    assert_eq!(m.running.get(), 0);
    assert_eq!(m.rpc_errors.get(), 0);
    // The second item found both blobs in the cache (or raced the first
    // to download them); either way every byte is counted once per fetch.
    assert_eq!(
        m.blob_cache_hits.get() + m.bytes_downloaded.get() / 9,
        4,
        "{} hits, {} bytes",
        m.blob_cache_hits.get(),
        m.bytes_downloaded.get()
    );
    assert_eq!(w.work().finished.lock().expect("finished").len(), 2);
}

#[tokio::test]
async fn a_signing_failure_stops_the_daemon_with_the_error() {
    // The old provider broke out of its loop and returned Ok(()).
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::SignFails], Ends::Reports);
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    let e = run_until(&w, |_| false)
        .await
        .expect_err("a daemon that cannot sign stops with the error");
    assert!(matches!(e, Error::Sign(_)), "{e}");
    assert!(e.to_string().contains("cannot sign"), "{e}");
}

#[tokio::test]
async fn transient_fetch_errors_are_retried_with_back_off() {
    // The old provider gave the lease back (as a fault) at the first error.
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::Items(vec![1])], Ends::Reports);
    let source = Flaky::new(2);
    let w = Worker::new(fake, settings(&dir), source.clone());
    run_until(&w, |f| {
        f.reported.lock().map(|r| r.len() == 1).unwrap_or(false)
    })
    .await
    .expect("ran");
    assert_eq!(w.work().reported.lock().expect("reported").len(), 1);
    assert!(w.work().given_back.lock().expect("given back").is_empty());
    assert_eq!(w.metrics().rpc_errors.get(), 2);
    assert_eq!(
        source.calls.load(Ordering::Relaxed),
        4,
        "2 failures, then both blobs"
    );
}

#[tokio::test]
async fn a_give_back_the_coordinator_does_not_take_is_an_rpc_error() {
    // The old provider logged it and counted nothing.
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::Items(vec![1])], Ends::GivesBack);
    fake.script.lock().expect("script").give_back_fails =
        Some(Status::failed_precondition("not your lease"));
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        !f.given_back.lock().map(|g| g.is_empty()).unwrap_or(true)
    })
    .await
    .expect("ran");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let given = w.work().given_back.lock().expect("given back").clone();
    assert_eq!(given.len(), 1, "a refusal is not retried");
    assert!(given[0].1.fault);
    let m = w.metrics();
    assert_eq!(m.rpc_errors.get(), 1);
    assert_eq!(m.returned.get(), 0);
    assert_eq!(m.faults.get(), 1);
    assert_eq!(m.running.get(), 0, "forgotten all the same");
}

#[tokio::test]
async fn heartbeats_report_the_items_held_until_they_finish() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(
        vec![Take::Items(vec![1, 2])],
        Ends::Sleeps(Duration::from_millis(300)),
    );
    fake.script.lock().expect("script").heartbeat_every = Some(Duration::from_millis(20));
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        f.reported.lock().map(|r| r.len() == 2).unwrap_or(false)
            && f.heartbeats
                .lock()
                .map(|h| h.last().is_some_and(Vec::is_empty))
                .unwrap_or(false)
    })
    .await
    .expect("ran");
    let beats = w.work().heartbeats.lock().expect("heartbeats").clone();
    assert!(
        beats.contains(&vec![item_id(1), item_id(2)]),
        "while running: {beats:?}"
    );
    assert_eq!(beats.last(), Some(&vec![]), "none once reported");
}

#[tokio::test]
async fn a_refused_report_gives_the_item_back_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::Items(vec![1])], Ends::Reports);
    fake.script.lock().expect("script").report_fails =
        Some(Status::invalid_argument("outputs do not match the root"));
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        !f.finished.lock().map(|g| g.is_empty()).unwrap_or(true)
    })
    .await
    .expect("ran");
    let given = w.work().given_back.lock().expect("given back").clone();
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!(given[0].0, item_id(1));
    assert!(!given[0].1.fault, "a refusal is nobody's fault here");
    assert!(
        given[0].1.reason.starts_with("receipt refused:")
            && given[0].1.reason.contains("outputs do not match"),
        "{:?}",
        given[0].1
    );
    assert_eq!(w.metrics().returned.get(), 1);
    assert_eq!(
        *w.work().finished.lock().expect("finished"),
        vec![item_id(1)],
        "finished once"
    );
    assert!(w.work().reported.lock().expect("reported").is_empty());
}

#[tokio::test]
async fn a_report_that_cannot_get_through_is_not_given_back() {
    // An outage is not a refusal: the coordinator never saw the report.
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::Items(vec![1])], Ends::Reports);
    fake.script.lock().expect("script").report_fails = Some(Status::unavailable("down"));
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        !f.finished.lock().map(|g| g.is_empty()).unwrap_or(true)
    })
    .await
    .expect("ran");
    assert!(w.work().given_back.lock().expect("given back").is_empty());
    assert_eq!(w.metrics().rpc_errors.get(), 3, "REPORT_ATTEMPTS retries");
}

#[tokio::test]
async fn a_suspended_daemon_keeps_asking_and_a_forgotten_one_registers_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(
        vec![
            Take::Fail(Status::permission_denied("suspended")),
            Take::Fail(Status::permission_denied("suspended")),
            Take::Fail(Status::not_found("who are you?")),
            Take::Fail(Status::unavailable("down")),
            Take::Items(vec![3]),
        ],
        Ends::Reports,
    );
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        f.reported.lock().map(|r| r.len() == 1).unwrap_or(false)
    })
    .await
    .expect("ran");
    assert_eq!(w.work().registrations.load(Ordering::Relaxed), 2);
    assert_eq!(w.metrics().registrations.get(), 2);
    assert_eq!(w.metrics().rpc_errors.get(), 4);
}

#[tokio::test]
async fn shutdown_drains_and_gives_back_what_did_not_finish() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(
        vec![Take::Items(vec![1])],
        Ends::Sleeps(Duration::from_secs(2)),
    );
    let mut s = settings(&dir);
    s.drain_timeout = Duration::from_millis(100);
    let w = Worker::new(fake, s, Flaky::new(0));
    // Shut down while the run is still going.
    w.clone()
        .run(tokio::time::sleep(Duration::from_millis(300)))
        .await
        .expect("ran");
    let given = w.work().given_back.lock().expect("given back").clone();
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!(given[0].0, item_id(1));
    assert!(
        given[0]
            .1
            .reason
            .contains("shut down before finishing the item")
    );
    assert!(w.work().reported.lock().expect("reported").is_empty());
}

#[tokio::test]
async fn the_metrics_endpoint_serves_prometheus_text_over_http() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = Fake::new(vec![Take::Items(vec![1])], Ends::Reports);
    let w = Worker::new(fake, settings(&dir), Flaky::new(0));
    run_until(&w, |f| {
        f.reported.lock().map(|r| r.len() == 1).unwrap_or(false)
    })
    .await
    .expect("ran");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(assay_daemon::metrics::serve(listener, w.registry()));
    let get = |path: &'static str| {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            // HTTP/1.1 without `connection: close`: the server must end
            // the answer itself, as the old responder did.
            write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").expect("request");
            let mut body = String::new();
            s.read_to_string(&mut body).expect("response");
            body
        })
    };
    let text = get("/metrics").await.expect("scrape");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for want in [
        "assay_fake_items_taken_total 1\n",
        "# TYPE assay_fake_running_items gauge\n",
        "assay_fake_reports_accepted_total 1\n",
        "assay_fake_runs_total{backend=\"cpu\",device=\"test device\",outcome=\"success\"} 1\n",
        "# EOF\n",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let other = get("/").await.expect("other path");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}
