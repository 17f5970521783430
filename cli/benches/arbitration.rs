//! Arbitration by trace bisection: what deciding a dispute costs the
//! arbiter against re-executing the job, and what recording the trace costs
//! the job.
//!
//! ```text
//! cargo bench -p assay-cli --bench arbitration [-- --only matmul|mlp|minilm|overhead
//!     --threads 1 --reps 9 --overhead-threads 1,2]
//! ```
//!
//! 1. **Per dispute**, for a matmul, an MLP and a MiniLM job (the MiniLM
//!    model from `assay model fetch`): the job's full re-execution (warm:
//!    weights resident, as a verifier that ran the model before; the
//!    fastest of `--reps`), then a
//!    dispute between its honest trace and a liar's whose chosen step and
//!    every later one differ, played to the end with signed reveals: the
//!    rounds, the bytes exchanged (the two claims, both parties' node
//!    reveals, the two leaf reveals, and the divergent step's input tensors
//!    with their calls and inclusion proofs), the referee's time to check
//!    all of it, and the arbiter's time to recompute the one step
//!    (`assay_runtime::replay_step`: upload the revealed inputs, run the op,
//!    hash the output). The divergent step is chosen twice: the worst case
//!    (the step whose replay took longest of all replayable steps, each
//!    replayed 3 times — every replay must give the step's own leaf) and a
//!    typical one (the median of the compute ops: transfers, reads and
//!    reshapes left out).
//! 2. **Overhead of recording** on the MiniLM job, on 1 and 2 device
//!    threads (`--overhead-threads 1,4,16`): the same warm run without a
//!    trace, with calls only, with outputs hashed on the job's thread (the
//!    default) and hashed beside the ops, interleaved, `--reps` times each:
//!    median wall time and the least CPU time of the process a run took;
//!    then cold runs (a fresh runtime, so the weights are decoded and
//!    hashed in the run).
//! 3. **CUDA** (`--only cuda`; a GPU and a `cuda` build, the default): the
//!    three jobs on the GPU, whose trace must have the CPU's calls and whose
//!    outputs root the CPU's, and what recording calls and shapes costs there.
//!
//! `ASSAY_BENCH_MINILM_DIR=DIR` reads the model's files from `DIR` unchecked;
//! a `model.safetensors` there cut after its header gets made-up weights of
//! the same shapes (the same work), for a machine the weights cannot reach.

#[path = "../src/model_store.rs"]
mod model_store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_guests::Guest;
use assay_guests::safetensors::{Entry, encode, f32_le};
use assay_host_gpu::Device;
use assay_protocol::trace::{
    self, Bisection, Call, Divergence, InputEvidence, LeafReveal, NodeReveal, Opening, Party,
    Progress, Query, Ruling, Side, Step, TraceTree,
};
use assay_protocol::{Hash32, JobSpec, NodeKey, Outcome};
use assay_runtime::{
    Hashing, Inputs, RunReport, Runtime, RuntimeOptions, TraceOptions, replay_step,
};

const SENTENCES: &str = include_str!("../src/demo_sentences.txt");

struct Args {
    only: Vec<String>,
    threads: usize,
    reps: usize,
    /// Device threads the overhead is measured on.
    overhead_threads: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        only: Vec::new(),
        threads: 1,
        reps: 9,
        overhead_threads: vec![1, 2],
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        match w[0].as_str() {
            "--only" => a.only.push(w[1].clone()),
            "--threads" => a.threads = w[1].parse().unwrap_or(a.threads),
            "--reps" => a.reps = w[1].parse().unwrap_or(a.reps),
            "--overhead-threads" => {
                a.overhead_threads = w[1].split(',').filter_map(|t| t.parse().ok()).collect();
            }
            _ => {}
        }
    }
    a
}

