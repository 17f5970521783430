//! Signed requests.
//!
//! Every state-changing request carries an [`pb::Auth`]: the caller's node
//! id, the id of the coordinator the request is for, a random nonce, an
//! expiry (Unix ms) and an ed25519 signature over
//!
//! ```text
//! canonical( domain "assay/rpc/<Message>/v2",
//!            node id (32 bytes), coordinator id (32 bytes),
//!            u64 nonce, u64 expires_at_ms,
//!            then the request's other fields in field order )
//! ```
//!
//! using [`assay_protocol::canonical::Encoder`] (so the signature never
//! depends on how protobuf happened to encode the message, and a signature
//! over one kind of request can never pass as another). Repeated fields are a
//! `u64` count then the items; maps are sorted by key; absent messages are a
//! `0` byte, present ones a `1` byte then their fields.
//!
//! A [`Signer`] is a node key bound to one coordinator (its id comes from
//! `Renter.GetCoordinator`, see [`crate::client::signer`]): a request signed
//! for one coordinator names it, so another coordinator refuses it and it
//! cannot be replayed there.
//!
//! [`verify`] checks the signature and the expiry window and returns who
//! signed for which coordinator; the receiver then checks that the
//! coordinator is itself ([`Verified::for_coordinator`]) and records the nonce
//! (the coordinator keeps `(node, nonce)` until the expiry passes), which
//! refuses a second use as a replay.
//!
//! # Example
//!
//! ```
//! use assay_proto::auth::{Signer, sign_with, verify};
//! use assay_proto::pb;
//! use assay_protocol::{Hash32, NodeKey};
//!
//! let here = Hash32([7; 32]);
//! let signer = Signer::new(NodeKey::from_seed([1; 32]), here);
//! let mut req = pb::FaucetRequest { amount: 5, ..Default::default() };
//! sign_with(&signer, &mut req, 42, 10_000);
//! let v = verify(&req, 5_000, 60_000).unwrap();
//! assert!(v.for_coordinator(&here).is_ok());
//! assert!(v.for_coordinator(&Hash32([8; 32])).is_err());
//! ```

use assay_protocol::canonical::Encoder;
use assay_protocol::{Hash32, NodeId, NodeKey};

use crate::{Error, convert, pb};

/// A request that carries an [`pb::Auth`].
pub trait Signed {
    /// The message name in the domain tag, e.g. `SubmitJobRequest`.
    const KIND: &'static str;
    /// The auth field.
    fn auth(&self) -> Option<&pb::Auth>;
    /// The auth field, to fill in.
    fn auth_mut(&mut self) -> &mut Option<pb::Auth>;
    /// Appends every field but `auth`, in field order.
    fn encode_body(&self, e: &mut Encoder);
}

/// A node's key and the coordinator its requests are for: what signs.
#[derive(Debug, Clone)]
pub struct Signer {
    key: NodeKey,
    coordinator: Hash32,
}

impl Signer {
    /// `key`, signing requests for the coordinator with id `coordinator`.
    pub fn new(key: NodeKey, coordinator: Hash32) -> Signer {
        Signer { key, coordinator }
    }

    /// The node key.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.key.id()
    }

    /// The coordinator the requests are for.
    pub fn coordinator(&self) -> &Hash32 {
        &self.coordinator
    }
}

/// Who signed a request that verified, and for which coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The signer.
    pub node: NodeId,
    /// The coordinator the request was signed for.
    pub coordinator: Hash32,
    /// The request's nonce (record it to refuse replays).
    pub nonce: u64,
    /// Until when the nonce must be remembered.
    pub expires_at_ms: u64,
}

impl Verified {
    /// `self`, if the request was signed for the coordinator `here`.
    ///
    /// # Errors
    ///
    /// [`Error::OtherCoordinator`] if it names another coordinator (a
    /// request replayed from elsewhere, or a client that signed for the
    /// wrong one).
    pub fn for_coordinator(self, here: &Hash32) -> Result<Verified, Error> {
        if &self.coordinator == here {
            Ok(self)
        } else {
            Err(Error::OtherCoordinator {
                signed_for: self.coordinator.to_hex(),
                here: here.to_hex(),
            })
        }
    }
}

