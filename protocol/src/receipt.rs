use serde::{Deserialize, Serialize};

use crate::canonical::Encoder;
use crate::{Error, Hash32, NodeId, NodeKey, Outcome, Shard, Signature};

/// Work metered by the tensor ops (from shapes alone, identical on every backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkDone {
    /// Floating-point operations.
    pub flops: u64,
    /// Bytes read and written.
    pub bytes: u64,
}

/// Which backend ran the job. Informational: results are identical on all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendDescriptor {
    /// `cpu` or `cuda`.
    pub kind: String,
    /// The device, e.g. `NVIDIA H100 80GB HBM3` or `x86_64 avx2, 2 threads`.
    pub device: String,
}

/// What the GPU did during the run (absent on CPU-only providers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetrySummary {
    /// Number of samples taken.
    pub samples: u32,
    /// Highest temperature seen, °C.
    pub max_temperature_c: u32,
    /// Mean power draw, milliwatts.
    pub mean_power_mw: u64,
    /// Mean utilisation, percent.
    pub mean_utilization_pct: u32,
}

/// Everything a receipt states; the signature covers its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The [`crate::SEMANTICS_VERSION`] the result was computed under.
    pub semantics: u32,
    /// The job ([`crate::job_id`]).
    pub job_id: Hash32,
    /// Which shard of the job.
    pub shard: Shard,
    /// Who ran it (and signs).
    pub provider_id: NodeId,
    /// blake3 of the component's bytes.
    pub component_hash: Hash32,
    /// [`crate::inputs_root`] of the inputs.
    pub inputs_root: Hash32,
    /// [`crate::outputs_root`] of the outputs.
    pub outputs_root: Hash32,
    /// [`crate::trace::trace_root`] of the run's host calls in call order
    /// (format `assay/trace-step/v1`): what a dispute bisects. Not part of
    /// [`ReceiptBody::deterministic_part`]: a CUDA provider commits to its
    /// calls but not yet to their outputs (see [`crate::trace`]), and a
    /// run recorded without a trace states [`Hash32::ZERO`].
    pub trace_root: Hash32,
    /// How the run ended.
    pub outcome: Outcome,
    /// Fuel burnt by the guest.
    pub fuel_used: u64,
    /// Work metered by tensor ops.
    pub work: WorkDone,
    /// The backend that ran it.
    pub backend: BackendDescriptor,
    /// GPU telemetry over the run, if any.
    pub telemetry: Option<TelemetrySummary>,
    /// When the run started, Unix ms (the provider's clock).
    pub started_at_ms: u64,
    /// When it finished, Unix ms.
    pub finished_at_ms: u64,
}

/// A signed statement of one run.
///
/// The deterministic part — job, component, inputs, outputs root, outcome,
/// fuel and work — is what a verifier re-derives; the rest (backend,
/// telemetry, times) is informational but still signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The statement.
    #[serde(flatten)]
    pub body: ReceiptBody,
    /// ed25519 signature by `body.provider_id` over [`ReceiptBody::signing_bytes`].
    pub signature: Signature,
}

impl ReceiptBody {
    /// The canonical bytes the provider signs (domain `assay/receipt/v3`):
    /// every field in declaration order, `trace_root` right after
    /// `outputs_root`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("assay/receipt/v3");
        e.u32(self.semantics)
            .fixed32(&self.job_id.0)
            .u32(self.shard.index)
            .u32(self.shard.count)
            .fixed32(&self.provider_id.0)
            .fixed32(&self.component_hash.0)
            .fixed32(&self.inputs_root.0)
            .fixed32(&self.outputs_root.0)
            .fixed32(&self.trace_root.0)
            .u8(self.outcome.code())
            .u64(self.fuel_used)
            .u64(self.work.flops)
            .u64(self.work.bytes)
            .str(&self.backend.kind)
            .str(&self.backend.device);
        match &self.telemetry {
            None => {
                e.u8(0);
            }
            Some(t) => {
                e.u8(1)
                    .u32(t.samples)
                    .u32(t.max_temperature_c)
                    .u64(t.mean_power_mw)
                    .u32(t.mean_utilization_pct);
            }
        }
        e.u64(self.started_at_ms).u64(self.finished_at_ms);
        e.finish()
    }

    /// Signs the body with `key`, whose id must be `provider_id`.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`] if `key` is not the provider named in the body.
    pub fn sign(self, key: &NodeKey) -> Result<Receipt, Error> {
        if key.id() != self.provider_id {
            return Err(Error::BadSignature(format!(
                "receipt names provider {} but the key is {}",
                self.provider_id,
                key.id()
            )));
        }
        let signature = key.sign(&self.signing_bytes());
        Ok(Receipt {
            body: self,
            signature,
        })
    }

    /// The fields a verifier re-derives by re-running the job: equal iff the
    /// runs agree.
    pub fn deterministic_part(&self) -> (Hash32, Hash32, Hash32, Outcome, u64, WorkDone) {
        (
            self.job_id,
            self.component_hash,
            self.outputs_root,
            self.outcome,
            self.fuel_used,
            self.work,
        )
    }
}

impl Receipt {
    /// Checks the signature against the provider named in the receipt.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`] if any byte of the body or the signature was changed.
    pub fn verify(&self) -> Result<(), Error> {
        self.body
            .provider_id
            .verify(&self.body.signing_bytes(), &self.signature)
    }

    /// The receipt's id: blake3 of its signed bytes and signature.
    pub fn id(&self) -> Hash32 {
        let mut e = Encoder::new("assay/receipt-id/v1");
        e.bytes(&self.body.signing_bytes()).bytes(&self.signature.0);
        e.hash()
    }
}