struct Job {
    name: String,
    guest: Guest,
    inputs: Inputs,
    spec: JobSpec,
}

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn matmul_job(n: u32) -> Job {
    let m =
        |seed| assay_guests::matrix::encode(n, n, &values((n * n) as usize, seed)).expect("matrix");
    let mut inputs = Inputs::new();
    inputs.insert("a".into(), m(1).into());
    inputs.insert("b".into(), m(2).into());
    Job {
        name: format!("matmul {n}×{n}·{n}×{n}"),
        guest: Guest::Matmul,
        inputs,
        spec: JobSpec::default(),
    }
}

fn mlp_job(d: usize, h: usize, c: usize, rows: usize) -> Job {
    let (d64, h64, c64) = (d as u64, h as u64, c as u64);
    let (w1, b1, w2, b2) = (
        f32_le(&values(h * d, 1)),
        f32_le(&values(h, 2)),
        f32_le(&values(c * h, 3)),
        f32_le(&values(c, 4)),
    );
    let entry = |name, shape, data| Entry {
        name,
        dtype: "F32",
        shape,
        data,
    };
    let model = encode(
        &[
            entry("fc1.weight", &[h64, d64], &w1),
            entry("fc1.bias", &[h64], &b1),
            entry("fc2.weight", &[c64, h64], &w2),
            entry("fc2.bias", &[c64], &b2),
        ],
        &[],
    );
    let mut inputs = Inputs::new();
    inputs.insert("model".into(), model.into());
    inputs.insert("x".into(), f32_le(&values(rows * d, 5)).into());
    Job {
        name: format!("MLP {rows}×{d} → {h} → {c}"),
        guest: Guest::Mlp,
        inputs,
        spec: JobSpec::default(),
    }
}

/// The model's files from `dir` unchecked, its weights made up where
/// `model.safetensors` is only its header (a machine the 90 MB cannot be
/// carried to): the same tensors and shapes, so the same work.
fn minilm_files(dir: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    model_store::FILES
        .iter()
        .map(|f| {
            let mut bytes = std::fs::read(dir.join(f.path)).expect("a model file");
            if f.input == "model" {
                made_up_weights(&mut bytes);
            }
            (f.input, bytes)
        })
        .collect()
}

