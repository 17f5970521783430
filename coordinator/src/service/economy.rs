//! The `Economy` service: the IO price feed, supply, reward epochs,
//! unstaking, and tokenized compute (notes and bonds).

use assay_proto::pb::economy_server::Economy;
use assay_proto::{convert, now_ms, pb};
use assay_protocol::Signature;
use assay_protocol::oracle::PriceReport;
use tonic::{Request, Response, Status};

use super::{Coordinator, auth, bad, blocking, wire};

#[tonic::async_trait]
impl Economy for Coordinator {
    async fn post_price(
        &self,
        request: Request<pb::PostPriceRequest>,
    ) -> Result<Response<pb::PriceResponse>, Status> {
        let req = request.into_inner();
        let signature = <[u8; 64]>::try_from(req.signature.as_slice())
            .map(Signature)
            .map_err(|_| {
                Status::unauthenticated(
                    "the price report is unsigned: sign it with the oracle's key (64-byte ed25519 signature)",
                )
            })?;
        let report = PriceReport {
            round: req.round,
            micro_iosd_per_io: req.micro_iosd_per_io,
            at_ms: req.at_ms,
        };
        let store = self.store.clone();
        let p = blocking(move || store.post_price(&report, &signature, now_ms())).await?;
        tracing::info!(
            round = p.round,
            price = p.micro_iosd_per_io,
            "IO price posted"
        );
        Ok(Response::new(wire::price(&p)))
    }

    async fn get_price(
        &self,
        _request: Request<pb::GetPriceRequest>,
    ) -> Result<Response<pb::PriceResponse>, Status> {
        let store = self.store.clone();
        let p = blocking(move || store.price(now_ms())).await?;
        Ok(Response::new(wire::price(&p)))
    }

    async fn get_supply(
        &self,
        _request: Request<pb::GetSupplyRequest>,
    ) -> Result<Response<pb::SupplyResponse>, Status> {
        let store = self.store.clone();
        let (s, price) = blocking(move || Ok((store.supply()?, store.price(now_ms())))).await?;
        let (price, price_error) = match price {
            Ok(p) => (Some(wire::price(&p)), String::new()),
            Err(e) => (None, e.to_string()),
        };
        Ok(Response::new(pb::SupplyResponse {
            io_cap: s.io.cap,
            io_genesis: s.io.genesis,
            io_emitted: s.io.emitted,
            io_unemitted: s.io.unemitted,
            io_burned: s.io.burned,
            io_held: s.io.held,
            iosd_minted: s.iosd.minted,
            iosd_burned: s.iosd.burned,
            iosd_supply: s.iosd.supply,
            iosd_legacy_minted: s.iosd.legacy_minted,
            price,
            price_error,
        }))
    }

    async fn list_reward_epochs(
        &self,
        request: Request<pb::ListRewardEpochsRequest>,
    ) -> Result<Response<pb::ListRewardEpochsResponse>, Status> {
        let req = request.into_inner();
        let (before, limit) = if req.has_epoch {
            (Some(req.epoch.saturating_add(1)), 1)
        } else {
            (
                (req.before > 0).then_some(req.before),
                if req.limit == 0 {
                    100
                } else {
                    req.limit.min(1000)
                },
            )
        };
        let store = self.store.clone();
        let mut epochs = blocking(move || store.reward_epochs(before, limit)).await?;
        if req.has_epoch {
            epochs.retain(|e| e.epoch == req.epoch);
            if epochs.is_empty() {
                return Err(Status::not_found(format!(
                    "reward epoch {} is not closed (or before genesis): list the closed ones with `assay rewards`",
                    req.epoch
                )));
            }
        }
        Ok(Response::new(pb::ListRewardEpochsResponse {
            epochs: epochs.iter().map(wire::reward_epoch).collect(),
        }))
    }

