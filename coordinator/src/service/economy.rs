//! The `Economy` service: the IO price feed, supply, reward epochs and
//! unstaking.

use assay_proto::pb::economy_server::Economy;
use assay_proto::{now_ms, pb};
use assay_protocol::Signature;
use assay_protocol::oracle::PriceReport;
use tonic::{Request, Response, Status};

use super::{Coordinator, blocking, wire};

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
        let nonce = req.auth.as_ref().map_or(0, |a| a.nonce);
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
}
