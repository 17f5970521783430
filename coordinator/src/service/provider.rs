//! The `Provider` service: registration, heartbeats (which may report the
//! leases a provider holds: the others are ended), taking leases,
//! submitting receipts (checked against their lease by
//! [`crate::rules::leases`] and against the uploaded outputs) and giving
//! leases back (after the job's own watchdog: for a fee).

use assay_proto::pb::provider_server::Provider;
use assay_proto::{convert, now_ms, pb};
use assay_protocol::market::billable_units;
use assay_protocol::{BlobRef, Hash32, NodeId};
use tonic::{Request, Response, Status};

use super::{Coordinator, bad, blocking, inline, long_poll, wire};
use crate::explorer::TelemetrySample;
use crate::rules::leases;
use crate::store::leases::GiveBack;
use crate::types::{Lease, ProviderInfo, ReceiptSubmission};

#[tonic::async_trait]
impl Provider for Coordinator {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let hw = req.hardware.unwrap_or_default();
        if req.slots == 0 {
            return Err(Status::invalid_argument("slots must be at least 1"));
        }
        let info = ProviderInfo {
            id: node,
            price: req.price,
            cpu_cores: hw.cpu_cores,
            memory_bytes: hw.memory_bytes,
            gpus: hw
                .gpus
                .iter()
                .map(|g| (g.name.clone(), g.memory_bytes))
                .collect(),
            slots: req.slots,
            version: req.version,
        };
        let store = self.store.clone();
        let (stake, reserve_price) = (req.stake, req.reserve_price);
        let r = blocking(move || {
            let r = store.register(&info, stake, now_ms())?;
            store.set_reserve_price(&node, reserve_price)?;
            Ok(r)
        })
        .await?;
        tracing::info!(provider = %node.to_hex().get(..12).unwrap_or(""), price = req.price, slots = req.slots, "provider registered");
        Ok(Response::new(pb::RegisterResponse {
            lease_ttl_ms: self.store.config().lease_ttl_ms,
            heartbeat_interval_ms: self.cfg.heartbeat_interval_ms,
            stake: r.stake,
            active_leases: r.active_leases.iter().map(|h| h.0.to_vec()).collect(),
            reliability_permille: r.reliability_permille,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let held = req
            .held
            .as_ref()
            .map(|h| convert::lease_report("held.lease_ids", h))
            .transpose()
            .map_err(bad)?;
        let telemetry = telemetry_samples(&req);
        let store = self.store.clone();
        let free = req.free_slots;
        let (leases, clusters) = blocking(move || {
            // Leases the provider says it does not hold are ended first, so
            // the answer lists only those it keeps.
            if let Some(held) = &held {
                store.end_unheld(&node, held, now_ms())?;
            }
            let leases = store.heartbeat(&node, free, &telemetry, now_ms())?;
            // The reserved clusters it holds a slot for, so it can say so.
            let clusters = match leases {
                Some(_) => store.memberships(&node)?,
                None => Vec::new(),
            };
            Ok((leases, clusters))
        })
        .await?;
        Ok(Response::new(pb::HeartbeatResponse {
            lease_ttl_ms: self.store.config().lease_ttl_ms,
            registered: leases.is_some(),
            active_leases: leases
                .unwrap_or_default()
                .iter()
                .map(|h| h.0.to_vec())
                .collect(),
            clusters: clusters.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    async fn take_leases(
        &self,
        request: Request<pb::TakeLeasesRequest>,
    ) -> Result<Response<pb::TakeLeasesResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let max = req.max.min(64);
        let deadline = long_poll::deadline(req.wait_ms);
        let mut sub = self.market.subscribe();
        let mut leases = self.take(node, max).await?;
        while leases.is_empty() && req.wait_ms > 0 && sub.wait(deadline).await {
            leases = self.take(node, max).await?;
        }
        if !leases.is_empty() {
            // Leased shards are progress a renter may be waiting on.
            self.market.changed();
        }
        // Small inputs ride along (a job's few-KB text needs no download),
        // within one budget for the whole answer.
        let mut left = inline::MAX_TOTAL_BYTES;
        let mut out = Vec::with_capacity(leases.len());
        for lease in &leases {
            let mut pb_lease = wire::lease(lease);
            pb_lease.inline_inputs = inline::read(
                &self.blobs,
                lease.inputs.clone(),
                inline::MAX_LEASE_INPUT_BYTES,
                &mut left,
            )
            .await?;
            out.push(pb_lease);
        }
        Ok(Response::new(pb::TakeLeasesResponse { leases: out }))
    }

    async fn submit_receipt(
        &self,
        request: Request<pb::SubmitReceiptRequest>,
    ) -> Result<Response<pb::SubmitReceiptResponse>, Status> {
        let mut req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let carried = std::mem::take(&mut req.inline_outputs);
        inline::store(&self.blobs, "inline_outputs", carried).await?;
        let lease_id = convert::hash("lease_id", &req.lease_id).map_err(bad)?;
        let receipt = convert::receipt(req.receipt.as_ref()).map_err(bad)?;
        let outputs = convert::blob_refs("outputs", &req.outputs).map_err(bad)?;
        leases::check_failure_message(&req.failure_message)?;
        receipt.verify().map_err(|e| {
            Status::unauthenticated(format!("the receipt's signature does not verify: {e}"))
        })?;
        leases::require_signer(&receipt.body, &node)?;
        let store = self.store.clone();
        let info = blocking(move || store.lease(&lease_id))
            .await?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no lease {lease_id}: a provider submits receipts only for leases it was given"
                ))
            })?;
        leases::check_receipt(&info, &node, &receipt.body, &outputs)?;
        self.check_outputs(&outputs, &receipt.body.outputs_root)
            .await?;
        let units = billable_units(receipt.body.fuel_used, &receipt.body.work);
        let sub = ReceiptSubmission {
            lease_id,
            provider: node,
            receipt,
            outputs,
            units,
            failure_message: req.failure_message,
        };
        let store = self.store.clone();
        let (rid, settle_at) = blocking(move || store.submit_receipt(&sub, now_ms())).await?;
        tracing::info!(receipt = %rid.short(), lease = %lease_id.short(), units, "receipt recorded");
        self.market.changed();
        Ok(Response::new(pb::SubmitReceiptResponse {
            receipt_id: rid.0.to_vec(),
            settle_at_ms: settle_at,
        }))
    }

    async fn return_lease(
        &self,
        request: Request<pb::ReturnLeaseRequest>,
    ) -> Result<Response<pb::ReturnLeaseResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let lease = convert::hash("lease_id", &req.lease_id).map_err(bad)?;
        let store = self.store.clone();
        let (fault, watchdog, reason) = (req.fault, req.watchdog, req.reason);
        tracing::info!(lease = %lease.short(), fault, watchdog, reason = %reason, "lease returned");
        let back = move || {
            let how = GiveBack::new(fault, watchdog, &reason);
            store.give_back(&node, &lease, how, now_ms())
        };
        blocking(back).await?;
        // The shard is queued again: a waiting provider may take it.
        self.market.changed();
        Ok(Response::new(pb::ReturnLeaseResponse {}))
    }
}

