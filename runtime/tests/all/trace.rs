//! The trace a run records (`assay_protocol::trace`): its root is in the
//! receipt, it is the same on every CPU path and whether or not the device
//! kept the weights, recording it changes no result, every step replays to
//! its own leaf on the CPU, and a dispute over a lied step is bisected to
//! that step and decided by recomputing it alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use assay_guests::Guest;
use assay_guests::safetensors::{Entry, encode, f32_le};
use assay_host_gpu::{CpuSimd, Device};
use assay_protocol::trace::{
    self, Bisection, Call, Divergence, InputEvidence, LeafReveal, Opening, Party, Progress, Query,
    Ruling, Side, Step, TraceTree,
};
use assay_protocol::{Hash32, JobSpec, NodeKey, Outcome};
use assay_runtime::{Hashing, Inputs, RunReport, Runtime, TraceOptions, replay_step};

use crate::{hostile, hostile_spec, matmul_inputs, run, runtime, runtime_with};

/// An MLP job: `rows` rows of `d` inputs, `h` hidden units, `c` classes
/// (fc1's weight is ≥ 64 KiB from `h·d ≥ 16384`, so the device keeps it).
fn mlp_inputs(d: usize, h: usize, c: usize, rows: usize) -> Inputs {
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    };
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
    inputs
}

fn run_with(rt: &Runtime, guest: Guest, inputs: &Inputs, trace: &TraceOptions) -> RunReport {
    let c = rt.load(guest.bytes()).expect("load");
    rt.run_with(&c, Arc::new(inputs.clone()), &JobSpec::default(), trace)
        .expect("a deterministic result")
}

fn keep_all() -> TraceOptions {
    TraceOptions {
        keep: (0..10_000).collect(),
        ..TraceOptions::default()
    }
}

#[test]
fn a_receipt_commits_to_the_trace_the_run_recorded() {
    let rt = runtime();
    let r = run(
        &rt,
        Guest::Matmul,
        matmul_inputs(5, 7, 3),
        &JobSpec::default(),
    );
    assert_eq!(r.outcome, Outcome::Success);
    let t = &r.trace;
    assert!(t.recorded && !t.steps.is_empty());
    assert_eq!(r.receipt.body.trace_root, t.root);
    assert_eq!(t.root, trace::trace_root(&t.leaves));
    let leaves: Vec<Hash32> = t
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.leaf(i as u64))
        .collect();
    assert_eq!(leaves, t.leaves);
    let names: Vec<String> = t
        .steps
        .iter()
        .map(|s| Call::decode(&s.call).expect("a call").name)
        .collect();
    assert_eq!(
        names,
        [
            "job-io.tensor-from-input",
            "job-io.tensor-from-input",
            "tensor.matmul",
            "tensor.read-f32"
        ]
    );
    // The matmul's inputs are the two tensors read from the inputs.
    assert_eq!(Call::decode(&t.steps[2].call).expect("call").inputs, [0, 1]);
    let again = run(
        &rt,
        Guest::Matmul,
        matmul_inputs(5, 7, 3),
        &JobSpec::default(),
    );
    assert_eq!(again.trace.root, t.root);
}

#[test]
fn the_trace_is_the_same_on_every_cpu_path_and_with_resident_weights() {
    let inputs = mlp_inputs(64, 512, 10, 33);
    let rt = runtime();
    let first = run_with(&rt, Guest::Mlp, &inputs, &TraceOptions::default());
    assert_eq!(first.outcome, Outcome::Success, "{:?}", first.error);
    // Second run on the same runtime: weights resident, their hash remembered.
    let warm = run_with(&rt, Guest::Mlp, &inputs, &TraceOptions::default());
    assert!(rt.device().resident_stats().hits > 0);
    assert_eq!(warm.trace.steps, first.trace.steps);
    // Hashing beside the ops gives the same trace as on the job's thread;
    // a trace of calls alone is another.
    let beside = run_with(
        &rt,
        Guest::Mlp,
        &inputs,
        &TraceOptions {
            hashing: Hashing::Beside,
            ..TraceOptions::default()
        },
    );
    assert_eq!(beside.trace.steps, first.trace.steps);
    let calls = run_with(
        &rt,
        Guest::Mlp,
        &inputs,
        &TraceOptions {
            hashing: Hashing::CallsOnly,
            ..TraceOptions::default()
        },
    );
    assert_ne!(calls.trace.root, first.trace.root);
    assert!(
        first.trace.data && !calls.trace.data,
        "only a hashed trace is a data trace"
    );
    for (c, f) in calls.trace.steps.iter().zip(&first.trace.steps) {
        assert_eq!(c.call, f.call);
    }
    for (threads, simd) in [
        (1, CpuSimd::Scalar),
        (4, CpuSimd::Avx2),
        (2, CpuSimd::Avx512),
    ] {
        let Ok(device) = Device::cpu_with(Some(threads), simd) else {
            eprintln!("SKIPPED {simd:?}: not on this CPU");
            continue;
        };
        let other = run_with(
            &runtime_with(None, device),
            Guest::Mlp,
            &inputs,
            &TraceOptions::default(),
        );
        assert_eq!(other.trace.root, first.trace.root, "{simd:?} on {threads}");
    }
}