/// Fills a safetensors file cut after its header: i64 tensors (position
/// ids) count up, f32 ones are small pseudo-random values.
fn made_up_weights(file: &mut Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + n]).expect("a header");
    let tensors = header.as_object().expect("an object");
    let end = tensors
        .values()
        .filter_map(|t| t["data_offsets"][1].as_u64())
        .max()
        .unwrap_or(0) as usize;
    if file.len() >= 8 + n + end {
        return;
    }
    file.resize(8 + n + end, 0);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for t in tensors.values() {
        let (Some(a), Some(b)) = (t["data_offsets"][0].as_u64(), t["data_offsets"][1].as_u64())
        else {
            continue;
        };
        let data = &mut file[8 + n + a as usize..8 + n + b as usize];
        if t["dtype"] == "I64" {
            for (i, c) in data.chunks_exact_mut(8).enumerate() {
                c.copy_from_slice(&(i as i64).to_le_bytes());
            }
        } else {
            for c in data.chunks_exact_mut(4) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

fn minilm_job(sentences: usize, batch: usize) -> Job {
    let files = match std::env::var_os("ASSAY_BENCH_MINILM_DIR") {
        Some(dir) => minilm_files(std::path::Path::new(&dir)),
        None => match model_store::load() {
            Ok(m) => m.files,
            Err(e) => panic!("the MiniLM job needs the model: {e} (run `assay model fetch`)"),
        },
    };
    let mut inputs = Inputs::new();
    for (name, bytes) in &files {
        inputs.insert((*name).to_string(), Arc::from(bytes.as_slice()));
    }
    let text: String = SENTENCES
        .lines()
        .cycle()
        .take(sentences)
        .map(|l| format!("{l}\n"))
        .collect();
    inputs.insert("text".into(), Arc::from(text.as_bytes()));
    let mut spec = JobSpec::default();
    spec.params.insert("batch_size".into(), batch.to_string());
    Job {
        name: format!("MiniLM, {sentences} sentences, batch {batch}"),
        guest: Guest::MinilmEmbed,
        inputs,
        spec,
    }
}

fn runtime(threads: usize) -> Runtime {
    Runtime::new(RuntimeOptions {
        cache_dir: None,
        device: Device::cpu_with_threads(threads),
        key: NodeKey::from_seed([11; 32]),
    })
    .expect("runtime")
}

fn run(rt: &Runtime, job: &Job, trace: &TraceOptions) -> RunReport {
    let c = rt.load(job.guest.bytes()).expect("load");
    let r = rt
        .run_with(&c, Arc::new(job.inputs.clone()), &job.spec, trace)
        .expect("a deterministic result");
    assert_eq!(r.outcome, Outcome::Success, "{}: {:?}", job.name, r.error);
    r
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one dispute cost.
struct Cost {
    step: u64,
    op: String,
    rounds: u32,
    /// Claims, node reveals and leaf reveals (hashes and signatures).
    game_bytes: u64,
    /// The divergent step's inputs: tensors, their calls and proofs.
    evidence_bytes: u64,
    referee: Duration,
    recompute: Duration,
}

/// Plays a dispute between the honest trace (side A) and a liar whose step
/// `lie` and every later output differ, and has the arbiter decide it.
fn dispute(job: &Job, honest: &RunReport, lie: usize, device: &Device) -> Cost {
    let mut liar: Vec<Step> = honest.trace.steps.clone();
    for s in &mut liar[lie..] {
        s.output.0[0] ^= 1;
    }
    let liar_leaves: Vec<Hash32> = liar
        .iter()
        .enumerate()
        .map(|(i, s)| s.leaf(i as u64))
        .collect();
    let trees = [honest.trace.tree(), TraceTree::new(liar_leaves)];
    let steps = [&honest.trace.steps, &liar];
    let keys = [NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32])];
    let dispute = Hash32::of(b"a dispute");
    let claim_bytes = 2 * (8 + 32) as u64;
    // The parties' answers are prepared outside the referee's time.
    let mut referee = Duration::ZERO;
    let party = |i: usize| Party {
        id: keys[i].id(),
        trace_root: trees[i].root(),
        claim: trees[i].claim(),
    };
    let t = Instant::now();
    let opening = Bisection::open(dispute, party(0), party(1));
    referee += t.elapsed();
    let Opening::Game(mut game) = opening else {
        panic!("the traces differ");
    };
    let mut game_bytes = claim_bytes;
    let index = loop {
        match game.query() {
            Query::Node { level, index } => {
                let a = trees[0].reveal_node(&keys[0], &dispute, level, index);
                let b = trees[1].reveal_node(&keys[1], &dispute, level, index);
                game_bytes += 2 * NodeReveal::WIRE_BYTES;
                let t = Instant::now();
                let progress = game.reveal_nodes(&a, &b).expect("at a node");
                referee += t.elapsed();
                assert!(matches!(progress, Progress::Continue));
            }
            Query::Leaf { index } => break index,
        }
    };
    assert_eq!(index, lie as u64);
    let reveals = [0, 1].map(|i| LeafReveal::sign(&keys[i], &dispute, index, &steps[i][lie]));
    game_bytes += reveals.iter().map(LeafReveal::wire_bytes).sum::<u64>();
    let t = Instant::now();
    let divergence = game
        .judge_leaves(Some(&reveals[0]), Some(&reveals[1]))
        .expect("at a leaf");
    referee += t.elapsed();
    let Divergence::Output { call, outputs, .. } = divergence else {
        panic!("an output divergence: {divergence:?}");
    };
    let evidence: Vec<InputEvidence> = call
        .inputs
        .iter()
        .map(|&j| InputEvidence {
            call: honest.trace.steps[j as usize].call.clone(),
            proof: trees[0].prove(j).expect("an earlier step"),
            tensor: honest.trace.kept[&j].clone(),
        })
        .collect();
    let evidence_bytes = evidence.iter().map(InputEvidence::wire_bytes).sum();
    let t = Instant::now();
    for (e, &j) in evidence.iter().zip(&call.inputs) {
        e.check(j, index, &game.roots()).expect("agreed input");
    }
    referee += t.elapsed();
    let tensors: Vec<_> = evidence.into_iter().map(|e| e.tensor).collect();
    let t = Instant::now();
    let replayed = replay_step(device, index, &call, &tensors, &job.inputs).expect("replays");
    let recompute = t.elapsed();
    assert_eq!(
        trace::rule(&outputs, &replayed.output),
        Ruling::Upheld(Side::A)
    );
    Cost {
        step: index,
        op: call.name,
        rounds: game.rounds(),
        game_bytes,
        evidence_bytes,
        referee,
        recompute,
    }
}

fn kib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// The per-dispute rows of one job.
fn arbitration(job: &Job, threads: usize, reps: usize) -> Vec<String> {
    let rt = runtime(threads);
    let keep_all = TraceOptions {
        keep: (0..1_000_000).collect(),
        ..TraceOptions::default()
    };
    let honest = run(&rt, job, &keep_all);
    // Full re-execution, warm (weights resident), trace recorded: the
    // fastest of `reps` (on a shared machine, the steadiest estimate).
    let full = (0..reps)
        .map(|_| run(&rt, job, &TraceOptions::default()).elapsed)
        .min()
        .unwrap_or_default();
    // Replay every replayable step (the least of 3 times) to find the
    // worst and a typical one; each must give its own leaf.
    let device = Device::cpu_with_threads(threads);
    let mut times: Vec<(Duration, usize)> = Vec::new();
    for (i, step) in honest.trace.steps.iter().enumerate() {
        let call = Call::decode(&step.call).expect("a call");
        if call.name.starts_with("tensor.upload-") {
            continue;
        }
        let revealed: Vec<_> = call
            .inputs
            .iter()
            .map(|j| honest.trace.kept[j].clone())
            .collect();
        let mut least = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let got =
                replay_step(&device, i as u64, &call, &revealed, &job.inputs).expect("replays");
            least = least.min(t.elapsed());
            assert_eq!(got.leaf, honest.trace.leaves[i], "step {i} {}", call.name);
        }
        times.push((least, i));
    }
    times.sort();
    let worst = times.last().expect("steps").1;
    // Typical: the median of the compute ops (not transfers, reads or
    // reshapes, whose recompute is a copy).
    let compute: Vec<usize> = times
        .iter()
        .map(|&(_, i)| i)
        .filter(|&i| {
            let name = Call::decode(&honest.trace.steps[i].call)
                .map(|c| c.name)
                .unwrap_or_default();
            !matches!(
                name.as_str(),
                "job-io.tensor-from-input"
                    | "job-io.write-tensor-output"
                    | "tensor.read-f32"
                    | "tensor.read-i32"
                    | "tensor.reshape"
                    | "tensor.fill"
            )
        })
        .collect();
    let typical = compute[compute.len() / 2];
    let n = honest.trace.steps.len();
    let mut rows = Vec::new();
    for (which, step) in [
        ("worst (slowest op)", worst),
        ("typical (median compute op)", typical),
    ] {
        // Best of three disputes: the recompute is one op, timer noise matters.
        let cost = (0..3)
            .map(|_| dispute(job, &honest, step, &device))
            .min_by_key(|c| c.referee + c.recompute)
            .expect("three");
        let arbiter = cost.referee + cost.recompute;
        rows.push(format!(
            "| {} | {:.1} | {n} | {which}: #{} `{}` | {} | {} + {} | {:.2} | {:.2} | {:.2} % |",
            job.name,
            ms(full),
            cost.step,
            cost.op,
            cost.rounds,
            kib(cost.game_bytes),
            kib(cost.evidence_bytes),
            ms(cost.referee),
            ms(cost.recompute),
            100.0 * arbiter.as_secs_f64() / full.as_secs_f64(),
        ));
        eprintln!("{}", rows.last().expect("a row"));
    }
    rows
}

