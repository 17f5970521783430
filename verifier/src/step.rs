//! The arbiter's recompute of one step of a bisected dispute: a referee
//! check whose `step` is set (`pb::DisputedStep`) names the first step where
//! the provider's trace and the verifier's differ, its call, both outputs
//! and, for each input of the call, a tensor one party revealed with its
//! inclusion proof. The arbiter fetches those tensors alone (and the job's
//! inputs only for a `job-io.tensor-from-input`), checks each against
//! either party's trace root ([`InputEvidence::check`]) and against the
//! call's inputs in order, and replays the call on a CPU device
//! ([`assay_runtime::replay_step`]). Its output digest decides: the verdict
//! agrees with the receipt iff it is the provider's.
//!
//! Where the parties' calls differ ([`GuestStep`]), the arbiter re-runs the
//! guest up to the step and sees which call it makes there.
//!
//! Evidence that does not check, or a step that cannot be replayed (an
//! upload, whose data came from the guest), is not a verdict: the check is
//! handed back with a reason beginning [`FULL_REEXECUTION`], and the
//! coordinator turns it into a full re-execution.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use assay_host_gpu::Device;
use assay_proto::{convert, pb};
use assay_protocol::trace::{
    Call, Dtype, InclusionProof, InputEvidence, RevealedTensor, call_digest,
};
use assay_protocol::{BlobRef, Hash32};

/// How a hand-back asking for a full re-execution begins.
pub const FULL_REEXECUTION: &str = "full re-execution: ";

/// The calls that read the job's inputs (the only steps that need them).
const FROM_INPUT: [&str; 2] = ["job-io.tensor-from-input", "job-io.blocks-from-input"];

/// A disputed step where the parties' calls differ (`DisputedStep.kind =
/// "call"`): the guest's own code diverged. The arbiter re-runs the job up
/// to the step (`TraceOptions::stop_after`) and answers with the
/// [`call_digest`] of the call its run made there — or of none, when its
/// run ended first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestStep {
    /// The dispute.
    pub dispute: Hash32,
    /// The step.
    pub index: u64,
    /// The call digests of the provider's and the verifier's calls.
    pub outputs: [Hash32; 2],
}

impl GuestStep {
    /// Reads a `call` disputed step.
    ///
    /// # Errors
    ///
    /// Why it cannot be decided this way (the check goes to a full
    /// re-execution).
    pub fn parse(d: &pb::DisputedStep) -> Result<GuestStep, String> {
        let hash =
            |field: &'static str, b: &[u8]| convert::hash(field, b).map_err(|e| e.to_string());
        let call = |b: &[u8]| (!b.is_empty()).then(|| b.to_vec());
        let outputs = [
            hash("step.provider_output", &d.provider_output)?,
            hash("step.verifier_output", &d.verifier_output)?,
        ];
        // The digests must be of the calls stated: the coordinator made them.
        let stated = [
            call_digest(call(&d.provider_call).as_deref()),
            call_digest(call(&d.verifier_call).as_deref()),
        ];
        if stated != outputs {
            return Err("the call digests are not those of the calls stated".into());
        }
        Ok(GuestStep {
            dispute: hash("step.dispute_id", &d.dispute_id)?,
            index: d.index,
            outputs,
        })
    }

    /// What the guest called at this step in `report`, a run stopped right
    /// after it.
    pub fn made(&self, report: &assay_runtime::RunReport) -> Hash32 {
        let index = usize::try_from(self.index).unwrap_or(usize::MAX);
        call_digest(report.trace.steps.get(index).map(|s| s.call.as_slice()))
    }
}

/// One revealed input of the disputed step: where its tensor is and what
/// proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The producing step.
    pub step: u64,
    /// The producing step's call bytes.
    pub call: Vec<u8>,
    /// Its leaf's inclusion proof.
    pub proof: InclusionProof,
    /// The tensor's element type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its bytes, as a blob.
    pub tensor: BlobRef,
}