#[test]
fn recording_the_trace_changes_no_result() {
    let inputs = mlp_inputs(32, 64, 4, 9);
    let rt = runtime();
    let on = run_with(&rt, Guest::Mlp, &inputs, &TraceOptions::default());
    let off = run_with(
        &rt,
        Guest::Mlp,
        &inputs,
        &TraceOptions {
            off: true,
            ..TraceOptions::default()
        },
    );
    let (a, b) = (&on.receipt.body, &off.receipt.body);
    assert_eq!(a.deterministic_part(), b.deterministic_part());
    assert_eq!(on.outputs, off.outputs);
    assert!(!off.trace.recorded && off.trace.steps.is_empty());
    assert_eq!(b.trace_root, Hash32::ZERO);
    assert_ne!(a.trace_root, Hash32::ZERO);
}

/// Replays every step that is not an upload from the kept outputs of its
/// inputs; returns how many replayed.
fn replay_all(r: &RunReport, inputs: &Inputs) -> usize {
    let device = Device::cpu();
    let mut replayed = 0;
    for (i, step) in r.trace.steps.iter().enumerate() {
        let call = Call::decode(&step.call).expect("a call");
        if call.name.starts_with("tensor.upload-") {
            continue;
        }
        let revealed: Vec<_> = call
            .inputs
            .iter()
            .map(|j| r.trace.kept[j].clone())
            .collect();
        let got = replay_step(&device, i as u64, &call, &revealed, inputs)
            .unwrap_or_else(|e| panic!("step {i} {}: {e}", call.name));
        assert_eq!(got.output, step.output, "step {i} {}", call.name);
        assert_eq!(got.leaf, r.trace.leaves[i]);
        replayed += 1;
    }
    replayed
}

#[test]
fn every_step_replays_to_its_own_leaf() {
    let rt = runtime();
    let inputs = mlp_inputs(32, 64, 4, 9);
    let r = run_with(&rt, Guest::Mlp, &inputs, &keep_all());
    assert_eq!(replay_all(&r, &inputs), r.trace.steps.len());
    // The challenge guest: uploads (not replayable: guest data), matmul,
    // unary and binary ops, reductions.
    let mut spec = JobSpec::default();
    spec.params.insert("seed".into(), "5e".repeat(32));
    spec.params.insert("n".into(), "64".into());
    spec.params.insert("rounds".into(), "2".into());
    let c = rt.load(Guest::Challenge.bytes()).expect("load");
    let r = rt
        .run_with(&c, Arc::new(Inputs::new()), &spec, &keep_all())
        .expect("runs");
    assert_eq!(r.outcome, Outcome::Success, "{:?}", r.error);
    let replayed = replay_all(&r, &Inputs::new());
    assert!(replayed > 4, "{replayed} of {}", r.trace.steps.len());
}

#[test]
fn a_refused_call_is_a_step_whose_output_is_the_refusal() {
    let rt = runtime();
    let r = hostile(&rt, "shape-mismatch", &hostile_spec());
    let last = r.trace.steps.last().expect("steps");
    assert_eq!(
        Call::decode(&last.call).expect("call").name,
        "tensor.matmul"
    );
    assert_eq!(last.output, trace::refused_digest("shape-mismatch"));
    let r = hostile(&rt, "quota-bomb", &hostile_spec());
    assert_eq!(r.outcome, Outcome::GpuQuotaExceeded);
    let last = r.trace.steps.last().expect("steps");
    assert_eq!(last.output, trace::refused_digest("quota-exceeded"));
    // The refusal replays from the revealed operands.
    let mut spec = hostile_spec();
    spec.params.insert("mode".into(), "shape-mismatch".into());
    let c = rt.load(Guest::Hostile.bytes()).expect("load");
    let r = rt
        .run_with(&c, Arc::new(Inputs::new()), &spec, &keep_all())
        .expect("runs");
    assert_eq!(replay_all(&r, &Inputs::new()), 3);
}