/// Bytes a warm run hashes: every output but reshapes (their input's
/// hash), reads (their tensor's) and tensors from input ranges of 64 KiB
/// or more (remembered after the first run).
fn hashed_bytes(r: &RunReport) -> u64 {
    r.trace
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let name = Call::decode(&s.call).map(|c| c.name).unwrap_or_default();
            let t = r.trace.kept.get(&(i as u64))?;
            let skip = name == "tensor.reshape"
                || name.starts_with("tensor.read-")
                || name == "job-io.write-tensor-output"
                || (name == "job-io.tensor-from-input" && t.bytes.len() >= 64 << 10);
            (!skip).then_some(t.bytes.len() as u64)
        })
        .sum()
}

/// CPU time of this process so far (every thread: the job's, the device's
/// workers and the trace's hasher).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The cost of recording the trace on one job: warm runs in every mode,
/// interleaved, then cold runs (a fresh runtime each) without and with.
fn overhead(job: &Job, threads: usize, reps: usize) -> String {
    let rt = runtime(threads);
    let mode = |off: bool, hashing: Hashing| TraceOptions {
        off,
        hashing,
        ..TraceOptions::default()
    };
    let modes = [
        mode(true, Hashing::Inline),
        mode(false, Hashing::CallsOnly),
        mode(false, Hashing::Inline),
        mode(false, Hashing::Beside),
    ];
    // Warm every path (weights resident, their hashes remembered).
    for m in &modes {
        run(&rt, job, m);
    }
    let mut wall = vec![Vec::new(); modes.len()];
    let mut cpu = vec![Vec::new(); modes.len()];
    for _ in 0..reps {
        for (i, m) in modes.iter().enumerate() {
            let c = cpu_time();
            wall[i].push(run(&rt, job, m).elapsed);
            cpu[i].push(cpu_time().saturating_sub(c));
        }
    }
    // On a shared machine the least CPU a run took is the steadiest
    // estimate of its own cost; the wall median says what a job sees.
    let wall: Vec<Duration> = wall.into_iter().map(median).collect();
    let cpu: Vec<Duration> = cpu
        .into_iter()
        .map(|c| c.into_iter().min().unwrap_or_default())
        .collect();
    let traced = run(
        &rt,
        job,
        &TraceOptions {
            keep: (0..1_000_000).collect(),
            ..TraceOptions::default()
        },
    );
    let (steps, hashed) = (traced.trace.steps.len(), hashed_bytes(&traced));
    // Cold: a fresh runtime, so the weights are decoded (and their hashes
    // computed) in the run; the least CPU of 5, interleaved.
    let (mut cold_off, mut cold_on) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        for (m, least) in [(&modes[0], &mut cold_off), (&modes[2], &mut cold_on)] {
            let rt = runtime(threads);
            rt.load(job.guest.bytes())
                .expect("compiles outside the measure");
            let c = cpu_time();
            run(&rt, job, m);
            *least = (*least).min(cpu_time().saturating_sub(c));
        }
    }
    let pct = |x: Duration, base: Duration| 100.0 * (x.as_secs_f64() / base.as_secs_f64() - 1.0);
    let cell = |i: usize| {
        if i == 0 {
            format!("{:.1} ({:.1})", ms(wall[0]), ms(cpu[0]))
        } else {
            format!(
                "{:.1} ({:.1}): {:+.1} % ({:+.1} %)",
                ms(wall[i]),
                ms(cpu[i]),
                pct(wall[i], wall[0]),
                pct(cpu[i], cpu[0])
            )
        }
    };
    let row = format!(
        "| {} | {threads} | {steps} | {} | {} | {} | {} | {} | {:.1} → {:.1}: {:+.1} % |",
        job.name,
        kib(hashed),
        cell(0),
        cell(1),
        cell(2),
        cell(3),
        ms(cold_off),
        ms(cold_on),
        pct(cold_on, cold_off),
    );
    eprintln!("{row}");
    row
}

