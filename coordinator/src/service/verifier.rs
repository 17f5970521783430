//! The `Verifier` service: the receipt feed, registration, the sampling
//! beacon, taking checks, submitting verdicts and giving checks back.

use assay_proto::pb::verifier_server::Verifier;
use assay_proto::{convert, now_ms, pb};
use tonic::{Request, Response, Status};

use super::{Coordinator, bad, blocking, wire};
use crate::types::{RunResult, VerdictSubmission, VerifierInfo};

/// An optional 32-byte field (empty: absent).
fn optional_hash(
    what: &'static str,
    bytes: &[u8],
) -> Result<Option<assay_protocol::Hash32>, Status> {
    if bytes.is_empty() {
        return Ok(None);
    }
    convert::hash(what, bytes).map(Some).map_err(bad)
}

#[tonic::async_trait]
impl Verifier for Coordinator {
    async fn list_receipts(
        &self,
        request: Request<pb::ListReceiptsRequest>,
    ) -> Result<Response<pb::ListReceiptsResponse>, Status> {
        let req = request.into_inner();
        let store = self.store.clone();
        let limit = req.limit.clamp(1, 1000);
        let rs = blocking(move || store.receipts_after(req.after_seq, limit)).await?;
        Ok(Response::new(pb::ListReceiptsResponse {
            receipts: rs.iter().map(wire::receipt_record).collect(),
        }))
    }

    async fn submit_verdict(
        &self,
        request: Request<pb::SubmitVerdictRequest>,
    ) -> Result<Response<pb::SubmitVerdictResponse>, Status> {
        let req = request.into_inner();
        let verifier = self.authenticate(&req).await?;
        let auth = req.auth.clone().unwrap_or_default();
        let v = VerdictSubmission {
            check_id: convert::hash("check_id", &req.check_id).map_err(bad)?,
            receipt_id: convert::hash("receipt_id", &req.receipt_id).map_err(bad)?,
            verifier,
            result: RunResult {
                outputs_root: convert::hash("outputs_root", &req.outputs_root).map_err(bad)?,
                outcome: convert::outcome("outcome", req.outcome).map_err(bad)?,
                fuel_used: req.fuel_used,
                work: req
                    .work
                    .map(|w| assay_protocol::WorkDone {
                        flops: w.flops,
                        bytes: w.bytes,
                    })
                    .unwrap_or_default(),
            },
            agrees: req.agrees,
            trace_root: optional_hash("trace_root", &req.trace_root)?,
            step_output: optional_hash("step_output", &req.step_output)?,
            nonce: auth.nonce,
            expires_at_ms: auth.expires_at_ms,
            signature: auth.signature,
        };
        let store = self.store.clone();
        let decision = blocking(move || store.submit_verdict(&v, now_ms())).await?;
        tracing::info!(receipt = %convert::hash("receipt_id", &req.receipt_id).map(|h| h.short()).unwrap_or_default(),
            verifier = %verifier, agrees = req.agrees, decision = decision.name(), "verdict");
        Ok(Response::new(pb::SubmitVerdictResponse {
            decision: decision.name().to_string(),
        }))
    }

    async fn register_verifier(
        &self,
        request: Request<pb::RegisterVerifierRequest>,
    ) -> Result<Response<pb::RegisterVerifierResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let info = VerifierInfo {
            id: node,
            version: req.version.clone(),
            backend: req.backend.clone(),
        };
        let store = self.store.clone();
        let stake = blocking(move || store.register_verifier(&info, req.stake, now_ms())).await?;
        tracing::info!(verifier = %node, stake, "verifier registered");
        Ok(Response::new(pb::RegisterVerifierResponse {
            stake,
            check_ttl_ms: self.store.config().check_ttl_ms,
            epoch_ms: self.store.config().epoch_ms,
        }))
    }

    async fn get_beacon(
        &self,
        request: Request<pb::GetBeaconRequest>,
    ) -> Result<Response<pb::GetBeaconResponse>, Status> {
        let req = request.into_inner();
        let store = self.store.clone();
        let epochs = blocking(move || store.beacon(req.from_epoch, 1000)).await?;
        let epoch_ms = self.store.config().epoch_ms.max(1);
        Ok(Response::new(pb::GetBeaconResponse {
            epoch_ms,
            current_epoch: now_ms() / epoch_ms,
            epochs: epochs.iter().map(wire::epoch_beacon).collect(),
        }))
    }

    async fn take_checks(
        &self,
        request: Request<pb::TakeChecksRequest>,
    ) -> Result<Response<pb::TakeChecksResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let store = self.store.clone();
        let max = req.max.min(64);
        let tasks = blocking(move || store.take_checks(&node, max, now_ms())).await?;
        Ok(Response::new(pb::TakeChecksResponse {
            checks: tasks.iter().map(wire::check).collect(),
        }))
    }

    async fn return_check(
        &self,
        request: Request<pb::ReturnCheckRequest>,
    ) -> Result<Response<pb::ReturnCheckResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let check = convert::hash("check_id", &req.check_id).map_err(bad)?;
        let store = self.store.clone();
        blocking(move || store.return_check(&node, &check, &req.reason, now_ms())).await?;
        Ok(Response::new(pb::ReturnCheckResponse {}))
    }
}