/// An honest provider (side A) and a liar (side B) whose step `lie` and
/// every later step differ: bisection finds `lie`, the arbiter recomputes it
/// from the honest party's revealed inputs and upholds the honest side.
#[test]
fn a_dispute_is_bisected_to_the_lied_step_and_decided_by_recomputing_it() {
    let rt = runtime();
    let inputs = mlp_inputs(32, 64, 4, 9);
    let honest = run_with(&rt, Guest::Mlp, &inputs, &keep_all());
    let n = honest.trace.steps.len();
    for lie in [2, n / 2, n - 1] {
        let mut liar: Vec<Step> = honest.trace.steps.clone();
        for s in &mut liar[lie..] {
            s.output.0[0] ^= 1;
        }
        let leaves = |steps: &[Step]| -> Vec<Hash32> {
            steps
                .iter()
                .enumerate()
                .map(|(i, s)| s.leaf(i as u64))
                .collect()
        };
        let trees = [honest.trace.tree(), TraceTree::new(leaves(&liar))];
        let steps = [&honest.trace.steps, &liar];
        let keys = [NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32])];
        let dispute = Hash32([3; 32]);
        let party = |i: usize| Party {
            id: keys[i].id(),
            trace_root: trees[i].root(),
            claim: trees[i].claim(),
        };
        let Opening::Game(mut game) = Bisection::open(dispute, party(0), party(1)) else {
            panic!("the traces differ");
        };
        let index = loop {
            match game.query() {
                Query::Node { level, index } => {
                    let a = trees[0].reveal_node(&keys[0], &dispute, level, index);
                    let b = trees[1].reveal_node(&keys[1], &dispute, level, index);
                    assert!(matches!(game.reveal_nodes(&a, &b), Ok(Progress::Continue)));
                }
                Query::Leaf { index } => break index,
            }
        };
        assert_eq!(index, lie as u64);
        assert_eq!(game.rounds(), trace::depth_of(n as u64));
        let reveal = |i: usize| LeafReveal::sign(&keys[i], &dispute, index, &steps[i][lie]);
        let Ok(Divergence::Output { call, outputs, .. }) =
            game.judge_leaves(Some(&reveal(0)), Some(&reveal(1)))
        else {
            panic!("an output divergence");
        };
        // The inputs, proven against the agreed prefix.
        let evidence: Vec<InputEvidence> = call
            .inputs
            .iter()
            .map(|&j| InputEvidence {
                call: honest.trace.steps[j as usize].call.clone(),
                proof: trees[0].prove(j).expect("an earlier step"),
                tensor: honest.trace.kept[&j].clone(),
            })
            .collect();
        for (e, &j) in evidence.iter().zip(&call.inputs) {
            e.check(j, index, &game.roots()).expect("agreed input");
        }
        let tensors: Vec<_> = evidence.into_iter().map(|e| e.tensor).collect();
        let replayed =
            replay_step(&Device::cpu(), index, &call, &tensors, &inputs).expect("replays");
        assert_eq!(
            trace::rule(&outputs, &replayed.output),
            Ruling::Upheld(Side::A)
        );
    }
}