/// A disputed step, read and checked for shape (not yet for truth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCheck {
    /// The dispute.
    pub dispute: Hash32,
    /// The step.
    pub index: u64,
    /// Its call.
    pub call: Call,
    /// The provider's output digest for it.
    pub provider_output: Hash32,
    /// The verifier's.
    pub verifier_output: Hash32,
    /// The trace roots: the provider's receipt's, the verifier's verdict's.
    pub roots: [Hash32; 2],
    /// One per input of the call, in order.
    pub inputs: Vec<Evidence>,
}

/// What the recompute gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    /// The step's output digest.
    pub output: Hash32,
    /// Bytes of evidence (and job inputs) it used.
    pub evidence_bytes: u64,
    /// How long the replay took, ms.
    pub replay_ms: u64,
}

/// The name the loop fetches evidence `k` under (apart from the job's
/// input names, which a step with evidence never needs).
fn evidence_name(k: usize) -> String {
    format!("\u{0}evidence-{k}")
}

impl StepCheck {
    /// Reads a disputed step: the call must decode and its inputs must be
    /// exactly the revealed tensors' steps, in order.
    ///
    /// # Errors
    ///
    /// Why it cannot be recomputed (the check goes to a full re-execution).
    pub fn parse(d: &pb::DisputedStep) -> Result<StepCheck, String> {
        let hash =
            |field: &'static str, b: &[u8]| convert::hash(field, b).map_err(|e| e.to_string());
        let call = Call::decode(&d.call).map_err(|e| format!("the disputed call: {e}"))?;
        let mut inputs = Vec::with_capacity(d.inputs.len());
        for t in &d.inputs {
            let siblings = t
                .siblings
                .iter()
                .map(|s| hash("step.inputs.siblings", s))
                .collect::<Result<Vec<_>, _>>()?;
            let dtype = u8::try_from(t.dtype)
                .ok()
                .and_then(Dtype::from_code)
                .ok_or_else(|| format!("step {}: dtype {} is no element type", t.step, t.dtype))?;
            let tensor = t
                .tensor
                .as_ref()
                .ok_or_else(|| format!("step {}: no tensor", t.step))?;
            inputs.push(Evidence {
                step: t.step,
                call: t.call.clone(),
                proof: InclusionProof {
                    index: t.step,
                    steps: t.trace_steps,
                    siblings,
                },
                dtype,
                shape: t.shape.clone(),
                tensor: BlobRef {
                    name: tensor.name.clone(),
                    hash: hash("step.inputs.tensor.hash", &tensor.hash)?,
                    size: tensor.size,
                },
            });
        }
        let revealed: Vec<u64> = inputs.iter().map(|e| e.step).collect();
        if revealed != call.inputs {
            return Err(format!(
                "{} reads steps {:?} but steps {revealed:?} were revealed",
                call.name, call.inputs
            ));
        }
        Ok(StepCheck {
            dispute: hash("step.dispute_id", &d.dispute_id)?,
            index: d.index,
            provider_output: hash("step.provider_output", &d.provider_output)?,
            verifier_output: hash("step.verifier_output", &d.verifier_output)?,
            roots: [
                hash("step.provider_trace_root", &d.provider_trace_root)?,
                hash("step.verifier_trace_root", &d.verifier_trace_root)?,
            ],
            call,
            inputs,
        })
    }

    /// True iff the step reads the job's inputs.
    pub fn needs_job_inputs(&self) -> bool {
        FROM_INPUT.contains(&self.call.name.as_str())
    }