    async fn unstake(
        &self,
        request: Request<pb::UnstakeRequest>,
    ) -> Result<Response<pb::AccountResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let nonce = auth::nonce(&req);
        let store = self.store.clone();
        let a = blocking(move || {
            store.unstake(
                &node,
                req.amount,
                &format!("unstake/{node}/n{nonce}"),
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(wire::account_response(&node, &a)))
    }

    async fn issue_note(
        &self,
        request: Request<pb::IssueNoteRequest>,
    ) -> Result<Response<pb::NoteResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let store = self.store.clone();
        let n =
            blocking(move || store.issue_note(&node, req.shares, req.term_days, now_ms())).await?;
        Ok(Response::new(wire::note(&n)))
    }

    async fn offer_shares(
        &self,
        request: Request<pb::OfferSharesRequest>,
    ) -> Result<Response<pb::NoteResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let note = convert::hash("note_id", &req.note_id).map_err(bad)?;
        let store = self.store.clone();
        let n = blocking(move || store.offer_shares(&node, &note, req.shares, req.price)).await?;
        Ok(Response::new(wire::note(&n)))
    }

    async fn buy_shares(
        &self,
        request: Request<pb::BuySharesRequest>,
    ) -> Result<Response<pb::NoteResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let note = convert::hash("note_id", &req.note_id).map_err(bad)?;
        let seller = convert::node_id("seller", &req.seller).map_err(bad)?;
        let nonce = auth::nonce(&req);
        let store = self.store.clone();
        let n = blocking(move || {
            store.buy_shares(
                &node,
                &note,
                &seller,
                req.shares,
                req.max_price,
                &format!("note/{note}/buy/{node}/n{nonce}"),
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(wire::note(&n)))
    }

    async fn transfer_shares(
        &self,
        request: Request<pb::TransferSharesRequest>,
    ) -> Result<Response<pb::NoteResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let note = convert::hash("note_id", &req.note_id).map_err(bad)?;
        let to = convert::node_id("to", &req.to).map_err(bad)?;
        let store = self.store.clone();
        let n = blocking(move || store.transfer_shares(&node, &note, &to, req.shares)).await?;
        Ok(Response::new(wire::note(&n)))
    }

    async fn get_note(
        &self,
        request: Request<pb::GetNoteRequest>,
    ) -> Result<Response<pb::NoteResponse>, Status> {
        let note = convert::hash("note_id", &request.into_inner().note_id).map_err(bad)?;
        let store = self.store.clone();
        match blocking(move || store.note(&note)).await? {
            Some(n) => Ok(Response::new(wire::note(&n))),
            None => Err(Status::not_found(format!("no note {note}"))),
        }
    }

    async fn issue_bond(
        &self,
        request: Request<pb::IssueBondRequest>,
    ) -> Result<Response<pb::BondResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let store = self.store.clone();
        let b = blocking(move || {
            store.issue_bond(
                &node,
                req.principal,
                req.coupon_bps,
                req.maturity_days,
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(wire::bond(&b)))
    }

    async fn buy_bond(
        &self,
        request: Request<pb::BuyBondRequest>,
    ) -> Result<Response<pb::BondResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let bond = convert::hash("bond_id", &req.bond_id).map_err(bad)?;
        let nonce = auth::nonce(&req);
        let store = self.store.clone();
        let b = blocking(move || {
            store.buy_bond(
                &node,
                &bond,
                req.amount,
                &format!("bond/{bond}/buy/{node}/n{nonce}"),
                now_ms(),
            )
        })
        .await?;
        Ok(Response::new(wire::bond(&b)))
    }

    async fn get_bond(
        &self,
        request: Request<pb::GetBondRequest>,
    ) -> Result<Response<pb::BondResponse>, Status> {
        let bond = convert::hash("bond_id", &request.into_inner().bond_id).map_err(bad)?;
        let store = self.store.clone();
        match blocking(move || store.bond(&bond)).await? {
            Some(b) => Ok(Response::new(wire::bond(&b))),
            None => Err(Status::not_found(format!("no bond {bond}"))),
        }
    }
}