fn main() {
    let a = args();
    let on = |part: &str| a.only.is_empty() || a.only.iter().any(|o| o == part);
    let mut jobs: Vec<Job> = Vec::new();
    if on("matmul") {
        jobs.push(matmul_job(1024));
    }
    if on("mlp") {
        jobs.push(mlp_job(128, 512, 16, 4096));
    }
    let minilm = (on("minilm") || on("overhead") || on("cuda")).then(|| minilm_job(64, 16));
    let mut rows = Vec::new();
    for job in jobs.iter().chain(minilm.as_ref().filter(|_| on("minilm"))) {
        rows.extend(arbitration(job, a.threads, a.reps));
    }
    if !rows.is_empty() {
        println!(
            "\nPer dispute (CPU, {} thread(s); re-execution: the fastest of --reps warm runs; referee and recompute: the cheapest of 3 disputes):\n",
            a.threads
        );
        println!(
            "| job | full re-execution (ms) | steps n | divergent step | rounds | bytes: game + inputs | referee checks (ms) | one-step recompute (ms) | arbiter ÷ re-execution |"
        );
        println!("|---|---:|---:|---|---:|---|---:|---:|---:|");
        for r in &rows {
            println!("{r}");
        }
    }
    if on("overhead")
        && let Some(job) = &minilm
    {
        let mut rows = Vec::new();
        for &threads in &a.overhead_threads {
            rows.push(overhead(job, threads, a.reps));
        }
        println!(
            "\nRecording the trace: wall = median of {} interleaved warm runs, (CPU) = the least CPU time of the process (all threads) a run took:\n",
            a.reps
        );
        println!(
            "| job | threads | steps | bytes hashed per warm run | no trace: wall (CPU) ms | calls only | hashed inline (default) | hashed beside | cold, no trace → hashed inline: CPU (ms) |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &rows {
            println!("{r}");
        }
    }
    if on("cuda") {
        let mut jobs = vec![matmul_job(1024), mlp_job(128, 512, 16, 4096)];
        jobs.extend(minilm);
        cuda(&jobs, a.reps);
    }
}