#[test]
fn kept_tensors_are_only_the_steps_asked_for() {
    let rt = runtime();
    let inputs = mlp_inputs(32, 64, 4, 9);
    let r = run_with(
        &rt,
        Guest::Mlp,
        &inputs,
        &TraceOptions {
            keep: BTreeSet::from([2, 3]),
            ..TraceOptions::default()
        },
    );
    assert_eq!(r.trace.kept.keys().copied().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(r.trace.kept[&2].digest(), r.trace.steps[2].output);
}

#[test]
fn a_run_stops_right_after_the_step_it_was_to_stop_after() {
    let rt = runtime();
    let inputs = mlp_inputs(32, 64, 4, 9);
    let full = run_with(&rt, Guest::Mlp, &inputs, &TraceOptions::default());
    let n = full.trace.steps.len() as u64;
    assert!(n > 4);
    for stop in [0, n / 2, n - 1] {
        let c = rt.load(Guest::Mlp.bytes()).expect("load");
        let options = TraceOptions {
            stop_after: Some(stop),
            ..TraceOptions::default()
        };
        let r = rt
            .run_with(&c, Arc::new(inputs.clone()), &JobSpec::default(), &options)
            .expect("a report");
        // The guest ran up to and including the step, and made the same
        // calls as the full run.
        let want = &full.trace.steps[..=stop as usize];
        assert_eq!(r.trace.steps.len() as u64, stop + 1, "stop after {stop}");
        assert_eq!(
            r.trace.steps.iter().map(|s| &s.call).collect::<Vec<_>>(),
            want.iter().map(|s| &s.call).collect::<Vec<_>>()
        );
        assert_ne!(
            r.receipt.body.outcome,
            Outcome::Success,
            "stopped, not finished"
        );
    }
    // Past the end: the run finishes as usual.
    let c = rt.load(Guest::Mlp.bytes()).expect("load");
    let options = TraceOptions {
        stop_after: Some(n),
        ..TraceOptions::default()
    };
    let r = rt
        .run_with(&c, Arc::new(inputs), &JobSpec::default(), &options)
        .expect("a report");
    assert_eq!(r.receipt.body.outputs_root, full.receipt.body.outputs_root);
    assert_eq!(r.receipt.body.outcome, Outcome::Success);
}

/// On the CUDA backend (a GPU, or the kernels emulated on the host with
/// `ASSAY_CUDA_EMULATOR=1`; built with `--features assay-host-gpu/cuda`) the
/// trace has the CPU's calls, op outputs by dtype and shape only (they stay
/// on the device), and reads hashed as on the CPU: it is the CPU's trace of
/// calls alone (`Hashing::CallsOnly`).
#[test]
fn on_cuda_the_trace_records_the_calls_and_shapes() {
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let gpu = match Device::cuda(0) {
        Ok(gpu) => gpu,
        Err(e) if flag("ASSAY_CUDA_EMULATOR") => match Device::cuda_emulated() {
            Ok(emu) => emu,
            Err(emu) => {
                println!("SKIPPED on_cuda_the_trace_records_the_calls_and_shapes: {e}; {emu}");
                return;
            }
        },
        Err(e) => {
            assert!(!flag("ASSAY_REQUIRE_GPU"), "ASSAY_REQUIRE_GPU=1 but: {e}");
            println!("SKIPPED on_cuda_the_trace_records_the_calls_and_shapes: {e}");
            return;
        }
    };
    let inputs = matmul_inputs(9, 40, 7);
    let cpu = run_with(&runtime(), Guest::Matmul, &inputs, &keep_all());
    let cuda = run_with(
        &runtime_with(None, gpu),
        Guest::Matmul,
        &inputs,
        &TraceOptions::default(),
    );
    assert_eq!(
        cuda.receipt.body.outputs_root,
        cpu.receipt.body.outputs_root
    );
    assert_eq!(cuda.trace.steps.len(), cpu.trace.steps.len());
    // A CPU trace of calls alone is the CUDA trace, bit for bit.
    let calls_only = run_with(
        &runtime(),
        Guest::Matmul,
        &inputs,
        &TraceOptions {
            hashing: Hashing::CallsOnly,
            ..TraceOptions::default()
        },
    );
    assert_eq!(calls_only.trace.root, cuda.trace.root);
    assert!(!cuda.trace.data, "a GPU's trace is no data trace");
    for (i, (g, c)) in cuda.trace.steps.iter().zip(&cpu.trace.steps).enumerate() {
        assert_eq!(g.call, c.call, "step {i}");
        let call = Call::decode(&c.call).expect("call");
        if call.name.starts_with("tensor.read-") {
            assert_eq!(g.output, c.output, "a read is hashed: step {i}");
        } else {
            let kept = &cpu.trace.kept[&(i as u64)];
            assert_eq!(
                g.output,
                trace::unhashed_digest(kept.dtype, &kept.shape),
                "step {i}"
            );
        }
    }
}

/// A guest making tiny calls by the million keeps at most
/// `trace::MAX_STEPS` of them in its host's memory.
#[test]
fn a_trace_holds_at_most_max_steps() {
    let rt = runtime();
    let mut spec = hostile_spec();
    spec.params.insert("mode".into(), "work-bomb".into());
    spec.params.insert("size".into(), "1".into());
    // A 1×1 matmul meters 2 flops + 12 bytes: just past the cap, then the
    // budget ends the run.
    spec.work_budget = 14 * (trace::MAX_STEPS + 1000);
    let r = run(&rt, Guest::Hostile, Inputs::new(), &spec);
    assert_eq!(r.outcome, Outcome::WorkBudgetExhausted);
    assert_eq!(r.trace.steps.len() as u64, trace::MAX_STEPS);
    assert!(r.trace.left_out > 0, "{}", r.trace.left_out);
    assert_eq!(
        r.receipt.body.trace_root,
        trace::trace_root(&r.trace.leaves)
    );
}