    /// The blobs to fetch: each input's tensor (under a name of its own)
    /// and, for a step that reads them, the job's inputs.
    pub fn blobs(&self, job_inputs: &[BlobRef]) -> Vec<BlobRef> {
        let mut out: Vec<BlobRef> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(k, e)| BlobRef {
                name: evidence_name(k),
                ..e.tensor.clone()
            })
            .collect();
        if self.needs_job_inputs() {
            out.extend(job_inputs.iter().cloned());
        }
        out
    }

    /// Checks the fetched evidence and replays the step on `device` (a CPU
    /// device: its outputs are hashed where they are). `fetched` is what
    /// [`StepCheck::blobs`] named; `job_inputs` the job's inputs.
    ///
    /// # Errors
    ///
    /// Why the step cannot be decided by itself: evidence that is missing
    /// or does not check, or a call that cannot be replayed.
    pub fn recompute(
        &self,
        device: &Device,
        fetched: &BTreeMap<String, Arc<[u8]>>,
        job_inputs: &[BlobRef],
    ) -> Result<Recomputed, String> {
        let mut tensors = Vec::with_capacity(self.inputs.len());
        let mut evidence_bytes = 0u64;
        for (k, e) in self.inputs.iter().enumerate() {
            let bytes = fetched
                .get(&evidence_name(k))
                .ok_or_else(|| format!("the tensor of step {} was not fetched", e.step))?;
            evidence_bytes += bytes.len() as u64;
            let tensor = RevealedTensor {
                dtype: e.dtype,
                shape: e.shape.clone(),
                bytes: bytes.to_vec(),
            };
            let evidence = InputEvidence {
                call: e.call.clone(),
                proof: e.proof.clone(),
                tensor,
            };
            evidence
                .check(e.step, self.index, &self.roots)
                .map_err(|err| format!("input {k} (step {}): {err}", e.step))?;
            tensors.push(evidence.tensor);
        }
        let mut inputs = assay_runtime::Inputs::new();
        if self.needs_job_inputs() {
            for b in job_inputs {
                let bytes = fetched
                    .get(&b.name)
                    .ok_or_else(|| format!("the job's input {:?} was not fetched", b.name))?;
                evidence_bytes += bytes.len() as u64;
                inputs.insert(b.name.clone(), bytes.clone());
            }
        }
        let started = Instant::now();
        let replayed =
            assay_runtime::replay_step(device, self.index, &self.call, &tensors, &inputs)
                .map_err(|e| format!("step {} cannot be replayed: {e}", self.index))?;
        Ok(Recomputed {
            output: replayed.output,
            evidence_bytes,
            replay_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_protocol::trace::{Attr, Step, TraceTree, tensor_digest};

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// upload x, scale(x, 2): the provider lies about step 1.
    fn dispute() -> (pb::DisputedStep, Vec<u8>, Hash32) {
        let x = RevealedTensor {
            dtype: Dtype::F32,
            shape: vec![2],
            bytes: f32s(&[1.0, 2.0]),
        };
        let upload = Call::new("tensor.upload-f32", vec![], vec![Attr::U32s(vec![2])]);
        let scale = Call::new("tensor.scale", vec![0], vec![Attr::f32(2.0)]);
        let right = tensor_digest(Dtype::F32, &[2], &f32s(&[2.0, 4.0]));
        let honest = [
            Step {
                call: upload.encode(),
                output: x.digest(),
            },
            Step {
                call: scale.encode(),
                output: right,
            },
        ];
        let mut liar = honest.clone();
        liar[1].output = Hash32([9; 32]);
        let tree = |s: &[Step]| {
            TraceTree::new(
                s.iter()
                    .enumerate()
                    .map(|(i, s)| s.leaf(i as u64))
                    .collect(),
            )
        };
        let (a, b) = (tree(&liar), tree(&honest));
        let proof = a.prove(0).expect("leaf 0");
        let d = pb::DisputedStep {
            dispute_id: vec![7; 32],
            index: 1,
            call: scale.encode(),
            provider_output: liar[1].output.0.to_vec(),
            verifier_output: right.0.to_vec(),
            provider_trace_root: a.root().0.to_vec(),
            verifier_trace_root: b.root().0.to_vec(),
            inputs: vec![pb::StepTensor {
                step: 0,
                call: upload.encode(),
                trace_steps: proof.steps,
                siblings: proof.siblings.iter().map(|h| h.0.to_vec()).collect(),
                dtype: 0,
                shape: vec![2],
                tensor: Some(pb::BlobRef {
                    name: "step-0".into(),
                    hash: Hash32::of(&x.bytes).0.to_vec(),
                    size: 8,
                }),
            }],
            ..pb::DisputedStep::default()
        };
        (d, x.bytes, right)
    }

    fn fetched(s: &StepCheck, bytes: &[u8]) -> BTreeMap<String, Arc<[u8]>> {
        s.blobs(&[])
            .into_iter()
            .map(|b| (b.name, Arc::from(bytes)))
            .collect()
    }

    #[test]
    fn the_step_is_recomputed_from_proven_inputs() {
        let (d, x, right) = dispute();
        let s = StepCheck::parse(&d).expect("parses");
        assert!(!s.needs_job_inputs());
        let blobs = s.blobs(&[BlobRef {
            name: "model".into(),
            hash: Hash32::ZERO,
            size: 1 << 30,
        }]);
        assert_eq!(blobs.len(), 1, "only the evidence is fetched: {blobs:?}");
        let r = s
            .recompute(&Device::cpu(), &fetched(&s, &x), &[])
            .expect("recomputed");
        assert_eq!(r.output, right);
        assert_eq!(r.output, s.verifier_output);
        assert_ne!(r.output, s.provider_output);
        assert_eq!(r.evidence_bytes, 8);
    }

    #[test]
    fn evidence_that_does_not_check_asks_for_a_full_reexecution() {
        let (d, x, _) = dispute();
        let s = StepCheck::parse(&d).expect("parses");
        // Other bytes than the trace committed to.
        let mut forged = x.clone();
        forged[0] ^= 1;
        let e = s
            .recompute(&Device::cpu(), &fetched(&s, &forged), &[])
            .expect_err("forged");
        assert!(e.contains("not that step's output"), "{e}");
        // Nothing fetched.
        assert!(s.recompute(&Device::cpu(), &BTreeMap::new(), &[]).is_err());
        // Revealed steps that are not the call's inputs.
        let mut other = d.clone();
        other.inputs[0].step = 1;
        assert!(StepCheck::parse(&other).is_err());
        let mut none = d.clone();
        none.inputs.clear();
        assert!(StepCheck::parse(&none).is_err());
        let mut garbage = d.clone();
        garbage.call = vec![1, 2, 3];
        assert!(StepCheck::parse(&garbage).is_err());
        let mut dtype = d;
        dtype.inputs[0].dtype = 7;
        assert!(StepCheck::parse(&dtype).is_err());
    }

    #[test]
    fn an_upload_cannot_be_replayed() {
        let (mut d, _, _) = dispute();
        d.call = Call::new("tensor.upload-f32", vec![], vec![Attr::U32s(vec![2])]).encode();
        d.inputs.clear();
        d.index = 0;
        let s = StepCheck::parse(&d).expect("parses");
        let e = s
            .recompute(&Device::cpu(), &BTreeMap::new(), &[])
            .expect_err("an upload");
        assert!(e.contains("cannot be replayed"), "{e}");
    }

    #[test]
    fn a_call_dispute_reads_only_digests_of_the_calls_it_states() {
        let a = Call::new("tensor.scale", vec![0], vec![Attr::f32(2.0)]).encode();
        let b = Call::new("tensor.scale", vec![0], vec![Attr::f32(3.0)]).encode();
        let mut d = pb::DisputedStep {
            dispute_id: vec![7; 32],
            index: 4,
            kind: "call".into(),
            provider_call: a.clone(),
            verifier_call: Vec::new(),
            provider_output: call_digest(Some(&a)).0.to_vec(),
            verifier_output: call_digest(None).0.to_vec(),
            ..pb::DisputedStep::default()
        };
        let g = GuestStep::parse(&d).expect("parses");
        assert_eq!((g.index, g.outputs[1]), (4, call_digest(None)));
        d.verifier_call = b;
        assert!(GuestStep::parse(&d).is_err(), "a digest of another call");
    }
}