/// The CUDA backend: the trace of calls and shapes it records (outputs stay
/// on the device) against the CPU's, and what recording it costs there.
fn cuda(jobs: &[Job], reps: usize) {
    let gpu = match Device::cuda(0) {
        Ok(gpu) => gpu,
        Err(e) => {
            assert!(
                std::env::var("ASSAY_REQUIRE_GPU").as_deref() != Ok("1"),
                "ASSAY_REQUIRE_GPU=1 but: {e}"
            );
            println!("\nSKIPPED the CUDA part: {e}");
            return;
        }
    };
    let rt = Runtime::new(RuntimeOptions {
        cache_dir: None,
        device: gpu,
        key: NodeKey::from_seed([11; 32]),
    })
    .expect("runtime");
    let cpu = runtime(4);
    let off = TraceOptions {
        off: true,
        ..TraceOptions::default()
    };
    let on = TraceOptions::default();
    println!(
        "\nOn CUDA ({}), trace of calls and shapes:\n",
        rt.device().info().device
    );
    println!(
        "| job | steps | calls = CPU's | outputs root = CPU's | no trace (ms) | traced (ms) | overhead |"
    );
    println!("|---|---:|---|---|---:|---:|---:|");
    for job in jobs {
        let want = run(&cpu, job, &on);
        let got = run(&rt, job, &on);
        let calls_equal = got.trace.steps.len() == want.trace.steps.len()
            && got
                .trace
                .steps
                .iter()
                .zip(&want.trace.steps)
                .all(|(g, w)| g.call == w.call);
        let roots_equal = got.receipt.body.outputs_root == want.receipt.body.outputs_root;
        run(&rt, job, &off);
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            without.push(run(&rt, job, &off).elapsed);
            with.push(run(&rt, job, &on).elapsed);
        }
        let (w, wo) = (median(with), median(without));
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:+.2} % |",
            job.name,
            got.trace.steps.len(),
            if calls_equal { "yes" } else { "**no**" },
            if roots_equal { "yes" } else { "**no**" },
            ms(wo),
            ms(w),
            100.0 * (w.as_secs_f64() / wo.as_secs_f64() - 1.0)
        );
        assert!(calls_equal && roots_equal, "{}", job.name);
    }
}
