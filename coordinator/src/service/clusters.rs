//! The `Clusters` service: reserved clusters — create, extend and release
//! (signed by the renter), and read one or a party's list. The limits a
//! stranger may ask for are [`crate::rules::clusters::validate`].

use assay_proto::pb::clusters_server::Clusters as ClustersService;
use assay_proto::{convert, now_ms, pb};
use tonic::{Request, Response, Status};

use super::wire::cluster;
use super::{Coordinator, bad, blocking};
use crate::rules::clusters::{self as rules, Wanted};
use crate::store::clusters::Party;

#[tonic::async_trait]
impl ClustersService for Coordinator {
    async fn create_cluster(
        &self,
        request: Request<pb::CreateClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        let req = request.into_inner();
        let wanted = Wanted {
            gpus: req.gpus,
            gpu_class: req.gpu_class.trim().to_string(),
            min_reliability_permille: req.min_reliability_permille,
            max_price: req.max_price,
        };
        // Checked before the signature's nonce is spent: a request past
        // the limits costs the coordinator nothing.
        rules::validate(&wanted, req.hours)?;
        let renter = self.authenticate(&req).await?;
        let store = self.store.clone();
        let hours = req.hours;
        let v = blocking(move || store.create_cluster(&renter, &wanted, hours, now_ms())).await?;
        tracing::info!(cluster = %v.id.short(), renter = %renter, gpus = v.wanted.gpus, hours, escrow = v.escrowed, "cluster reserved");
        Ok(Response::new(cluster(&v)))
    }

    async fn extend_cluster(
        &self,
        request: Request<pb::ExtendClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        let req = request.into_inner();
        let id = convert::hash("cluster_id", &req.cluster_id).map_err(bad)?;
        rules::validate_hours(req.hours)?;
        let renter = self.authenticate(&req).await?;
        let store = self.store.clone();
        let hours = req.hours;
        let v = blocking(move || store.extend_cluster(&renter, &id, hours, now_ms())).await?;
        tracing::info!(cluster = %id.short(), hours, ends_ms = v.ends_ms, "cluster extended");
        Ok(Response::new(cluster(&v)))
    }

    async fn release_cluster(
        &self,
        request: Request<pb::ReleaseClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        let req = request.into_inner();
        let id = convert::hash("cluster_id", &req.cluster_id).map_err(bad)?;
        let renter = self.authenticate(&req).await?;
        let store = self.store.clone();
        let v = blocking(move || store.release_cluster(&renter, &id, now_ms())).await?;
        tracing::info!(cluster = %id.short(), refunded = v.refunded, "cluster released");
        Ok(Response::new(cluster(&v)))
    }

    async fn get_cluster(
        &self,
        request: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::Cluster>, Status> {
        let id = convert::hash("cluster_id", &request.get_ref().cluster_id).map_err(bad)?;
        let store = self.store.clone();
        match blocking(move || store.cluster(&id)).await? {
            Some(v) => Ok(Response::new(cluster(&v))),
            None => Err(Status::not_found(format!("no cluster {id}"))),
        }
    }

    async fn list_clusters(
        &self,
        request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let req = request.into_inner();
        let party = match (req.renter.is_empty(), req.provider.is_empty()) {
            (false, true) => Party::Renter(convert::node_id("renter", &req.renter).map_err(bad)?),
            (true, false) => {
                Party::Provider(convert::node_id("provider", &req.provider).map_err(bad)?)
            }
            _ => {
                return Err(Status::invalid_argument(
                    "name exactly one of renter and provider",
                ));
            }
        };
        let limit = if req.limit == 0 { 100 } else { req.limit };
        let store = self.store.clone();
        let list = blocking(move || store.clusters_of(party, req.active_only, limit)).await?;
        Ok(Response::new(pb::ListClustersResponse {
            clusters: list.iter().map(cluster).collect(),
        }))
    }
}