impl Coordinator {
    async fn take(&self, node: NodeId, max: u32) -> Result<Vec<Lease>, Status> {
        let store = self.store.clone();
        blocking(move || store.take_leases(&node, max, now_ms())).await
    }

    /// The outputs are uploaded and hash to the receipt's outputs root.
    async fn check_outputs(&self, outputs: &[BlobRef], stated: &Hash32) -> Result<(), Status> {
        self.require_blobs("output", outputs.to_vec()).await?;
        let blobs = self.blobs.clone();
        let outs = outputs.to_vec();
        let root = blocking(move || {
            let mut data = Vec::with_capacity(outs.len());
            for o in &outs {
                data.push((o.name.clone(), blobs.read(&o.hash)?));
            }
            Ok(assay_protocol::outputs_root(
                data.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
            ))
        })
        .await?;
        if root != *stated {
            return Err(Status::invalid_argument(format!(
                "the uploaded outputs hash to outputs root {root} but the receipt says {stated}"
            )));
        }
        Ok(())
    }
}

/// The device samples of a heartbeat: each GPU's NVML readings, and the
/// host's CPU load and memory as device −1 (an index past `i32::MAX` is
/// dropped, as is a host sample that was not sent).
fn telemetry_samples(req: &pb::HeartbeatRequest) -> Vec<TelemetrySample> {
    let mut out: Vec<TelemetrySample> = req
        .gpus
        .iter()
        .filter_map(|g| {
            Some(TelemetrySample {
                at_ms: 0,
                device: i32::try_from(g.index).ok()?,
                temperature_c: g.temperature_c,
                power_mw: g.power_mw,
                utilization_pct: g.utilization_pct.min(100),
                memory_used_bytes: g.memory_used_bytes,
            })
        })
        .take(MAX_DEVICES)
        .collect();
    if let Some(h) = &req.host {
        out.push(TelemetrySample {
            at_ms: 0,
            device: -1,
            temperature_c: 0,
            power_mw: 0,
            utilization_pct: (h.cpu_load_permille / 10).min(100),
            memory_used_bytes: h.memory_used_bytes,
        });
    }
    out
}

/// The most GPUs one heartbeat's samples are kept for.
const MAX_DEVICES: usize = 64;