/// The bytes a request's signature covers.
pub fn signing_bytes<M: Signed>(
    msg: &M,
    node: &[u8],
    coordinator: &[u8],
    nonce: u64,
    expires_at_ms: u64,
) -> Vec<u8> {
    let mut e = Encoder::new(&format!("assay/rpc/{}/v2", M::KIND));
    e.bytes(node)
        .bytes(coordinator)
        .u64(nonce)
        .u64(expires_at_ms);
    msg.encode_body(&mut e);
    e.finish()
}

/// A fresh random nonce.
///
/// # Errors
///
/// [`Error::Random`] if the OS has no random source.
pub fn nonce() -> Result<u64, Error> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}

/// Signs `msg` as `signer`: a fresh nonce, expiry `now_ms + ttl_ms`.
///
/// # Errors
///
/// [`Error::Random`] if no nonce could be drawn.
pub fn sign<M: Signed>(
    signer: &Signer,
    msg: &mut M,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(), Error> {
    let n = nonce()?;
    sign_with(signer, msg, n, now_ms.saturating_add(ttl_ms));
    Ok(())
}

/// Signs `msg` with a chosen nonce and expiry (tests forge replays with it).
pub fn sign_with<M: Signed>(signer: &Signer, msg: &mut M, nonce: u64, expires_at_ms: u64) {
    let id = signer.id();
    *msg.auth_mut() = None;
    let bytes = signing_bytes(msg, &id.0, &signer.coordinator.0, nonce, expires_at_ms);
    let sig = signer.key.sign(&bytes);
    *msg.auth_mut() = Some(pb::Auth {
        node_id: id.0.to_vec(),
        nonce,
        expires_at_ms,
        signature: sig.0.to_vec(),
        coordinator_id: signer.coordinator.0.to_vec(),
    });
}

/// Checks `msg`'s signature and that it has not expired and does not expire
/// more than `max_ahead_ms` after `now_ms`. The receiver still checks the
/// coordinator ([`Verified::for_coordinator`]) and spends the nonce.
///
/// # Errors
///
/// [`Error::Unsigned`], [`Error::Invalid`] (malformed auth),
/// [`Error::BadSignature`], [`Error::Expired`], [`Error::TooFarAhead`].
pub fn verify<M: Signed>(msg: &M, now_ms: u64, max_ahead_ms: u64) -> Result<Verified, Error> {
    let auth = msg.auth().ok_or(Error::Unsigned)?;
    let node = convert::node_id("auth.node_id", &auth.node_id)?;
    let coordinator = convert::hash("auth.coordinator_id", &auth.coordinator_id).map_err(|_| {
        Error::Invalid {
            field: "auth.coordinator_id",
            reason: format!(
                "{} bytes, not the 32 of a coordinator id: sign for the coordinator the request goes to (Renter.GetCoordinator gives its id)",
                auth.coordinator_id.len()
            ),
        }
    })?;
    let sig = convert::signature("auth.signature", &auth.signature)?;
    let bytes = signing_bytes(
        msg,
        &auth.node_id,
        &auth.coordinator_id,
        auth.nonce,
        auth.expires_at_ms,
    );
    node.verify(&bytes, &sig).map_err(|_| Error::BadSignature {
        node: node.to_hex(),
    })?;
    if auth.expires_at_ms <= now_ms {
        return Err(Error::Expired {
            expires_at_ms: auth.expires_at_ms,
            now_ms,
        });
    }
    let ahead = auth.expires_at_ms - now_ms;
    if ahead > max_ahead_ms {
        return Err(Error::TooFarAhead {
            ahead_ms: ahead,
            max_ms: max_ahead_ms,
        });
    }
    Ok(Verified {
        node,
        coordinator,
        nonce: auth.nonce,
        expires_at_ms: auth.expires_at_ms,
    })
}

// ------------------------------------------------------- field encodings

fn shard(e: &mut Encoder, s: Option<&pb::Shard>) {
    match s {
        None => {
            e.u8(0);
        }
        Some(s) => {
            e.u8(1).u32(s.index).u32(s.count);
        }
    }
}

fn spec(e: &mut Encoder, s: Option<&pb::JobSpec>) {
    let Some(s) = s else {
        e.u8(0);
        return;
    };
    e.u8(1)
        .u64(s.fuel)
        .u64(s.memory_bytes)
        .u64(s.gpu_memory_bytes)
        .u64(s.work_budget)
        .u64(s.output_bytes)
        .u64(s.log_bytes)
        .u64(s.wall_clock_ms)
        .u64(s.start_time_ms);
    shard(e, s.shard.as_ref());
    // A BTreeMap: already sorted by key.
    e.u64(s.params.len() as u64);
    for (k, v) in &s.params {
        e.str(k).str(v);
    }
}

fn blob_refs(e: &mut Encoder, refs: &[pb::BlobRef]) {
    e.u64(refs.len() as u64);
    for r in refs {
        e.str(&r.name).bytes(&r.hash).u64(r.size);
    }
}

fn work(e: &mut Encoder, w: Option<&pb::WorkDone>) {
    match w {
        None => {
            e.u8(0);
        }
        Some(w) => {
            e.u8(1).u64(w.flops).u64(w.bytes);
        }
    }
}

fn receipt(e: &mut Encoder, r: Option<&pb::Receipt>) {
    let Some(r) = r else {
        e.u8(0);
        return;
    };
    e.u8(1).bytes(&r.job_id);
    shard(e, r.shard.as_ref());
    e.bytes(&r.provider_id)
        .bytes(&r.component_hash)
        .bytes(&r.inputs_root)
        .bytes(&r.outputs_root)
        .u32(r.outcome as u32)
        .u64(r.fuel_used);
    work(e, r.work.as_ref());
    match &r.backend {
        None => {
            e.u8(0);
        }
        Some(b) => {
            e.u8(1).str(&b.kind).str(&b.device);
        }
    }
    match &r.telemetry {
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
    e.u64(r.started_at_ms)
        .u64(r.finished_at_ms)
        .bytes(&r.signature);
}

macro_rules! signed {
    ($t:ident, |$m:ident, $e:ident| $body:block) => {
        impl Signed for pb::$t {
            const KIND: &'static str = stringify!($t);
            fn auth(&self) -> Option<&pb::Auth> {
                self.auth.as_ref()
            }
            fn auth_mut(&mut self) -> &mut Option<pb::Auth> {
                &mut self.auth
            }
            fn encode_body(&self, $e: &mut Encoder) {
                let $m = self;
                $body
            }
        }
    };
}

signed!(UploadHeader, |m, e| {
    e.bytes(&m.hash).u64(m.size);
});
signed!(DownloadRequest, |m, e| {
    e.bytes(&m.hash)
        .u64(m.offset)
        .u64(m.length)
        .bytes(&m.job_id);
});
signed!(StatRequest, |m, e| {
    e.u64(m.hashes.len() as u64);
    for h in &m.hashes {
        e.bytes(h);
    }
    e.bytes(&m.job_id);
});
signed!(GetJobRequest, |m, e| {
    e.bytes(&m.job_id)
        .u32(m.wait_ms)
        .str(&m.seen_state)
        .u32(m.inline_outputs_max_bytes);
});
signed!(FaucetRequest, |m, e| {
    e.u64(m.amount).str(&m.unit);
});
signed!(StakeRequest, |m, e| {
    e.u64(m.amount);
});
signed!(UnstakeRequest, |m, e| {
    e.u64(m.amount);
});
signed!(IssueNoteRequest, |m, e| {
    e.u64(m.shares).u32(m.term_days);
});
signed!(OfferSharesRequest, |m, e| {
    e.bytes(&m.note_id).u64(m.shares).u64(m.price);
});
signed!(BuySharesRequest, |m, e| {
    e.bytes(&m.note_id)
        .bytes(&m.seller)
        .u64(m.shares)
        .u64(m.max_price);
});
signed!(TransferSharesRequest, |m, e| {
    e.bytes(&m.note_id).bytes(&m.to).u64(m.shares);
});
signed!(IssueBondRequest, |m, e| {
    e.u64(m.principal).u32(m.coupon_bps).u32(m.maturity_days);
});
signed!(BuyBondRequest, |m, e| {
    e.bytes(&m.bond_id).u64(m.amount);
});
signed!(SubmitJobRequest, |m, e| {
    e.bytes(&m.component_hash).u64(m.component_size);
    blob_refs(e, &m.inputs);
    spec(e, m.spec.as_ref());
    e.u32(m.shards).u64(m.max_price);
    match &m.requirements {
        None => {
            e.u8(0);
        }
        Some(r) => {
            e.u8(1).u8(u8::from(r.gpu));
        }
    }
    e.u64(m.split_inputs.len() as u64);
    for name in &m.split_inputs {
        e.str(name);
    }
    e.u32(m.verify_rate_ppm).u8(u8::from(m.unverified));
    e.str(&m.pay_in);
    // Encoded only when set, so a job for the open market signs what it
    // signed before reserved clusters existed.
    if !m.cluster_id.is_empty() {
        e.bytes(&m.cluster_id);
    }
});
signed!(RegisterRequest, |m, e| {
    match &m.hardware {
        None => {
            e.u8(0);
        }
        Some(h) => {
            e.u8(1).u32(h.cpu_cores).u64(h.memory_bytes);
            e.u64(h.gpus.len() as u64);
            for g in &h.gpus {
                e.str(&g.name).u64(g.memory_bytes);
            }
        }
    }
    e.u64(m.price).u64(m.stake).u32(m.slots).str(&m.version);
    // Encoded only when set (an older provider signs what it signed before).
    if m.reserve_price > 0 {
        e.u64(m.reserve_price);
    }
});
signed!(HeartbeatRequest, |m, e| {
    e.u32(m.free_slots);
    e.u64(m.gpus.len() as u64);
    for g in &m.gpus {
        e.u32(g.index)
            .u32(g.temperature_c)
            .u64(g.power_mw)
            .u32(g.utilization_pct)
            .u64(g.memory_used_bytes);
    }
    // The report ends leases, so it is signed. Encoded only when present
    // (then a `1` byte and the ids): a provider that sends none signs what
    // it signed before the field existed.
    if let Some(held) = &m.held {
        e.u8(1).u64(held.lease_ids.len() as u64);
        for id in &held.lease_ids {
            e.bytes(id);
        }
    }
});
signed!(CreateClusterRequest, |m, e| {
    e.u32(m.gpus)
        .str(&m.gpu_class)
        .u32(m.min_reliability_permille)
        .u32(m.hours)
        .u64(m.max_price);
});
signed!(ExtendClusterRequest, |m, e| {
    e.bytes(&m.cluster_id).u32(m.hours);
});
signed!(ReleaseClusterRequest, |m, e| {
    e.bytes(&m.cluster_id);
});
signed!(TakeLeasesRequest, |m, e| {
    e.u32(m.max);
    // Encoded only when set, so a request without it signs what it signed
    // before the field existed.
    if m.wait_ms > 0 {
        e.u32(m.wait_ms);
    }
});
signed!(SubmitReceiptRequest, |m, e| {
    e.bytes(&m.lease_id);
    receipt(e, m.receipt.as_ref());
    blob_refs(e, &m.outputs);
    e.str(&m.failure_message);
});
signed!(ReturnLeaseRequest, |m, e| {
    e.bytes(&m.lease_id).u8(u8::from(m.fault)).str(&m.reason);
    // Encoded only when set (a give-back without it signs what it signed
    // before the field existed); it moves money, so it is signed.
    if m.watchdog {
        e.u8(1);
    }
});
signed!(RegisterVerifierRequest, |m, e| {
    e.u64(m.stake).str(&m.version).str(&m.backend);
});
signed!(TakeChecksRequest, |m, e| {
    e.u32(m.max);
});
signed!(ReturnCheckRequest, |m, e| {
    e.bytes(&m.check_id).str(&m.reason);
});
signed!(SubmitVerdictRequest, |m, e| {
    e.bytes(&m.check_id)
        .bytes(&m.receipt_id)
        .bytes(&m.outputs_root)
        .u32(m.outcome as u32)
        .u64(m.fuel_used);
    work(e, m.work.as_ref());
    e.u8(u8::from(m.agrees));
    // Added after the first release: absent fields sign as before.
    if !m.trace_root.is_empty() || !m.step_output.is_empty() {
        e.bytes(&m.trace_root).bytes(&m.step_output);
    }
});
signed!(TakeQuestionsRequest, |_m, _e| {});
signed!(AnswerRequest, |m, e| {
    e.bytes(&m.dispute_id)
        .str(&m.kind)
        .u64(m.trace_steps)
        .bytes(&m.trace_top)
        .u32(m.level)
        .u64(m.index)
        .bytes(&m.left)
        .bytes(&m.right)
        .bytes(&m.call)
        .bytes(&m.output)
        .u8(u8::from(m.ended))
        .bytes(&m.reveal_signature)
        .u64(m.tensors.len() as u64);
    for t in &m.tensors {
        e.u64(t.step)
            .bytes(&t.call)
            .u64(t.trace_steps)
            .u64(t.siblings.len() as u64);
        for s in &t.siblings {
            e.bytes(s);
        }
        e.u32(t.dtype).u64(t.shape.len() as u64);
        for d in &t.shape {
            e.u64(*d);
        }
        match &t.tensor {
            Some(b) => e.bytes(&b.hash).u64(b.size),
            None => e.bytes(&[]).u64(0),
        };
    }
    e.str(&m.unable);
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Node `b`, signing for coordinator 7.
    fn key(b: u8) -> Signer {
        Signer::new(NodeKey::from_seed([b; 32]), Hash32([7; 32]))
    }

    #[test]
    fn a_receipts_failure_message_cannot_be_altered_in_flight() {
        let mut req = pb::SubmitReceiptRequest {
            lease_id: vec![1; 32],
            failure_message: "trap: out of fuel".into(),
            ..Default::default()
        };
        sign_with(&key(1), &mut req, 42, 10_000);
        assert!(verify(&req, 5_000, 60_000).is_ok());
        let mut changed = req.clone();
        changed.failure_message = "all is well".into();
        assert!(matches!(
            verify(&changed, 5_000, 60_000),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn a_lease_report_and_a_watchdog_give_back_cannot_be_altered_in_flight() {
        let bad = |m: &dyn Fn() -> Result<Verified, Error>| {
            matches!(m(), Err(Error::BadSignature { .. }))
        };
        let mut hb = pb::HeartbeatRequest {
            free_slots: 1,
            held: Some(pb::LeaseReport {
                lease_ids: vec![vec![1; 32], vec![2; 32]],
            }),
            ..Default::default()
        };
        sign_with(&key(1), &mut hb, 42, 10_000);
        assert!(verify(&hb, 5_000, 60_000).is_ok());
        for change in [
            |m: &mut pb::HeartbeatRequest| m.held = None,
            |m: &mut pb::HeartbeatRequest| {
                m.held = Some(pb::LeaseReport::default());
            },
            |m: &mut pb::HeartbeatRequest| {
                if let Some(h) = m.held.as_mut() {
                    h.lease_ids.pop();
                }
            },
        ] {
            let mut changed = hb.clone();
            change(&mut changed);
            assert!(bad(&|| verify(&changed, 5_000, 60_000)));
        }
        // A heartbeat without a report signs what it always signed.
        let mut plain = pb::HeartbeatRequest {
            free_slots: 1,
            ..Default::default()
        };
        sign_with(&key(1), &mut plain, 43, 10_000);
        let mut with_report = plain.clone();
        with_report.held = Some(pb::LeaseReport::default());
        assert!(bad(&|| verify(&with_report, 5_000, 60_000)));

        let mut back = pb::ReturnLeaseRequest {
            lease_id: vec![1; 32],
            fault: true,
            reason: "the wall-clock watchdog fired".into(),
            watchdog: true,
            ..Default::default()
        };
        sign_with(&key(1), &mut back, 44, 10_000);
        assert!(verify(&back, 5_000, 60_000).is_ok());
        let mut changed = back.clone();
        changed.watchdog = false;
        assert!(bad(&|| verify(&changed, 5_000, 60_000)));
    }

    #[test]
    fn a_cluster_id_and_a_reserve_price_are_signed_only_when_set() {
        let bad = |r: Result<Verified, Error>| matches!(r, Err(Error::BadSignature { .. }));
        let mut job = pb::SubmitJobRequest {
            inline_blobs: Vec::new(),
            max_price: 7,
            ..Default::default()
        };
        sign_with(&key(1), &mut job, 42, 10_000);
        let unsigned_before = signing_bytes(&job, &key(1).id().0, &[7; 32], 42, 10_000);
        let mut with_cluster = job.clone();
        with_cluster.cluster_id = vec![3; 32];
        assert!(bad(verify(&with_cluster, 5_000, 60_000)));
        sign_with(&key(1), &mut with_cluster, 42, 10_000);
        assert!(verify(&with_cluster, 5_000, 60_000).is_ok());
        assert_ne!(
            signing_bytes(&with_cluster, &key(1).id().0, &[7; 32], 42, 10_000),
            unsigned_before
        );
        let mut other = with_cluster.clone();
        other.cluster_id = vec![4; 32];
        assert!(bad(verify(&other, 5_000, 60_000)));

        let mut reg = pb::RegisterRequest {
            price: 5,
            ..Default::default()
        };
        sign_with(&key(1), &mut reg, 43, 10_000);
        let mut dearer = reg.clone();
        dearer.reserve_price = 9;
        assert!(bad(verify(&dearer, 5_000, 60_000)));
    }

    #[test]
    fn a_failure_message_is_cut_on_a_char_boundary() {
        assert_eq!(crate::failure_message("short"), "short");
        // "a" then two-byte chars: the limit (even) falls inside one.
        let long = format!("a{}", "é".repeat(crate::FAILURE_MESSAGE_MAX_BYTES));
        let cut = crate::failure_message(&long);
        assert_eq!(cut.len(), crate::FAILURE_MESSAGE_MAX_BYTES - 1);
        assert!(long.starts_with(cut));
    }

    #[test]
    fn a_signed_request_verifies_once_signed_and_not_after_any_change() {
        let mut req = pb::SubmitJobRequest {
            inline_blobs: Vec::new(),
            pay_in: String::new(),
            component_hash: vec![1; 32],
            component_size: 10,
            inputs: vec![pb::BlobRef {
                name: "a".into(),
                hash: vec![2; 32],
                size: 3,
            }],
            spec: Some(pb::JobSpec::default()),
            shards: 2,
            max_price: 7,
            ..Default::default()
        };
        sign_with(&key(1), &mut req, 42, 10_000);
        let v = verify(&req, 5_000, 60_000).expect("verifies");
        assert_eq!(v.node, key(1).id());
        assert_eq!(v.nonce, 42);

        let mut changed = req.clone();
        changed.max_price = 8;
        assert!(matches!(
            verify(&changed, 5_000, 60_000),
            Err(Error::BadSignature { .. })
        ));
        let mut changed = req.clone();
        changed.inputs[0].size = 4;
        assert!(matches!(
            verify(&changed, 5_000, 60_000),
            Err(Error::BadSignature { .. })
        ));
        let mut changed = req.clone();
        if let Some(a) = changed.auth.as_mut() {
            a.nonce += 1;
        }
        assert!(matches!(
            verify(&changed, 5_000, 60_000),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn a_wrong_key_expiry_and_missing_auth_are_refused() {
        let mut req = pb::TakeLeasesRequest {
            auth: None,
            max: 1,
            ..Default::default()
        };
        assert!(matches!(verify(&req, 0, 1), Err(Error::Unsigned)));
        sign_with(&key(2), &mut req, 1, 10_000);
        // Claims to be node 1 but was signed by node 2.
        let mut forged = req.clone();
        if let Some(a) = forged.auth.as_mut() {
            a.node_id = key(1).id().0.to_vec();
        }
        let e = verify(&forged, 0, 60_000).expect_err("wrong key");
        assert!(e.to_string().contains("bad signature"), "{e}");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(matches!(
            verify(&req, 10_000, 60_000),
            Err(Error::Expired { .. })
        ));
        assert!(matches!(
            verify(&req, 0, 5_000),
            Err(Error::TooFarAhead { .. })
        ));
    }

    #[test]
    fn a_signature_for_one_kind_does_not_pass_as_another() {
        let mut a = pb::FaucetRequest {
            unit: String::new(),
            auth: None,
            amount: 5,
        };
        sign_with(&key(1), &mut a, 9, 10_000);
        let b = pb::StakeRequest {
            auth: a.auth.clone(),
            amount: 5,
        };
        assert!(verify(&a, 0, 60_000).is_ok());
        assert!(matches!(
            verify(&b, 0, 60_000),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn a_request_names_its_coordinator_and_no_other_accepts_it() {
        let mut req = pb::FaucetRequest {
            amount: 5,
            ..Default::default()
        };
        sign_with(&key(1), &mut req, 9, 10_000);
        let v = verify(&req, 0, 60_000).expect("verifies");
        assert_eq!(v.coordinator, Hash32([7; 32]));
        assert!(v.for_coordinator(&Hash32([7; 32])).is_ok());
        let e = v
            .for_coordinator(&Hash32([8; 32]))
            .expect_err("another coordinator");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.to_string().contains("GetCoordinator"), "{e}");

        // Rewriting the coordinator id breaks the signature.
        let mut moved = req.clone();
        if let Some(a) = moved.auth.as_mut() {
            a.coordinator_id = vec![8; 32];
        }
        assert!(matches!(
            verify(&moved, 0, 60_000),
            Err(Error::BadSignature { .. })
        ));
        // A request without one (signed the v1 way) is refused plainly.
        let mut old = req;
        if let Some(a) = old.auth.as_mut() {
            a.coordinator_id.clear();
        }
        let e = verify(&old, 0, 60_000).expect_err("no coordinator id");
        assert!(e.to_string().contains("coordinator id"), "{e}");
    }
}
